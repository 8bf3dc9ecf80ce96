"""The embedding cache: passages embedded once per embedder, reused by renamed and copied
files and by other collections; bounded, cleared, and never a reason for an ingest to fail."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.models import embedding_cache
from ragcli.models.embedding_cache import EmbeddingCache

from .conftest import FakeEmbedder

runner = CliRunner()


def _cache(tmp_path: Path, identity: str = "fake\x00\x00''\x00float32") -> EmbeddingCache:
    return EmbeddingCache(tmp_path / "cache", identity, 4)


def test_vectors_come_back_by_text_and_identity(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    vectors = np.arange(8, dtype=np.float32).reshape(2, 4)
    cache.put(["alpha", "beta"], vectors)
    got = cache.get(["beta", "gamma", "alpha", "beta"])
    assert sorted(got) == [0, 2, 3]
    assert np.array_equal(got[0], vectors[1]) and np.array_equal(got[2], vectors[0])
    assert (cache.hits, cache.misses) == (3, 1)
    other = _cache(tmp_path, "fake\x00\x00'query: '\x00float32")  # another prompt: no reuse
    assert other.get(["alpha"]) == {} and other.path != cache.path


def test_the_bound_drops_the_least_recently_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = 4 * 4 + embedding_cache._ROW_OVERHEAD
    monkeypatch.setenv("RAGCLI_EMBED_CACHE_MB", str(10 * row / 2**20))  # room for 10 rows
    cache = _cache(tmp_path)
    cache.put([f"old {i}" for i in range(8)], np.ones((8, 4), np.float32))
    cache.get(["old 0"])  # used again: stays
    cache.put([f"new {i}" for i in range(8)], np.ones((8, 4), np.float32))
    kept = cache.get([f"old {i}" for i in range(8)] + [f"new {i}" for i in range(8)])
    assert len(kept) <= 10 and 0 in kept  # old 0 was used recently
    assert all(8 + i in kept for i in range(8))  # the newest are kept


def test_a_damaged_cache_file_costs_only_the_reuse(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    cache.path.parent.mkdir(parents=True)
    cache.path.write_bytes(b"this is not a database" * 100)
    assert cache.get(["alpha"]) == {}
    cache.put(["alpha"], np.ones((1, 4), np.float32))  # no error
    assert cache.broken


def test_identity_follows_the_model_folders_files(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    embedder = FakeEmbedder(str(model))
    before = embedding_cache.identity(embedder)
    (model / "model.safetensors").write_bytes(b"other weights")
    assert embedding_cache.identity(embedder) != before
    embedder.document_prompt = "passage: "
    assert "passage: " in embedding_cache.identity(embedder)


class _Counting(FakeEmbedder):
    embedded: list[str] = []

    def embed_documents(self, texts, normalize=True):  # type: ignore[no-untyped-def]
        _Counting.embedded += list(texts)
        return super().embed_documents(texts, normalize)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch, fake_models: None) -> type[_Counting]:
    from ragcli.models import embedding

    _Counting.embedded = []
    monkeypatch.setattr(embedding, "open_embedder", _Counting)
    return _Counting


def _ingest(*args: str) -> dict:
    result = runner.invoke(app, ["ingest", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_renamed_folder_and_another_collection_embed_nothing(
    corpus: Path, tmp_path: Path, counting: type[_Counting]
) -> None:
    first = _ingest(str(corpus))
    assert first["chunks"]["reused"] == 0 and len(counting.embedded) == first["chunks"]["added"]
    counting.embedded = []
    renamed = tmp_path / "renamed"
    shutil.move(str(corpus), renamed)
    again = _ingest(str(renamed))
    assert again["files"]["added"] == 3 and counting.embedded == []
    assert again["chunks"]["reused"] == again["chunks"]["added"] == first["chunks"]["added"]
    other = _ingest(str(renamed), "-c", "other")
    assert counting.embedded == [] and other["chunks"]["reused"] == other["chunks"]["added"]
    # a changed passage is embedded; its unchanged neighbours are not
    (renamed / "alpha.txt").write_text("The Brindle bridge opened in 1932.\n\nA new line.\n")
    _ingest(str(renamed))
    assert counting.embedded and all("new line" in t.lower() or "Brindle" in t
                                      for t in counting.embedded)  # fmt: skip
    # the search finds the same passages as before
    hits = json.loads(runner.invoke(app, ["search", "kettle works", "--json"]).stdout)["hits"]
    assert hits and Path(hits[0]["source"]).name == "beta.md"


def test_off_and_clear(corpus: Path, counting: type[_Counting], monkeypatch) -> None:
    _ingest(str(corpus))
    shown = json.loads(runner.invoke(app, ["models", "cache", "--json"]).stdout)
    assert shown["enabled"] and shown["files"] == 1 and shown["vectors"] > 0
    cleared = json.loads(runner.invoke(app, ["models", "cache", "--clear", "--json"]).stdout)
    assert cleared["vectors"] == 0 and cleared["freed_bytes"] > 0
    monkeypatch.setenv("RAGCLI_EMBED_CACHE", "off")
    counting.embedded = []
    data = _ingest(str(corpus), "-c", "again")
    assert data["chunks"]["reused"] == 0 and len(counting.embedded) == data["chunks"]["added"]
    assert json.loads(runner.invoke(app, ["models", "cache", "--json"]).stdout)["files"] == 0
