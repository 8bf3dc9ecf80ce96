"""``ragcli serve``: the HTTP API, a real server process over a real socket (httpx), with the
fake models. The same questions through the CLI give the same JSON; each bad request gets its
status and a JSON error body; the queue refuses with 503; a client that leaves stops its answer;
SIGTERM stops the server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import REPO

FAKECLI = [sys.executable, "-m", "tests.fakecli"]


def fakecli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FAKECLI, *args], cwd=REPO, capture_output=True, text=True, timeout=60, env=env
    )


class Server:
    """``ragcli serve`` in a process of its own, on a free port."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [*FAKECLI, "serve", "--port", "0", *args],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        assert self.process.stderr is not None
        line = self.process.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if match is None:
            self.process.kill()
            raise AssertionError(f"the server did not start: {line}{self.process.stderr.read()}")
        self.url = f"http://127.0.0.1:{match.group(1)}"
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def post(self, path: str, body: object, **kwargs: object) -> httpx.Response:
        return self.client.post(path, json=body, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> int:
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=15)


@pytest.fixture
def ingested(corpus: Path) -> Path:
    result = fakecli("ingest", str(corpus), "-c", "docs")
    assert result.returncode == 0, result.stderr
    return corpus


@pytest.fixture
def server(ingested: Path) -> Iterator[Server]:
    running = Server("-c", "docs")
    yield running
    running.stop()


def _events(text: str) -> list[dict[str, object]]:
    """The data of each Server-Sent Event, with its event name checked against it."""
    found = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        data = json.loads(lines["data"])
        assert data["event"] == lines["event"]
        found.append(data)
    return found


def _without_timings(data: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in data.items() if k != "timings"}


def test_search_answers_as_the_cli_does(server: Server) -> None:
    question = "Who founded the kettle works?"
    response = server.post("/search", {"question": question, "k": 2})
    assert response.status_code == 200
    served = response.json()
    cli = json.loads(fakecli("search", question, "-c", "docs", "-k", "2", "--json").stdout)
    assert _without_timings(served) == _without_timings(cli)
    assert served["hits"][0]["source"].endswith("beta.md")


def test_ask_answers_as_the_cli_does(server: Server) -> None:
    question = "Who founded the kettle works?"
    served = server.post("/ask", {"question": question}).json()
    cli = json.loads(fakecli("ask", question, "-c", "docs", "--json").stdout)
    assert served["answer"] == cli["answer"]
    assert "Ada Pell" in served["answer"]
    assert served["citations"] == cli["citations"]
    assert served["schema_version"] == cli["schema_version"]


def test_search_and_ask_say_when_the_collection_was_updated_and_what_changed(
    server: Server, ingested: Path
) -> None:
    question = "Who founded the kettle works?"
    fresh = server.post("/search", {"question": question}).json()
    assert fresh["stale_sources"] == [] and fresh["updated_at"].endswith("Z")
    (ingested / "beta.md").write_text("# Kettle Works\n\nNow a museum.\n")
    found = server.post("/search", {"question": question}).json()
    assert [(Path(s["path"]).name, s["reason"]) for s in found["stale_sources"]] == [
        ("beta.md", "changed")
    ]
    answered = server.post("/ask", {"question": question}).json()
    assert answered["citations"][0]["source"].endswith("beta.md")
    assert [s["reason"] for s in answered["stale_sources"]] == ["changed"]
    assert answered["updated_at"] == fresh["updated_at"]


