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
HEAVY = (
    "torch",
    "transformers",
    "sentence_transformers",
    "faiss",
    "onnxruntime",
    "psycopg",
    "llama_cpp",
    "xllamacpp",
)


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
    (corpus / "notes.pages").write_bytes(b"PK")
    result = run("ingest", str(corpus))
    assert result.exit_code == 0, result.output
    assert "3 added" in result.stdout and "1 skipped" in result.stdout
    assert "warning" not in result.stdout
    assert "notes.pages" in result.stderr and "unsupported file type" in result.stderr

    again = run("ingest", str(corpus), "--json", "-q")
    data = json.loads(again.stdout)
    assert data["files"] == {
        "seen": 4, "added": 0, "updated": 0, "unchanged": 3, "removed": 0, "skipped": 1,
        "warnings": 0,
    }  # fmt: skip
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
    assert data["models"] == {
        "embedder": "fake-embedder",
        "generator": "fake-generator",
        "engine": None,  # the fake does not say what runs it
    }
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
    from ragcli import loaders

    run("ingest", str(corpus / "alpha.txt"))

    def interrupt(path: Path, source: str, doc_id: str, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(loaders, "load_documents", interrupt)
    result = run("ingest", str(corpus))
    assert result.exit_code == 130
    assert "interrupted" in result.stderr and "keeps the 1 document(s)" in result.stderr
    assert result.stdout == ""


def test_closed_pipe_ends_quietly_with_exit_0(monkeypatch) -> None:
    import typer

    from ragcli.cli import root

    silenced = []
    monkeypatch.setattr(root, "silence_stdout", lambda: silenced.append(True))
    with pytest.raises(typer.Exit) as info, root.boundary(debug=False):
        raise BrokenPipeError
    assert info.value.exit_code == 0 and silenced


@pytest.mark.usefixtures("fake_models")
def test_search_batch_explain_and_mode(corpus: Path) -> None:
    run("ingest", str(corpus))
    batch = '{"id": "x1", "question": "whale oil lamp"}\nwho founded the kettle works\n'
    result = run("search", "--batch", "-", "-k", "2", "--explain", input=batch)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records] == ["x1", "2"]
    assert records[0]["mode"] == "hybrid" and len(records[0]["hits"]) == 2
    assert {"dense_rank", "lexical_rank", "fused_score"} <= set(records[0]["hits"][0]["explain"])
    plain = run("search", "whale oil", "--mode", "lexical", "--explain")
    assert "lexical #1" in plain.stdout.splitlines()[0]
    assert run("search", "x", "--mode", "fuzzy").exit_code == 2
    assert run("search", "x", "--batch", "-", input="y\n").exit_code == 2


@pytest.mark.usefixtures("fake_models")
def test_eval_on_a_beir_folder(tmp_path: Path) -> None:
    root = tmp_path / "tiny"
    (root / "qrels").mkdir(parents=True)
    docs = {
        "d1": ("Wing flutter", "Flutter of swept wings at transonic speed."),
        "d2": ("Heat transfer", "Heat transfer in a laminar boundary layer."),
        "d3": ("Shock waves", "Oblique shock waves on a wedge."),
    }
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in docs.items())
    )
    (root / "queries.jsonl").write_text(
        '{"_id": "1", "text": "laminar heat transfer"}\n{"_id": "2", "text": "wing flutter"}\n'
    )
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td2\t2\n2\td1\t1\n")
    run_file = tmp_path / "run.trec"
    result = run("eval", str(root), "--json", "--save-run", str(run_file))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["queries"] == 2 and data["mode"] == "hybrid"
    assert data["metrics"]["ndcg@10"] == 1.0 and data["metrics"]["mrr@10"] == 1.0
    assert run_file.read_text().splitlines()[0].startswith("1 Q0 d2 1 ")
    again = run("eval", str(root), "--mode", "dense", "-q")
    assert again.exit_code == 0
    assert again.stdout.splitlines()[0] == "metric\tvalue"
    assert "ndcg@10\t1.0000" in again.stdout
    # The existing-collection form: document ids from file stems.
    files = tmp_path / "files"
    files.mkdir()
    for key, (title, text) in docs.items():
        (files / f"{key}.txt").write_text(f"{title}\n\n{text}\n")
    run("ingest", str(files), "-c", "mine")
    by_collection = run(
        "eval", "-c", "mine", "--queries", str(root / "queries.jsonl"),
        "--qrels", str(root / "qrels" / "test.tsv"), "--json",
    )  # fmt: skip
    assert json.loads(by_collection.stdout)["metrics"]["recall@10"] == 1.0
    assert run("eval").exit_code == 2


