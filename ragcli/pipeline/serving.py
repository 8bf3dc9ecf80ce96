"""The serve use case: one process that keeps its models loaded and answers many requests.

``Service`` is what ``ragcli serve`` (HTTP) and ``ragcli mcp`` (Model Context Protocol) share,
with no web framework in it: requests are checked here (``parse_query``), searches run
concurrently on a pool of readers per collection, answers one at a time on the one generator
behind a bounded queue. Every request reads the newest committed generation of its collection:
an ingest running in another process is picked up at its next commit, never half-written.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ragcli.config import RETRIEVAL_MODES, Settings
from ragcli.errors import (
    CollectionNotFoundError,
    RagcliError,
    ServiceBusyError,
    UsageError,
)
from ragcli.filters import Filters, parse_filters
from ragcli.models.generation import ChatModel
from ragcli.pipeline.answering import ask, generator_for
from ragcli.pipeline.conversing import timed_rewrite
from ragcli.pipeline.events import Events
from ragcli.pipeline.searching import Embedders, Searcher
from ragcli.records import Answer, Hit, SearchResult
from ragcli.store.location import location_for

MAX_QUESTION_CHARS = 2000  # longer than any question; a pasted document is refused
MAX_K = 50
SEARCH_FIELDS = {"question", "collection", "k", "mode", "path", "after", "before", "type", "tag"}


class Cancelled(Exception):
    """The client went away; its answer is stopped."""


@dataclass(frozen=True)
class Query:
    """A checked request: what to ask of which collection."""

    question: str
    collection: str
    k: int | None = None
    mode: str | None = None
    filters: Filters | None = None  # path, after, before, type, tag

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _bad(message: str, hint: str | None = None) -> UsageError:
    return UsageError(message, hint)


def parse_query(body: Any, default_collection: str, allowed: set[str] = SEARCH_FIELDS) -> Query:
    """A ``Query`` from a request's JSON body (or a tool's arguments); UsageError if it is not
    one: not an object, an unknown field, a missing, empty or oversized question, k out of
    1..MAX_K, an unknown mode, a collection name that cannot be one."""
    if not isinstance(body, Mapping):
        raise _bad("the request body must be a JSON object", 'send {"question": "..."}')
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _bad(f"unknown field {unknown[0]!r}", f"known fields: {', '.join(sorted(allowed))}")
    question = body.get("question")
    if not isinstance(question, str) or not question.strip():
        raise _bad("the question is missing or empty", 'send {"question": "..."}')
    question = question.strip()
    if len(question) > MAX_QUESTION_CHARS:
        raise _bad(
            f"the question is {len(question):,} characters; at most {MAX_QUESTION_CHARS:,}",
            "ask something shorter",
        )
    k = body.get("k")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K):
        raise _bad(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")
    mode = body.get("mode")
    if mode is not None and mode not in RETRIEVAL_MODES:
        raise _bad(f"unknown retrieval mode {mode!r}", f"use one of: {', '.join(RETRIEVAL_MODES)}")
    path = body.get("path")
    if path is not None and (not isinstance(path, str) or not path.strip()):
        raise _bad("path must be a glob such as 'docs/*.md'")
    filters = parse_filters(
        path,
        _date_field(body, "after"),
        _date_field(body, "before"),
        _words_field(body, "type"),
        _words_field(body, "tag"),
        prefix="",
    )
    collection = body.get("collection", default_collection)
    if not isinstance(collection, str) or not collection:
        raise _bad("collection must be a collection's name")
    return Query(question, collection, k, mode, filters)


def _date_field(body: Mapping[str, Any], name: str) -> str | None:
    """A date field (``after``, ``before``) as text for ``parse_filters``."""
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise _bad(f"{name} must be a date such as '2024-05-01' or an age such as '30d'")
    return value


def _words_field(body: Mapping[str, Any], name: str) -> list[str]:
    """A field that takes a string (comma-separated) or a list of strings (``type``, ``tag``)."""
    value = body.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise _bad(f"{name} must be a string or a list of strings, not {value!r}")


class _Readers:
    """Open searchers of one collection generation, each used by one request at a time."""

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.idle: list[Searcher] = []
        self.retired = False

    def close(self) -> None:
        self.retired = True
        while self.idle:
            self.idle.pop().close()


class Service:
    """Collections and models held open for many requests (``ragcli serve``, ``ragcli mcp``).

    ``settings`` are the server's own (store, models, default collection, k); a request may
    pick another collection, k, mode and filters. ``queue`` is how many answers may wait for the
    generator while one is written; one more is refused with ``ServiceBusyError``.
    """

    def __init__(self, settings: Settings, queue: int = 4, events: Events | None = None) -> None:
        self.settings = settings
        self.queue = queue
        self.events = events or Events()
        self.started = time.time()
        self.embedders = Embedders()
        self._readers: dict[tuple[str, str | None], _Readers] = {}  # by collection and mode
        self._readers_lock = threading.Lock()
        self._generator: ChatModel | None = None
        self._generator_lock = threading.Lock()  # one answer at a time
        self._asks = 0  # answers being written or waiting
        self._asks_lock = threading.Lock()

    # -- collections --------------------------------------------------------------------------

    def settings_for(self, query: Query) -> Settings:
        """The server's settings with what the request chose."""
        settings = dataclasses.replace(
            self.settings,
            collection=query.collection,
            top_k=query.k or self.settings.top_k,
            mode=query.mode or self.settings.mode,
        )
        settings.validate()
        return settings

    def _current_generation(self, settings: Settings) -> int:
        location = location_for(settings)
        if not location.exists():
            raise CollectionNotFoundError(
                f"no collection named {settings.collection!r}",
                "`ragcli collections` lists them (GET /collections, the MCP tool "
                "list_collections); `ragcli ingest PATH -c NAME` makes one",
            )
        store = location.open(load_vectors=False)
        try:
            return store.generation
        finally:
            store.close()

    @contextmanager
    def searcher(self, settings: Settings, filters: Filters | None = None) -> Iterator[Searcher]:
        """A searcher on the newest committed generation of the collection, for one request.

        Searchers are kept per generation and reused; a newer generation retires the older
        ones (a request still using one finishes on it, then it is closed).
        """
        key = (settings.collection, settings.mode)
        current = self._current_generation(settings)
        with self._readers_lock:
            readers = self._readers.get(key)
            if readers is None or readers.generation != current:
                if readers is not None:
                    readers.close()
                readers = self._readers[key] = _Readers(current)
            searcher = readers.idle.pop() if readers.idle else None
        if searcher is None:
            searcher = Searcher(settings, embedders=self.embedders)
        searcher.how.filters = filters
        try:
            yield searcher
        finally:
            searcher.how.filters = None
            with self._readers_lock:
                if readers.retired or searcher.store.generation != readers.generation:
                    searcher.close()
                else:
                    readers.idle.append(searcher)

    def collections(self) -> list[dict[str, Any]]:
        """Every collection, as ``ragcli collections --json`` lists them."""
        from ragcli import manage

        return [c.to_dict() for c in manage.list_collections(self.settings)]

    # -- questions ----------------------------------------------------------------------------

    def search(self, query: Query) -> SearchResult:
        settings = self.settings_for(query)
        with self.searcher(settings, query.filters) as searcher:
            return searcher.search(query.question, query.k)

    @property
    def generator(self) -> ChatModel:
        """The generator, loaded on the first answer and kept."""
        if self._generator is None:
            self._generator = generator_for(self.settings, self.events)
            self._generator.load()
        return self._generator

    @contextmanager
    def _turn(self, on_admitted: Callable[[], None] | None = None) -> Iterator[None]:
        """Wait for the generator; refuse at once when the queue is full."""
        with self._asks_lock:
            if self._asks > self.queue:
                raise ServiceBusyError(
                    f"{self._asks} answers are being written or waiting",
                    "try again in a few seconds",
                )
            self._asks += 1
        try:
            if on_admitted is not None:
                on_admitted()
            with self._generator_lock:
                yield
        finally:
            with self._asks_lock:
                self._asks -= 1

    def check(self, query: Query) -> None:
        """Refuse a query whose collection does not exist (before a stream begins)."""
        self._current_generation(self.settings_for(query))

    def ask(
        self,
        query: Query,
        on_token: Callable[[str], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        abstain: bool = True,
        on_admitted: Callable[[], None] | None = None,
        earlier: Sequence[tuple[str, str]] = (),
    ) -> Answer:
        """Answer as ``ragcli ask`` does. ``on_token`` gets the text as it comes; when
        ``cancelled()`` turns true the answer stops (``Cancelled``); ``on_admitted()`` is
        called once the queue has taken the question (before it waits for the generator).
        With ``earlier`` (a conversation's (question, answer) pairs), retrieval searches for
        the question rewritten to stand alone, as ``ask --session`` does."""
        settings = self.settings_for(query)
        self._current_generation(settings)  # an unknown collection loads no model

        def tokens(text: str) -> None:
            if cancelled is not None and cancelled():
                raise Cancelled
            if on_token is not None:
                on_token(text)

        with self._turn(on_admitted):
            if cancelled is not None and cancelled():
                raise Cancelled
            generator = self.generator
            rewritten, rewrite_s = None, None
            if earlier:
                rewritten, rewrite_s = timed_rewrite(generator, earlier, query.question)
            with self.searcher(settings, query.filters) as searcher:
                answer = ask(
                    settings,
                    query.question,
                    query.k,
                    self.events,
                    on_token=tokens,
                    filters=query.filters,
                    abstain=abstain,
                    generator=generator,
                    searcher=searcher,
                    query=rewritten,
                )
            if rewrite_s is not None:
                answer.timings["rewrite_s"] = rewrite_s
            return answer

    # -- passages -----------------------------------------------------------------------------

    def passage(self, collection: str, chunk_id: str) -> Hit:
        """The passage a hit's ``chunk_id`` names."""
        settings = self.settings_for(Query("-", collection))
        with self.searcher(settings) as searcher:
            hit = searcher.store.passage(chunk_id)
        if hit is None:
            raise CollectionNotFoundError(
                f"no passage {chunk_id!r} in collection {collection!r}",
                "use a chunk_id from a search of this collection",
            )
        return hit

    def document(self, collection: str, doc_id: str) -> list[Hit]:
        """Every passage of the document a hit's ``doc_id`` names, in order."""
        settings = self.settings_for(Query("-", collection))
        with self.searcher(settings) as searcher:
            hits = searcher.store.document_passages(doc_id)
        if not hits:
            raise CollectionNotFoundError(
                f"no document {doc_id!r} in collection {collection!r}",
                "use a doc_id from a search of this collection",
            )
        return hits

    # -- state --------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """What is loaded, what is waiting and which generation each open collection is at."""
        with self._readers_lock:
            generations = {name: r.generation for (name, _), r in self._readers.items()}
        with self._asks_lock:
            asks = self._asks
        return {
            "status": "ok",
            "uptime_s": round(time.time() - self.started, 1),
            "default_collection": self.settings.collection,
            "models": {
                "embedders": self.embedders.names,
                "generator": self._generator.name if self._generator is not None else None,
                "generator_loaded": self._generator is not None,
            },
            "collections": generations,
            "answers": {"in_progress_or_waiting": asks, "queue": self.queue},
        }

    def close(self) -> None:
        with self._readers_lock:
            for readers in self._readers.values():
                readers.close()
            self._readers.clear()
        if self._generator is not None:
            close = getattr(self._generator, "close", None)
            if close is not None:
                close()


def error_body(error: BaseException) -> tuple[int, dict[str, Any]]:
    """An HTTP status and ``{"error": {"code", "message", "hint"}}`` for an error."""
    from ragcli import errors

    table: list[tuple[type[BaseException], int, str]] = [
        (UsageError, 400, "bad_request"),
        (errors.NoMatchError, 404, "no_match"),
        (CollectionNotFoundError, 404, "not_found"),
        (errors.IncompatibleCollectionError, 409, "incompatible_collection"),
        (ServiceBusyError, 503, "busy"),
        (errors.CollectionBusyError, 503, "collection_busy"),
        (errors.StoreUnavailableError, 503, "store_unavailable"),
        (errors.ModelError, 500, "model_error"),
        (RagcliError, 500, "error"),
    ]
    for kind, status, code in table:
        if isinstance(error, kind):
            assert isinstance(error, RagcliError)
            return status, {"error": {"code": code, "message": error.message, "hint": error.hint}}
    return 500, {
        "error": {
            "code": "internal",
            "message": f"internal error: {type(error).__name__}",
            "hint": "the server's log (stderr) has the details",
        }
    }
