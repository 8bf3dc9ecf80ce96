"""The search use case: a Searcher holds a collection and its query embedder open."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any, cast

from ragcli.config import Settings
from ragcli.errors import CollectionNotFoundError, NoMatchError
from ragcli.filters import Filters
from ragcli.freshness import stale_sources
from ragcli.models.embedding import Embedder, collection_prompts, embedder_for
from ragcli.models.onnxembed import onnx_query_embedder
from ragcli.pipeline.checks import check_embedder
from ragcli.records import Hit, SearchResult
from ragcli.retrieval import (
    DEFAULT_MODE,
    Fusion,
    LlmReranker,
    Reranker,
    Retrieval,
    candidates,
    retrieve,
    tuned,
)
from ragcli.store import Store
from ragcli.store.location import location_for


def _open_for_reading(
    settings: Settings, embedders: Embedders | None = None
) -> tuple[Store, Embedder]:
    location = location_for(settings)
    store = location.open()
    manifest = store.manifest
    try:
        check_embedder(manifest, settings)
    except BaseException:
        store.close()
        raise
    if store.chunk_count == 0:
        store.close()
        raise CollectionNotFoundError(
            f"collection {settings.collection!r} is empty", "run `ragcli ingest PATH` first"
        )
    try:
        if embedders is not None:
            return store, embedders.get(settings, manifest)
        return store, _query_embedder(settings, manifest)
    except BaseException:
        store.close()
        raise


def one_view(store: Store) -> AbstractContextManager[object]:
    """The reads of one request on one state of the collection: a database store's snapshot,
    which ends with the block (a FAISS reader keeps its generation anyway)."""
    return store.snapshot()


def _query_embedder(settings: Settings, manifest: dict[str, Any]) -> Embedder:
    """What embeds a collection's questions: the ONNX export where there is one."""
    name, prompts = manifest["embedder"]["name"], collection_prompts(manifest, settings)
    return onnx_query_embedder(settings, name, *prompts) or embedder_for(manifest, settings)


class Embedders:
    """Query embedders loaded once and shared by the searchers of one process (a server).

    Questions are embedded one at a time (a few milliseconds each): a tokenizer is not safe to
    share between threads, and the rest of a search runs concurrently.
    """

    def __init__(self) -> None:
        self._loaded: dict[tuple[Any, ...], Embedder] = {}
        self._lock = threading.Lock()

    def get(self, settings: Settings, manifest: dict[str, Any]) -> Embedder:
        name, prompts = manifest["embedder"]["name"], collection_prompts(manifest, settings)
        key = (name, *prompts, settings.onnx, settings.embed_precision)
        with self._lock:
            if key not in self._loaded:
                embedder = _query_embedder(settings, manifest)
                embedder.load()
                self._loaded[key] = cast(Embedder, _OneAtATime(embedder))
            return self._loaded[key]

    @property
    def names(self) -> list[str]:
        return sorted({e.name for e in self._loaded.values()})


