from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from ragcli.errors import (
    CollectionBusyError,
    CollectionNotFoundError,
    IncompatibleCollectionError,
)
from ragcli.filters import Filters
from ragcli.records import Block, Chunk, Document
from ragcli.store import (
    FORMAT_VERSION,
    FaissStore,
    calibrate_probes,
    drop_collection,
    folder_files,
    make_manifest,
    read_manifest,
    recover_collection,
    replace_collection,
)
from ragcli.store import faiss_index as store_module

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
    assert sorted(p.name for p in directory.glob("*.faiss*")) == ["seg-1.faiss"]


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
        assert [d.key for d in store.documents()] == ["/docs/a.txt"]


def test_crash_between_vector_write_and_commit_keeps_old_generation(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    with FaissStore.create(directory, _manifest()) as store:
        store.add(_doc("a.txt"), _chunks(2, "a"), _vectors(2, 1))
        store.save()
    # Leftovers of a writer that died after writing seg-2 but before its SQLite commit, and
    # of one that died while writing seg-3.
    (directory / "seg-2.faiss").write_bytes(b"partial")
    (directory / "seg-2.bits.faiss").write_bytes(b"partial")
    (directory / "seg-3.faiss.tmp").write_bytes(b"partial")
    with FaissStore.open(directory) as reader:
        assert reader.chunk_count == 2
    with FaissStore.open(directory, writable=True) as writer:
        assert writer.chunk_count == 2
    assert sorted(p.name for p in directory.glob("*.faiss*")) == ["seg-1.faiss"]


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
    (directory / "seg-1.faiss").write_bytes(b"garbage")
    with pytest.raises(IncompatibleCollectionError, match="damaged"):
        FaissStore.open(directory)
    (directory / "seg-1.faiss").unlink()
    with pytest.raises(IncompatibleCollectionError, match="seg-1.faiss missing"):
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
    # The reader still answers from generation 1, whose segment (all of its chunks deleted)
    # the writer's merge removed from disk.
    assert not (directory / "seg-1.faiss").exists()
    assert {h.source for h in reader.search(_vectors(1, 5)[0], 10)} == {"a.txt"}
    reader.close()
    with FaissStore.open(directory) as fresh:
        assert {h.source for h in fresh.search(_vectors(1, 5)[0], 10)} == {"b.txt"}


# -- index kind, metadata-only commits, format upgrade ----------------------------------------


def _filled(directory: Path, documents: int, per_document: int) -> list[np.ndarray]:
    vectors = [_vectors(per_document, seed) for seed in range(documents)]
    with FaissStore.create(directory, _manifest()) as store:
        for number, block in enumerate(vectors):
            store.add(_doc(f"d{number}.txt"), _chunks(per_document, f"d{number}-"), block)
        store.save()
    return vectors


def test_large_collections_get_an_approximate_index_that_still_removes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "APPROXIMATE_FROM", 200)
    directory = tmp_path / "c"
    vectors = _filled(directory, 30, 10)  # 300 chunks
    with FaissStore.open(directory) as reader:
        assert reader.describe_index().kind == "approximate"
        (segment,) = reader.segments
        index = segment.index
        assert 1 <= index.nprobe <= index.nlist  # calibrated, saved with it
        # With the saved probes, recall@10 against exact search on stored vectors is >= 0.95.
        exact = store_module.rebuilt_index(index, 0)
        queries = np.concatenate(vectors)
        own = np.arange(1, 301)  # chunk ids, in the order they were added
        truth = store_module.neighbours(exact, queries, own)
        found = store_module.neighbours(index, queries, own)
        assert np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]) >= 0.95
        assert calibrate_probes(index, exact) >= 0.95
        hits = reader.search(vectors[7][3], 1)
        assert hits[0].text == "d7- text 3" and hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert np.allclose(reader.vectors([hits[0].row_id]), vectors[7][3:4], atol=1e-6)
        # A filter small enough is scored exactly: every allowed chunk can be found.
        only = reader.dense(vectors[7][3], 50, Filters("d2.txt"))
        assert len(only) == 10 and {reader.hits(only)[0].source} == {"d2.txt"}
    with FaissStore.open(directory, writable=True) as writer:
        assert writer.delete_file("/docs/d7.txt") == 10
        writer.save()
    with FaissStore.open(directory) as reader:
        assert reader.chunk_count == 290
        assert all(h.source != "d7.txt" for h in reader.search(vectors[7][3], 20))
    with FaissStore.open(directory, writable=True) as writer:
        for number in range(8, 30):
            writer.delete_file(f"/docs/d{number}.txt")
        writer.save()  # most of the segment deleted: rewritten, now too small for IVF
    with FaissStore.open(directory) as reader:
        assert reader.describe_index().kind == "exact" and reader.chunk_count == 70
        assert reader.describe_index().segments == 1


