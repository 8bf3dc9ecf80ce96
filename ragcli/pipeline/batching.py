"""Files loaded and chunked, waiting for their vectors: staged in the store a batch at a time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ragcli.models.embedding import Embedder
from ragcli.models.embedding_cache import EmbeddingCache
from ragcli.pipeline.inputs import InputFile
from ragcli.records import Chunk, Document, IngestReport
from ragcli.store import Store

EMBED_BATCH_CHUNKS = 512  # chunks embedded together before they are added to the index


@dataclass
class Pending:
    """A file loaded and chunked, waiting for its vectors."""

    item: InputFile
    documents: list[tuple[Document, list[Chunk]]]
    replacing: bool
    root: str | None
    origin: str | None

    @property
    def chunk_count(self) -> int:
        return sum(len(chunks) for _, chunks in self.documents)


class Batch:
    """The pending files of one store, embedded and staged together when flushed.

    Memory stays bounded by the batch, not by the files: a long file's vectors are added as
    each batch of its chunks is embedded.
    """

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        report: IngestReport,
        make_cache: Callable[[], EmbeddingCache | None] | None = None,
    ) -> None:
        self.store, self.embedder, self.report = store, embedder, report
        # The vectors of passages embedded before by this embedder, opened when something is
        # to be embedded (knowing the embedder's dimension and prompt may load its model).
        self.make_cache = make_cache
        self.cache: EmbeddingCache | None = None
        self.files: list[Pending] = []

    def add(self, pending: Pending) -> None:
        self.files.append(pending)

    @property
    def full(self) -> bool:
        """Whether the pending files hold a whole batch of chunks."""
        return sum(p.chunk_count for p in self.files) >= EMBED_BATCH_CHUNKS

    def flush(self) -> None:
        """Stage the pending files in the store, embedding their chunks a batch at a time."""
        queue = self._add_documents()
        for start in range(0, len(queue), EMBED_BATCH_CHUNKS):
            self._add_chunks(queue[start : start + EMBED_BATCH_CHUNKS])
        self.files = []

    def _add_documents(self) -> list[tuple[int, Chunk]]:
        """Add the pending files' documents (replacing older ones); their chunks, in order."""
        store, report = self.store, self.report
        queue: list[tuple[int, Chunk]] = []
        for p in self.files:
            if p.replacing:
                report.chunks_removed += store.delete_file(str(p.item.path))
                report.updated.append(p.item.source)
            else:
                report.added.append(p.item.source)
            report.chunks_of[p.item.source] = p.chunk_count
            for document, chunks in p.documents:
                document_id = store.add_document(document, len(chunks), p.root, p.origin)
                queue += [(document_id, chunk) for chunk in chunks]
        return queue

    def _add_chunks(self, batch: list[tuple[int, Chunk]]) -> None:
        """Embed one batch of chunks and add them, one run of a document's chunks at a time."""
        vectors = self._vectors([chunk.text for _, chunk in batch])
        offset = 0
        while offset < len(batch):
            document_id = batch[offset][0]
            end = offset
            while end < len(batch) and batch[end][0] == document_id:
                end += 1
            self.store.add_chunks(
                document_id, [chunk for _, chunk in batch[offset:end]], vectors[offset:end]
            )
            offset = end
        self.report.chunks_added += len(batch)

    def _vectors(self, texts: list[str]) -> Any:
        """The texts' vectors: from the cache where it has them, the rest embedded (and kept)."""
        if self.make_cache is not None:
            self.cache, self.make_cache = self.make_cache(), None
        if self.cache is None:
            return self.embedder.embed_documents(texts)
        import numpy as np

        known = self.cache.get(texts)
        missing = [i for i in range(len(texts)) if i not in known]
        fresh = self.embedder.embed_documents([texts[i] for i in missing])
        self.cache.put([texts[i] for i in missing], fresh)
        vectors = np.empty((len(texts), self.cache.dimension), dtype=np.float32)
        for i, vector in known.items():
            vectors[i] = vector
        if missing:
            vectors[missing] = fresh
        self.report.chunks_reused += len(known)
        return vectors