def test_ask_streams_tokens_citations_and_done(server: Server) -> None:
    response = server.post("/ask", {"question": "Who founded the kettle works?", "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    tokens = "".join(str(e["text"]) for e in events if e["event"] == "token")
    done = events[-1]
    assert done["event"] == "done"
    assert "Ada Pell" in tokens and done["answer"] == "".join(tokens).strip()
    citations = [e for e in events if e["event"] == "citation"]
    assert citations and str(citations[0]["source"]).endswith("beta.md")


def test_collections_health_passages_and_documents(server: Server) -> None:
    names = [c["name"] for c in server.client.get("/collections").json()["collections"]]
    assert names == ["docs"]
    hit = server.post("/search", {"question": "lighthouse keeper"}).json()["hits"][0]
    passage = server.client.get("/passage", params={"chunk_id": hit["chunk_id"]}).json()
    assert passage["text"] == hit["text"] and passage["collection"] == "docs"
    document = server.client.get("/document", params={"doc_id": hit["doc_id"]}).json()
    assert hit["text"] in [p["text"] for p in document["passages"]]
    assert document["source"] == hit["source"]
    health = server.client.get("/health").json()
    assert health["status"] == "ok" and health["collections"] == {"docs": 1}
    assert health["models"]["generator_loaded"] is False  # no answer asked for yet


def test_an_ingest_in_another_process_is_picked_up(server: Server, ingested: Path) -> None:
    question = "Which instrument did Mira Holt tune?"
    before = server.post("/search", {"question": question, "k": 1}).json()["hits"][0]
    assert "Mira Holt" not in before["text"]
    (ingested / "delta.txt").write_text("Mira Holt tuned the harbour organ every spring.\n")
    assert fakecli("ingest", str(ingested), "-c", "docs").returncode == 0
    after = server.post("/search", {"question": question, "k": 1}).json()["hits"][0]
    assert "Mira Holt" in after["text"]
    assert server.client.get("/health").json()["collections"]["docs"] == 2


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({"question": "x", "collection": "nope"}, 404, "not_found", "no collection named"),
        ({"question": "   "}, 400, "bad_request", "empty"),
        ({"question": "x" * 2001}, 400, "bad_request", "at most 2,000"),
        ({"question": "x", "k": 0}, 400, "bad_request", "k must be"),
        ({"question": "x", "k": 51}, 400, "bad_request", "k must be"),
        ({"question": "x", "k": "3"}, 400, "bad_request", "k must be"),
        ({"question": "x", "mode": "fuzzy"}, 400, "bad_request", "unknown retrieval mode"),
        ({"question": "x", "colection": "docs"}, 400, "bad_request", "unknown field"),
        ({"question": "x", "collection": "../etc"}, 400, "bad_request", "invalid collection"),
        (["x"], 400, "bad_request", "JSON object"),
    ],
)
def test_bad_requests_get_a_status_and_a_json_error(
    server: Server, body: object, status: int, code: str, words: str
) -> None:
    for path in ("/search", "/ask"):
        response = server.post(path, body)
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["code"] == code and words in error["message"]
        assert "Traceback" not in response.text


def test_malformed_bodies_routes_and_hosts_get_json_errors(server: Server) -> None:
    def error(response: httpx.Response, status: int) -> dict[str, str]:
        assert response.status_code == status, response.text
        return dict(response.json()["error"])

    plain = server.client.post("/search", content=b"{}", headers={"content-type": "text/plain"})
    assert error(plain, 415)["code"] == "unsupported_media_type"
    broken = server.client.post(
        "/search", content=b'{"question": ', headers={"content-type": "application/json"}
    )
    assert error(broken, 400)["code"] == "malformed_json"
    huge = server.post("/search", {"question": "x", "pad": "y" * 70_000})
    assert error(huge, 413)["code"] == "too_large"
    assert error(server.client.get("/nowhere"), 404)["code"] == "not_found"
    assert error(server.client.get("/search"), 405)["code"] == "method_not_allowed"
    assert error(server.client.get("/passage"), 400)["code"] == "bad_request"
    missing = server.client.get("/passage", params={"chunk_id": "nothing"})
    assert error(missing, 404)["code"] == "not_found"
    rebound = server.client.get("/health", headers={"host": "attacker.example:8765"})
    assert error(rebound, 400)["code"] == "bad_host"
    assert server.client.get("/health", headers={"host": "localhost"}).status_code == 200


