"""``ragcli mcp``: the Model Context Protocol over stdio, on the official ``mcp`` SDK.

Tools for an agent: ``search``, ``ask``, ``list_collections``, ``get_passage`` and
``get_document``, each a thin call into ``Service``. A result carries the CLI's ``--json``
shape as structured content and a text block for the model to read; every failure (a bad
argument, an unknown collection, a model that cannot load) comes back as a tool error with its
message and hint, and the server goes on. Service calls run on worker threads, never on the
event loop; stdout carries nothing but the protocol (the SDK points fd 1 at stderr while it
serves, so even a native library's output stays off the wire).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, ParamSpec, TypeVar

import anyio
import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from ragcli import __version__
from ragcli.config import RETRIEVAL_MODES, Settings
from ragcli.errors import RagcliError
from ragcli.pipeline.serving import (
    MAX_K,
    MAX_QUESTION_CHARS,
    Query,
    Service,
    error_body,
    parse_query,
)
from ragcli.prompting import passage_label
from ragcli.records import Answer, Hit
from ragcli.server.openai import chat_text

_P = ParamSpec("_P")
_T = TypeVar("_T")

# -- arguments: what the input schema tells an agent -------------------------------------------

Question = Annotated[
    str,
    Field(
        description=f"The question, in plain words (at most {MAX_QUESTION_CHARS} characters).",
        json_schema_extra={"minLength": 1, "maxLength": MAX_QUESTION_CHARS},
    ),
]
K = Annotated[
    int | None,
    Field(
        description=f"How many passages to retrieve, 1 to {MAX_K}; omit for the server's "
        "default (named in the tool description).",
        json_schema_extra={"minimum": 1, "maximum": MAX_K},
    ),
]
Mode = Annotated[
    str | None,
    Field(
        description="Retrieval mode: 'hybrid' (meaning and exact words fused; the usual best), "
        "'dense' (meaning only) or 'lexical' (exact words, BM25: names, codes, identifiers). "
        "Omit for the collection's default (the mode `ragcli tune` chose for it, else hybrid).",
        json_schema_extra={"enum": [*RETRIEVAL_MODES, None]},
    ),
]
PathGlob = Annotated[
    str | None,
    Field(
        description="Only passages whose source matches this glob, e.g. 'docs/*.md' or '*.pdf'; "
        "omit to search every document."
    ),
]
After = Annotated[
    str | None,
    Field(
        description="Only documents dated at or after this: an ISO date or time "
        "('2024-05-01', '2024-05-01T14:30', '2024-05-01T14:30+02:00'; UTC unless an offset "
        "is given) or an age before now ('12h', '30d', '2w'). A document's date is the "
        "`date` of its Markdown front matter, else its file's modification time."
    ),
]
Before = Annotated[
    str | None,
    Field(description="Only documents dated before this (the same forms as `after`)."),
]
Types = Annotated[
    list[str] | str | None,
    Field(
        description="Only documents of these types: a list, or one comma-separated string, "
        "of pdf, md (markdown), txt (text), rst, html, jsonl."
    ),
]
Tags = Annotated[
    list[str] | str | None,
    Field(
        description="Only documents with any of these tags (from their Markdown front "
        "matter; case does not matter): a list, or one comma-separated string."
    ),
]
CollectionName = Annotated[
    str,
    Field(description="The collection to use; list_collections names them."),
]
ChunkId = Annotated[
    str,
    Field(
        description="The passage's chunk_id, exactly as a search hit or an ask citation gives it."
    ),
]
DocId = Annotated[
    str,
    Field(
        description="The document's doc_id, exactly as a search hit or an ask citation gives it."
    ),
]

# -- descriptions: what each tool is for, returns and defaults to ------------------------------

INSTRUCTIONS = """\
ragcli answers from the user's own documents, indexed into collections. The default \
collection is {collection!r}; every tool takes `collection` to use another (list_collections \
names them). Use search to find passages (fast; each hit has a chunk_id and a doc_id), \
get_passage and get_document to read around a hit, and ask for a written answer with citations \
(slower; ragcli withholds it when the documents do not support one)."""

