"""``ragcli serve``: the HTTP API over a ``Service``, on Starlette and uvicorn.

Routes: ``POST /search``, ``POST /ask`` (one JSON document, or Server-Sent Events with
``"stream": true``), ``GET /collections``, ``GET /health``, ``GET /passage``, ``GET /document``,
the OpenAI-compatible ``POST /v1/chat/completions`` and ``GET /v1/models``, and the page at
``/``. Bodies are the CLI's ``--json`` shapes; errors are ``{"error": {"code", "message",
"hint"}}`` with a 4xx or 5xx status, never a traceback.

Searches run on worker threads, a few at once; answers go through the service's one generator.
A client that disconnects stops its answer at the next token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from importlib import resources
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ragcli.errors import RagcliError, UsageError
from ragcli.pipeline.serving import (
    SEARCH_FIELDS,
    Cancelled,
    Query,
    Service,
    error_body,
    parse_query,
)
from ragcli.records import Answer
from ragcli.server.openai import ChatReply, chat_turns

MAX_BODY = 64 * 1024
SEARCHES_AT_ONCE = 4  # each holds a reader of its own; more wait for a free one
PAGE_FILES = ("index.html", "app.js", "style.css")
_END = object()
_ADMITTED = object()


class Problem(Exception):
    """A request the API refuses, with its status and error code."""

    def __init__(self, status: int, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.hint = status, code, message, hint


def _error_response(error: BaseException) -> JSONResponse:
    if isinstance(error, Problem):
        body = {"error": {"code": error.code, "message": error.message, "hint": error.hint}}
        return JSONResponse(body, status_code=error.status)
    status, body = error_body(error)
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _sse(event: dict[str, Any]) -> str:
    return f"event: {event['event']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"


async def _json_body(request: Request) -> Any:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise Problem(
            415,
            "unsupported_media_type",
            f"the body must be application/json, not {kind or 'unlabelled'}",
            "send the header 'Content-Type: application/json'",
        )
    size = int(request.headers.get("content-length") or 0)
    raw = b"" if size > MAX_BODY else await request.body()
    if size > MAX_BODY or len(raw) > MAX_BODY:
        raise Problem(413, "too_large", f"the body is over {MAX_BODY // 1024} KiB")
    try:
        return json.loads(raw)
    except ValueError as e:
        raise Problem(400, "malformed_json", f"the body is not valid JSON: {e}") from None


class Api:
    """The routes, bound to one service."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.searches = anyio.CapacityLimiter(SEARCHES_AT_ONCE)

    async def _query(self, request: Request, allowed: set[str] = SEARCH_FIELDS) -> Query:
        body = await _json_body(request)
        return parse_query(body, self.service.settings.collection, allowed)

    async def search(self, request: Request) -> Response:
        query = await self._query(request)
        result = await anyio.to_thread.run_sync(self.service.search, query, limiter=self.searches)
        return JSONResponse(result.to_dict())

    async def ask(self, request: Request) -> Response:
        body = await _json_body(request)
        stream = body.pop("stream", False) if isinstance(body, dict) else False
        if not isinstance(stream, bool):
            raise Problem(400, "bad_request", "stream must be true or false")
        query = parse_query(body, self.service.settings.collection)
        if stream:
            events = await self._start_answer(query)
            return StreamingResponse(_answer_events(events), media_type="text/event-stream")
        return JSONResponse((await self._answer(request, query)).to_dict())

    async def _answer(
        self, request: Request, query: Query, earlier: Sequence[tuple[str, str]] = ()
    ) -> Answer:
        """Answer in a worker thread; stop it when the client goes away meanwhile."""
        gone = threading.Event()

        async def watch() -> None:
            while not await request.is_disconnected():
                await anyio.sleep(0.25)
            gone.set()

        outcome: list[Answer | BaseException] = []

        async def work() -> None:
            try:
                outcome.append(
                    await anyio.to_thread.run_sync(
                        lambda: self.service.ask(query, cancelled=gone.is_set, earlier=earlier)
                    )
                )
            except Exception as e:  # noqa: BLE001 - raised again below, outside the group
                outcome.append(e)
            finally:
                group.cancel_scope.cancel()

        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            group.start_soon(work)
        if not outcome:  # the client left and the answer was stopped
            raise Problem(499, "client_closed", "the client went away")
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        return outcome[0]

    async def _start_answer(
        self, query: Query, earlier: Sequence[tuple[str, str]] = ()
    ) -> _AnswerThread:
        """Start answering on a thread; errors before the first token (a full queue, an
        unknown collection) come back as a status, not as an event in a stream."""
        await anyio.to_thread.run_sync(self.service.check, query, limiter=self.searches)
        answer = _AnswerThread(self.service, query, asyncio.get_running_loop(), earlier)
        first = await answer.events.get()
        if isinstance(first, BaseException):
            raise first
        return answer

    async def collections(self, request: Request) -> Response:
        found = await anyio.to_thread.run_sync(self.service.collections)
        return JSONResponse({"collections": found})

    async def health(self, request: Request) -> Response:
        return JSONResponse(self.service.health())

    def _params(self, request: Request, name: str) -> tuple[str, str]:
        value = request.query_params.get(name)
        if not value:
            raise Problem(400, "bad_request", f"missing query parameter {name!r}")
        return request.query_params.get("collection") or self.service.settings.collection, value

    async def passage(self, request: Request) -> Response:
        collection, chunk_id = self._params(request, "chunk_id")
        hit = await anyio.to_thread.run_sync(self.service.passage, collection, chunk_id)
        return JSONResponse({"collection": collection, **hit.to_dict()})

    async def document(self, request: Request) -> Response:
        collection, doc_id = self._params(request, "doc_id")
        hits = await anyio.to_thread.run_sync(self.service.document, collection, doc_id)
        return JSONResponse(
            {
                "collection": collection,
                "doc_id": doc_id,
                "source": hits[0].source,
                "passages": [h.to_dict() for h in hits],
            }
        )

    # -- OpenAI-compatible --------------------------------------------------------------------

    async def models(self, request: Request) -> Response:
        found = await anyio.to_thread.run_sync(self.service.collections)
        data = [
            {"id": c["name"], "object": "model", "created": 0, "owned_by": "ragcli"} for c in found
        ]
        return JSONResponse({"object": "list", "data": data})

    async def chat(self, request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise Problem(400, "bad_request", "the body must be a JSON object")
        collection = body.get("model") or self.service.settings.collection
        if not isinstance(collection, str):
            raise Problem(400, "bad_request", "model must be a collection's name")
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise Problem(400, "bad_request", "stream must be true or false")
        question, earlier = chat_turns(body.get("messages"))
        query = parse_query({"question": question, "collection": collection}, collection)
        reply = ChatReply(collection)
        if stream:
            events = await self._start_answer(query, earlier)
            chunks = reply.chunks(_events(events), lambda: events.answer)
            return StreamingResponse(chunks, media_type="text/event-stream")
        return JSONResponse(reply.whole(await self._answer(request, query, earlier)))

    def routes(self) -> list[Route]:
        return [
            Route("/", _page("index.html"), methods=["GET"]),
            *[Route(f"/{name}", _page(name), methods=["GET"]) for name in PAGE_FILES[1:]],
            Route("/search", _guarded(self.search), methods=["POST"]),
            Route("/ask", _guarded(self.ask), methods=["POST"]),
            Route("/collections", _guarded(self.collections), methods=["GET"]),
            Route("/health", _guarded(self.health), methods=["GET"]),
            Route("/passage", _guarded(self.passage), methods=["GET"]),
            Route("/document", _guarded(self.document), methods=["GET"]),
            Route("/v1/models", _guarded(self.models), methods=["GET"]),
            Route("/v1/chat/completions", _guarded(self.chat), methods=["POST"]),
        ]


class _AnswerThread:
    """An answer written on a thread of its own, its events handed to the event loop.

    The first event is ``_ADMITTED`` (the queue took it) or the error that refused it; then
    token events, citation events, and a done event (or an error event), then ``_END``.
    Setting ``gone`` stops the answer at its next token.
    """

    def __init__(
        self,
        service: Service,
        query: Query,
        loop: asyncio.AbstractEventLoop,
        earlier: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.events: asyncio.Queue[Any] = asyncio.Queue()
        self.gone = threading.Event()
        self.answer: Answer | None = None
        self._loop = loop
        self._service, self._query, self._earlier = service, query, earlier
        threading.Thread(target=self._run, name="ragcli-answer", daemon=True).start()

    def _put(self, item: Any) -> None:
        self._loop.call_soon_threadsafe(self.events.put_nowait, item)

    def _run(self) -> None:
        admitted = False

        def on_admitted() -> None:
            nonlocal admitted
            admitted = True
            self._put(_ADMITTED)

        try:
            answer = self._service.ask(
                self._query,
                on_token=lambda text: self._put({"event": "token", "text": text}),
                cancelled=self.gone.is_set,
                on_admitted=on_admitted,
                earlier=self._earlier,
            )
            self.answer = answer
            for citation in answer.citations:
                self._put({"event": "citation", **citation.to_dict()})
            self._put({"event": "done", **answer.to_dict()})
        except Cancelled:
            pass
        except BaseException as e:  # noqa: BLE001 - reported to the client, never raised here
            if not admitted:
                self._put(e)
            else:
                self._put({"event": "error", **error_body(e)[1]})
        finally:
            self._put(_END)


async def _events(answer: _AnswerThread) -> AsyncIterator[dict[str, Any]]:
    """An answer's events as they come; a client that leaves stops the answer."""
    try:
        while (event := await answer.events.get()) is not _END:
            yield event
    finally:
        answer.gone.set()


async def _answer_events(answer: _AnswerThread) -> AsyncIterator[str]:
    """The Server-Sent Events of ``POST /ask`` with ``"stream": true``."""
    async for event in _events(answer):
        yield _sse(event)


def _guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
    """The handler, with every error turned into a JSON error response."""

    async def guarded(request: Request) -> Response:
        try:
            response: Response = await handler(request)
            return response
        except (Problem, RagcliError) as e:
            return _error_response(e)
        except Exception as e:  # noqa: BLE001 - logged, answered 500 without a traceback
            import logging

            logging.getLogger("ragcli.server").exception("request failed")
            return _error_response(e)

    return guarded


def _page(name: str) -> Callable[[Request], Any]:
    """One file of the page, read from the package (nothing outside it is ever served)."""
    kinds = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}

    async def page(request: Request) -> Response:
        folder = resources.files("ragcli.server") / "page"
        try:
            content = (folder / name).read_bytes()
        except OSError:
            return _error_response(Problem(404, "not_found", f"no page file {name}"))
        kind = kinds[name[name.rindex(".") :]]
        return Response(content, media_type=f"{kind}; charset=utf-8")

    return page


def _refuse(status: int, code: str, message: str, hint: str, **headers: str) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "hint": hint}}
    return JSONResponse(body, status_code=status, headers=headers or None)


