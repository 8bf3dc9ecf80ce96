"""Dense search at 10k, 100k and 1M chunks: exact (IndexFlatIP) against the IVF index a
collection of that size gets, on synthetic clustered unit vectors of 384 dimensions.

    python benchmarks/search_scale.py [--sizes 10000,100000,1000000] [--queries 200]
    python benchmarks/search_scale.py --real ../shared/data/cranfield/docs

Prints, per size: build time, the lists ``ragcli.store`` picks and the probes it calibrates
(recall@10 >= 0.95 on stored vectors), search latency p50/p95 (one query at a time on one
thread, as ``search`` does) and recall@10 against exact search on held-out queries, plus a
sweep of probe counts. ``--real`` does the same on MiniLM vectors of the sentences of a folder
of text files (embedded once with the bundled embedder, cached in /tmp).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DIM = 384


def synthetic(n: int, seed: int = 0) -> np.ndarray:
    """Unit vectors shaped like MiniLM sentence embeddings: a shared direction, topics, and
    subtopics of about 10 points. Cosine of a random pair ~0.18, of the nearest neighbour ~0.7,
    of the 10th ~0.6, as measured on Cranfield sentences (``--real``)."""
    rng = np.random.default_rng(seed)

    def units(m: int) -> np.ndarray:
        v = rng.standard_normal((m, DIM)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    shared = units(1)[0]
    subtopics = max(1, n // 10)
    topic_of = rng.integers(0, max(1, subtopics // 20), subtopics)
    topics, subs = units(int(topic_of.max()) + 1), units(subtopics)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        sub = rng.integers(0, subtopics, m)
        block = 0.42 * shared + 0.45 * topics[topic_of[sub]] + 0.55 * subs[sub] + 0.57 * units(m)
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def real_vectors(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """MiniLM vectors of every sentence in the folder's .txt files, and of 200 of them as
    queries (perturbed by taking their first half)."""
    import re

    from ragcli.models.embedding import Embedder

    texts: list[str] = []
    for path in sorted(folder.glob("*.txt")):
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(path.read_text().split())):
            if len(sentence.split()) >= 4:
                texts.append(sentence)
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]
    cache = Path(f"/tmp/ragcli-bench-sentences-{key}.npy")
    embedder = Embedder(None, 64)
    if cache.exists():
        vectors = np.load(cache)
    else:
        started = time.perf_counter()
        vectors = embedder.embed_documents(texts)
        np.save(cache, vectors)
        print(f"embedded {len(texts)} sentences in {time.perf_counter() - started:.0f} s")
    rng = np.random.default_rng(1)
    picked = rng.choice(len(texts), 200, replace=False)
    halves = [" ".join(texts[i].split()[: max(3, len(texts[i].split()) // 2)]) for i in picked]
    return vectors, embedder.embed_queries(halves)


def flat(vectors: np.ndarray):
    import faiss

    index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    index.add_with_ids(vectors, np.arange(len(vectors), dtype=np.int64))
    return index


def timed_search(index, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, list[float]]:
    """One query at a time on one thread, as ``FaissStore.dense`` searches."""
    from ragcli.store.faiss_index import one_thread

    ids, times = [], []
    for q in queries:
        started = time.perf_counter()
        with one_thread():
            _, found = index.search(q.reshape(1, -1), k)
        times.append((time.perf_counter() - started) * 1000)
        ids.append(found[0])
    return np.array(ids), times


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def _ms(times: list[float]) -> str:
    return f"p50 {np.percentile(times, 50):.2f} ms, p95 {np.percentile(times, 95):.2f} ms"


def report(label: str, vectors: np.ndarray, queries: np.ndarray) -> None:
    from ragcli.store import lists_for, rebuilt_index

    n = len(vectors)
    started = time.perf_counter()
    exact = flat(vectors)
    flat_s = time.perf_counter() - started
    truth, exact_ms = timed_search(exact, queries)
    print(f"\n{label}: {n} vectors; exact IndexFlatIP ({flat_s:.1f} s to build): {_ms(exact_ms)}")
    lists = lists_for(n)
    if not lists:
        lists = max(1, min(int(np.sqrt(n)), n // 64))
        print(
            f"  below APPROXIMATE_FROM, so a collection searches exactly; IVF with {lists} lists:"
        )
    started = time.perf_counter()
    approximate = rebuilt_index(exact, lists)  # trains, adds, calibrates the probes
    build_s = time.perf_counter() - started
    chosen = approximate.nprobe
    print(f"  IVFFlat, {lists} lists, built and calibrated in {build_s:.1f} s: {chosen} probes")
    sweep = {max(1, chosen // 4), max(1, chosen // 2), chosen, min(lists, chosen * 2)}
    for probes in sorted(sweep):
        approximate.nprobe = probes
        found, ms = timed_search(approximate, queries)
        mark = "  <- calibrated" if probes == chosen else ""
        print(f"  probes {probes:4d}: recall@10 {recall(found, truth):.4f}, {_ms(ms)}{mark}")
    del exact, approximate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--real", type=Path)
    args = parser.parse_args()
    import faiss

    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads")
    if args.real:
        vectors, queries = real_vectors(args.real)
        report(f"MiniLM sentences of {args.real}", vectors, queries)
        return
    for n in (int(s) for s in args.sizes.split(",")):
        data = synthetic(n + args.queries, seed=n)
        report("synthetic", data[args.queries :], data[: args.queries])


if __name__ == "__main__":
    main()