def test_each_segment_gets_the_index_its_size_calls_for_and_compact_merges_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "APPROXIMATE_FROM", 100)
    directory = tmp_path / "c"
    _filled(directory, 50, 13)
    with FaissStore.open(directory, writable=True) as writer:
        for number in range(50, 60):
            writer.add(_doc(f"d{number}.txt"), _chunks(13, f"d{number}-"), _vectors(13, number))
        writer.save()
    with FaissStore.open(directory) as reader:
        old, new = reader.segments  # the newer is smaller: not merged
        assert (old.vectors, new.vectors) == (650, 130)
        assert (old.index.nlist, new.index.nlist) == (10, 2)  # each its own lists_for
        assert reader.chunk_count == 60 * 13
        assert reader.search(_vectors(13, 3)[5], 1)[0].text == "d3- text 5"
        assert reader.search(_vectors(13, 53)[5], 1)[0].text == "d53- text 5"
    with FaissStore.open(directory, writable=True) as writer:
        writer.delete_file("/docs/d0.txt")
        writer.save()
        before = writer.disk_bytes()
        writer.compact()
        assert writer.disk_bytes() < before
    with FaissStore.open(directory) as reader:
        (merged,) = reader.segments
        assert merged.vectors == reader.chunk_count == 59 * 13 and not len(merged.deleted)
        assert merged.index.nlist == 11
        assert reader.search(_vectors(13, 3)[5], 1)[0].text == "d3- text 5"
    assert sorted(p.name for p in directory.glob("*.faiss*")) == [merged.file]


def test_metadata_only_commit_keeps_the_vectors_file(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    _filled(directory, 1, 2)
    with FaissStore.open(directory, writable=True) as writer:
        writer.touch_file("/docs/d0.txt", 5.0)
        writer.set_origin("/docs/d0.txt", "/docs", "/docs/d0.txt")
        writer.save()
        assert writer.generation == 1 and writer._segments is None  # vectors never loaded
    assert sorted(p.name for p in directory.glob("*.faiss*")) == ["seg-1.faiss"]
    with FaissStore.open(directory) as reader:
        (stored,) = reader.documents_of_file("/docs/d0.txt")
        assert (stored.mtime, stored.origin) == (5.0, "/docs/d0.txt")
        assert [d.file for d in reader.documents_from_folder("/docs")] == ["/docs/d0.txt"]
        assert reader.documents_from_folder("/doc") == []


def test_version_1_collection_is_read_and_upgraded_by_its_next_writer(tmp_path: Path) -> None:
    import sqlite3

    directory = tmp_path / "c"
    _filled(directory, 2, 2)
    db = sqlite3.connect(directory / "meta.sqlite")
    db.execute("ALTER TABLE documents DROP COLUMN origin")
    db.execute("ALTER TABLE documents DROP COLUMN root")
    db.commit()
    db.close()
    manifest = json.loads((directory / "manifest.json").read_text())
    (directory / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}))
    with FaissStore.open(directory) as reader:
        assert reader.chunk_count == 4 and reader.documents()[0].origin is None
        assert reader.ingest_arguments() == ["/docs/d0.txt", "/docs/d1.txt"]
    with FaissStore.open(directory, writable=True) as writer:
        writer.set_origin("/docs/d0.txt", "/docs", "/docs/d0.txt")
        writer.save()
    assert read_manifest(directory)["format_version"] == FORMAT_VERSION == 3
    with FaissStore.open(directory) as reader:
        assert reader.ingest_arguments() == ["/docs", "/docs/d1.txt"]


