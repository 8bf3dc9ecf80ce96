"""``ragcli mcp``: the real server in a process of its own, driven over stdio by the MCP SDK's
own client, with the fake models. The tools are listed with their input schemas; search, ask
and the passage and document reads answer from the collection; another collection is picked by
argument; every bad call is a tool error with its message and hint, and the session goes on;
stdout carries nothing but the protocol; a cancelled answer stops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import CallToolResult, TextContent

from .conftest import REPO

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """The SDK's client on asyncio, as ``ragcli mcp`` itself runs."""
    return "asyncio"


FAKECLI = [sys.executable, "-m", "tests.fakecli"]
KETTLE = "Who founded the kettle works?"


def fakecli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FAKECLI, *args], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )


def ingest(folder: Path, collection: str) -> None:
    result = fakecli("ingest", str(folder), "-c", collection)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def docs(corpus: Path) -> Path:
    """The corpus, ingested as the collection ``docs``."""
    ingest(corpus, "docs")
    return corpus


@asynccontextmanager
async def mcp_server(*args: str, **env: str) -> AsyncIterator[Client]:
    """A session with ``ragcli mcp ARGS`` (the fake models), started by the SDK's stdio client.

    The client passes only a few safe variables to the server; RAGCLI_HOME must go with them.
    """
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "tests.fakecli", "mcp", *args],
        cwd=REPO,
        env={**os.environ, **env},
    )
    async with Client(params) as client:
        yield client


def text(result: CallToolResult) -> str:
    assert len(result.content) == 1 and isinstance(result.content[0], TextContent)
    return result.content[0].text


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool's structured result; the call must succeed."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    return result.structured_content


async def test_the_tools_are_listed_with_their_input_schemas(docs: Path) -> None:
    async with mcp_server("-c", "docs", "-k", "3") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {"search", "ask", "list_collections", "get_passage", "get_document"}
    for tool in tools.values():
        assert tool.description and len(tool.description) > 100
        assert tool.annotations is not None and tool.annotations.read_only_hint
    search = tools["search"].input_schema
    assert search["required"] == ["question"]
    assert set(search["properties"]) == {
        "question", "k", "mode", "path", "after", "before", "type", "tag", "collection"
    }  # fmt: skip
    assert search["properties"]["question"]["maxLength"] == 2000
    assert (search["properties"]["k"]["minimum"], search["properties"]["k"]["maximum"]) == (1, 50)
    assert {"hybrid", "dense", "lexical"} < set(search["properties"]["mode"]["enum"])
    assert search["properties"]["collection"]["default"] == "docs"
    assert all(p.get("description") for p in search["properties"].values())
    assert "collection 'docs', k=3" in (tools["search"].description or "")
    assert tools["ask"].input_schema["properties"] == search["properties"]
    assert "withheld" in (tools["ask"].description or "")
    assert tools["get_passage"].input_schema["required"] == ["chunk_id"]
    assert tools["get_document"].input_schema["required"] == ["doc_id"]
    assert tools["list_collections"].input_schema.get("required", []) == []


async def test_search_finds_the_passage_and_its_ids_read_around_it(docs: Path) -> None:
    async with mcp_server("-c", "docs") as client:
        result = await client.call_tool("search", {"question": KETTLE, "k": 2})
        found = await call(client, "search", question=KETTLE, k=2)
        best = found["hits"][0]
        passage = await call(client, "get_passage", chunk_id=best["chunk_id"])
        document = await call(client, "get_document", doc_id=best["doc_id"])
    assert json.loads(text(result)) == result.structured_content  # the JSON, as text too
    assert found["schema_version"] == 1 and found["collection"] == "docs"
    assert len(found["hits"]) == 2
    assert best["source"].endswith("beta.md") and "Ada Pell" in best["text"]
    assert passage["chunk_id"] == best["chunk_id"] and passage["text"] == best["text"]
    assert passage["collection"] == "docs" and passage["source"] == best["source"]
    assert document["doc_id"] == best["doc_id"] and document["source"] == best["source"]
    chunk_ids = [p["chunk_id"] for p in document["passages"]]
    assert best["chunk_id"] in chunk_ids
    assert "copper kettles" in " ".join(p["text"] for p in document["passages"])


async def test_ask_answers_citing_a_passage(docs: Path) -> None:
    async with mcp_server("-c", "docs") as client:
        result = await client.call_tool("ask", {"question": KETTLE})
    assert not result.is_error, text(result)
    answer = result.structured_content
    assert answer is not None and answer["schema_version"] == 1
    assert "Ada Pell" in answer["answer"] and not answer["abstained"]
    cited = answer["citations"][0]
    assert cited["marker"] == 1 and cited["source"].endswith("beta.md")
    shown = text(result)
    assert shown.startswith(answer["answer"])
    assert "\n\nSources:\n[1] " in shown and cited["chunk_id"] in shown


async def test_ask_says_when_it_withholds_the_answer(docs: Path) -> None:
    async with mcp_server("-c", "docs") as client:
        # no word in common with any passage: the fake embedder finds nothing close
        result = await client.call_tool("ask", {"question": "Zyxwvut qponm lkjih?"})
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    assert result.structured_content["abstained"] is True
    assert result.structured_content["abstain_reason"] == "weak retrieval"
    assert text(result).startswith("ragcli withheld the answer (weak retrieval).")


