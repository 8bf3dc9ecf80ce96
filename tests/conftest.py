"""Shared fixtures: an isolated RAGCLI_HOME for every test, and deterministic model fakes."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from ragcli.embedding import embedder_name

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

    backend = "fake"

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
        self, spec: str | None, cache_dir: Path, status=None, backend: str = "auto"
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
    """Swap the real embedder and generator for the deterministic fakes in the pipeline."""
    import ragcli.pipeline as pipeline

    monkeypatch.setattr(pipeline, "Embedder", FakeEmbedder)
    monkeypatch.setattr(pipeline, "open_generator", FakeGenerator)


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
