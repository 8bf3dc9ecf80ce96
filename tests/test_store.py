from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ragcli.errors import (
    CollectionBusyError,
    CollectionNotFoundError,
    IncompatibleCollectionError,
)
from ragcli.models import Block, Chunk, Document
from ragcli.store import FaissStore, make_manifest, read_manifest

DIM = 8


def _manifest() -> dict:
    return make_manifest("t", "fake", DIM, 60, {"chunk_size": 50, "chunk_overlap": 0})


def _doc(name: str, sha: str = "a" * 64) -> Document:
    return Document(Path("/docs") / name, name, "text", [Block("x")], sha, 10, 1.0)


def _chunks(n: int, prefix: str) -> list[Chunk]:
    return [
        Chunk(f"{prefix}{i}", i, f"{prefix} text {i}", 3, line_start=i + 1, line_end=i + 1)
        for i in range(n)
    ]


def _vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_round_trip_add_save_reopen_search(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    vectors = _vectors(3, 1)
    with FaissStore.create(directory, _manifest()) as store:
        store.add(_doc("a.txt"), _chunks(3, "a"), vectors)
        store.save()
    with FaissStore.open(directory) as store:
        assert store.chunk_count == 3
        assert store.documents_of_file("/docs/a.txt")[0].chunks == 3
        hits = store.search(vectors[1], 2)
        assert hits[0].text == "a text 1" and hits[0].rank == 1
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert (hits[0].line_start, hits[0].source) == (2, "a.txt")
    assert sorted(p.name for p in directory.glob("vectors-*")) == ["vectors-1.faiss"]


def test_unsaved_changes_are_not_visible_and_vanish_on_close(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    with FaissStore.create(directory, _manifest()) as store:
        store.add(_doc("a.txt"), _chunks(2, "a"), _vectors(2, 1))
        store.save()
        store.add(_doc("b.txt"), _chunks(2, "b"), _vectors(2, 2))
        with FaissStore.open(directory) as reader:  # a reader during the ingest
            assert reader.chunk_count == 2 and not reader.documents_of_file("/docs/b.txt")
    # closed without save: as if the process died before its commit
    with FaissStore.open(directory) as store:
        assert store.chunk_count == 2
        assert [d.path for d in store.documents()] == ["/docs/a.txt"]


def test_crash_between_vector_write_and_commit_keeps_old_generation(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    with FaissStore.create(directory, _manifest()) as store:
        store.add(_doc("a.txt"), _chunks(2, "a"), _vectors(2, 1))
        store.save()
    # Leftovers of a writer that died after writing vectors-2 but before its SQLite commit.
    (directory / "vectors-2.faiss").write_bytes(b"partial")
    (directory / "vectors-3.faiss.tmp").write_bytes(b"partial")
    with FaissStore.open(directory) as reader:
        assert reader.chunk_count == 2
    with FaissStore.open(directory, writable=True) as writer:
        assert writer.chunk_count == 2
    assert sorted(p.name for p in directory.glob("vectors-*")) == ["vectors-1.faiss"]


def test_delete_and_rollback(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    with FaissStore.create(directory, _manifest()) as store:
        store.add(_doc("a.txt"), _chunks(2, "a"), _vectors(2, 1))
        store.add(_doc("b.txt"), _chunks(3, "b"), _vectors(3, 2))
        store.save()
        assert store.delete_file("/docs/a.txt") == 2
        assert store.chunk_count == 3
        store.rollback()
        assert store.chunk_count == 5
        assert store.delete_file("/docs/a.txt") == 2
        assert store.delete_file("/docs/missing.txt") == 0
        store.save()
    with FaissStore.open(directory) as store:
        assert store.chunk_count == 3
        assert {h.source for h in store.search(_vectors(1, 9)[0], 10)} == {"b.txt"}


def test_second_writer_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    with FaissStore.create(directory, _manifest()):
        with pytest.raises(CollectionBusyError):
            FaissStore.open(directory, writable=True)
        with FaissStore.open(directory) as reader:  # readers are never blocked
            assert reader.chunk_count == 0


def test_missing_foreign_and_newer_collections(tmp_path: Path) -> None:
    with pytest.raises(CollectionNotFoundError):
        read_manifest(tmp_path / "nope")
    (tmp_path / "foreign").mkdir()
    with pytest.raises(IncompatibleCollectionError, match="not a ragcli collection"):
        read_manifest(tmp_path / "foreign")
    directory = tmp_path / "newer"
    FaissStore.create(directory, _manifest()).close()
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["format_version"] = 99
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IncompatibleCollectionError, match="format version 99"):
        read_manifest(directory)


def test_damaged_vectors_file_is_a_clear_error(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    with FaissStore.create(directory, _manifest()) as store:
        store.add(_doc("a.txt"), _chunks(2, "a"), _vectors(2, 1))
        store.save()
    (directory / "vectors-1.faiss").write_bytes(b"garbage")
    with pytest.raises(IncompatibleCollectionError, match="damaged"):
        FaissStore.open(directory)
    (directory / "vectors-1.faiss").unlink()
    with pytest.raises(IncompatibleCollectionError, match="vectors-1.faiss missing"):
        FaissStore.open(directory)


def test_reader_keeps_one_snapshot_while_a_writer_commits(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    with FaissStore.create(directory, _manifest()) as store:
        store.add(_doc("a.txt"), _chunks(2, "a"), _vectors(2, 1))
        store.save()
    reader = FaissStore.open(directory)
    with FaissStore.open(directory, writable=True) as writer:
        writer.delete_file("/docs/a.txt")
        writer.add(_doc("b.txt"), _chunks(3, "b"), _vectors(3, 2))
        writer.save()
    # The reader still answers from generation 1, whose vectors file is now gone from disk.
    assert not (directory / "vectors-1.faiss").exists()
    assert {h.source for h in reader.search(_vectors(1, 5)[0], 10)} == {"a.txt"}
    reader.close()
    with FaissStore.open(directory) as fresh:
        assert {h.source for h in fresh.search(_vectors(1, 5)[0], 10)} == {"b.txt"}
