"""The FAISS indexes of a folder collection's segments: how vectors are coded, searched and
calibrated.

A segment's vectors are coded one of three ways (``CODECS``):

- ``float32``: the vectors as they are (``IndexFlatIP``, or ``IndexIVFFlat`` when large);
- ``int8``: one byte a dimension on the collection's fixed grid (``Quantizer``): a
  ``ScalarQuantizer`` index, 4x smaller, scored against the decoded vectors;
- ``binary``: the int8 index plus one bit a dimension (above or below the dimension's mean) in
  a binary index searched by Hamming distance; its best candidates are rescored on the int8
  vectors, so the bits alone (32x smaller than float32) need to be read whole.

Every index is exact below ``APPROXIMATE_FROM`` vectors and an IVF index from there on, with the
lists it probes calibrated on its own vectors when it is built.
"""

from __future__ import annotations

import base64
import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ragcli.store.common import IndexDescription

if TYPE_CHECKING:
    import numpy as np

CODECS = ("float32", "int8", "binary")
# Exact search below this many vectors in a segment; an approximate (IVF) index from here on.
# Exact search costs about 1 ms per 10k vectors here, so the switch happens where it passes
# ~10 ms.
APPROXIMATE_FROM = 100_000
# A filtered (--path) search that allows at most this many chunks scores them all exactly.
EXACT_FILTER_LIMIT = 20_000
# Binary search rescores this many candidates per wanted hit, at least RESCORE_MIN, and at
# least one vector in RESCORE_SHARE of the segment: Hamming ranking blurs more as a segment
# grows (on 1M synthetic MiniLM-shaped vectors, binary IVF probing 64 of 1,024 lists: 1,000
# candidates gave recall@10 0.954 against exact float32, 200 gave 0.870;
# benchmarks/vectors_10m.py).
RESCORE_FACTOR = 10
RESCORE_MIN = 100
RESCORE_SHARE = 1000
# The int8 grid reaches this share of a dimension's training range beyond each end, so later
# vectors rarely fall outside it. Trained on Cranfield's first 1,024 chunks, 0.1 left 0.024%
# of all its components outside (worst cosine error 2.3e-3), 0.25 0.001% (5e-4), for a mean
# cosine error of 4e-5 either way.
GRID_MARGIN = 0.25
# The grid is trained on at most this many vectors.
GRID_SAMPLE = 200_000

Batches = Callable[[], Iterator[tuple["np.ndarray", "np.ndarray"]]]


# -- the collection's quantizer ----------------------------------------------------------------


class Quantizer:
    """The int8 grid (a ``ScalarQuantizer``'s per-dimension minimum and width) and the bit
    thresholds (per-dimension means) of an int8 or binary collection.

    Trained once, on the first segment big enough to be coded, and kept for the collection's
    life: every segment is coded on the same grid, so merging segments decodes and re-codes
    their vectors without loss.
    """

    def __init__(self, trained: np.ndarray, mean: np.ndarray) -> None:
        self.trained = trained  # 2 * dimension float32: minimum, then width
        self.mean = mean
        self.dimension = len(mean)

    @classmethod
    def train(cls, vectors: np.ndarray) -> Quantizer:
        import faiss
        import numpy as np

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        sq = faiss.ScalarQuantizer(vectors.shape[1], faiss.ScalarQuantizer.QT_8bit)
        sq.rangestat = faiss.ScalarQuantizer.RS_minmax
        sq.rangestat_arg = GRID_MARGIN
        sq.train(vectors)
        trained = faiss.vector_to_array(sq.trained).astype(np.float32)
        return cls(trained, vectors.mean(axis=0).astype(np.float32))

    def to_text(self) -> str:
        import numpy as np

        return base64.b64encode(np.concatenate([self.trained, self.mean]).tobytes()).decode()

    @classmethod
    def from_text(cls, text: str) -> Quantizer:
        import numpy as np

        values = np.frombuffer(base64.b64decode(text), dtype=np.float32)
        dimension = len(values) // 3
        return cls(values[: 2 * dimension].copy(), values[2 * dimension :].copy())

    def code(self, sq: Any) -> None:
        """Put the grid into a ``ScalarQuantizer`` (of an index, or alone)."""
        import faiss

        faiss.copy_array_to_vector(self.trained, sq.trained)

    def bits(self, vectors: np.ndarray) -> np.ndarray:
        """One bit a dimension: whether the vector is above the dimension's mean."""
        import numpy as np

        return np.packbits(vectors > self.mean, axis=1)


