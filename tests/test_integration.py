"""End to end with the real bundled models: ingest sample_corpus, search it, ask it.

The first run prepares the bundled generator (assemble, verify, convert: about a minute) into
``RAGCLI_TEST_MODELS_DIR`` or ``.cache/models`` in the repository; later runs reuse it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragcli import pipeline
from ragcli.config import load_settings
from ragcli.models.engines import ENGINES
from ragcli.models.generation import ChatModel, open_generator

from .conftest import REPO, SAMPLE_CORPUS

pytestmark = pytest.mark.integration

QUESTIONS = [
    json.loads(line)
    for line in (SAMPLE_CORPUS / "questions.jsonl").read_text().splitlines()
    if line.strip()
]
ANSWERABLE = [q for q in QUESTIONS if q["answerable"]]
# One question per format: text, Markdown, reStructuredText, HTML, PDF.
ASKED = ["q02", "q05", "q12", "q14", "q22"]


@pytest.fixture(scope="module")
def models_dir() -> Path:
    path = Path(os.environ.get("RAGCLI_TEST_MODELS_DIR", REPO / ".cache" / "models"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _shell(command: str, home: Path, models_dir: Path, stdin: str | None = None):
    """Run a shell command line in the repository with ragcli's home and model cache set."""
    env = {**os.environ, "RAGCLI_HOME": str(home), "RAGCLI_MODELS_DIR": str(models_dir)}
    return subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command}"],
        input=stdin,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


RAGCLI = f"{sys.executable} -m ragcli"


