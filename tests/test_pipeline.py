from __future__ import annotations

import os
from pathlib import Path

import pytest

from ragcli import loaders, pipeline
from ragcli.config import load_settings
from ragcli.errors import (
    CollectionNotFoundError,
    IncompatibleCollectionError,
    NothingIngestedError,
)
from ragcli.models import embedding
from ragcli.pipeline import batching
from ragcli.store import FaissStore
from ragcli.store.location import location_for, opened

from .conftest import check_consistent, stored_files

# Every test here runs twice: on a FAISS folder and on a PostgreSQL database.
pytestmark = pytest.mark.usefixtures("fake_models", "store")


def _chunk_count(settings) -> int:
    with opened(location_for(settings)) as collection:
        return collection.chunk_count


def test_ingest_then_search_finds_the_passage(corpus: Path) -> None:
    settings = load_settings()
    report = pipeline.ingest(settings, [str(corpus)])
    assert len(report.added) == 3 and report.chunks_added >= 3 and not report.skipped
    result = pipeline.search(settings, "who founded the kettle works", top_k=2)
    assert result.hits[0].source.endswith("beta.md")
    assert "Ada Pell" in result.hits[0].text
    assert result.hits[0].heading == "Kettle Works > History"


def test_searcher_ranks_every_chunk_it_finds_best_first(corpus: Path) -> None:
    settings = load_settings(max_per_doc=1)
    pipeline.ingest(settings, [str(corpus)])
    with pipeline.Searcher(settings) as searcher:
        ranked = searcher.rank("who founded the kettle works", 50)
        found = searcher.search("who founded the kettle works", top_k=10).hits
    assert searcher.mode == "hybrid" and len(ranked) == _chunk_count(settings)
    assert [h.score for h in ranked] == sorted((h.score for h in ranked), reverse=True)
    assert "Ada Pell" in ranked[0].text and ranked[0].row_id == found[0].row_id
    # search keeps one passage per document; the ranking keeps them all
    assert len(found) == 3 and {h.row_id for h in found} < {h.row_id for h in ranked}


def test_second_ingest_of_unchanged_files_adds_nothing(corpus: Path) -> None:
    settings = load_settings()
    pipeline.ingest(settings, [str(corpus)])
    again = pipeline.ingest(settings, [str(corpus)])
    assert (len(again.added), len(again.updated), len(again.unchanged)) == (0, 0, 3)
    assert again.chunks_added == 0
    # Touching a file without changing it is recognised by content hash.
    os.utime(corpus / "alpha.txt", (1, 1))
    touched = pipeline.ingest(settings, [str(corpus)])
    assert touched.unchanged and not touched.updated and touched.chunks_added == 0


def test_changed_file_replaces_its_chunks(corpus: Path) -> None:
    settings = load_settings()
    pipeline.ingest(settings, [str(corpus)])
    before = _chunk_count(settings)
    (corpus / "alpha.txt").write_text("The Brindle bridge was rebuilt in 1990.\n")
    report = pipeline.ingest(settings, [str(corpus)])
    assert report.updated == [report.updated[0]] and report.updated[0].endswith("alpha.txt")
    assert report.chunks_removed >= 1
    assert _chunk_count(settings) == before - report.chunks_removed + report.chunks_added
    hits = pipeline.search(settings, "Brindle bridge", top_k=10).hits
    assert not any("1932" in h.text for h in hits)


def test_unreadable_files_are_skipped_and_counted(corpus: Path) -> None:
    (corpus / "empty.md").write_text("")
    (corpus / "blob.txt").write_bytes(b"\x00\x01" * 100)
    (corpus / "photo.jpg").write_bytes(b"\xff\xd8")
    (corpus / "dangling.txt").symlink_to(corpus / "gone.txt")
    warnings: list[str] = []

    class Collect(pipeline.Events):
        def warn(self, message: str) -> None:
            warnings.append(message)

    report = pipeline.ingest(load_settings(), [str(corpus)], Collect())
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == {"empty.md", "blob.txt", "photo.jpg", "dangling.txt"}
    assert "empty" in reasons["empty.md"] and "binary" in reasons["blob.txt"]
    assert "broken symbolic link" in reasons["dangling.txt"]
    assert len(warnings) == 4 and len(report.added) == 3