# -- whole collections: replace, recover, drop --------------------------------------------------


def _sources(directory: Path) -> set[str]:
    with FaissStore.open(directory) as reader:
        return {d.source for d in reader.documents()}


@pytest.mark.parametrize("exchange", [True, False])
def test_replace_collection_swaps_whole_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool
) -> None:
    if not exchange:  # the two-rename fallback for systems without RENAME_EXCHANGE
        monkeypatch.setattr(folder_files, "_exchange", lambda a, b: False)
    current, new = tmp_path / "c", tmp_path / ".c.rebuild"
    _filled(current, 1, 2)
    with FaissStore.create(new, _manifest(), generation_floor=1) as store:
        store.add(_doc("new.txt"), _chunks(1, "n"), _vectors(1, 9))
        store.save()
        assert store.generation == 2  # never a generation number the old folder used
    reader = FaissStore.open(current)  # opened before the swap, answers from the old folder
    replace_collection(new, current)
    assert _sources(current) == {"new.txt"} and not new.exists()
    assert {h.source for h in reader.search(_vectors(1, 0)[0], 5)} == {"d0.txt"}
    reader.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_reader_opening_during_a_swap_starts_again_on_the_new_folder(tmp_path: Path) -> None:
    current, new = tmp_path / "c", tmp_path / ".c.rebuild"
    _filled(current, 1, 2)
    with FaissStore.create(new, _manifest(), generation_floor=1) as store:
        store.add(_doc("new.txt"), _chunks(3, "n"), _vectors(3, 9))
        store.save()
    reader = FaissStore.open(current)  # its SQLite connection is to the old folder
    assert reader.generation == 1
    replace_collection(new, current)
    # Loading again as if it had opened just before the swap: seg-1 is not in the folder
    # now, so it reconnects and reads generation 2 of the new collection.
    reader._segments = reader._load_segments()
    assert reader.chunk_count == 3 and {d.source for d in reader.documents()} == {"new.txt"}
    reader.close()


