"""A folder collection's writes: chunks staged, then committed as one new segment; merges
of segments after a commit, and ``compact``.

``SegmentWriter`` is the writing half of ``FaissStore`` (``folder.py`` opens and reads): a
commit writes the new segment's files first (fsynced), then commits the metadata, the
segment's row, the deleted ids and the generation in one SQLite transaction; nothing is
deleted when a commit fails, since files no commit names are removed by the next writer.
"""

from __future__ import annotations

import os
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.records import Chunk
from ragcli.store.common import check_dimension
from ragcli.store.faiss_index import GRID_SAMPLE, Quantizer, build_index, sample
from ragcli.store.folder_files import fsync_dir
from ragcli.store.segments import Segment, codec_for, merge_plan, read_quantizer, read_segments

if TYPE_CHECKING:
    import numpy as np


class SegmentWriter(ABC):
    """Staging, committing and merging a folder collection's chunks (``FaissStore``'s writes).

    The state and reads it uses are ``FaissStore``'s, named here.
    """

    db: sqlite3.Connection
    directory: Path
    writable: bool
    _dirty: bool  # an SQLite transaction is open
    # This writer's chunks not yet committed: their ids and vectors, the ids as a set, and
    # committed chunks it removed.
    _new_ids: list[np.ndarray]
    _new_vectors: list[np.ndarray]
    _pending: set[int]
    _removed: list[int]
    _segments: list[Segment] | None
    _quantizer: Quantizer | None
    _generation_floor: int
    _publish_to: Path | None

    @property
    @abstractmethod
    def name(self) -> str: ...

    @property
    @abstractmethod
    def generation(self) -> int: ...

    @property
    @abstractmethod
    def codec(self) -> str: ...

    @property
    @abstractmethod
    def dimension(self) -> int: ...

    @abstractmethod
    def _rows(self, query: str, args: Sequence[Any] = ()) -> list[Sequence[Any]]: ...

    @abstractmethod
    def _connect(self) -> None: ...

    @abstractmethod
    def checkpoint(self) -> None: ...

    def _write(self) -> None:
        if not self.writable:
            raise RuntimeError("collection opened read-only")
        if not self._dirty:
            self.db.execute("BEGIN IMMEDIATE")
            self._dirty = True

    def add_chunks(self, document_id: int, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Record some of a document's chunks with their vectors, in order."""
        import numpy as np

        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        self._write()
        ids = []
        for c in chunks:
            cursor = self.db.execute(
                "INSERT INTO chunks (document_id, key, ordinal, text, n_tokens, page, line_start, "
                "line_end, heading) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    document_id,
                    c.key,
                    c.ordinal,
                    c.text,
                    c.n_tokens,
                    c.page,
                    c.line_start,
                    c.line_end,
                    c.heading,
                ),
            )
            ids.append(int(cursor.lastrowid or 0))
        if ids:
            check_dimension(self.name, self.dimension, int(np.shape(vectors)[1]))
            self._new_ids.append(np.asarray(ids, dtype=np.int64))
            self._new_vectors.append(np.array(vectors, dtype=np.float32))
            self._pending.update(ids)

    def _forget_chunks(self, where: str, args: Sequence[Any]) -> int:
        import numpy as np

        ids = [
            r[0]
            for r in self._rows(
                f"SELECT id FROM {{chunks}} WHERE document_id IN "
                f"(SELECT id FROM {{documents}} WHERE {where})",
                args,
            )
        ]
        mine = {i for i in ids if i in self._pending}
        if mine:  # chunks added since the last commit are just dropped
            gone = np.asarray(sorted(mine), dtype=np.int64)
            for number, added in enumerate(self._new_ids):
                keep = ~np.isin(added, gone)
                self._new_ids[number] = added[keep]
                self._new_vectors[number] = self._new_vectors[number][keep]
            self._pending.difference_update(mine)
        self._removed += [i for i in ids if i not in mine]
        return len(ids)

    def save(self) -> None:
        """Commit pending changes: a new segment file first (if chunks were added), then, in one
        SQLite transaction, the metadata, the segment, the deleted ids and the generation.

        A commit that changed metadata only (mtimes, origins) writes no vectors. After the
        commit, segments are merged if they need to be (each merge a commit of its own).
        """
        if not self._dirty:
            return
        added = [(i, v) for i, v in zip(self._new_ids, self._new_vectors) if len(i)]
        count = sum(len(i) for i, _ in added)
        if count or self._removed:
            generation = self._next_generation()
            if count:
                first = min(int(i.min()) for i, _ in added)
                last = max(int(i.max()) for i, _ in added)
                self._write_segment(generation, first, last, count, lambda: iter(added))
            self.db.executemany(
                "INSERT OR IGNORE INTO deleted (id) VALUES (?)", [(i,) for i in self._removed]
            )
            self._set_state("generation", str(generation))
        self._set_state("updated_at", str(time.time()))
        # No file is deleted here if the commit fails: an interrupt raised just after COMMIT
        # returns cannot tell a commit that happened from one that did not. The next writer
        # removes the files no commit names.
        self.db.execute("COMMIT")
        changed = bool(count or self._removed)
        self._dirty = False
        self._new_ids, self._new_vectors, self._removed = [], [], []
        self._pending = set()
        self._segments = None  # what is committed now is read again when needed
        if self._publish_to is not None:
            self._publish()
        if changed:
            self.merge()

    def _publish(self) -> None:
        """Rename the staging folder into place, the database closed meanwhile: SQLite names
        its log by the path it opened, and a connection kept across the rename would leave
        the log of every later commit behind for the next process to fold in again."""
        assert self._publish_to is not None
        self.checkpoint()
        self.db.close()
        os.rename(self.directory, self._publish_to)
        fsync_dir(self._publish_to.parent)
        self.directory, self._publish_to = self._publish_to, None
        self._connect()

    def _next_generation(self) -> int:
        return max(self.generation, self._generation_floor) + 1

    def _set_state(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO state (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _write_segment(
        self,
        generation: int,
        first_id: int,
        last_id: int,
        count: int,
        batches: Any,
        keep_codec: bool = False,
    ) -> Segment:
        """Write a segment's files (synced) and record it, in the open transaction.

        Coded as the collection's codec if big enough (``codec_for``); the first segment
        coded trains the collection's quantizer, recorded in the same transaction.
        """
        import faiss

        codec = self.codec if keep_codec else codec_for(self.codec, count)
        quantizer = None
        if codec != "float32":
            quantizer = read_quantizer(self.db)
            if quantizer is None:
                quantizer = Quantizer.train(sample(batches, count, GRID_SAMPLE))
                self._set_state("quantizer", quantizer.to_text())
        index, bits = build_index(codec, self.dimension, count, batches, quantizer)
        segment = Segment(generation, f"seg-{generation}.faiss", codec, first_id, last_id, count)
        for name, item, write in (
            (segment.file, index, faiss.write_index),
            (segment.bits_file, bits, faiss.write_index_binary),
        ):
            if item is None:
                continue
            path = self.directory / name
            tmp = path.with_name(path.name + ".tmp")
            write(item, str(tmp))
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        fsync_dir(self.directory)
        self.db.execute(
            "INSERT INTO segments (number, file, codec, first_id, last_id, vectors) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (segment.number, segment.file, codec, first_id, last_id, count),
        )
        return segment

    def merge(self, everything: bool = False) -> int:
        """Merge segments while the policy asks for it (``everything``: all into one, without
        the deleted vectors); returns how many merges were committed."""
        if not self.writable:
            raise RuntimeError("collection opened read-only")
        merges = 0
        while True:
            segments = read_segments(self.db)
            plan = merge_plan(segments, everything)
            if plan is None:
                return merges
            self._merge(segments[plan[0] : plan[1]])
            merges += 1
            if everything:
                return merges

    def _merge(self, group: list[Segment]) -> None:
        """Replace neighbouring segments by one holding their live vectors, in one commit."""
        for segment in group:
            segment.load(self.directory)
        self._quantizer = read_quantizer(self.db)
        live = sum(segment.live for segment in group)

        def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for segment in group:
                yield from segment.batches()

        # A group that held int8 (or binary) vectors stays coded, however small: decoding it
        # to float32 would score with vectors off unit length.
        coded = any(segment.codec != "float32" for segment in group)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            generation = self._next_generation()
            first, last = group[0].first_id, group[-1].last_id
            numbers = [segment.number for segment in group]
            marks = ", ".join("?" * len(numbers))
            self.db.execute(f"DELETE FROM segments WHERE number IN ({marks})", numbers)
            self.db.execute("DELETE FROM deleted WHERE id BETWEEN ? AND ?", (first, last))
            if live:
                self._write_segment(generation, first, last, live, batches, keep_codec=coded)
            self._set_state("generation", str(generation))
            self.db.execute("COMMIT")
        except BaseException:
            # The new file stays (a commit may have happened just before the interrupt); the
            # next writer removes it if no commit names it.
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        finally:
            for segment in group:
                segment.index = segment.bits = None
        self._segments = None
        for segment in group:
            for name in segment.files():
                (self.directory / name).unlink(missing_ok=True)

    def compact(self) -> None:
        """Merge every segment into one without the deleted vectors, and give the space of
        removed chunks' rows back (SQLite VACUUM)."""
        self.merge(everything=True)
        self.db.execute("VACUUM")
        # VACUUM wrote the whole database to the log; fold it in now unless a reader's snapshot
        # holds it (then the next writer does), without waiting long for that reader.
        self.db.execute("PRAGMA busy_timeout = 2000")
        try:
            self.checkpoint()
        finally:
            self.db.execute("PRAGMA busy_timeout = 30000")

    def rollback(self) -> None:
        """Drop pending changes: the chunks added and removed since the last commit."""
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        self._dirty = False
        self._new_ids, self._new_vectors, self._removed = [], [], []
        self._pending = set()