SEARCH = """\
Find the passages of a collection that best match a question. Retrieval only: no answer is \
written, so it is fast. Returns JSON {{question, collection, mode, hits}}; each hit has rank, \
score, source (the file), page or lines, heading, doc_id, chunk_id and the passage text, best \
first. Pass a hit's chunk_id to get_passage or its doc_id to get_document to read more. \
path, type, tag, after and before keep only some documents (searched among them, so k hits \
come back while k passages match; none matching is an error naming the filters). \
Defaults: collection {collection!r}, k={k}."""

ASK = """\
Answer a question from a collection's documents with ragcli's local language model, citing \
the passages it used. Returns the answer followed by numbered sources ([1], [2], ...) with \
their source file, location, chunk_id and doc_id; the structured result also holds every \
passage retrieved and how each sentence checked out. ragcli may abstain: when no passage is \
close to the question, the model declines, or the answer is not supported by the passages, \
the result says the answer was withheld and why (abstained: true, abstain_reason) instead of \
guessing; then search the collection yourself or rephrase. Slower than search (seconds; the \
first call loads the model) and one answer is written at a time. Defaults: collection \
{collection!r}, k={k}."""

LIST_COLLECTIONS = """\
List the collections this server can search: JSON {{default, collections}}, each collection \
with its name, documents, chunks, embedder, disk_bytes, updated_at and problem (why it cannot \
be read, else null). `default` is the collection the tools use when none is given."""

GET_PASSAGE = """\
Read one passage in full: the passage a chunk_id from search (or an ask citation) names. \
Returns JSON {{collection, source, page, lines, heading, doc_id, chunk_id, text}}. \
Default collection: {collection!r}; give the collection the chunk_id came from."""

GET_DOCUMENT = """\
Read a whole document: every passage of the document a doc_id from search (or an ask citation) \
names, in order. Returns JSON {{collection, doc_id, source, passages}}. Default collection: \
{collection!r}; give the collection the doc_id came from."""

READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)

log = logging.getLogger("ragcli.server")


# -- results -----------------------------------------------------------------------------------


def _result(data: dict[str, Any], text: str | None = None) -> CallToolResult:
    """A tool's result: ``data`` as structured content, and as text unless ``text`` is given."""
    shown = text if text is not None else json.dumps(data, ensure_ascii=False)
    return CallToolResult(content=[TextContent(type="text", text=shown)], structured_content=data)


def _error(error: BaseException) -> CallToolResult:
    """A tool error: the message and hint to read, ``{"error": {code, message, hint}}`` to parse."""
    body = error_body(error)[1]
    message, hint = body["error"]["message"], body["error"]["hint"]
    text = f"{message}\nhint: {hint}" if hint else message
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=body, is_error=True
    )


def _guarded(
    tool: Callable[_P, Awaitable[CallToolResult]],
) -> Callable[_P, Awaitable[CallToolResult]]:
    """The tool, with every failure turned into a tool error (logged when unexpected)."""

    @functools.wraps(tool)
    async def guarded(*args: _P.args, **kwargs: _P.kwargs) -> CallToolResult:
        try:
            return await tool(*args, **kwargs)
        except RagcliError as e:
            return _error(e)
        except Exception as e:  # noqa: BLE001 - logged to stderr, answered without a traceback
            log.exception("tool %s failed", tool.__name__)
            return _error(e)

    return guarded


def _answer_text(answer: Answer) -> str:
    """What the model reads of an answer: its text and numbered sources, or that ragcli
    withheld it and why."""
    if answer.abstained:
        return f"ragcli withheld the answer ({answer.abstain_reason}). {chat_text(answer)}"
    sources = [f"[{c.marker}] {_source(c.hit)}" for c in answer.citations]
    return answer.text + ("\n\nSources:\n" + "\n".join(sources) if sources else "")


def _source(hit: Hit) -> str:
    return f"{passage_label(hit)} (chunk_id {hit.chunk_key}, doc_id {hit.doc_id})"