# -- building ----------------------------------------------------------------------------------


def lists_for(count: int) -> int:
    """IVF lists for a segment of ``count`` vectors; 0 means exact search."""
    if count < APPROXIMATE_FROM:
        return 0
    # About sqrt(n) lists, with at least 64 training points for each.
    return max(1, min(int(math.sqrt(count)), count // 64))


def flat_index(dimension: int) -> Any:
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def build_index(
    codec: str,
    dimension: int,
    count: int,
    batches: Batches,
    quantizer: Quantizer | None = None,
    lists: int | None = None,
) -> tuple[Any, Any]:
    """(vector index, bit index or None) of the ``count`` vectors ``batches()`` yields as
    (ids, float32 vectors); ``batches`` is called once more to train an IVF index.

    ``codec`` "float32" needs no quantizer; "int8" and "binary" code on ``quantizer``'s grid.
    ``lists`` overrides the IVF lists ``lists_for(count)`` gives (0: exact).
    """
    import faiss
    import numpy as np

    lists = lists_for(count) if lists is None else lists
    index: Any
    if codec != "float32" and quantizer is None:
        raise ValueError(f"{codec} vectors need the collection's quantizer")
    if lists:
        coarse = faiss.IndexFlatIP(dimension)
        if codec == "float32":
            index = faiss.IndexIVFFlat(coarse, dimension, lists, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFScalarQuantizer(
                coarse, dimension, lists, faiss.ScalarQuantizer.QT_8bit,
                faiss.METRIC_INNER_PRODUCT, False,  # codes of the vectors, not of residuals
            )  # fmt: skip
        index.cp.spherical = True  # unit vectors: centroids on the sphere too
        index.train(sample(batches, count, 64 * lists))
        if quantizer is not None and codec != "float32":
            quantizer.code(index.sq)
        # Hash table: reconstruct by id, for rescoring, filtered search and merging.
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
    elif codec == "float32":
        index = flat_index(dimension)
    else:
        assert quantizer is not None
        sq = faiss.IndexScalarQuantizer(
            dimension, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        quantizer.code(sq.sq)
        sq.is_trained = True
        index = faiss.IndexIDMap2(sq)
    bits = None
    if codec == "binary":
        bits = faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(dimension))
    for ids, vectors in batches():
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        index.add_with_ids(vectors, ids)
        if bits is not None:
            assert quantizer is not None
            bits.add_with_ids(quantizer.bits(vectors), ids)
    if lists:
        calibrate_probes(index, index)  # the probes are saved with the index
    return index, bits


def sample(batches: Batches, count: int, size: int) -> np.ndarray:
    """About ``size`` of the vectors, picked evenly at random (the same ones every time)."""
    import numpy as np

    rng = np.random.default_rng(0)
    share = min(1.0, size / max(count, 1))
    picked = [v[rng.random(len(v)) < share] for _, v in batches()]
    return np.ascontiguousarray(np.concatenate(picked), dtype=np.float32)


def is_approximate(index: Any) -> bool:
    import faiss

    return isinstance(index, faiss.IndexIVF)


def vector_batches(index: Any, size: int = 65_536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every (ids, float32 vectors) the index holds, a batch at a time (decoded if coded)."""
    import faiss

    if is_approximate(index):
        lists = index.invlists
        for number in range(index.nlist):
            n = lists.list_size(number)
            if n:
                ids = faiss.rev_swig_ptr(lists.get_ids(number), n).copy()
                yield ids, index.reconstruct_batch(ids)
        return
    ids = faiss.vector_to_array(index.id_map)
    inner = faiss.downcast_index(index.index)
    for start in range(0, index.ntotal, size):
        n = min(size, index.ntotal - start)
        yield ids[start : start + n], inner.reconstruct_n(start, n)


def index_ids(index: Any) -> np.ndarray:
    import faiss
    import numpy as np

    if not is_approximate(index):
        return faiss.vector_to_array(index.id_map)
    lists = index.invlists
    found = [
        faiss.rev_swig_ptr(lists.get_ids(n), lists.list_size(n)).copy()
        for n in range(index.nlist)
        if lists.list_size(n)
    ]
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def rebuilt_index(index: Any, lists: int) -> Any:
    """The same float32 vectors in an exact index (``lists`` 0) or an IVF index with ``lists``
    lists (calibrated)."""
    built, _ = build_index(
        "float32", index.d, index.ntotal, lambda: vector_batches(index), lists=lists
    )
    return built


# -- calibrating -------------------------------------------------------------------------------

# Recall@10 of the approximate index against exact search, aimed at 0.95 for new queries. The
# probes are calibrated on stored vectors, which come out 1-3 points better than held-out
# queries (benchmarks/search_scale.py), hence the margin.
CALIBRATION_TARGET = 0.97
CALIBRATION_QUERIES = 256
# Probes searched at least: a question far from every stored vector (nearest cosine 0.5 where
# stored vectors' nearest is 0.7) has its neighbours spread over more lists than stored
# vectors suggest. On synthetic MiniLM-shaped vectors with real and synthetic held-out queries
# (benchmarks/vectors_10m.py --kind ragcli), recall@10 against exact float32: at 200,000,
# calibration chose 2 of 447 lists for 0.817, 16 gave 0.941; at 10 million (int8, 3,162
# lists), 16 probes 0.948, 32 0.950, 64 0.956 at a p50 of 26 ms on a busy 2-core machine.
MIN_PROBES = 64


def calibrate_probes(index: Any, reference: Any, target: float = CALIBRATION_TARGET) -> float:
    """Set the fewest IVF lists to probe for recall@10 >= ``target`` (at least ``MIN_PROBES``);
    returns the recall.

    Measured on the collection's own data: stored vectors as queries (each one's own hit left
    out) against ``reference``, an index of the same vectors searched exhaustively (it may be
    ``index`` itself).
    """
    import numpy as np

    ids = index_ids(index)
    rng = np.random.default_rng(1)
    picked = np.sort(rng.choice(ids, size=min(len(ids), CALIBRATION_QUERIES), replace=False))
    queries = np.ascontiguousarray(index.reconstruct_batch(picked))
    truth = neighbours(reference, queries, picked, exhaustive=True)

    def recall(probes: int) -> float:
        index.nprobe = probes
        found = neighbours(index, queries, picked)
        return float(np.mean([len(set(f) & set(t)) / max(len(t), 1) for f, t in zip(found, truth)]))

    low, high = 0, 1  # recall(low) < target <= recall(high), found by doubling then halving
    while high < index.nlist and recall(high) < target:
        low, high = high, min(index.nlist, high * 2)
    while high - low > 1:
        middle = (low + high) // 2
        if recall(middle) >= target:
            high = middle
        else:
            low = middle
    return recall(max(high, min(MIN_PROBES, index.nlist)))


def neighbours(
    index: Any, queries: np.ndarray, own: np.ndarray, k: int = 10, exhaustive: bool = False
) -> list[list[int]]:
    probes = index.nprobe if is_approximate(index) else None
    if exhaustive and probes is not None:
        index.nprobe = index.nlist
    try:
        _, found = index.search(queries, k + 1)
    finally:
        if probes is not None:
            index.nprobe = probes
    return [[int(i) for i in row if i != self and i >= 0][:k] for row, self in zip(found, own)]


# -- searching ---------------------------------------------------------------------------------


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One query gains nothing from FAISS's OpenMP threads and, on a busy machine, loses a lot
    waiting for them (10k chunks: 24 ms with 2 threads, 0.35 ms with 1, 2-core EPYC)."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


class Excluded:
    """Ids a search skips (a segment's deleted chunks), with their FAISS selector built once:
    building it for 300,000 ids takes some 20 ms, against 1 ms for the search."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = ids
        self._selectors: list[Any] | None = None

    def selectors(self) -> list[Any]:
        """The selector, outermost last (the list keeps the inner one alive); empty: none."""
        import faiss

        if self._selectors is None:
            self._selectors = []
            if len(self.ids):
                inner = faiss.IDSelectorBatch(self.ids)
                self._selectors = [inner, faiss.IDSelectorNot(inner)]
        return self._selectors


def _selector(allowed: np.ndarray | None, excluded: Excluded | None) -> list[Any]:
    """The ids a search may return as FAISS selectors, outermost last (the list keeps the
    inner ones alive while the search runs); empty: any."""
    import faiss

    if allowed is not None:
        return [faiss.IDSelectorBatch(allowed)]
    return excluded.selectors() if excluded is not None else []


def search_index(
    index: Any,
    query: np.ndarray,
    k: int,
    allowed: np.ndarray | None = None,
    excluded: Excluded | None = None,
    bits: Any = None,
    quantizer: Quantizer | None = None,
) -> list[tuple[int, float]]:
    """(id, inner product) of the ``k`` best vectors, best first; only ``allowed`` ids if
    given (they must be in the index), never ``excluded`` ones (deleted).

    With ``bits`` (a binary segment), the Hamming search's best candidates are rescored on
    ``index``. A few allowed ids are scored exactly; for many, an approximate index probes more
    lists (they are spread thinly over the lists).
    """
    import faiss

    if allowed is not None:
        if not len(allowed):
            return []
        if len(allowed) <= EXACT_FILTER_LIMIT:
            return _rescored(index, query, allowed, k)
    wanted = min(k, index.ntotal)
    if wanted < 1:
        return []
    selectors = _selector(allowed, excluded)
    selector = selectors[-1] if selectors else None
    with one_thread():
        if bits is not None:
            assert quantizer is not None
            among = faiss.SearchParameters()
            among.sel = selector
            wanted_depth = max(RESCORE_FACTOR * k, RESCORE_MIN, index.ntotal // RESCORE_SHARE)
            depth = min(index.ntotal, wanted_depth)
            _, found = bits.search(quantizer.bits(query.reshape(1, -1)), depth, params=among)
            candidates = found[0][found[0] >= 0]
            return _rescored(index, query, candidates, k)
        params: Any = None
        if is_approximate(index):
            params = faiss.SearchParametersIVF()
            params.nprobe = index.nprobe
            if allowed is not None:  # spread thinly: probe more lists
                wider = index.nprobe * math.ceil(index.ntotal / len(allowed))
                params.nprobe = min(index.nlist, wider)
            params.sel = selector
        elif selector is not None:
            params = faiss.SearchParameters()
            params.sel = selector
        scores, ids = index.search(query.reshape(1, -1), wanted, params=params)
    if is_coded(index):  # scored again as cosines with the decoded vectors
        return _rescored(index, query, ids[0][ids[0] >= 0], k)
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]


def _rescored(index: Any, query: np.ndarray, ids: np.ndarray, k: int) -> list[tuple[int, float]]:
    import numpy as np

    if not len(ids):
        return []
    ids = np.asarray(ids, dtype=np.int64)
    scores = decoded(index, ids) @ query
    best = np.argsort(-scores, kind="stable")[:k]
    return [(int(ids[i]), float(scores[i])) for i in best]


def is_coded(index: Any) -> bool:
    """Whether the index keeps int8 codes rather than the vectors."""
    import faiss

    inner = index.index if isinstance(index, faiss.IndexIDMap2) else index
    return isinstance(
        faiss.downcast_index(inner), (faiss.IndexScalarQuantizer, faiss.IndexIVFScalarQuantizer)
    )


def decoded(index: Any, ids: np.ndarray) -> np.ndarray:
    """The vectors of some ids; decoded ones scaled back to unit length, so that inner products
    with them are cosines."""
    import numpy as np

    vectors = index.reconstruct_batch(ids)
    if is_coded(index) and len(vectors):
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors


def describe_index(index: Any) -> IndexDescription:
    """What kind of search one index does."""
    if is_approximate(index):
        summary = f"approximate (IVF, {index.nlist} lists, {index.nprobe} probed)"
        return IndexDescription(
            "approximate", "IVFFlat", summary, lists=index.nlist, probes=index.nprobe
        )
    return IndexDescription("exact", "FlatIP", "exact (flat inner product)")


_TYPES = {  # (codec, approximate): the index type named in ``ragcli status``
    ("float32", False): "FlatIP",
    ("float32", True): "IVFFlat",
    ("int8", False): "SQ8",
    ("int8", True): "IVFSQ8",
    ("binary", False): "BinaryFlat+SQ8",
    ("binary", True): "BinaryFlat+IVFSQ8",
}


def describe_segments(segments: Sequence[Any], codec: str) -> IndexDescription:
    """What kind of search a collection's segments do, for ``ragcli status``: that of its
    biggest segment, with the collection's codec and how many segments there are."""
    if not segments:
        summary = f"exact (flat inner product), {codec} vectors, no segments yet"
        return IndexDescription("exact", _TYPES[(codec, False)], summary, vectors=codec, segments=0)
    biggest = max(segments, key=lambda s: s.vectors)
    approximate = is_approximate(biggest.index)
    kind = "approximate" if approximate else "exact"
    how = describe_index(biggest.index).summary
    count = len(segments)
    summary = f"{how}, {codec} vectors, {count} segment{'s' if count != 1 else ''}"
    return IndexDescription(
        kind,
        _TYPES[(biggest.codec, approximate)],
        summary,
        lists=biggest.index.nlist if approximate else None,
        probes=biggest.index.nprobe if approximate else None,
        vectors=codec,
        segments=count,
    )