class BearerToken:
    """ASGI middleware: every request but the page's own files carries the token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in {"/", *(f"/{n}" for n in PAGE_FILES)}:
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, value = given.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(value.strip(), self.token):
            await self.app(scope, receive, send)
            return
        response = _refuse(
            401,
            "unauthorized",
            "this server needs a token",
            "send 'Authorization: Bearer TOKEN'",
            **{"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)


LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1", "[::1]"}


class LoopbackHosts:
    """ASGI middleware for a server on loopback: only requests addressed to a loopback name.

    A web page elsewhere cannot reach the server by pointing a DNS name of its own at
    127.0.0.1 (DNS rebinding): its requests carry that name in their Host header.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name.lower() not in LOOPBACK_NAMES:
                response = _refuse(
                    400,
                    "bad_host",
                    f"this server answers requests to 127.0.0.1 or localhost, not {host!r}",
                    "serve with --host and --token to be reached by another name",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error_response(
        Problem(404, "not_found", f"no route {request.method} {request.url.path}", "see GET /")
    )


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return _error_response(
        Problem(405, "method_not_allowed", f"{request.method} is not allowed on {request.url.path}")
    )


def create_app(
    service: Service,
    token: str | None = None,
    cors_origins: Sequence[str] = (),
    loopback: bool = True,
) -> Starlette:
    """The ASGI app. On loopback only requests addressed to a loopback name are taken (a page
    elsewhere cannot reach it by rebinding a DNS name); CORS stays closed unless origins are
    given."""
    middleware: list[Middleware] = []
    if loopback:
        middleware.append(Middleware(LoopbackHosts))
    if cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
            )
        )
    if token:
        middleware.append(Middleware(BearerToken, token=token))
    return Starlette(
        routes=Api(service).routes(),
        middleware=middleware,
        exception_handlers={404: _not_found, 405: _not_allowed},
    )


