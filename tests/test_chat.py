"""``ragcli chat`` on a pseudo-terminal (pexpect), with the fake models of tests/fakecli.py."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pexpect
import pytest
from typer.testing import CliRunner

from ragcli.cli import app

from .conftest import REPO

runner = CliRunner()
PROMPT = "default> "
QUESTION = "Who was the lighthouse keeper?"


def test_chat_refuses_without_a_terminal() -> None:
    result = runner.invoke(app, ["chat"], input="Who was the lighthouse keeper?\n")
    assert result.exit_code == 2 and result.stdout == ""
    assert "chat needs a terminal" in result.stderr
    assert "ask --session FILE" in result.stderr


@pytest.fixture
def ingested(corpus: Path, fake_models: None) -> Path:
    result = runner.invoke(app, ["ingest", str(corpus)])
    assert result.exit_code == 0, result.output
    return corpus


def _spawn(*args: str, token_delay: float = 0.0) -> pexpect.spawn:
    """``ragcli chat`` with the fake models, on a terminal of its own."""
    env = {
        **os.environ,
        "TERM": "dumb",
        "NO_COLOR": "1",
        "RAGCLI_TEST_TOKEN_DELAY": str(token_delay),
    }
    return pexpect.spawn(
        sys.executable,
        ["-m", "tests.fakecli", "chat", *args],
        cwd=str(REPO),
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 200),
    )


def _ask(chat: pexpect.spawn, line: str) -> str:
    """Send a line, wait for the next prompt; what came in between."""
    chat.sendline(line)
    chat.expect_exact(PROMPT)
    return str(chat.before)


@pytest.mark.usefixtures("ingested")
def test_chat_answers_follow_ups_and_its_commands_work(tmp_path: Path) -> None:
    session = tmp_path / "talk.jsonl"
    chat = _spawn("--session", str(session))
    chat.expect_exact("chat with collection 'default', session")
    chat.expect_exact(PROMPT)

    shown = _ask(chat, QUESTION)
    assert "The lighthouse keeper was Ivo Sand. [1]" in shown
    assert "Sources:" in shown and "gamma.rst" in shown

    shown = _ask(chat, "/sources")
    assert "Passages given to the model:" in shown and "(cited)" in shown
    assert "    The lighthouse keeper was Ivo Sand." in shown  # the passage's own text

    assert "k = 2" in _ask(chat, "/k 2")
    assert "takes a number" in _ask(chat, "/k two")
    # a follow-up: the fake generator cannot rewrite, so the question is searched as asked
    shown = _ask(chat, "What did the lamp burn?")
    assert "rewritten: (unusable" in shown and "whale oil" in shown
    assert "[3]" not in _ask(chat, "/sources")  # k = 2: two passages at most

    assert "new conversation" in _ask(chat, "/new")
    assert "rewritten" not in _ask(chat, "Who founded the kettle works?")
    assert "/sources" in _ask(chat, "/help")
    assert "unknown command /nope" in _ask(chat, "/nope")
    copy = tmp_path / "copy.jsonl"
    assert "saved 3 turns" in _ask(chat, f"/save {copy}")

    chat.sendeof()
    chat.expect(pexpect.EOF)
    chat.close()
    assert chat.exitstatus == 0
    turns = [json.loads(line) for line in session.read_text().splitlines()]
    assert [t["question"] for t in turns] == [
        QUESTION,
        "What did the lamp burn?",
        "Who founded the kettle works?",
    ]
    assert [t["new_conversation"] for t in turns] == [True, False, True]
    assert copy.read_text() == session.read_text()


@pytest.mark.usefixtures("ingested")
def test_ctrl_c_stops_an_answer_and_returns_to_the_prompt(tmp_path: Path) -> None:
    session = tmp_path / "talk.jsonl"
    chat = _spawn("--session", str(session), token_delay=0.5)
    chat.expect_exact(PROMPT)
    chat.sendline(QUESTION)
    chat.expect_exact("The lighthouse")  # the answer has begun
    chat.sendintr()
    chat.expect_exact("answer stopped")
    chat.expect_exact(PROMPT)
    assert not session.exists()  # the stopped answer was not recorded

    chat.sendline("/quit")
    chat.expect(pexpect.EOF)
    chat.close()
    assert chat.exitstatus == 0
