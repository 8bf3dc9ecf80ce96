"""Freshness: every search and answer says when its collection was last committed and which of
its sources changed on disk, or went away, since they were ingested."""

from __future__ import annotations

import calendar
import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import load_settings
from ragcli.freshness import stale_sources
from ragcli.store.location import location_for, opened

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("fake_models")


def _json(*args: str) -> dict:
    result = runner.invoke(app, list(args))
    assert result.exit_code in (0, 7), result.output
    return json.loads(result.stdout)


def _stale(result: dict) -> dict[str, str]:
    return {Path(s["path"]).name: s["reason"] for s in result["stale_sources"]}


def test_unchanged_sources_are_not_stale_and_updated_at_is_the_last_commit(
    corpus: Path,
) -> None:
    before = time.time()
    runner.invoke(app, ["ingest", str(corpus)])
    result = _json("search", "lighthouse keeper", "--json", "-k", "5")
    assert result["stale_sources"] == []
    committed = calendar.timegm(time.strptime(result["updated_at"], "%Y-%m-%dT%H:%M:%SZ"))
    assert before - 1 <= committed <= time.time()
    assert _json("ask", "Who was the lighthouse keeper?", "--json")["stale_sources"] == []


@pytest.mark.usefixtures("store")  # on a FAISS folder and on PostgreSQL
def test_a_changed_file_and_a_deleted_file_are_stale(corpus: Path) -> None:
    runner.invoke(app, ["ingest", str(corpus)])
    gamma = corpus / "sub" / "gamma.rst"
    stat = gamma.stat()
    os.utime(gamma, (stat.st_atime, stat.st_mtime + 5))  # touched: mtime alone is enough
    (corpus / "beta.md").unlink()
    result = _json("search", "lighthouse keeper kettle works bridge", "--json", "-k", "10")
    assert _stale(result) == {"gamma.rst": "changed", "beta.md": "missing"}
    entry = next(s for s in result["stale_sources"] if s["reason"] == "changed")
    assert entry["source"].endswith("gamma.rst") and entry["path"] == str(gamma.resolve())


def test_an_answer_names_the_stale_sources_it_cites(corpus: Path) -> None:
    runner.invoke(app, ["ingest", str(corpus)])
    (corpus / "sub" / "gamma.rst").write_text("Lighthouse\n==========\n\nNow a museum.\n")
    (corpus / "alpha.txt").unlink()  # among the passages, not cited
    answer = _json("ask", "Who was the lighthouse keeper?", "--json", "-k", "10")
    assert answer["citations"][0]["source"].endswith("gamma.rst")
    assert _stale(answer) == {"gamma.rst": "changed"}
    withheld = _json("ask", "zyxwvut qponm", "--json", "-k", "10")  # of the passages given
    assert withheld["abstain_reason"] == "weak retrieval"
    given = {Path(p["source"]).name for p in withheld["passages"]}
    assert {"gamma.rst", "alpha.txt"} <= given
    assert _stale(withheld) == {"gamma.rst": "changed", "alpha.txt": "missing"}


def test_the_terminal_answer_warns_when_it_cites_a_stale_source(corpus: Path) -> None:
    runner.invoke(app, ["ingest", str(corpus)])
    fresh = runner.invoke(app, ["ask", "Who was the lighthouse keeper?"])
    assert "since it was ingested" not in fresh.stderr
    (corpus / "sub" / "gamma.rst").write_text("Lighthouse\n==========\n\nNow a museum.\n")
    result = runner.invoke(app, ["ask", "Who was the lighthouse keeper?"])
    assert result.exit_code == 0, result.output
    assert "cited source changed since it was ingested: " in result.stderr
    assert "gamma.rst (run ragcli ingest again)" in result.stderr
    assert "since it was ingested" not in result.stdout
    quiet = runner.invoke(app, ["ask", "Who was the lighthouse keeper?", "-q"])
    assert "since it was ingested" not in quiet.stderr


def test_records_of_a_jsonl_corpus_follow_their_file(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        '{"_id": "d1", "text": "Flutter of swept wings at transonic speed."}\n'
        '{"_id": "d2", "text": "Heat transfer in a laminar boundary layer."}\n'
    )
    runner.invoke(app, ["ingest", str(corpus)])
    settings = load_settings()
    with opened(location_for(settings)) as store:
        hits = store.hits([(i, 0.0) for i in range(1, 3)])
        assert stale_sources(store, hits) == []
        corpus.write_text(corpus.read_text() + '{"_id": "d3", "text": "Shock waves."}\n')
        stale = stale_sources(store, hits)
        assert [(s.path, s.reason) for s in stale] == [(str(corpus.resolve()), "changed")] * 2
        assert sorted(s.source.rsplit("#", 1)[1] for s in stale) == ["d1", "d2"]
        corpus.unlink()
        assert {s.reason for s in stale_sources(store, hits)} == {"missing"}
