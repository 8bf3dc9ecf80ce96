from __future__ import annotations

import os
from pathlib import Path

import pytest

from ragcli import pipeline
from ragcli.config import load_settings
from ragcli.errors import (
    CollectionNotFoundError,
    IncompatibleCollectionError,
    NothingIngestedError,
)
from ragcli.store import FaissStore

pytestmark = pytest.mark.usefixtures("fake_models")


def test_ingest_then_search_finds_the_passage(corpus: Path) -> None:
    settings = load_settings()
    report = pipeline.ingest(settings, [str(corpus)])
    assert len(report.added) == 3 and report.chunks_added >= 3 and not report.skipped
    result = pipeline.search(settings, "who founded the kettle works", top_k=2)
    assert result.hits[0].source.endswith("beta.md")
    assert "Ada Pell" in result.hits[0].text
    assert result.hits[0].heading == "Kettle Works > History"


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
    with FaissStore.open(settings.collection_dir) as store:
        before = store.chunk_count
    (corpus / "alpha.txt").write_text("The Brindle bridge was rebuilt in 1990.\n")
    report = pipeline.ingest(settings, [str(corpus)])
    assert report.updated == [report.updated[0]] and report.updated[0].endswith("alpha.txt")
    assert report.chunks_removed >= 1
    with FaissStore.open(settings.collection_dir) as store:
        assert store.chunk_count == before - report.chunks_removed + report.chunks_added
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
    assert not settings.collection_dir.exists()


def test_globs_and_dry_run(corpus: Path) -> None:
    settings = load_settings()
    plan = pipeline.ingest(settings, [str(corpus / "**" / "*.rst")], dry_run=True)
    assert [Path(p).name for p in plan.added] == ["gamma.rst"]
    assert not settings.collection_dir.exists()
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
    real_load = pipeline.load_documents

    def load_then_interrupt(path: Path, source: str, doc_id: str, *args):
        if path.name == "gamma.rst":
            raise KeyboardInterrupt
        return real_load(path, source, doc_id, *args)

    monkeypatch.setattr(pipeline, "load_documents", load_then_interrupt)
    with pytest.raises(pipeline.IngestInterrupted) as info:
        pipeline.ingest(settings, [str(corpus)])
    assert info.value.exit_code == 130
    with FaissStore.open(settings.collection_dir) as store:
        assert [Path(d.path).name for d in store.documents()] == ["alpha.txt"]
    monkeypatch.setattr(pipeline, "load_documents", real_load)
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
