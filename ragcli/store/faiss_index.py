"""The FAISS index of a folder collection: exact or IVF, sized and calibrated at commit."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ragcli.store.common import IndexDescription

if TYPE_CHECKING:
    import numpy as np

# Exact search below this many chunks; an approximate (IVF) index from here on. Exact search
# costs about 1 ms per 10k chunks here, so the switch happens where it passes ~10 ms.
APPROXIMATE_FROM = 100_000
# A filtered (--path) search that allows at most this many chunks scores them all exactly.
EXACT_FILTER_LIMIT = 20_000


def flat_index(dimension: int) -> Any:
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def is_approximate(index: Any) -> bool:
    import faiss

    return isinstance(index, faiss.IndexIVF)


def lists_for(count: int) -> int:
    """IVF lists for a collection of ``count`` chunks; 0 means exact search."""
    if count < APPROXIMATE_FROM:
        return 0
    # About sqrt(n) lists, with at least 64 training points for each.
    return max(1, min(int(math.sqrt(count)), count // 64))


# Recall@10 of the approximate index against exact search, aimed at 0.95 for new queries. The
# probes are calibrated on stored vectors, which come out 1-3 points better than held-out
# queries (benchmarks/search_scale.py), hence the margin.
CALIBRATION_TARGET = 0.97
CALIBRATION_QUERIES = 256


def calibrate_probes(index: Any, reference: Any, target: float = CALIBRATION_TARGET) -> float:
    """Set the fewest IVF lists to probe for recall@10 >= ``target``; returns the recall.

    Measured on the collection's own data: stored vectors as queries (each one's own hit left
    out) against ``reference``, an index of the same vectors searched exhaustively.
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
    return recall(high)


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


def vector_batches(index: Any, size: int = 65_536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every (ids, vectors) the index holds, a batch at a time (no copy of the whole index)."""
    import faiss
    import numpy as np

    if is_approximate(index):
        lists = index.invlists
        for number in range(index.nlist):
            n = lists.list_size(number)
            if n:
                ids = faiss.rev_swig_ptr(lists.get_ids(number), n).copy()
                codes = faiss.rev_swig_ptr(lists.get_codes(number), n * index.code_size)
                yield ids, codes.copy().view(np.float32).reshape(n, index.d)
        return
    ids = faiss.vector_to_array(index.id_map)
    flat = faiss.downcast_index(index.index)
    for start in range(0, index.ntotal, size):
        n = min(size, index.ntotal - start)
        yield ids[start : start + n], flat.reconstruct_n(start, n)


def index_ids(index: Any) -> np.ndarray:
    import numpy as np

    batches = [ids for ids, _ in vector_batches(index)]
    return np.concatenate(batches) if batches else np.zeros(0, dtype=np.int64)


def rebuilt_index(index: Any, lists: int) -> Any:
    """The same vectors in an exact index (``lists`` 0) or an IVF index with ``lists`` lists."""
    import faiss
    import numpy as np

    if lists == 0:
        new = flat_index(index.d)
    else:
        ids = index_ids(index)
        sample = np.random.default_rng(0).choice(ids, size=min(len(ids), 64 * lists), replace=False)
        quantizer = faiss.IndexFlatIP(index.d)
        new = faiss.IndexIVFFlat(quantizer, index.d, lists, faiss.METRIC_INNER_PRODUCT)
        new.cp.spherical = True  # unit vectors: centroids on the sphere too
        new.train(np.ascontiguousarray(index.reconstruct_batch(np.sort(sample))))
        # Hash table: reconstruct and remove by id while ids keep being added.
        new.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
    for ids, vectors in vector_batches(index):
        new.add_with_ids(np.ascontiguousarray(vectors), ids)
    if lists:
        calibrate_probes(new, index)  # the probes are saved with the index
    return new


def fitted_index(index: Any) -> Any:
    """The index a collection of this size should have: exact, or IVF with enough lists."""
    count = index.ntotal
    wanted = lists_for(count)
    if is_approximate(index):
        if count < APPROXIMATE_FROM // 2:  # some hysteresis, so one file does not flip it
            return rebuilt_index(index, 0)
        if wanted >= 2 * index.nlist:  # grown fourfold since training
            return rebuilt_index(index, wanted)
        return index
    return rebuilt_index(index, wanted) if wanted else index


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


def search_index(
    index: Any, query: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> list[tuple[int, float]]:
    """(id, inner product) of the ``k`` best vectors, best first; only ``allowed`` ids if given.

    An approximate index scores a few allowed ids exactly, and probes more lists for many (they
    are spread thinly over the lists).
    """
    import faiss
    import numpy as np

    params: Any = None
    if allowed is not None:
        if not len(allowed):
            return []
        approximate = is_approximate(index)
        if approximate and len(allowed) <= EXACT_FILTER_LIMIT:
            scores = index.reconstruct_batch(allowed) @ query
            best = np.argsort(-scores, kind="stable")[:k]
            return [(int(allowed[i]), float(scores[i])) for i in best]
        if approximate:
            params = faiss.SearchParametersIVF()
            wider = index.nprobe * math.ceil(index.ntotal / len(allowed))
            params.nprobe = min(index.nlist, wider)
        else:
            params = faiss.SearchParameters()
        params.sel = faiss.IDSelectorBatch(allowed)
    with one_thread():
        found, ids = index.search(query.reshape(1, -1), min(k, index.ntotal), params=params)
    return [(int(i), float(s)) for i, s in zip(ids[0], found[0]) if i >= 0]


def describe_index(index: Any) -> IndexDescription:
    """What kind of search the index does, for ``ragcli status``."""
    if is_approximate(index):
        summary = f"approximate (IVF, {index.nlist} lists, {index.nprobe} probed)"
        return IndexDescription(
            "approximate", "IVFFlat", summary, lists=index.nlist, probes=index.nprobe
        )
    return IndexDescription("exact", "FlatIP", "exact (flat inner product)")