def test_cross_origin_requests_are_not_allowed_by_default(server: Server) -> None:
    response = server.client.options(
        "/search",
        headers={"origin": "http://example.com", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers


def test_the_openai_compatible_endpoint(server: Server) -> None:
    models = server.client.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["docs"]
    messages = [
        {"role": "user", "content": "Where is the bridge?"},
        {"role": "assistant", "content": "On the Osk."},
        {"role": "user", "content": [{"type": "text", "text": "Who founded the kettle works?"}]},
    ]
    whole = server.post("/v1/chat/completions", {"model": "docs", "messages": messages}).json()
    assert whole["object"] == "chat.completion"
    content = whole["choices"][0]["message"]["content"]
    assert "Ada Pell" in content and "Sources:" in content and "beta.md" in content
    assert whole["usage"]["completion_tokens"] > 0
    assert "rewrite_s" in whole["ragcli"]["timings"]  # a follow-up: rewritten to stand alone
    first = server.post("/v1/chat/completions", {"messages": messages[-1:]}).json()
    assert "rewrite_s" not in first["ragcli"]["timings"]  # a first question is not
    streamed = server.post(
        "/v1/chat/completions", {"model": "docs", "messages": messages, "stream": True}
    )
    chunks = [line[6:] for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert chunks[-1] == "[DONE]"
    parts = [json.loads(c)["choices"][0] for c in chunks[:-1]]
    text = "".join(p["delta"].get("content", "") for p in parts)
    assert text == content and parts[-1]["finish_reason"] == "stop"
    no_user = server.post("/v1/chat/completions", {"messages": [{"role": "system"}]})
    assert no_user.status_code == 400


def test_a_token_is_needed_on_every_api_request(ingested: Path) -> None:
    running = Server("-c", "docs", "--token", "s3cret")
    try:
        assert running.client.get("/health").status_code == 401
        wrong = {"authorization": "Bearer nope"}
        assert running.client.get("/health", headers=wrong).status_code == 401
        right = {"authorization": "Bearer s3cret"}
        assert running.client.get("/health", headers=right).status_code == 200
        search = running.post("/search", {"question": "bridge"}, headers=right)
        assert search.status_code == 200
        assert running.client.get("/").status_code == 200  # the page holds no data
    finally:
        running.stop()


def test_listening_beyond_loopback_needs_a_token(ingested: Path) -> None:
    result = fakecli("serve", "--host", "0.0.0.0", "-c", "docs")
    assert result.returncode == 2
    assert "--token" in result.stderr


def test_a_full_queue_answers_503_with_retry_after(ingested: Path) -> None:
    running = Server("-c", "docs", "--queue", "0", env={"RAGCLI_TEST_TOKEN_DELAY": "0.3"})
    try:
        body = {"question": "Who founded the kettle works?", "stream": True}
        with running.client.stream("POST", "/ask", json=body) as first:
            assert first.status_code == 200
            next(first.iter_lines())  # the answer is being written
            refused = running.post("/ask", {"question": "Where is the bridge?"})
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "5"
            assert refused.json()["error"]["code"] == "busy"
            # searches do not wait for the generator
            assert running.post("/search", {"question": "bridge"}).status_code == 200
    finally:
        running.stop()


def test_a_client_that_leaves_stops_its_answer(ingested: Path) -> None:
    running = Server("-c", "docs", "--queue", "0", env={"RAGCLI_TEST_TOKEN_DELAY": "0.5"})
    try:
        body = {"question": "Who founded the kettle works?", "stream": True}
        with running.client.stream("POST", "/ask", json=body) as first:
            next(first.iter_lines())
        # the slow answer has 10 words (5 s); once it stops, the queue takes another at once
        deadline = time.monotonic() + 4
        while True:
            health = running.client.get("/health").json()
            if health["answers"]["in_progress_or_waiting"] == 0:
                break
            assert time.monotonic() < deadline, "the answer went on after the client left"
            time.sleep(0.1)
    finally:
        running.stop()


def test_sigterm_stops_the_server_within_seconds(ingested: Path) -> None:
    running = Server("-c", "docs", env={"RAGCLI_TEST_TOKEN_DELAY": "0.5"})
    body = {"question": "Who founded the kettle works?", "stream": True}
    with running.client.stream("POST", "/ask", json=body) as answer:
        next(answer.iter_lines())
        started = time.monotonic()
        running.process.send_signal(signal.SIGTERM)
        code = running.process.wait(timeout=15)
    assert time.monotonic() - started < 8
    assert code == 0
    assert running.process.stderr is not None
    said = running.process.stderr.read()
    assert "ragcli stopped" in said and "Traceback" not in said


def test_a_port_in_use_is_a_clear_error(server: Server) -> None:
    port = server.url.rsplit(":", 1)[1]
    result = fakecli("serve", "-c", "docs", "--port", port)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_chat_turns_pair_questions_with_their_answers() -> None:
    from ragcli.errors import UsageError
    from ragcli.server.openai import chat_turns

    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Who founded the kettle works?"},
        {"role": "assistant", "content": "Ada Pell [1].\n\nSources:\n[1] beta.md"},
        {"role": "user", "content": "Where is the bridge?"},
        {"role": "user", "content": [{"type": "text", "text": "When did she found it?"}]},
    ]
    question, earlier = chat_turns(messages)
    assert question == "When did she found it?"
    assert earlier == [
        ("Who founded the kettle works?", "Ada Pell [1]."),
        ("Where is the bridge?", ""),
    ]
    for bad in (
        [],
        "hi",
        [{"role": "assistant", "content": "x"}],
        [{"role": "user", "content": " "}],
    ):
        with pytest.raises(UsageError):
            chat_turns(bad)


def test_both_stores_serve_the_newest_generation(store: str | None, corpus: Path) -> None:
    """On a folder and on PostgreSQL alike (RAGCLI_STORE), an ingest by another process while
    the server runs shows up at its next request, and /health says which generation."""
    assert fakecli("ingest", str(corpus), "-c", "docs").returncode == 0
    running = Server("-c", "docs")
    try:
        question = {"question": "Which instrument did Mira Holt tune?", "k": 1}
        assert "Mira Holt" not in running.post("/search", question).json()["hits"][0]["text"]
        first = running.client.get("/health").json()["collections"]["docs"]
        (corpus / "delta.txt").write_text("Mira Holt tuned the harbour organ every spring.\n")
        assert fakecli("ingest", str(corpus), "-c", "docs").returncode == 0
        assert "Mira Holt" in running.post("/search", question).json()["hits"][0]["text"]
        assert running.client.get("/health").json()["collections"]["docs"] > first
        answer = running.post("/ask", {"question": "Who tuned the harbour organ?"}).json()
        assert "Mira Holt" in answer["answer"]
    finally:
        assert running.stop() == 0