async def test_list_collections_and_another_collection_by_argument(
    docs: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "observatory.txt").write_text("The observatory was founded by Mira Holt in 1911.\n")
    ingest(other, "other")
    question = "Who founded the observatory?"
    async with mcp_server("-c", "docs") as client:
        listed = await call(client, "list_collections")
        found = await call(client, "search", question=question, collection="other")
        answer = await call(client, "ask", question=question, collection="other")
        default = await call(client, "search", question=KETTLE)
    assert listed["default"] == "docs"
    assert [c["name"] for c in listed["collections"]] == ["docs", "other"]
    assert listed["collections"][1]["documents"] == 1
    assert found["collection"] == "other"
    assert found["hits"][0]["source"].endswith("observatory.txt")
    assert "Mira Holt" in answer["answer"] and answer["collection"] == "other"
    assert default["collection"] == "docs"


BAD_CALLS: list[tuple[str, dict[str, Any], str, str]] = [
    # tool, arguments, error code, what the message says
    ("search", {"question": KETTLE, "collection": "nope"}, "not_found", "no collection named"),
    ("ask", {"question": KETTLE, "collection": "nope"}, "not_found", "no collection named"),
    ("search", {"question": ""}, "bad_request", "the question is missing or empty"),
    ("ask", {"question": "   "}, "bad_request", "the question is missing or empty"),
    ("search", {"question": KETTLE, "k": 0}, "bad_request", "k must be a whole number from 1"),
    ("search", {"question": KETTLE, "k": 51}, "bad_request", "k must be a whole number from 1"),
    ("search", {"question": KETTLE, "mode": "fuzzy"}, "bad_request", "unknown retrieval mode"),
    ("search", {"question": "why " * 600}, "bad_request", "at most 2,000"),
    ("search", {"question": KETTLE, "collection": "../x"}, "bad_request", "collection name"),
    ("get_passage", {"chunk_id": "nope"}, "not_found", "no passage 'nope'"),
    ("get_document", {"doc_id": "nope"}, "not_found", "no document 'nope'"),
]


async def test_every_bad_call_is_a_tool_error_and_the_session_goes_on(docs: Path) -> None:
    async with mcp_server("-c", "docs") as client:
        for tool, arguments, code, message in BAD_CALLS:
            result = await client.call_tool(tool, arguments)
            shown = text(result)
            assert result.is_error, (tool, arguments, shown)
            assert message in shown, (tool, arguments, shown)
            assert "Traceback" not in shown
            assert result.structured_content is not None
            assert result.structured_content["error"]["code"] == code
            if code == "bad_request" and "mode" in arguments:
                assert "hint: use one of: hybrid, dense, lexical" in shown
            after = await call(client, "search", question=KETTLE, k=1)
            assert after["hits"][0]["source"].endswith("beta.md")
        # arguments of the wrong type fail the input schema: a tool error too
        result = await client.call_tool("search", {"question": KETTLE, "k": "many"})
        assert result.is_error and "k" in text(result)
        await call(client, "list_collections")


def test_stdout_carries_only_the_protocol_and_closing_stdin_stops_the_server(docs: Path) -> None:
    server = subprocess.Popen(
        [*FAKECLI, "mcp", "-c", "docs"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    watchdog = threading.Timer(60, server.kill)  # a hung server fails the test, never hangs it
    watchdog.start()

    def send(message: dict[str, Any]) -> None:
        assert server.stdin is not None
        server.stdin.write(json.dumps({"jsonrpc": "2.0", **message}) + "\n")
        server.stdin.flush()

    def tool(call_id: int, name: str, arguments: dict[str, Any]) -> None:
        params = {"name": name, "arguments": arguments}
        send({"id": call_id, "method": "tools/call", "params": params})

    try:
        client = {"name": "test", "version": "0"}
        params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": client}
        send({"id": 1, "method": "initialize", "params": params})
        replies = [json.loads(server.stdout.readline())]
        send({"method": "notifications/initialized"})
        tool(2, "ask", {"question": KETTLE})
        tool(3, "search", {"question": KETTLE, "k": 0})
        replies += [json.loads(server.stdout.readline()) for _ in range(2)]
        server.stdin.close()
        assert server.wait(timeout=15) == 0
        assert server.stdout.read() == ""  # every line it wrote was a reply
    finally:
        watchdog.cancel()
        server.kill()
        server.wait()
        server.stdout.close()
        assert server.stderr is not None
        server.stderr.close()
    by_id = {r["id"]: r for r in replies}
    assert all(r["jsonrpc"] == "2.0" for r in replies) and set(by_id) == {1, 2, 3}
    assert by_id[1]["result"]["serverInfo"]["name"] == "ragcli"
    assert "Ada Pell" in by_id[2]["result"]["structuredContent"]["answer"]
    assert by_id[3]["result"]["isError"] is True


async def test_a_cancelled_answer_stops_at_its_next_token(docs: Path) -> None:
    """The generator writes one answer at a time: an answer left running would hold up the
    next one for the rest of its words."""
    async with mcp_server("-c", "docs", RAGCLI_TEST_TOKEN_DELAY="0.2") as client:
        await call(client, "search", question=KETTLE)  # the server is up and the store open
        with anyio.move_on_after(0.6):
            await client.call_tool("ask", {"question": KETTLE})
            raise AssertionError("the answer should have taken longer than that")
        started = time.monotonic()
        answer = await call(client, "ask", question=KETTLE)
        seconds = time.monotonic() - started
    words = len(answer["answer"].split())  # 0.2 s each
    assert "Ada Pell" in answer["answer"]
    assert seconds < words * 0.2 + 1.0, f"{seconds:.1f} s: the cancelled answer went on"
