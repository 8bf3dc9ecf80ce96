"""The Store interface, one set of tests run on both stores (a FAISS folder and PostgreSQL).

Each test gets a collection from ``location_for(settings)``, the way the use cases do, on the
store the ``store`` fixture names.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest

from ragcli.config import load_settings
from ragcli.errors import IncompatibleCollectionError
from ragcli.records import Block, Chunk, Document
from ragcli.store import MANIFEST, Store, make_manifest
from ragcli.store.location import FolderLocation, Location, PostgresLocation, location_for
from ragcli.store.postgres_db import connect

DIM = 8


@pytest.fixture
def location(store: str | None) -> Location:
    return location_for(load_settings(collection="contract"))


def _manifest() -> dict:
    return make_manifest("contract", "fake", DIM, 60, {"chunk_size": 50, "chunk_overlap": 0})


def _doc(name: str, sha: str = "a" * 64) -> Document:
    return Document(Path("/docs") / name, name, "text", [Block("x")], sha, 10, 1.0)


def _chunks(n: int, prefix: str) -> list[Chunk]:
    words = ["harbour tram", "lighthouse lamp", "kettle works", "ferry pier", "sea wall"]
    return [
        Chunk(f"{prefix}{i}", i, f"{prefix} {words[i % len(words)]} {i}", 3, line_start=i + 1)
        for i in range(n)
    ]


def _vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _add(store: Store, name: str, chunks: list[Chunk], vectors: np.ndarray) -> int:
    document_id = store.add_document(_doc(name), len(chunks), "/docs", "/docs")
    store.add_chunks(document_id, chunks, vectors)
    return document_id


def test_round_trip(location: Location) -> None:
    vectors = _vectors(3, 1)
    store = location.create(_manifest())
    try:
        _add(store, "a.txt", _chunks(3, "a"), vectors)
        store.save()
    finally:
        store.close()
    reader = location.open()
    try:
        (stored,) = reader.documents_of_file("/docs/a.txt")
        assert (stored.source, stored.chunks, stored.root) == ("a.txt", 3, "/docs")
        assert reader.counts()["documents"] == 1 and reader.counts()["chunks"] == 3
        assert reader.chunk_count == 3 and reader.generation >= 1
        best, score = reader.dense(vectors[1], 1)[0]
        assert score == pytest.approx(1.0, abs=1e-5)
        (hit,) = reader.hits([(best, score)])
        assert hit.source == "a.txt" and hit.text == "a lighthouse lamp 1"
        # int8 (the default) is kept as float32 in a segment this small, and as a halfvec
        # (3 significant digits) on PostgreSQL.
        np.testing.assert_allclose(reader.vectors([best])[0], vectors[1], atol=2e-3)
        assert [h.text for h in reader.hits(reader.lexical(["kettle"], 5))] == ["a kettle works 2"]
    finally:
        reader.close()


def test_hits_keep_the_order_they_are_given(location: Location) -> None:
    store = location.create(_manifest())
    try:
        _add(store, "a.txt", _chunks(4, "a"), _vectors(4, 2))
        store.save()
        ids = [chunk_id for chunk_id, _ in store.dense(_vectors(1, 3)[0], 4)]
        reordered = [(ids[2], 0.9), (ids[0], 0.5), (ids[3], 0.1)]
        assert [h.row_id for h in store.hits(reordered)] == [ids[2], ids[0], ids[3]]
        assert [h.score for h in store.hits(reordered)] == [0.9, 0.5, 0.1]
    finally:
        store.close()


def test_rollback_forgets_what_was_not_saved(location: Location) -> None:
    store = location.create(_manifest())
    try:
        _add(store, "a.txt", _chunks(2, "a"), _vectors(2, 4))
        store.save()
        _add(store, "b.txt", _chunks(3, "b"), _vectors(3, 5))
        store.rollback()
        assert store.documents_of_file("/docs/b.txt") == []
    finally:
        store.close()
    reader = location.open()
    try:
        assert reader.counts()["chunks"] == 2
        assert [d.source for d in reader.documents()] == ["a.txt"]
    finally:
        reader.close()


def test_delete_file_takes_its_chunks(location: Location) -> None:
    store = location.create(_manifest())
    try:
        _add(store, "a.txt", _chunks(2, "a"), _vectors(2, 6))
        _add(store, "b.txt", _chunks(3, "b"), _vectors(3, 7))
        store.save()
        assert store.delete_file("/docs/a.txt") == 2
        store.save()
        assert store.counts()["chunks"] == 3
        assert {h.source for h in store.hits(store.dense(_vectors(1, 8)[0], 10))} == {"b.txt"}
        assert {h.source for h in store.hits(store.lexical(["harbour"], 10))} == {"b.txt"}
    finally:
        store.close()


def test_a_query_of_another_dimension_is_refused(location: Location) -> None:
    store = location.create(_manifest())
    try:
        _add(store, "a.txt", _chunks(2, "a"), _vectors(2, 9))
        store.save()
        with pytest.raises(IncompatibleCollectionError, match="8-dimensional vectors"):
            store.dense(np.ones(DIM + 1, dtype=np.float32), 1)
    finally:
        store.close()


def _written_by_a_newer_ragcli(location: Location) -> None:
    """Give the stored manifest a format version this ragcli does not know."""
    if isinstance(location, FolderLocation):
        path = location.directory / MANIFEST
        path.write_text(json.dumps({**json.loads(path.read_text()), "format_version": 99}))
        return
    assert isinstance(location, PostgresLocation)
    with connect(location.url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ragcli_collections SET manifest = jsonb_set(manifest, '{format_version}', "
            "'99') WHERE name = %s",
            (location.name,),
        )


def test_a_format_this_version_cannot_read_is_refused(location: Location) -> None:
    store = location.create(_manifest())
    try:
        _add(store, "a.txt", _chunks(1, "a"), _vectors(1, 10))
        store.save()
    finally:
        store.close()
    _written_by_a_newer_ragcli(location)
    with pytest.raises(IncompatibleCollectionError, match="format version 99"):
        location.open().close()


def _remove_a_chunk_row(location: Location) -> None:
    """Delete one chunk's row behind the store's back, leaving its vector and its counts."""
    if isinstance(location, FolderLocation):
        import sqlite3

        with contextlib.closing(sqlite3.connect(location.directory / "meta.sqlite")) as db:
            db.execute("DELETE FROM chunks WHERE id = (SELECT min(id) FROM chunks)")
            db.commit()
        return
    assert isinstance(location, PostgresLocation)
    with connect(location.url, autocommit=True) as conn:
        (table_id,) = conn.execute(
            "SELECT id FROM ragcli_collections WHERE name = %s", (location.name,)
        ).fetchone()
        conn.execute(
            f"DELETE FROM ragcli_{table_id}_chunks WHERE id = "
            f"(SELECT min(id) FROM ragcli_{table_id}_chunks)"
        )


def test_the_consistency_check_passes_a_sound_collection_and_names_damage(
    location: Location,
) -> None:
    store = location.create(_manifest())
    try:
        _add(store, "a.txt", _chunks(2, "a"), _vectors(2, 11))
        _add(store, "b.txt", _chunks(3, "b"), _vectors(3, 12))
        store.save()
        assert store.check() == 5
        store.delete_file("/docs/a.txt")
        store.save()
        assert store.check() == 3
    finally:
        store.close()
    _remove_a_chunk_row(location)
    # The folder store finds it as it opens (its vectors outnumber the rows), PostgreSQL in
    # the check.
    damaged = pytest.raises(IncompatibleCollectionError, match="damaged collection 'contract': ")
    with damaged, location.open() as reader:
        reader.check()
