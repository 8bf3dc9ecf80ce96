"""A folder collection's vectors: immutable segment files plus a set of deleted chunk ids.

Each commit that adds chunks writes their vectors to one new segment file, named after the
commit's generation (``seg-<generation>.faiss``; a binary segment has ``.bits.faiss`` next to
it), and records the chunks it removed in the ``deleted`` table; no file is ever rewritten, so a
commit costs what it changed. Segments hold disjoint, increasing ranges of chunk ids (ids only
grow, and only neighbours are merged), so the segment of an id is found by its range.

Merges keep the segments few and each vector's rewrites few, as a binary counter does: after a
commit, while the newest segment has at least as many live vectors as the one before it, the
two become one; so segments shrink from the oldest to the newest, there are about log2 of
(collection / commit) of them, and a vector is rewritten about that many times. A segment
whose deleted share passes ``MAX_DELETED_SHARE`` is rewritten without them; past
``MAX_SEGMENTS`` the two smallest neighbours merge. ``ragcli compact`` merges them all. A merge
is a commit like any other: the new file first, then one SQLite transaction.

Segments smaller than ``CODE_FROM`` vectors stay float32 whatever the collection's codec; the
first one coded trains the collection's ``Quantizer``, kept in the ``state`` table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.store.faiss_index import Excluded, Quantizer, decoded, search_index, vector_batches

if TYPE_CHECKING:
    import numpy as np

MAX_SEGMENTS = 64
MAX_DELETED_SHARE = 0.3
# A segment is coded int8 (or binary) from this many vectors on: fewer are not worth it, and
# the first coded segment trains the collection's grid, which wants enough of them.
CODE_FROM = 1024
# The chunk id range of a collection's vectors file from before segments: everything.
LEGACY_LAST_ID = 2**62


@dataclass
class Segment:
    """One segment: its row in the ``segments`` table, its deleted ids and, once loaded, its
    indexes."""

    number: int
    file: str
    codec: str  # "float32", "int8" or "binary"
    first_id: int
    last_id: int
    vectors: int  # in the file, deleted ones included
    deleted: Any = field(repr=False, default=None)  # sorted int64 ids
    index: Any = field(repr=False, default=None)
    bits: Any = field(repr=False, default=None)
    _excluded: Excluded | None = field(repr=False, default=None)

    @property
    def live(self) -> int:
        return self.vectors - len(self.deleted)

    @property
    def excluded(self) -> Excluded:
        """The deleted ids as a search skips them (their FAISS selector built once)."""
        if self._excluded is None:
            self._excluded = Excluded(self.deleted)
        return self._excluded

    @property
    def bits_file(self) -> str:
        return self.file.replace(".faiss", ".bits.faiss")

    def files(self) -> list[str]:
        return [self.file, self.bits_file] if self.codec == "binary" else [self.file]

    def within(self, ids: np.ndarray) -> np.ndarray:
        return ids[(ids >= self.first_id) & (ids <= self.last_id)]

    def load(self, directory: Path) -> None:
        """Read the segment's indexes; flat ones are memory-mapped, not read into memory."""
        import faiss

        flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY
        self.index = faiss.read_index(str(directory / self.file), flags)
        if self.codec == "binary":
            self.bits = faiss.read_index_binary(str(directory / self.bits_file), flags)
        if self.index.ntotal != self.vectors:
            raise ValueError(f"{self.file} holds {self.index.ntotal} vectors, not {self.vectors}")

    def batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every live (ids, float32 vectors) of the segment, a batch at a time."""
        import numpy as np

        for ids, vectors in vector_batches(self.index):
            if len(self.deleted):
                keep = ~np.isin(ids, self.deleted)
                ids, vectors = ids[keep], vectors[keep]
            if len(ids):
                yield ids, vectors


def codec_for(collection_codec: str, count: int) -> str:
    """How a new segment of ``count`` vectors is coded in a collection of this codec."""
    return collection_codec if count >= CODE_FROM else "float32"


def read_segments(db: sqlite3.Connection) -> list[Segment]:
    """The committed segments, in id order, with their deleted ids (not their indexes)."""
    import numpy as np

    segments = [
        Segment(int(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4]), int(r[5]))
        for r in db.execute(
            "SELECT number, file, codec, first_id, last_id, vectors FROM segments ORDER BY first_id"
        )
    ]
    deleted = np.asarray([r[0] for r in db.execute("SELECT id FROM deleted ORDER BY id")], np.int64)
    for segment in segments:
        start, end = np.searchsorted(deleted, [segment.first_id, segment.last_id + 1])
        segment.deleted = deleted[start:end]
    return segments


def read_quantizer(db: sqlite3.Connection) -> Quantizer | None:
    row = db.execute("SELECT value FROM state WHERE key = 'quantizer'").fetchone()
    return Quantizer.from_text(str(row[0])) if row else None


def search_segments(
    segments: Sequence[Segment],
    query: np.ndarray,
    k: int,
    allowed: np.ndarray | None,
    quantizer: Quantizer | None,
) -> list[tuple[int, float]]:
    """(chunk id, score) of the ``k`` best live vectors over all segments, best first; only
    ``allowed`` ids (live chunks) if given."""
    found: list[tuple[int, float]] = []
    for segment in segments:
        if not segment.live:
            continue
        mine = segment.within(allowed) if allowed is not None else None
        if mine is not None and not len(mine):
            continue
        found += search_index(
            segment.index,
            query,
            k,
            allowed=mine,
            excluded=segment.excluded,
            bits=segment.bits,
            quantizer=quantizer,
        )
    found.sort(key=lambda hit: -hit[1])
    return found[:k]


def vectors_of(segments: Sequence[Segment], ids: np.ndarray, dimension: int) -> np.ndarray:
    """The stored (float32, decoded) vectors of some chunk ids, one row each, in order."""
    import numpy as np

    out = np.zeros((len(ids), dimension), dtype=np.float32)
    placed = np.zeros(len(ids), dtype=bool)
    for segment in segments:
        mask = (ids >= segment.first_id) & (ids <= segment.last_id)
        if mask.any():
            out[mask] = decoded(segment.index, ids[mask])
            placed |= mask
    if not placed.all():
        raise KeyError(f"no vector for chunk {int(ids[~placed][0])}")
    return out


def merge_plan(segments: Sequence[Segment], everything: bool = False) -> tuple[int, int] | None:
    """The neighbours ``segments[start:end]`` to merge next, or None when none need to be.

    ``everything``: all of them into one (``compact``), if that changes anything.
    """
    if everything:
        if len(segments) > 1 or any(len(s.deleted) for s in segments):
            return 0, len(segments)
        return None
    for number, segment in enumerate(segments):
        if segment.vectors and len(segment.deleted) > MAX_DELETED_SHARE * segment.vectors:
            return number, number + 1
    if len(segments) >= 2 and segments[-2].live <= segments[-1].live:
        return len(segments) - 2, len(segments)
    if len(segments) <= MAX_SEGMENTS:
        return None
    sizes = [s.live for s in segments]
    start = min(range(len(sizes) - 1), key=lambda i: sizes[i] + sizes[i + 1])
    return start, start + 2