@pytest.mark.usefixtures("fake_models")
def test_ask_abstains_on_weak_retrieval_with_exit_7(corpus: Path) -> None:
    run("ingest", str(corpus))
    result = run("ask", "zyxwvut qponm")  # no word in common with any passage
    assert result.exit_code == 7
    assert result.stdout.startswith("The collection does not seem to contain the answer.")
    assert "Nearest passages:" in result.stderr and "was not asked" in result.stderr
    data = json.loads(run("ask", "zyxwvut qponm", "--json").stdout)
    assert data["abstained"] is True and data["abstain_reason"] == "weak retrieval"
    assert data["answer"] == "" and data["passages"] and data["tokens"] == 0
    forced = run("ask", "zyxwvut qponm", "--no-abstain", "--json")
    assert json.loads(forced.stdout)["abstain_reason"] != "weak retrieval"


@pytest.mark.usefixtures("fake_models")
def test_ask_removes_markers_that_point_nowhere(corpus: Path, monkeypatch) -> None:
    from .conftest import FakeGenerator

    run("ingest", str(corpus))
    monkeypatch.setattr(FakeGenerator, "reply", "The lighthouse keeper was Ivo Sand [1] [9].")
    result = run("ask", "Who was the lighthouse keeper?")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("The lighthouse keeper was Ivo Sand [1] .")
    assert "[9]" not in result.stdout and "point to no passage: [9]" in result.stderr
    data = json.loads(run("ask", "Who was the lighthouse keeper?", "--json").stdout)
    assert data["unknown_markers"] == [9] and "[9]" not in data["answer"]
    assert data["sentences"][0]["supported"] is True


@pytest.mark.usefixtures("fake_models")
def test_ask_unsupported_or_declined_answers_exit_7(corpus: Path, monkeypatch) -> None:
    from .conftest import FakeGenerator

    run("ingest", str(corpus))
    monkeypatch.setattr(FakeGenerator, "reply", "Ivo Sand was born in 1850 in Oslo [1].")
    result = run("ask", "When was the lighthouse keeper born?")
    assert result.exit_code == 7
    assert "no sentence of this answer is supported" in result.stderr
    data = json.loads(run("ask", "When was the lighthouse keeper born?", "--json").stdout)
    assert data["abstain_reason"] == "unsupported"
    assert data["sentences"][0]["missing"] == ["1850", "oslo"]  # "born" is the question's word
    monkeypatch.setattr(FakeGenerator, "reply", "I don't know.")
    declined = run("ask", "When was the lighthouse keeper born?", "--json")
    assert declined.exit_code == 7
    assert json.loads(declined.stdout)["abstain_reason"] == "model declined"


@pytest.mark.usefixtures("fake_models")
def test_ask_batch_and_stream_json(corpus: Path) -> None:
    run("ingest", str(corpus))
    questions = '{"id": "keeper", "question": "Who was the lighthouse keeper?"}\nzyxwvut qponm\n'
    result = run("ask", "--batch", "-", input=questions)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["id"], r["abstained"]) for r in records] == [("keeper", False), ("2", True)]
    assert all(r["schema_version"] == 1 for r in records)
    assert "Ivo Sand" in records[0]["answer"] and records[0]["citations"][0]["marker"] == 1
    events = [
        json.loads(line)
        for line in run(
            "ask", "Who was the lighthouse keeper?", "--stream-json"
        ).stdout.splitlines()
    ]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "token" and kinds[-2:] == ["citation", "done"]
    streamed = "".join(e["text"] for e in events if e["event"] == "token")
    assert streamed.strip() == events[-1]["answer"]