def test_nothing_readable_is_an_error_and_leaves_no_collection(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    settings = load_settings()
    with pytest.raises(NothingIngestedError):
        pipeline.ingest(settings, [str(tmp_path / "empty.txt"), str(tmp_path / "missing.md")])
    assert not location_for(settings).exists() and not settings.collection_dir.exists()


def test_globs_and_dry_run(corpus: Path) -> None:
    settings = load_settings()
    plan = pipeline.ingest(settings, [str(corpus / "**" / "*.rst")], dry_run=True)
    assert [Path(p).name for p in plan.added] == ["gamma.rst"]
    assert not location_for(settings).exists()
    pipeline.ingest(settings, [str(corpus)])
    plan = pipeline.ingest(settings, [str(corpus)], dry_run=True)
    assert len(plan.unchanged) == 3 and not plan.added


def test_embedder_mismatch_is_refused(corpus: Path) -> None:
    pipeline.ingest(load_settings(), [str(corpus)])
    with pytest.raises(IncompatibleCollectionError, match="built with embedder"):
        pipeline.ingest(load_settings(embed_model="another/model"), [str(corpus)])
    with pytest.raises(IncompatibleCollectionError, match="built with embedder"):
        pipeline.search(load_settings(embed_model="another/model"), "bridge")
    with pytest.raises(IncompatibleCollectionError, match="chunk-size"):
        pipeline.ingest(load_settings(chunk_size=99), [str(corpus)])


def test_search_without_collection(tmp_path: Path) -> None:
    with pytest.raises(CollectionNotFoundError, match="does not exist"):
        pipeline.search(load_settings(collection="nothing"), "anything")


def test_interrupted_ingest_keeps_committed_state(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings()
    pipeline.ingest(settings, [str(corpus / "alpha.txt")])
    real_load = loaders.load_documents

    def load_then_interrupt(path: Path, source: str, doc_id: str, *args):
        if path.name == "gamma.rst":
            raise KeyboardInterrupt
        return real_load(path, source, doc_id, *args)

    monkeypatch.setattr(loaders, "load_documents", load_then_interrupt)
    with pytest.raises(pipeline.IngestInterrupted) as info:
        pipeline.ingest(settings, [str(corpus)])
    assert info.value.exit_code == 130
    assert stored_files(settings) == ["alpha.txt"]
    monkeypatch.setattr(loaders, "load_documents", real_load)
    report = pipeline.ingest(settings, [str(corpus)])
    assert len(report.added) == 2 and len(report.unchanged) == 1


def test_ask_cites_the_packed_passage(corpus: Path) -> None:
    settings = load_settings()
    pipeline.ingest(settings, [str(corpus)])
    tokens: list[str] = []
    answer = pipeline.ask(settings, "Who was the lighthouse keeper?", on_token=tokens.append)
    assert "".join(tokens).strip() == answer.text
    assert answer.citations and answer.citations[0].marker == 1
    assert answer.citations[0].hit == answer.passages[0]
    assert answer.tokens > 0 and "first_token_s" in answer.timings


# -- pruning, dry run, rebuild, commits ---------------------------------------------------------


_stored_files = stored_files
_check_consistent = check_consistent


def _only_collection_left(settings, store: str | None) -> None:
    """No staging or retired copy is left beside the collection."""
    if store is None:
        assert sorted(p.name for p in settings.collection_dir.parent.iterdir()) == ["default"]
        return
    import psycopg

    with psycopg.connect(store) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM ragcli_collections")]
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'ragcli\\_%'"
        ).fetchone()[0]
    assert names == ["default"] and tables == 3  # the catalogue, documents, chunks


def test_files_gone_from_a_folder_are_removed_on_its_next_ingest(corpus: Path) -> None:
    settings = load_settings()
    pipeline.ingest(settings, [str(corpus)])
    (corpus / "sub" / "gamma.rst").unlink()
    plan = pipeline.ingest(settings, [str(corpus)], dry_run=True)
    assert [Path(p).name for p in plan.removed] == ["gamma.rst"] and len(plan.unchanged) == 2
    report = pipeline.ingest(settings, [str(corpus)])
    assert [Path(p).name for p in report.removed] == ["gamma.rst"]
    assert report.chunks_removed >= 1 and report.to_dict()["files"]["removed"] == 1
    assert _stored_files(settings) == ["alpha.txt", "beta.md"]
    _check_consistent(settings)
    hits = pipeline.search(settings, "lighthouse keeper", top_k=10).hits
    assert not any("gamma" in h.source for h in hits)


def test_pruning_looks_only_under_the_folder_argument(corpus: Path, tmp_path: Path) -> None:
    settings = load_settings()
    other = tmp_path / "other"
    other.mkdir()
    (other / "loose.txt").write_text("A loose note about harbour cranes.\n")
    (corpus / "sub" / ".hidden").mkdir()
    (corpus / "sub" / ".hidden" / "secret.txt").write_text("Hidden but ingested by name.\n")
    pipeline.ingest(settings, [str(corpus), str(other / "loose.txt")])
    pipeline.ingest(settings, [str(corpus / "sub" / ".hidden")])  # a folder the walk skips
    (other / "loose.txt").unlink()
    (corpus / "alpha.txt").unlink()
    # A file argument or a glob prunes nothing: not even the file that is gone.
    report = pipeline.ingest(settings, [str(corpus / "*.md")])
    assert not report.removed and "loose.txt" in _stored_files(settings)
    # The subfolder prunes only below itself, and a file not reachable by the walk (hidden
    # folder) but still there is kept.
    report = pipeline.ingest(settings, [str(corpus / "sub")])
    assert not report.removed
    report = pipeline.ingest(settings, [str(corpus)], prune=False)
    assert not report.removed and "alpha.txt" in _stored_files(settings)
    report = pipeline.ingest(settings, [str(corpus)])
    assert [Path(p).name for p in report.removed] == ["alpha.txt"]
    assert _stored_files(settings) == ["beta.md", "gamma.rst", "loose.txt", "secret.txt"]


def test_emptied_folder_is_pruned_and_is_not_an_error(corpus: Path) -> None:
    settings = load_settings()
    pipeline.ingest(settings, [str(corpus)])
    for path in [corpus / "alpha.txt", corpus / "beta.md", corpus / "sub" / "gamma.rst"]:
        path.unlink()
    report = pipeline.ingest(settings, [str(corpus)])
    assert len(report.removed) == 3 and _check_consistent(settings) == 0
    with pytest.raises(NothingIngestedError):  # nothing left to remove or add
        pipeline.ingest(settings, [str(corpus)])


def test_symlinked_file_that_now_points_elsewhere_is_replaced(corpus: Path, tmp_path: Path):
    settings = load_settings()
    target = tmp_path / "one.txt"
    target.write_text("The first target talks about windmills.\n")
    (corpus / "link.txt").symlink_to(target)
    pipeline.ingest(settings, [str(corpus)])
    other = tmp_path / "two.txt"
    other.write_text("The second target talks about lighthouses.\n")
    (corpus / "link.txt").unlink()
    (corpus / "link.txt").symlink_to(other)
    report = pipeline.ingest(settings, [str(corpus)])
    assert len(report.removed) == 1 and len(report.added) == 1
    assert "one.txt" not in _stored_files(settings) and "two.txt" in _stored_files(settings)


def test_dry_run_hashes_changed_files_and_changes_nothing(corpus: Path) -> None:
    settings = load_settings()
    pipeline.ingest(settings, [str(corpus)])
    os.utime(corpus / "alpha.txt", (1, 1))  # touched, same content
    (corpus / "beta.md").write_text("# Kettle Works\n\nNow a museum.\n")
    (corpus / "new.txt").write_text("A new file.\n")
    (corpus / "sub" / "gamma.rst").unlink()
    plan = pipeline.ingest(settings, [str(corpus)], dry_run=True)
    names = {k: sorted(Path(p).name for p in getattr(plan, k)) for k in
             ("added", "updated", "removed", "unchanged")}  # fmt: skip
    assert names == {
        "added": ["new.txt"], "updated": ["beta.md"], "removed": ["gamma.rst"],
        "unchanged": ["alpha.txt"],
    }  # fmt: skip
    assert _stored_files(settings) == ["alpha.txt", "beta.md", "gamma.rst"]


def test_rebuild_reembeds_with_new_settings_and_swaps_in(corpus: Path, store: str | None) -> None:
    settings = load_settings()
    pipeline.ingest(settings, [str(corpus)])
    before = _check_consistent(settings)
    (corpus / "alpha.txt").unlink()
    report = pipeline.ingest(load_settings(chunk_size=8, chunk_overlap=2), [], rebuild=True)
    assert report.rebuilt and len(report.added) == 2 and report.chunks_removed == before
    assert [Path(p).name for p in report.removed] == ["alpha.txt"]
    assert location_for(settings).read_manifest()["chunking"] == {
        "chunk_size": 8, "chunk_overlap": 2,
    }  # fmt: skip
    assert _check_consistent(settings) > before - 1
    _only_collection_left(settings, store)
    # The folder it was rebuilt from is remembered: pruning still works.
    (corpus / "beta.md").unlink()
    assert len(pipeline.ingest(settings, [str(corpus)]).removed) == 1


def test_failed_rebuild_leaves_the_collection_as_it_was(
    corpus: Path, monkeypatch: pytest.MonkeyPatch, store: str | None
) -> None:
    settings = load_settings()
    pipeline.ingest(settings, [str(corpus)])
    chunks = _check_consistent(settings)
    from .conftest import FakeEmbedder

    class Failing(FakeEmbedder):
        def embed_documents(self, texts, normalize=True):
            raise KeyboardInterrupt

    monkeypatch.setattr(embedding, "open_embedder", Failing)
    with pytest.raises(pipeline.IngestInterrupted, match="as it was before the rebuild"):
        pipeline.ingest(settings, [str(corpus)], rebuild=True)
    assert _check_consistent(settings) == chunks
    _only_collection_left(settings, store)


def test_commit_every_zero_commits_after_each_file(
    corpus: Path, monkeypatch: pytest.MonkeyPatch, store: str | None
) -> None:
    from ragcli.store.postgres import PgStore

    settings = load_settings(commit_every=0)
    generations: list[int] = []
    kind = FaissStore if store is None else PgStore
    real_save = kind.save

    def save(collection) -> None:
        real_save(collection)
        generations.append(collection.generation)

    monkeypatch.setattr(kind, "save", save)
    pipeline.ingest(settings, [str(corpus)])
    # One commit per file, then the final (no-op) one; each commit a new generation (a merge
    # of the folder store's segments after a commit takes one more).
    assert generations[0] == 1 and generations[0] < generations[1] < generations[2]
    assert len(generations) == 4 and generations[3] == generations[2]


def test_long_file_is_embedded_a_batch_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .conftest import FakeEmbedder

    sizes: list[int] = []

    class Counting(FakeEmbedder):
        def embed_documents(self, texts, normalize=True):
            sizes.append(len(texts))
            return super().embed_documents(texts, normalize)

    monkeypatch.setattr(embedding, "open_embedder", Counting)
    monkeypatch.setattr(batching, "EMBED_BATCH_CHUNKS", 16)
    path = tmp_path / "long.txt"
    path.write_text("\n\n".join(f"Paragraph {i} is about topic {i}." for i in range(300)))
    settings = load_settings(chunk_size=20, chunk_overlap=0)
    report = pipeline.ingest(settings, [str(path)])
    assert max(sizes) <= 16 and sum(sizes) == report.chunks_added > 16
    assert _check_consistent(settings) == report.chunks_added


@pytest.mark.parametrize("store", ["faiss"], indirect=True)  # the IVF index is FAISS's own
def test_update_remove_and_rebuild_work_on_an_approximate_index(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragcli.store import faiss_index as store_module

    monkeypatch.setattr(store_module, "APPROXIMATE_FROM", 2)
    settings = load_settings()
    pipeline.ingest(settings, [str(corpus)])
    with FaissStore.open(settings.collection_dir) as store:
        assert store.describe_index().kind == "approximate"
    (corpus / "alpha.txt").write_text("The Brindle bridge was rebuilt in 1990.\n")
    (corpus / "sub" / "gamma.rst").unlink()
    report = pipeline.ingest(settings, [str(corpus)])
    assert len(report.updated) == 1 and len(report.removed) == 1
    _check_consistent(settings)
    hits = pipeline.search(settings, "Brindle bridge rebuilt", top_k=10).hits
    assert "1990" in hits[0].text and not any("1932" in h.text for h in hits)
    pipeline.ingest(settings, [], rebuild=True)
    with FaissStore.open(settings.collection_dir) as store:
        assert store.describe_index().kind == "approximate"
    assert _stored_files(settings) == ["alpha.txt", "beta.md"]


def test_a_shard_with_no_files_is_not_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "only.txt").write_text("The only file of a small corpus.\n")
    settings = load_settings()
    reports = [pipeline.ingest(settings, [str(folder)], shard=(k, 4)) for k in range(1, 5)]
    assert sorted(len(r.added) for r in reports) == [0, 0, 0, 1]
    assert stored_files(settings) == ["only.txt"]
