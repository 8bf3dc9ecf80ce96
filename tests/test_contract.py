"""The JSON shapes scripts rely on. A change here is a change of contract: bump schema_version
when a field changes meaning or goes away, and update README "Scripting"."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli.cli import app

runner = CliRunner()

HIT = {
    "rank", "score", "source", "page", "lines", "heading", "location", "format", "ocr", "doc_id",
    "chunk_id", "text",
}  # fmt: skip
SEARCH = {
    "schema_version", "question", "collection", "embedder", "mode", "hits", "updated_at",
    "stale_sources", "timings",
}  # fmt: skip
ASK = {
    "schema_version", "question", "rewritten_query", "answer", "abstained", "abstain_reason",
    "citations",
    "unknown_markers", "sentences", "passages", "dropped", "evidence", "verified", "confidence",
    "collection", "models", "tokens", "updated_at", "stale_sources", "timings",
}  # fmt: skip
STALE = {"source", "path", "reason"}
SENTENCE = {"text", "markers", "support", "missing", "supported", "backed_by"}
ASK_TIMINGS = {
    "embedder_load_s", "retrieve_s", "generator_load_s", "prompt_tokens", "first_token_s",
    "generate_s", "decode_tokens_per_s",
}  # fmt: skip


def _json(*args: str, input: str | None = None):
    result = runner.invoke(app, list(args), input=input)
    return (
        [json.loads(line) for line in result.stdout.splitlines()]
        if "--batch" in args or ("--stream-json" in args)
        else json.loads(result.stdout)
    )


@pytest.mark.usefixtures("fake_models")
def test_search_and_ask_shapes(corpus: Path) -> None:
    runner.invoke(app, ["ingest", str(corpus)])
    search = _json("search", "lighthouse keeper", "--json")
    assert set(search) == SEARCH and search["schema_version"] == 1
    assert set(search["hits"][0]) == HIT
    explained = _json("search", "lighthouse keeper", "--json", "--explain")["hits"][0]
    assert set(explained) == HIT | {"explain"}
    assert set(explained["explain"]) == {
        "similarity", "dense_rank", "dense_score", "lexical_rank", "lexical_score", "fused_score",
    }  # fmt: skip

    ask = _json("ask", "Who was the lighthouse keeper?", "--json")
    assert set(ask) == ASK and ask["schema_version"] == 1
    assert set(ask["citations"][0]) == HIT | {"marker"}
    assert set(ask["sentences"][0]) == SENTENCE
    assert set(ask["passages"][0]) == HIT
    assert set(ask["models"]) == {"embedder", "generator", "engine"}
    assert set(ask["timings"]) == ASK_TIMINGS

    abstained = _json("ask", "zyxwvut qponm", "--json")
    assert set(abstained) == ASK and abstained["abstained"] is True

    batch = _json("ask", "--batch", "-", input="Who was the lighthouse keeper?\n")
    assert set(batch[0]) == ASK | {"id"}
    search_batch = _json("search", "--batch", "-", input="keeper\n")
    assert set(search_batch[0]) == SEARCH | {"id"}
    events = _json("ask", "Who was the lighthouse keeper?", "--stream-json")
    assert {e["event"] for e in events} == {"token", "citation", "done"}
    assert set(events[-1]) == ASK | {"event"}


SESSION_TURN = {
    "question", "rewritten_query", "answer", "sources", "abstained", "abstain_reason",
    "collection", "timestamp", "new_conversation",
}  # fmt: skip


@pytest.mark.usefixtures("fake_models")
def test_session_shapes(corpus: Path, tmp_path: Path) -> None:
    runner.invoke(app, ["ingest", str(corpus)])
    session = str(tmp_path / "talk.jsonl")
    first = _json("ask", "Who was the lighthouse keeper?", "--session", session, "--json")
    assert set(first) == ASK and set(first["timings"]) == ASK_TIMINGS
    follow = _json("ask", "What did its lamp burn?", "--session", session, "--json")
    assert set(follow) == ASK and set(follow["timings"]) == ASK_TIMINGS | {"rewrite_s"}
    turns = [json.loads(line) for line in Path(session).read_text().splitlines()]
    assert [set(t) for t in turns] == [SESSION_TURN, SESSION_TURN]
    assert set(turns[0]["sources"][0]) == {"marker", "source", "location", "chunk_id"}


@pytest.mark.usefixtures("fake_models")
def test_freshness_shapes(corpus: Path) -> None:
    runner.invoke(app, ["ingest", str(corpus)])
    fresh = _json("search", "lighthouse keeper", "--json")
    assert fresh["stale_sources"] == []
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", fresh["updated_at"])
    (corpus / "sub" / "gamma.rst").write_text("Lighthouse\n==========\n\nNow a museum.\n")
    stale = _json("search", "lighthouse keeper", "--json")["stale_sources"]
    assert [set(s) for s in stale] == [STALE] and stale[0]["reason"] == "changed"
    ask = _json("ask", "Who was the lighthouse keeper?", "--json")
    assert [s["reason"] for s in ask["stale_sources"]] == ["changed"]


@pytest.mark.usefixtures("fake_models")
def test_ingest_shape(corpus: Path) -> None:
    report = _json("ingest", str(corpus), "--json")
    assert {"collection", "dry_run", "files", "chunks", "added", "updated", "unchanged",
            "skipped", "seconds"} <= set(report)  # fmt: skip
    assert {"seen", "added", "updated", "unchanged", "skipped"} <= set(report["files"])