class _OneAtATime:
    """An embedder whose ``embed_queries`` runs for one caller at a time."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self._lock = threading.Lock()

    def embed_queries(self, texts: Any, normalize: bool = True) -> Any:
        with self._lock:
            return self._embedder.embed_queries(texts, normalize)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._embedder, name)


def _retrieval(settings: Settings, filters: Filters | None, explain: bool) -> Retrieval:
    return Retrieval(
        mode=settings.mode or DEFAULT_MODE,
        filters=filters,
        max_per_doc=settings.max_per_doc,
        explain=explain,
        reranker=_reranker(settings),
    )


def _reranker(settings: Settings) -> Reranker | LlmReranker | None:
    """``--rerank``: none, ``llm`` (the generator), or a cross-encoder."""
    if not settings.rerank:
        return None
    if settings.rerank == "llm":
        from ragcli.models import generation

        return LlmReranker(
            lambda: generation.open_generator(
                settings.llm, settings.model_cache_dir, backend=settings.backend
            )
        )
    return Reranker(settings.rerank)


class Searcher:
    """An open collection with its embedder (and reranker) loaded once for many questions."""

    def __init__(
        self,
        settings: Settings,
        filters: Filters | None = None,
        explain: bool = False,
        fusion: Fusion | None = None,
        embedders: Embedders | None = None,
    ) -> None:
        self.settings = settings
        self.store, self.embedder = _open_for_reading(settings, embedders)
        self.how = _retrieval(settings, filters, explain)
        self._matching: dict[Filters, int] = {}  # documents each filter allows, on this snapshot
        # without --mode, the settings `ragcli tune` chose for the collection, if any
        chosen = tuned(self.store.manifest) if settings.mode is None else None
        if chosen is not None:
            self.how.mode, self.how.fusion = chosen
        if fusion is not None:
            self.how.fusion = fusion
        started = time.perf_counter()
        try:
            self.check_filters()  # before any model loads
            self.embedder.load()  # outside the retrieval timing
            if self.how.reranker is not None:
                self.how.reranker.model  # noqa: B018
        except BaseException:
            self.store.close()
            raise
        self.load_seconds = time.perf_counter() - started

    @property
    def mode(self) -> str:
        """The retrieval mode: dense, lexical or hybrid."""
        return self.how.mode

    def rank(self, question: str, pool: int) -> list[Hit]:
        """A question's ranking of chunks, best first, each with its score (what eval scores).

        The ``pool`` best of each ranking the searcher's mode uses, fused in hybrid mode:
        unlike ``search``, nothing is dropped as a near-duplicate or over the per-document cap,
        and nothing is reranked.
        """
        with one_view(self.store):
            ranked = candidates(
                self.store,
                self.embedder,
                question,
                self.how.mode,
                pool,
                self.how.filters,
                self.how.fusion,
            )
            return self.store.hits([(c.row_id, c.score) for c in ranked])

    def check_filters(self) -> None:
        """Refuse filters that no document of the collection matches (NoMatchError), with one
        count over the documents, before anything is searched."""
        filters = self.how.filters
        if not filters:
            return
        if filters not in self._matching:
            self._matching[filters] = self.store.matching_documents(filters)
        if not self._matching[filters]:
            raise NoMatchError(
                f"no document of collection {self.settings.collection!r} matches the filters "
                f"({filters.describe()})",
                "loosen the filters; `ragcli list` shows each document's source and format",
            )

    def search(self, question: str, top_k: int | None = None) -> SearchResult:
        with one_view(self.store):
            self.check_filters()
            started = time.perf_counter()
            k = top_k or self.settings.top_k
            hits = retrieve(self.store, self.embedder, question, k, self.how)
            retrieved = time.perf_counter() - started
            return SearchResult(
                question=question,
                collection=self.settings.collection,
                embedder=self.embedder.name,
                hits=hits,
                mode=self.how.mode,
                timings={"embedder_load_s": self.load_seconds, "retrieve_s": retrieved},
                updated_at=self.store.updated_at,
                stale_sources=stale_sources(self.store, hits),
            )

    def evidence(self, question: str, hits: list[Hit]) -> float:
        """The best cosine similarity between the question and a passage found for it."""
        if not hits:
            return 0.0
        if all(h.similarity is not None for h in hits):
            return max(h.similarity for h in hits if h.similarity is not None)
        query = self.embedder.embed_queries([question])[0]
        return float((self.store.vectors([h.row_id for h in hits]) @ query).max())

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def search(
    settings: Settings,
    question: str,
    top_k: int | None = None,
    filters: Filters | None = None,
    explain: bool = False,
) -> SearchResult:
    """The collection's passages that best match the question (of the documents ``filters``
    allow)."""
    with Searcher(settings, filters, explain) as searcher:
        return searcher.search(question, top_k)


def search_batch(
    settings: Settings,
    questions: Iterable[tuple[str, str]],
    top_k: int | None = None,
    filters: Filters | None = None,
    explain: bool = False,
) -> Iterator[tuple[str, SearchResult]]:
    """Answer many (id, question) pairs with one model load, yielding results as they come."""
    with Searcher(settings, filters, explain) as searcher:
        for qid, question in questions:
            yield qid, searcher.search(question, top_k)