@pytest.fixture(scope="module")
def sample_home(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    """sample_corpus ingested once through the real console entry point."""
    home = tmp_path_factory.mktemp("sample-home")
    done = _shell(f"{RAGCLI} ingest sample_corpus --json", home, models_dir)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["files"]["added"] == 7
    assert report["chunks"]["added"] > 20
    # Question files are JSON Lines without a "text" field: not a corpus, skipped.
    assert sorted(s["path"] for s in report["skipped"]) == [
        "sample_corpus/conversations.jsonl",
        "sample_corpus/questions.jsonl",
    ]
    return home


@pytest.fixture
def use_sample(sample_home: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGCLI_HOME", str(sample_home))
    monkeypatch.setenv("RAGCLI_MODELS_DIR", str(models_dir))
    monkeypatch.chdir(REPO)


def _matches(hit_source: str, page: int | None, question: dict) -> bool:
    return hit_source == f"sample_corpus/{question['source']}" and (
        question["page"] is None or page == question["page"]
    )


@pytest.mark.usefixtures("use_sample")
def test_search_ranks_the_expected_source_first() -> None:
    settings = load_settings()
    first, misses = 0, []
    for question in ANSWERABLE:
        hits = pipeline.search(settings, question["question"], top_k=4).hits
        assert any(_matches(h.source, h.page, question) for h in hits), question["id"]
        if _matches(hits[0].source, hits[0].page, question):
            first += 1
        else:
            misses.append(question["id"])
    # Dense retrieval alone ranks the expected source first for all but a few questions
    # (see README, "Retrieval quality"); every expected source is within the top 4.
    assert first >= len(ANSWERABLE) - 2, misses


BACKENDS = [
    "transformers",
    *(
        pytest.param(
            engine.key,
            marks=pytest.mark.skipif(
                not engine.installed(), reason=f"{engine.key} is not installed"
            ),
        )
        for engine in ENGINES
    ),
]


@pytest.fixture(scope="module", params=BACKENDS)
def generator(request: pytest.FixtureRequest, models_dir: Path) -> ChatModel:
    """The bundled generator on each backend and engine: the answers must hold up on all."""
    loaded = open_generator(None, models_dir, backend=request.param)
    loaded.load()
    return loaded


@pytest.mark.usefixtures("use_sample")
def test_ask_answers_with_the_fact_and_cites_the_source(generator: ChatModel) -> None:
    settings = load_settings(max_tokens=96)
    by_id = {q["id"]: q for q in QUESTIONS}
    good = []
    for qid in ASKED:
        question = by_id[qid]
        answer = pipeline.ask(settings, question["question"], generator=generator)
        has_fact = question["answer"].lower() in answer.text.lower()
        cites = any(_matches(c.hit.source, c.hit.page, question) for c in answer.citations)
        if has_fact and cites and not answer.abstained:
            good.append(qid)
        print(qid, has_fact, cites, answer.abstain_reason, answer.text)
    assert len(good) >= 3, good


@pytest.mark.usefixtures("use_sample")
def test_ask_withholds_answers_the_corpus_does_not_hold(generator: ChatModel) -> None:
    settings = load_settings(max_tokens=64)
    unanswerable = [q for q in QUESTIONS if not q["answerable"]]
    withheld = []
    for question in unanswerable:
        answer = pipeline.ask(settings, question["question"], generator=generator)
        print(question["id"], answer.abstain_reason, answer.text)
        if answer.abstained:
            withheld.append(question["id"])
    # Measured: 4 of 6 (the off-topic one by retrieval or the model, invented facts by the
    # grounding check); two answers made of true but irrelevant statements get through.
    assert len(withheld) >= 4, withheld


@pytest.mark.usefixtures("use_sample")
def test_ask_json_end_to_end(models_dir: Path, sample_home: Path) -> None:
    done = _shell(
        f"{RAGCLI} ask --json --max-tokens 64",
        sample_home,
        models_dir,
        stdin="Who founded Gullstone Observatory?",
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert "Tobiah Marsk" in data["answer"]
    assert data["models"]["generator"] == "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M"
    assert data["models"]["embedder"] == "all-MiniLM-L6-v2"
    engine = data["models"]["engine"]
    assert engine.split()[0] in ("xllamacpp", "llama-cpp-python", "transformers"), engine
    assert data["passages"] and data["tokens"] > 0
    assert data["timings"]["first_token_s"] > 0


@pytest.mark.usefixtures("use_sample")
def test_search_into_a_closed_pipe(models_dir: Path, sample_home: Path) -> None:
    done = _shell(f"{RAGCLI} search harbour -k 40 | head -n 1", sample_home, models_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1\t")
    assert "Traceback" not in done.stderr and "Broken pipe" not in done.stderr


@pytest.mark.usefixtures("use_sample")
def test_eval_answers_end_to_end(models_dir: Path, sample_home: Path, tmp_path: Path) -> None:
    """Three answerable questions and three the corpus does not answer (off-topic, a birth
    year it does not give, a prize it does not name), through the console entry point."""
    picked = {"q01", "q05", "q16", "q24", "q26", "q29"}
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "".join(json.dumps(q) + "\n" for q in QUESTIONS if q["id"] in picked), encoding="utf-8"
    )
    saved = tmp_path / "answers.jsonl"
    done = _shell(
        f"{RAGCLI} eval --answers {questions} --save {saved} --max-tokens 64 --json",
        sample_home,
        models_dir,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)["summary"]
    assert (summary["answerable"], summary["unanswerable"]) == (3, 3)
    # Measured: all three answered with the fact and a citation of its source; all three
    # unanswerable withheld (by retrieval, the model, the sentence check).
    assert summary["contains"] == 1.0 and summary["cited_gold"] == 1.0
    assert summary["wrongly_abstained"] == 0.0
    assert summary["abstained_unanswerable"] >= 2 / 3
    rows = [json.loads(line) for line in saved.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(picked)
    assert all(r["timings"]["retrieve_s"] > 0 for r in rows)


@pytest.mark.usefixtures("use_sample")
def test_serve_answers_as_ask_does(models_dir: Path, sample_home: Path) -> None:
    """A real server with the bundled models: the streamed answer is the one `ask` gives."""
    import re

    import httpx

    question = "Who founded Gullstone Observatory?"
    env = {
        **os.environ,
        "RAGCLI_HOME": str(sample_home),
        "RAGCLI_MODELS_DIR": str(models_dir),
        "RAGCLI_MAX_TOKENS": "64",
    }
    cli = subprocess.run(
        [sys.executable, "-m", "ragcli", "ask", question, "--json"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    server = subprocess.Popen(
        [sys.executable, "-m", "ragcli", "serve", "--port", "0"],
        cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stderr is not None
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", server.stderr.readline())
        assert match, "the server did not start"
        body = {"question": question, "stream": True}
        with httpx.Client(base_url=f"http://127.0.0.1:{match.group(1)}", timeout=600) as client:
            response = client.post("/ask", json=body)
            assert client.get("/health").json()["models"]["generator_loaded"] is True
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line[:6] == "data: "]
    done = events[-1]
    assert done["event"] == "done" and "Tobiah Marsk" in done["answer"]
    assert done["answer"] == json.loads(cli.stdout)["answer"]
    assert "Tobiah Marsk" in "".join(e["text"] for e in events if e["event"] == "token")