# -- the server --------------------------------------------------------------------------------


async def _off_loop(work: Callable[[], _T]) -> _T:
    """Run a blocking service call on a worker thread."""
    return await anyio.to_thread.run_sync(work)


async def _answer(service: Service, query: Query) -> Answer:
    """Answer on a worker thread; a client that cancels the call stops it at the next token."""
    gone = threading.Event()
    try:
        return await anyio.to_thread.run_sync(
            lambda: service.ask(query, cancelled=gone.is_set), abandon_on_cancel=True
        )
    except anyio.get_cancelled_exc_class():
        gone.set()
        raise


def _query(service: Service, **fields: Any) -> Query:
    """A checked query from a tool's arguments (those left out take the server's defaults)."""
    given = {name: value for name, value in fields.items() if value is not None}
    return parse_query(given, service.settings.collection)


def build_server(service: Service) -> MCPServer:
    """The MCP server with ragcli's tools over ``service``."""
    settings = service.settings
    server: MCPServer = MCPServer(
        name="ragcli",
        version=__version__,
        instructions=INSTRUCTIONS.format(collection=settings.collection),
        log_level="WARNING",
    )
    default = settings.collection

    @_guarded
    async def search(
        question: Question,
        k: K = None,
        mode: Mode = None,
        path: PathGlob = None,
        after: After = None,
        before: Before = None,
        type: Types = None,
        tag: Tags = None,
        collection: CollectionName = default,
    ) -> CallToolResult:
        query = _query(
            service, question=question, k=k, mode=mode, path=path, after=after, before=before,
            type=type, tag=tag, collection=collection,
        )  # fmt: skip
        found = await _off_loop(lambda: service.search(query))
        return _result(found.to_dict())

    @_guarded
    async def ask(
        question: Question,
        k: K = None,
        mode: Mode = None,
        path: PathGlob = None,
        after: After = None,
        before: Before = None,
        type: Types = None,
        tag: Tags = None,
        collection: CollectionName = default,
    ) -> CallToolResult:
        query = _query(
            service, question=question, k=k, mode=mode, path=path, after=after, before=before,
            type=type, tag=tag, collection=collection,
        )  # fmt: skip
        answer = await _answer(service, query)
        return _result(answer.to_dict(), _answer_text(answer))

    @_guarded
    async def list_collections() -> CallToolResult:
        found = await _off_loop(service.collections)
        return _result({"default": default, "collections": found})

    @_guarded
    async def get_passage(
        chunk_id: ChunkId, collection: CollectionName = default
    ) -> CallToolResult:
        hit = await _off_loop(lambda: service.passage(collection, chunk_id))
        return _result({"collection": collection, **_passage(hit)})

    @_guarded
    async def get_document(doc_id: DocId, collection: CollectionName = default) -> CallToolResult:
        hits = await _off_loop(lambda: service.document(collection, doc_id))
        passages = [_passage(h) for h in hits]
        return _result(
            {
                "collection": collection,
                "doc_id": doc_id,
                "source": hits[0].source,
                "passages": passages,
            }
        )

    tools: list[tuple[Callable[..., Awaitable[CallToolResult]], str]] = [
        (search, SEARCH),
        (ask, ASK),
        (list_collections, LIST_COLLECTIONS),
        (get_passage, GET_PASSAGE),
        (get_document, GET_DOCUMENT),
    ]
    for tool, description in tools:
        server.add_tool(tool, description=_describe(description, settings), annotations=READ_ONLY)
    return server


def _describe(template: str, settings: Settings) -> str:
    return template.format(collection=settings.collection, k=settings.top_k)


def _passage(hit: Hit) -> dict[str, Any]:
    """A passage as read by id: a hit without the rank and score of a search it was not in."""
    return {k: v for k, v in hit.to_dict().items() if k not in ("rank", "score")}


def run(service: Service) -> None:
    """Serve over stdin and stdout until the client closes stdin."""
    anyio.run(build_server(service).run_stdio_async)
