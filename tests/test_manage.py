"""The collection commands: status, list, remove, collections, collections drop; and two
ingests at once."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli import pipeline
from ragcli.cli import app
from ragcli.config import load_settings
from ragcli.errors import EXIT_BUSY
from ragcli.models import embedding

from .conftest import FakeEmbedder

# Every test here runs on a FAISS folder and on a PostgreSQL database, unless marked.
pytestmark = pytest.mark.usefixtures("fake_models", "store")
runner = CliRunner()


def run(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def test_status_json_and_plain(corpus: Path, store: str | None) -> None:
    run("ingest", str(corpus))
    data = json.loads(run("status", "--json").stdout)
    assert data["collection"] == "default" and data["format_version"] == 3
    assert (data["documents"], data["files"]) == (3, 3) and data["chunks"] >= 3
    assert data["embedder"]["name"] == "fake-embedder" and data["embedder"]["dimension"] == 64
    assert data["chunking"] == {"chunk_size": 200, "chunk_overlap": 32}
    assert data["index"]["kind"] == "exact" and data["disk_bytes"] > 0
    assert data["updated_at"].endswith("Z") and data["generation"] == 1
    plain = run("status").stdout.splitlines()
    index = (
        "exact (flat inner product), int8 vectors, 1 segment"
        if store is None
        else "exact (pgvector sequential scan)"
    )
    assert "documents\t3" in plain and f"index\t{index}" in plain
    if store is not None:  # where it lives, without the password
        assert data["path"].startswith("postgresql://postgres:***@/") and "default" in data["path"]
    missing = run("status", "-c", "nope")
    assert missing.exit_code == 3 and "does not exist" in missing.stderr


def test_list_shows_documents_with_chunk_counts(corpus: Path) -> None:
    run("ingest", str(corpus))
    lines = [line.split("\t") for line in run("list").stdout.splitlines()]
    assert [Path(fields[0]).name for fields in lines] == ["alpha.txt", "beta.md", "gamma.rst"]
    assert all(int(fields[1]) >= 1 and fields[3] in {"text", "markdown", "rst"} for fields in lines)
    data = json.loads(run("list", "--json").stdout)
    assert set(data["documents"][0]) == {
        "source", "path", "format", "title", "chunks", "size", "modified_at", "ingested_at",
        "pages", "ocr_pages", "warnings",
    }  # fmt: skip


def test_remove_by_source_path_or_folder(corpus: Path) -> None:
    run("ingest", str(corpus))
    shown = json.loads(run("list", "--json").stdout)["documents"][0]["source"]
    result = run("remove", shown, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["removed"] == [shown]
    result = run("remove", str(corpus / "sub"))  # a folder: everything ingested under it
    assert result.stdout.startswith("removed\t") and "gamma.rst" in result.stdout
    left = json.loads(run("status", "--json").stdout)
    assert left["documents"] == 1
    missing = run("remove", "nowhere.txt", str(corpus / "beta.md"))
    assert missing.exit_code == 2 and "not in collection 'default': nowhere.txt" in missing.stderr
    assert "beta.md" in missing.stdout  # what matched was removed all the same
    assert json.loads(run("status", "--json").stdout)["chunks"] == 0


def test_collections_list_and_drop(corpus: Path) -> None:
    assert run("collections", "--json").stdout.strip() == '{\n  "collections": []\n}'
    run("ingest", str(corpus))
    run("ingest", str(corpus / "alpha.txt"), "-c", "small")
    listed = json.loads(run("collections", "--json").stdout)["collections"]
    assert [(c["name"], c["documents"]) for c in listed] == [("default", 3), ("small", 1)]
    piped = run("collections").stdout.splitlines()
    assert piped[1].split("\t")[:2] == ["small", "1"]

    refused = run("collections", "drop", "small")  # stdin is no terminal: --yes needed
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    dropped = run("collections", "drop", "small", "--yes", "--json")
    assert dropped.exit_code == 0 and json.loads(dropped.stdout)["dropped"] == "small"
    assert run("collections", "drop", "small", "--yes").exit_code == 3


def test_drop_asks_on_a_terminal(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ragcli.cli import manage as manage_commands

    run("ingest", str(corpus))
    monkeypatch.setattr(manage_commands, "_interactive", lambda: True)
    kept = run("collections", "drop", "default", input="n\n")
    assert kept.exit_code == 1 and "kept" in kept.stderr and "Drop collection" in kept.stderr
    gone = run("collections", "drop", "default", input="y\n")
    assert gone.exit_code == 0 and "dropped collection 'default'" in gone.stdout


@pytest.mark.parametrize("store", ["faiss"], indirect=True)  # PostgreSQL: test_pgstore.py
def test_second_ingest_fails_at_once_while_readers_keep_working(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("ingest", str(corpus / "alpha.txt"))
    embedding_started = threading.Event()
    release = threading.Event()

    class Slow(FakeEmbedder):
        def embed_documents(self, texts, normalize=True):
            embedding_started.set()
            release.wait(10)
            return super().embed_documents(texts, normalize)

    monkeypatch.setattr(embedding, "open_embedder", Slow)
    first = threading.Thread(target=pipeline.ingest, args=(load_settings(), [str(corpus)]))
    first.start()
    try:
        assert embedding_started.wait(10)
        second = run("ingest", str(corpus))
        assert second.exit_code == EXIT_BUSY == 8
        assert second.stderr.startswith(
            "ragcli: error: collection 'default' is being written by another ragcli process"
        )
        assert "hint: wait for that ingest to finish" in second.stderr
        assert run("collections", "drop", "default", "--yes").exit_code == EXIT_BUSY
        assert run("remove", str(corpus / "alpha.txt")).exit_code == EXIT_BUSY
        # Readers see the last commit (alpha only) while the first ingest is under way.
        reader = run("search", "Brindle bridge", "--json")
        assert reader.exit_code == 0
        assert {Path(h["source"]).name for h in json.loads(reader.stdout)["hits"]} == {"alpha.txt"}
        assert json.loads(run("status", "--json").stdout)["documents"] == 1
    finally:
        release.set()
        first.join(10)
    assert json.loads(run("status", "--json").stdout)["documents"] == 3


def test_unchanged_reingest_exits_0_and_nothing_readable_exits_6(corpus: Path) -> None:
    assert run("ingest", str(corpus)).exit_code == 0
    again = run("ingest", str(corpus))
    assert again.exit_code == 0 and "0 added, 0 updated, 0 removed, 3 unchanged" in again.stdout
    (corpus / "empty.txt").write_text("")
    assert run("ingest", str(corpus / "empty.txt")).exit_code == 6
    assert run("ingest").exit_code == 2  # no PATH and no --rebuild


def test_rebuild_and_dry_run_from_the_command_line(corpus: Path) -> None:
    run("ingest", str(corpus))
    plan = run("ingest", "--rebuild", "--dry-run", "--chunk-size", "20")
    assert plan.exit_code == 0 and "dry run for rebuilding collection 'default': 3 to add" in (
        plan.stdout
    )
    done = run("ingest", "--rebuild", "--chunk-size", "20", "--json")
    data = json.loads(done.stdout)
    assert data["rebuilt"] and data["files"]["added"] == 3
    assert json.loads(run("status", "--json").stdout)["chunking"]["chunk_size"] == 20
    (corpus / "beta.md").unlink()
    kept = run("ingest", str(corpus), "--no-prune", "--json")
    assert json.loads(kept.stdout)["files"]["removed"] == 0
    pruned = run("ingest", str(corpus))
    assert "1 removed" in pruned.stdout