def test_recover_finishes_or_undoes_a_cut_replacement(tmp_path: Path) -> None:
    current = tmp_path / "c"
    _filled(current, 1, 2)
    # Cut after the old folder was renamed away, before the new one took its place.
    os.rename(current, tmp_path / ".c.old")
    recover_collection(current)
    assert _sources(current) == {"d0.txt"}
    os.rename(current, tmp_path / ".c.old")
    with FaissStore.create(tmp_path / ".c.rebuild", _manifest()) as store:
        store.add(_doc("new.txt"), _chunks(1, "n"), _vectors(1, 9))
        store.save()
    recover_collection(current)
    assert _sources(current) == {"new.txt"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_drop_is_refused_while_a_writer_holds_the_collection(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    _filled(directory, 1, 1)
    with FaissStore.open(directory, writable=True), pytest.raises(CollectionBusyError):
        drop_collection(directory)
    assert directory.exists()
    (tmp_path / ".c.rebuild").mkdir()  # a dead rebuild's leftovers go too
    drop_collection(directory)
    assert list(tmp_path.iterdir()) == []


def test_check_finds_a_lexical_index_out_of_step(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    with FaissStore.create(directory, _manifest()) as store:
        store.add(_doc("a.txt"), _chunks(3, "a"), _vectors(3, 1))
        store.save()
        assert store.check() == 3
        store.db.execute(
            "INSERT INTO chunks_fts(chunks_fts, rowid, text) "
            "SELECT 'delete', id, text FROM chunks WHERE ordinal = 0"
        )
        with pytest.raises(IncompatibleCollectionError, match="3 chunks but 2 lexical entries"):
            store.check()


def _remember(home: str, name: str) -> None:
    os.environ["RAGCLI_HOME"] = home
    from ragcli.config import load_settings
    from ragcli.store.location import remember_store

    for round_ in range(20):  # each rewrite of stores.json must keep the others' entries
        remember_store(load_settings(collection=name, store=f"postgresql://u@h/db{round_}"))


def test_collections_recorded_at_once_by_many_processes_are_all_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiprocessing

    from ragcli.config import load_settings
    from ragcli.store.location import remembered_stores

    context = multiprocessing.get_context("spawn")
    names = [f"c{i}" for i in range(6)]
    workers = [context.Process(target=_remember, args=(str(tmp_path), n)) for n in names]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    monkeypatch.setenv("RAGCLI_HOME", str(tmp_path))
    stores = remembered_stores(load_settings())
    assert stores == {n: "postgresql://u@h/db19" for n in names}


def _as_format_2(directory: Path) -> None:
    """Turn a collection into what ragcli wrote before segments: one ``vectors-<generation>``
    file named by the ``generation`` state, no segments tables."""
    import sqlite3

    (directory / "seg-1.faiss").rename(directory / "vectors-1.faiss")
    db = sqlite3.connect(directory / "meta.sqlite")
    db.executescript(
        "DROP TABLE segments; DROP TABLE deleted; DELETE FROM state WHERE key = 'layout';"
    )
    db.close()
    manifest = json.loads((directory / "manifest.json").read_text())
    (directory / "manifest.json").write_text(json.dumps({**manifest, "format_version": 2}))


def test_format_2_vectors_file_is_read_and_becomes_the_first_segment(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    vectors = _filled(directory, 5, 4)
    _as_format_2(directory)
    with FaissStore.open(directory) as reader:
        assert reader.chunk_count == 20
        assert reader.search(vectors[1][2], 1)[0].text == "d1- text 2"
    with FaissStore.open(directory, writable=True) as writer:
        writer.delete_file("/docs/d0.txt")
        writer.add(_doc("new.txt"), _chunks(2, "n"), _vectors(2, 9))
        writer.save()
    assert read_manifest(directory)["format_version"] == 3
    with FaissStore.open(directory) as reader:
        assert [s.file for s in reader.segments] == ["vectors-1.faiss", "seg-2.faiss"]
        assert reader.chunk_count == 18
        assert reader.search(vectors[1][2], 1)[0].text == "d1- text 2"
        assert reader.search(_vectors(2, 9)[1], 1)[0].text == "n text 1"
        assert all(h.source != "d0.txt" for h in reader.search(vectors[0][0], 20))
    with FaissStore.open(directory, writable=True) as writer:
        writer.compact()
    assert sorted(p.name for p in directory.glob("*.faiss*")) == ["seg-3.faiss"]


# -- segments, deletions, merges, compressed vectors -------------------------------------------


def _coded_manifest(kind: str) -> dict:
    manifest = _manifest()
    manifest["vectors"] = kind
    return manifest


def _segment_facts(directory: Path) -> list[tuple[str, int, int]]:
    with FaissStore.open(directory) as reader:
        return [(s.codec, s.vectors, len(s.deleted)) for s in reader.segments]


def test_a_commit_writes_one_new_segment_and_records_deletions_without_rewriting(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "c"
    _filled(directory, 4, 5)
    before = (directory / "seg-1.faiss").stat()
    with FaissStore.open(directory, writable=True) as writer:
        writer.delete_file("/docs/d1.txt")
        writer.add(_doc("e.txt"), _chunks(3, "e"), _vectors(3, 7))
        writer.save()
    after = (directory / "seg-1.faiss").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert _segment_facts(directory) == [("float32", 20, 5), ("float32", 3, 0)]
    with FaissStore.open(directory) as reader:
        assert reader.chunk_count == 18
        found = {h.source for h in reader.search(_vectors(5, 1)[0], 30)}
        assert "d1.txt" not in found and {"d0.txt", "e.txt"} <= found
        assert reader.search(_vectors(3, 7)[2], 1)[0].text == "e text 2"
        # A filtered search reaches every segment.
        only = reader.dense(_vectors(1, 3)[0], 10, Filters("e.txt"))
        assert len(only) == 3


def test_chunks_added_and_removed_before_a_commit_never_reach_a_segment(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    _filled(directory, 1, 2)
    with FaissStore.open(directory, writable=True) as writer:
        writer.add(_doc("e.txt"), _chunks(3, "e"), _vectors(3, 7))
        writer.add(_doc("f.txt"), _chunks(2, "f"), _vectors(2, 8))
        assert writer.delete_file("/docs/e.txt") == 3
        writer.save()
    # d0's 2 vectors and f's 2, merged (the newer is no smaller); none of e's.
    assert _segment_facts(directory) == [("float32", 4, 0)]


def test_segments_merge_like_a_binary_counter(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    _filled(directory, 10, 3)  # one segment of 30
    for number in range(4):
        with FaissStore.open(directory, writable=True) as writer:
            chunks = _chunks(1 + number, f"n{number}-")
            writer.add(_doc(f"n{number}.txt"), chunks, _vectors(1 + number, 100 + number))
            writer.save()
    # 30 | 1, then 30 | 1 | 2 -> the newest is no smaller than the one before: 30 | 3; then
    # 30 | 3 | 3 -> 30 | 6; then 30 | 6 | 4 stays.
    facts = _segment_facts(directory)
    assert [count for _, count, _ in facts] == [30, 6, 4]
    with FaissStore.open(directory) as reader:
        ids = [s.first_id for s in reader.segments]
        assert ids == sorted(ids)
        assert all(a.last_id < b.first_id for a, b in zip(reader.segments, reader.segments[1:]))
        assert reader.chunk_count == 40
        for number in range(4):
            hit = reader.search(_vectors(1 + number, 100 + number)[number], 1)[0]
            assert hit.text == f"n{number}- text {number}"


def test_merge_plan_writes_each_vector_a_logarithmic_number_of_times() -> None:
    from ragcli.store.segments import Segment, merge_plan

    segments: list[Segment] = []
    written = 0
    for number in range(1024):  # 1,024 commits of 100 vectors
        segments.append(Segment(number, "f", "float32", number, number, 100))
        segments[-1].deleted = np.zeros(0)
        written += 100
        while (plan := merge_plan(segments)) is not None:
            start, end = plan
            merged = Segment(0, "f", "float32", 0, 0, sum(s.live for s in segments[start:end]))
            merged.deleted = np.zeros(0)
            segments[start:end] = [merged]
            written += merged.vectors
    assert written / (1024 * 100) <= 11  # log2(1024) + 1
    assert len(segments) <= 11


def test_merge_plan_rewrites_a_segment_mostly_deleted() -> None:
    from ragcli.store.segments import Segment, merge_plan

    def segment(vectors: int, deleted: int) -> Segment:
        s = Segment(1, "f", "float32", 0, 0, vectors)
        s.deleted = np.arange(deleted)
        return s

    assert merge_plan([segment(100, 10), segment(5, 0)]) is None
    assert merge_plan([segment(100, 31), segment(5, 0)]) == (0, 1)
    assert merge_plan([segment(100, 0), segment(5, 0), segment(5, 0)]) == (1, 3)
    assert merge_plan([segment(100, 0)], everything=True) is None
    assert merge_plan([segment(100, 1)], everything=True) == (0, 1)
    assert merge_plan([segment(100, 0), segment(5, 0)], everything=True) == (0, 2)


@pytest.mark.parametrize("kind", ["int8", "binary"])
def test_compressed_vectors_search_like_float32(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    from ragcli.store import segments as segments_module

    monkeypatch.setattr(segments_module, "CODE_FROM", 50)
    rng = np.random.default_rng(3)
    directory = tmp_path / "c"
    dim = 32
    manifest = make_manifest("t", "fake", dim, 60, {"chunk_size": 50, "chunk_overlap": 0})
    manifest["vectors"] = kind
    centres = rng.normal(size=(20, dim))
    vectors = []
    with FaissStore.create(directory, manifest) as store:
        for number in range(30):  # 30 documents of 4 chunks, around 20 topics
            block = centres[number % 20] + 0.4 * rng.normal(size=(4, dim))
            block = (block / np.linalg.norm(block, axis=1, keepdims=True)).astype(np.float32)
            vectors.append(block)
            store.add(_doc(f"d{number}.txt"), _chunks(4, f"d{number}-"), block)
        store.save()
        store.add(_doc("small.txt"), _chunks(3, "s"), vectors[0][:3])  # below CODE_FROM
        store.save()
    everything = np.concatenate(vectors)
    with FaissStore.open(directory) as reader:
        assert [s.codec for s in reader.segments] == [kind, "float32"]
        assert reader.describe_index().vectors == kind
        recalls = []
        for query in everything[::7]:
            truth = np.argsort(-(everything @ query))[:10] + 1  # ids 1..120 in order
            found = [i for i, _ in reader.dense(query, 13) if i <= 120][:10]
            recalls.append(len(set(found) & set(truth.tolist())) / 10)
            best_id, best = reader.dense(query, 1)[0]
            assert best <= 1.0 + 1e-5  # cosines, not raw inner products
        assert np.mean(recalls) >= 0.9
        hit = reader.search(vectors[5][2], 1)[0]
        assert hit.text == "d5- text 2" and hit.score == pytest.approx(1.0, abs=0.01)
        decoded = reader.vectors([hit.row_id])
        assert float(decoded[0] @ vectors[5][2]) > 0.99
    # The collection's grid was trained once; merging decodes and re-codes without loss.
    with FaissStore.open(directory) as reader:
        before = reader.vectors(list(range(1, 121)))
    with FaissStore.open(directory, writable=True) as writer:
        writer.delete_file("/docs/d3.txt")
        writer.save()
        writer.compact()
    with FaissStore.open(directory) as reader:
        (merged,) = reader.segments
        assert merged.codec == kind and merged.vectors == 119
        kept = [i for i in range(1, 121) if not 13 <= i <= 16]
        assert np.array_equal(reader.vectors(kept), before[np.asarray(kept) - 1])


def test_a_merge_killed_before_its_commit_leaves_the_segments_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "c"
    _filled(directory, 3, 2)
    with FaissStore.open(directory, writable=True) as writer:
        writer.add(_doc("e.txt"), _chunks(2, "e"), _vectors(2, 7))
        writer.save()
        # The merged segment's file is written, then the process dies before the commit.
        real_commit = writer._set_state

        def dying(key: str, value: str) -> None:
            real_commit(key, value)
            raise KeyboardInterrupt

        monkeypatch.setattr(writer, "_set_state", dying)
        with pytest.raises(KeyboardInterrupt):
            writer.compact()
    assert _segment_facts(directory) == [("float32", 6, 0), ("float32", 2, 0)]
    with FaissStore.open(directory) as reader:
        assert reader.chunk_count == 8
    with FaissStore.open(directory, writable=True):  # the next writer clears the leftovers
        pass
    assert sorted(p.name for p in directory.glob("*.faiss*")) == ["seg-1.faiss", "seg-2.faiss"]
