from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli import __version__
from ragcli.cli import app

runner = CliRunner()
HEAVY = ("torch", "transformers", "sentence_transformers", "faiss")


def run(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def test_help_is_light() -> None:
    code = (
        "import sys\nfrom ragcli.cli import main\nsys.argv = ['ragcli', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY:', sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "ingest" in done.stdout and "ask" in done.stdout
    assert "HEAVY: []" in done.stdout


def test_module_entry_point_and_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ragcli", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == f"ragcli {__version__}"


@pytest.mark.usefixtures("fake_models")
def test_ingest_summary_on_stdout_warnings_on_stderr(corpus: Path) -> None:
    (corpus / "notes.docx").write_bytes(b"PK")
    result = run("ingest", str(corpus))
    assert result.exit_code == 0, result.output
    assert "3 added" in result.stdout and "1 skipped" in result.stdout
    assert "warning" not in result.stdout
    assert "notes.docx" in result.stderr and "unsupported file type" in result.stderr

    again = run("ingest", str(corpus), "--json", "-q")
    data = json.loads(again.stdout)
    assert data["files"] == {"seen": 4, "added": 0, "updated": 0, "unchanged": 3, "skipped": 1}
    assert again.stderr == ""


@pytest.mark.usefixtures("fake_models")
def test_search_plain_and_json(corpus: Path) -> None:
    run("ingest", str(corpus))
    plain = run("search", "kettle works founded", "-k", "2")
    assert plain.exit_code == 0
    lines = plain.stdout.strip().splitlines()
    assert len(lines) == 2
    rank, score, source, location, snippet = lines[0].split("\t")
    assert rank == "1" and float(score) > 0 and source.endswith("beta.md")
    assert location.startswith("line") and "Ada Pell" in snippet
    data = json.loads(run("search", "kettle works founded", "--json").stdout)
    assert data["hits"][0]["source"].endswith("beta.md")
    assert set(data["hits"][0]) >= {"rank", "score", "source", "page", "lines", "text"}


@pytest.mark.usefixtures("fake_models")
def test_ask_streams_answer_and_puts_sources_on_stderr_when_piped(corpus: Path) -> None:
    run("ingest", str(corpus))
    result = run("ask", "Who was the lighthouse keeper?")
    assert result.exit_code == 0, result.output
    assert "Ivo Sand" in result.stdout and "[1]" in result.stdout
    assert "Sources:" not in result.stdout
    assert "Sources:" in result.stderr and "gamma.rst" in result.stderr
    quiet = run("ask", "Who was the lighthouse keeper?", "-q")
    assert quiet.stderr == "" and "Ivo Sand" in quiet.stdout


@pytest.mark.usefixtures("fake_models")
def test_ask_json_and_question_from_stdin(corpus: Path) -> None:
    run("ingest", str(corpus))
    result = run("ask", "--json", input="Who was the lighthouse keeper?\n")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["question"] == "Who was the lighthouse keeper?"
    assert "Ivo Sand" in data["answer"]
    citation = data["citations"][0]
    assert citation["marker"] == 1 and citation["source"].endswith("gamma.rst")
    assert citation["lines"] and citation["text"]
    assert data["models"] == {"embedder": "fake-embedder", "generator": "fake-generator"}
    assert {"first_token_s", "generate_s", "retrieve_s"} <= set(data["timings"])
    dash = run("ask", "-", "--json", input="Who was the lighthouse keeper?")
    assert json.loads(dash.stdout)["question"] == "Who was the lighthouse keeper?"


def test_missing_collection_exit_code_and_one_line_error() -> None:
    result = run("search", "anything")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.startswith("ragcli: error: collection 'default' does not exist")
    assert "ragcli ingest" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (("search", "--no-such-flag", "x"), None),
        (("ask", "  "), None),
        (("search", "-k", "0", "x"), None),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], stdin: str | None) -> None:
    result = run(*args, input=stdin)
    assert result.exit_code == 2
    assert result.stdout == ""


@pytest.mark.usefixtures("fake_models")
def test_nothing_ingested_exit_code(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    result = run("ingest", str(tmp_path / "empty.txt"))
    assert result.exit_code == 6
    assert "empty file" in result.stderr and "nothing ingested" in result.stderr
    assert result.stdout == ""


@pytest.mark.usefixtures("fake_models")
def test_dry_run_lists_plan(corpus: Path) -> None:
    result = run("ingest", str(corpus), "--dry-run")
    assert result.exit_code == 0
    assert sum(line.startswith("add\t") for line in result.stdout.splitlines()) == 3
    assert "dry run" in result.stdout


@pytest.mark.usefixtures("fake_models")
def test_unexpected_errors_are_one_line_unless_debug(corpus: Path, monkeypatch) -> None:
    import ragcli.pipeline as pipeline

    def boom(*args, **kwargs):
        raise ValueError("kaboom")

    monkeypatch.setattr(pipeline, "search", boom)
    result = run("search", "x")
    assert result.exit_code == 1
    assert "ragcli: error: unexpected ValueError: kaboom" in result.stderr
    assert "Traceback" not in result.stderr
    debug = run("search", "x", "--debug")
    assert isinstance(debug.exception, ValueError)


@pytest.mark.usefixtures("fake_models")
def test_ctrl_c_during_ingest_exits_130_and_says_what_was_kept(corpus: Path, monkeypatch) -> None:
    import ragcli.pipeline as pipeline

    run("ingest", str(corpus / "alpha.txt"))

    def interrupt(path: Path, source: str, doc_id: str):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "load_documents", interrupt)
    result = run("ingest", str(corpus))
    assert result.exit_code == 130
    assert "interrupted" in result.stderr and "keeps the 1 document(s)" in result.stderr
    assert result.stdout == ""


def test_closed_pipe_ends_quietly_with_exit_0(monkeypatch) -> None:
    import typer

    from ragcli import cli

    silenced = []
    monkeypatch.setattr(cli, "_silence_stdout", lambda: silenced.append(True))
    with pytest.raises(typer.Exit) as info, cli._boundary(debug=False):
        raise BrokenPipeError
    assert info.value.exit_code == 0 and silenced