class _Server(uvicorn.Server):
    """uvicorn's server, saying where it listens once it does, and stopped by SIGINT or
    SIGTERM like any request to stop: it finishes (or, after a few seconds, cancels) what is
    in flight and returns, instead of dying of the signal afterwards."""

    def __init__(self, config: uvicorn.Config, note: Callable[[str], None]) -> None:
        super().__init__(config)
        self.note = note
        self.stopped_by: list[int] = []

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:
            address = self.servers[0].sockets[0].getsockname()
            self.note(f"ragcli serving on http://{_url_host(address[0])}:{address[1]}/ "
                      "(Ctrl-C stops)")  # fmt: skip

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self.stopped_by = list(self._captured_signals)
            self._captured_signals.clear()


def run(
    service: Service,
    host: str,
    port: int,
    token: str | None,
    cors_origins: Sequence[str],
    note: Callable[[str], None],
) -> None:
    """Serve until SIGINT or SIGTERM; answers in flight get a few seconds to finish."""
    app = create_app(service, token, cors_origins, host in LOOPBACK_NAMES)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=3,
        lifespan="off",
    )
    server = _Server(config, note)
    with contextlib.suppress(SystemExit):  # uvicorn's way of saying it could not bind
        server.run()
    if not server.started:
        raise UsageError(f"cannot listen on {host}:{port}", "is another server using that port?")
    note("ragcli stopped")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
