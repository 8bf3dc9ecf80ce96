"""Follow-up questions in a session file (pipeline/conversing.py and ``ask --session``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli import pipeline
from ragcli.cli import app
from ragcli.config import load_settings
from ragcli.errors import UsageError
from ragcli.models import generation
from ragcli.pipeline import conversing
from ragcli.pipeline.conversing import Session, Turn, clean_rewrite
from ragcli.pipeline.events import Events

from .conftest import FakeGenerator

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("fake_models")

FIRST = "Who founded the kettle works?"
FOLLOW_UP = "And who kept the light?"
REWRITE = "Who was the lighthouse keeper?"


class RewritingGenerator(FakeGenerator):
    """The fake generator, answering a rewrite request with ``rewrite``; every prompt kept."""

    rewrite: str | None = REWRITE
    prompts: list[list[dict[str, str]]] = []

    def stream(self, messages, max_new_tokens, temperature=0.0, seed=None) -> Iterator[str]:  # type: ignore[no-untyped-def, override]
        RewritingGenerator.prompts.append(messages)
        if "Follow-up question:" in messages[-1]["content"]:
            words = (self.rewrite or "").split(" ")[:max_new_tokens]
            self.last_token_count = len(words) if self.rewrite else 0
            yield from (w if i == 0 else " " + w for i, w in enumerate(words))
            return
        yield from super().stream(messages, max_new_tokens, temperature, seed)


def _rewrites() -> list[str]:
    """The user messages of the rewrite requests the generator received."""
    return [
        m[-1]["content"]
        for m in RewritingGenerator.prompts
        if "Follow-up question:" in m[-1]["content"]
    ]


@pytest.fixture
def rewriting(monkeypatch: pytest.MonkeyPatch) -> type[RewritingGenerator]:
    monkeypatch.setattr(generation, "open_generator", RewritingGenerator)
    monkeypatch.setattr(RewritingGenerator, "prompts", [])
    return RewritingGenerator


@pytest.fixture
def ingested(corpus: Path):  # type: ignore[no-untyped-def]
    settings = load_settings()
    pipeline.ingest(settings, [str(corpus)])
    return settings


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_a_first_question_is_searched_as_asked_without_a_rewrite(
    ingested, rewriting, tmp_path: Path
) -> None:
    session = tmp_path / "talk.jsonl"
    answer = conversing.ask_in_session(ingested, FIRST, session)
    assert answer.rewritten_query is None and "rewrite_s" not in answer.timings
    assert _rewrites() == [] and len(rewriting.prompts) == 1  # the answer only
    assert "Ada Pell" in answer.text
    (turn,) = _lines(session)
    assert turn["question"] == FIRST and turn["rewritten_query"] is None
    assert turn["collection"] == "default" and turn["new_conversation"] is True
    assert turn["answer"] == answer.text and turn["abstained"] is False
    assert turn["sources"] == [
        {
            "marker": 1,
            "source": answer.citations[0].hit.source,
            "location": answer.citations[0].hit.location,
            "chunk_id": answer.citations[0].hit.chunk_key,
        }
    ]
    assert turn["timestamp"].endswith("Z")


def test_a_follow_up_is_rewritten_and_retrieval_uses_the_rewrite(
    ingested, rewriting, tmp_path: Path
) -> None:
    session = tmp_path / "talk.jsonl"
    conversing.ask_in_session(ingested, FIRST, session)
    # Searched as asked, the follow-up finds another passage first.
    assert not pipeline.search(ingested, FOLLOW_UP).hits[0].source.endswith("gamma.rst")
    rewriting.prompts.clear()

    statuses: list[str] = []

    class Recorder(Events):
        def status(self, message: str) -> None:
            statuses.append(message)

    answer = conversing.ask_in_session(ingested, FOLLOW_UP, session, events=Recorder())
    (request,) = _rewrites()
    assert FIRST in request and "Ada Pell" in request and FOLLOW_UP in request
    assert answer.rewritten_query == REWRITE and f"rewritten: {REWRITE}" in statuses
    assert answer.timings["rewrite_s"] >= 0
    assert answer.passages[0].source.endswith("gamma.rst") and "Ivo Sand" in answer.text
    # the generator answers the question as asked, not the rewrite
    answer_prompt = rewriting.prompts[-1][-1]["content"]
    assert f"Question: {FOLLOW_UP}" in answer_prompt and REWRITE not in answer_prompt
    assert answer.question == FOLLOW_UP
    assert [t["rewritten_query"] for t in _lines(session)] == [None, REWRITE]


@pytest.mark.parametrize(
    "reply", ["", "I don't know.", " ".join(["word"] * 60), "Question:  "], ids=repr
)
def test_an_unusable_rewrite_falls_back_to_the_question(
    ingested, rewriting, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reply: str
) -> None:
    monkeypatch.setattr(RewritingGenerator, "rewrite", reply)
    session = tmp_path / "talk.jsonl"
    conversing.ask_in_session(ingested, FIRST, session)
    answer = conversing.ask_in_session(ingested, "Who was the lighthouse keeper?", session)
    assert len(_rewrites()) == 1
    assert answer.rewritten_query is None and "Ivo Sand" in answer.text


def test_query_overrides_the_rewrite_without_calling_the_generator(
    ingested, rewriting, tmp_path: Path
) -> None:
    session = tmp_path / "talk.jsonl"
    conversing.ask_in_session(ingested, FIRST, session)
    answer = conversing.ask_in_session(ingested, FOLLOW_UP, session, query=REWRITE)
    assert _rewrites() == [] and answer.rewritten_query == REWRITE
    assert "Ivo Sand" in answer.text
    assert _lines(session)[-1]["rewritten_query"] == REWRITE


def test_clean_rewrite_takes_the_question_out_of_what_the_model_wrote() -> None:
    assert clean_rewrite('Standalone question: "When was the lighthouse built?"') == (
        "When was the lighthouse built?"
    )
    assert clean_rewrite("\nQ: Who built   it?\nA: nobody") == "Who built it?"
    assert clean_rewrite("Rewritten question:\nWho built the lighthouse?") == (
        "Who built the lighthouse?"
    )
    assert clean_rewrite("I don't know what 'it' refers to.") is None
    assert clean_rewrite(" ".join(["why"] * 41)) is None
    assert clean_rewrite("  \n ") is None


def test_a_session_round_trips_and_new_forgets_the_conversation(
    ingested, rewriting, tmp_path: Path
) -> None:
    path = tmp_path / "talk.jsonl"
    with pipeline.Conversation(ingested, Session.open(path, "default")) as conversation:
        conversation.ask(FIRST)
        conversation.ask(FOLLOW_UP)
        conversation.session.forget()
        conversation.ask("Who was the lighthouse keeper?")  # a new conversation: no rewrite
    assert len(_rewrites()) == 1
    again = Session.open(path, "default")
    assert [t.question for t in again.turns] == [FIRST, FOLLOW_UP, "Who was the lighthouse keeper?"]
    assert [t.new_conversation for t in again.turns] == [True, False, True]
    assert [t.question for t in again.context] == ["Who was the lighthouse keeper?"]
    assert again.turns[1] == Turn.from_dict(_lines(path)[1])
    # a chat's /save: every turn to a new file, and later turns there too
    copy = tmp_path / "copy.jsonl"
    assert again.save_as(copy) == 3 and copy.read_text() == path.read_text()
    again.record(Turn("Where is the lamp?", "default"))
    assert len(_lines(copy)) == 4 and len(_lines(path)) == 3
    with pytest.raises(UsageError, match="already exists"):
        again.save_as(path)
    with pytest.raises(UsageError, match="folder"):
        again.save_as(tmp_path)


def _turn_line(question: str, collection: str = "default") -> str:
    return json.dumps(Turn(question, collection, answer="An answer [1].").to_dict())


def test_a_line_cut_short_by_a_crash_is_skipped_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "talk.jsonl"
    path.write_text(_turn_line("one") + "\n" + _turn_line("two") + "\n" + _turn_line("three")[:40])
    warnings: list[str] = []

    class Recorder(Events):
        def warn(self, message: str) -> None:
            warnings.append(message)

    session = Session.open(path, "default", Recorder())
    assert [t.question for t in session.turns] == ["one", "two"]
    assert len(warnings) == 1 and "line 3 was cut short" in warnings[0]
    session.record(Turn("four", "default"))
    assert [line["question"] for line in _lines(path)] == ["one", "two", "four"]


def test_a_last_line_without_a_line_break_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "talk.jsonl"
    path.write_text(_turn_line("one") + "\n\n" + _turn_line("two"))
    session = Session.open(path, "default")
    assert [t.question for t in session.turns] == ["one", "two"]
    session.record(Turn("three", "default"))
    assert [line["question"] for line in _lines(path)] == ["one", "two", "three"]


@pytest.mark.parametrize(
    "content, message",
    [
        (_turn_line("one") + "\nnot json\n" + _turn_line("two") + "\n", "line 2 is not a turn"),
        ('{"id": "q01", "question": "In what year?", "answer": "1762"}\n', "line 1"),
        ("just some notes, no newline", "line 1"),
        ("\x89PNG\r\n\x1a\n\x00\x00", "line 1"),
    ],
    ids=["damaged middle line", "another JSON Lines file", "a text file", "binary"],
)
def test_a_damaged_or_foreign_file_is_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "talk.jsonl"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    before = path.read_bytes()
    with pytest.raises(UsageError, match=message) as refused:
        Session.open(path, "default")
    assert refused.value.exit_code == 2 and "not a ragcli session" in refused.value.message
    assert path.read_bytes() == before


def test_a_session_of_another_collection_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "talk.jsonl"
    path.write_text(_turn_line("one", "papers") + "\n")
    with pytest.raises(UsageError, match="collection 'papers', not 'default'") as refused:
        Session.open(path, "default")
    assert refused.value.hint and "-c papers" in refused.value.hint


def test_a_folder_or_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a folder"):
        Session.open(tmp_path, "default")
    with pytest.raises(UsageError, match="no folder"):
        Session.open(tmp_path / "nowhere" / "talk.jsonl", "default")


def test_an_unreadable_session_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "talk.jsonl"
    path.write_text(_turn_line("one") + "\n")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)  # as root, chmod 0 would not stop a read
    with pytest.raises(UsageError, match="cannot read session .*: Permission denied"):
        Session.open(path, "default")


def test_an_answer_stopped_midway_is_not_recorded(ingested, rewriting, tmp_path: Path) -> None:
    path = tmp_path / "talk.jsonl"

    def interrupt(piece: str) -> None:
        raise KeyboardInterrupt

    with pipeline.Conversation(ingested, Session.open(path, "default")) as conversation:
        conversation.ask(FIRST)
        with pytest.raises(KeyboardInterrupt):
            conversation.ask("Who was the lighthouse keeper?", on_token=interrupt)
        assert [t.question for t in conversation.session.turns] == [FIRST]
    assert [line["question"] for line in _lines(path)] == [FIRST]


# -- the command line --------------------------------------------------------------------------


def _ask(*args: str):
    return runner.invoke(app, ["ask", *args])


def test_ask_session_json_carries_the_rewritten_query(corpus: Path, rewriting, tmp_path) -> None:
    runner.invoke(app, ["ingest", str(corpus)])
    session = str(tmp_path / "talk.jsonl")
    first = _ask(FIRST, "--session", session, "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["rewritten_query"] is None
    assert "rewritten:" not in first.stderr
    follow = _ask(FOLLOW_UP, "--session", session, "--json")
    assert follow.exit_code == 0, follow.output
    data = json.loads(follow.stdout)
    assert data["rewritten_query"] == REWRITE and data["question"] == FOLLOW_UP
    assert f"rewritten: {REWRITE}" in follow.stderr
    # --query replays it without the generator's rewrite
    rewriting.prompts.clear()
    replay = _ask(FOLLOW_UP, "--session", session, "--query", REWRITE, "--json")
    assert json.loads(replay.stdout)["rewritten_query"] == REWRITE and _rewrites() == []
    assert len(_lines(Path(session))) == 3
    plain = _ask(FIRST, "--json")
    assert json.loads(plain.stdout)["rewritten_query"] is None


def test_ask_session_refuses_bad_files_with_exit_2(corpus: Path, tmp_path: Path) -> None:
    runner.invoke(app, ["ingest", str(corpus)])
    other = tmp_path / "other.jsonl"
    other.write_text(_turn_line("one", "papers") + "\n")
    refused = _ask(FIRST, "--session", str(other))
    assert refused.exit_code == 2 and refused.stdout == ""
    assert "collection 'papers'" in refused.stderr and "hint: continue it with -c papers" in (
        refused.stderr
    )
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("{not json\n" + _turn_line("two") + "\n")
    result = _ask(FIRST, "--session", str(damaged))
    assert result.exit_code == 2 and "line 1 is not a turn" in result.stderr
    result = _ask(FIRST, "--session", str(tmp_path))
    assert result.exit_code == 2 and "is a folder" in result.stderr
    result = _ask("--batch", "-", "--session", str(other))
    assert result.exit_code == 2 and "not --batch" in result.stderr
    result = _ask(FIRST, "--query", " ")
    assert result.exit_code == 2 and "--query is empty" in result.stderr


def test_a_session_not_written_yet_saves_as_another_file(tmp_path: Path) -> None:
    session = Session.open(tmp_path / "new.jsonl", "default")
    assert session.save_as(tmp_path / "copy.jsonl") == 0
    session.record(Turn("one", "default"))
    assert not (tmp_path / "new.jsonl").exists()
    assert [line["question"] for line in _lines(tmp_path / "copy.jsonl")] == ["one"]
