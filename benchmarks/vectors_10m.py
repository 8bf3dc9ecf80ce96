"""Dense search over up to 10 million 384-dimensional unit vectors with int8 or binary codes:
build time, index bytes, peak RSS, recall@10 against exact float32 cosine search, and search
latency (one query at a time, one thread), per IVF probe count and rescoring depth.

    python benchmarks/vectors_10m.py --size 1000000 --kind int8
    python benchmarks/vectors_10m.py --size 10000000 --kind int8 --lists 4096
    python benchmarks/vectors_10m.py --size 10000000 --kind binary --lists 4096
    python benchmarks/vectors_10m.py --fit-only        # compare synthetic with real vectors

Vectors. Real MiniLM vectors (the bundled embedder) of Cranfield and SciFact passages, cut in
windows of about 120 words, and of their queries, are embedded once and cached (``--cache``).
The synthetic set is a two-level mixture fitted to them: a subtopic is a real passage vector
plus Gaussian noise scaled per dimension by the real vectors' standard deviation (``s1``), and
1 to 19 points (10 on average) are drawn around each subtopic the same way (``s2``), then
normalised. ``s1`` and ``s2`` are chosen so that the synthetic set's own top-1/top-10 neighbour
cosines match the real passages' at the same size; ``--fit-only`` prints that comparison and
the top-1/top-10 cosines of held-out real queries on real vs synthetic vectors. Vectors come in
seeded batches of 100,000 (batch b is a function of the seed and b alone), so 10M are never
held at once.

Queries: half held-out real queries, half new points drawn around subtopics of the set (so
perturbed synthetic points, never vectors of the set). Ground truth is exact float32 inner
product, a running top-10 over the same batches as they are added.

Kinds. ``int8``: IndexIVFScalarQuantizer (QT_8bit, inner product), coarse quantizer trained
by k-means on ``--train`` points and served from an HNSW graph (``--quantizer hnsw``) or a flat
index; ``--lists 0`` is IndexScalarQuantizer (exhaustive). ``binary``: one bit per dimension
(value above the dimension's median in the training sample), IndexBinaryIVF (``--lists 0``:
IndexBinaryFlat) over the Hamming distance; the top R candidates are rescored on int8 codes
(ScalarQuantizer QT_8bit) kept in a file and read through a memory map, as a segment on disk.

``ragcli``: the product's own int8 segment (``ragcli.store.faiss_index.build_index``: √n
lists, a flat coarse quantizer, the collection's int8 grid, probes calibrated when built)
searched with ``search_index``, at the calibrated probe count and the ``--probes`` given.

Peak RSS is ``ru_maxrss`` of this process (vector generation and the training sample
included); "RSS after build" is the resident size once the index is built. Indexes are
written under ``--cache`` to measure their size and deleted unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DIM = 384
BATCH = 100_000
DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


# ----------------------------------------------------------------------------- real vectors


def passages(words: int = 120) -> list[str]:
    """Cranfield and SciFact documents (title + text) cut into windows of ``words`` words."""
    out: list[str] = []
    for name in ("cranfield", "scifact-train"):
        with open(DATA / name / "corpus.jsonl", encoding="utf-8") as f:
            for line in f:
                doc = json.loads(line)
                tokens = f"{doc.get('title', '')}. {doc.get('text', '')}".split()
                for start in range(0, len(tokens), words):
                    piece = tokens[start : start + words]
                    if len(piece) >= 20 or start == 0 and len(piece) >= 5:
                        out.append(" ".join(piece))
    return out


def queries_text() -> list[str]:
    out: list[str] = []
    for name in ("cranfield", "scifact-train"):
        with open(DATA / name / "queries.jsonl", encoding="utf-8") as f:
            out += [json.loads(line)["text"] for line in f]
    return out


def embed_real(cache: Path) -> None:
    """Embed passages and queries with the product's default embedder; save them in cache."""
    from ragcli.models.embedding import open_embedder

    embedder = open_embedder(None, 32, None, None, "auto")
    started = time.perf_counter()
    docs = embedder.embed_documents(passages())
    queries = embedder.embed_queries(queries_text())
    np.savez(cache / "real.npz", docs=docs, queries=queries)
    print(
        f"embedded {len(docs)} passages, {len(queries)} queries "
        f"in {time.perf_counter() - started:.0f}s"
    )


def real_vectors(cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(passage vectors, query vectors), embedded in a child process the first time (so the
    model's memory stays out of this process's peak RSS)."""
    path = cache / "real.npz"
    if not path.exists():
        subprocess.run(
            [sys.executable, __file__, "--embed-only", "--cache", str(cache)], check=True
        )
    data = np.load(path)
    return data["docs"].astype(np.float32), data["queries"].astype(np.float32)


# ----------------------------------------------------------------------------- synthetic


def normalise(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


class Generator:
    """Seeded batches of synthetic unit vectors around real passage vectors (see module doc)."""

    def __init__(
        self, real: np.ndarray, s1: float, s2: float, seed: int = 0, centres: int = 5000
    ) -> None:
        rng = np.random.default_rng([seed, 10**9])
        pick = rng.choice(len(real), size=min(centres, len(real)), replace=False)
        self.centres = np.ascontiguousarray(real[pick])
        # each centre's 8 nearest real passages: subtopics lie between a centre and one of them
        sims = self.centres @ real.T
        sims[sims > 0.99999] = -1.0
        self.near = np.argpartition(-sims, 8, axis=1)[:, :8]
        self.real = real
        self.std = real.std(axis=0).astype(np.float32)
        self.s1, self.s2, self.seed = s1, s2, seed

    def subtopics(self, rng: np.random.Generator, m: int) -> np.ndarray:
        which = rng.integers(0, len(self.centres), m)
        other = self.real[self.near[which, rng.integers(0, 8, m)]]
        a = rng.uniform(0.0, 0.5, (m, 1)).astype(np.float32)
        c = (1 - a) * self.centres[which] + a * other
        return normalise(c + self.s1 * rng.standard_normal((m, DIM), np.float32) * self.std)

    def around(self, rng: np.random.Generator, subs: np.ndarray) -> np.ndarray:
        noise = rng.standard_normal(subs.shape, np.float32)
        noise *= self.s2 * self.std
        noise += subs
        return normalise(noise)

    def batch(self, b: int, n: int = BATCH) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``b`` of ``n`` vectors, and the subtopics they were drawn around."""
        rng = np.random.default_rng([self.seed, b])
        sizes = rng.integers(1, 20, size=n // 5 + 10)
        m = int(np.searchsorted(np.cumsum(sizes), n)) + 1
        sizes = sizes[:m]
        sizes[-1] -= int(sizes.sum()) - n
        subs = self.subtopics(rng, m)
        return self.around(rng, subs[np.repeat(np.arange(m), sizes)]), subs

    def batches(self, size: int) -> Any:
        for b in range((size + BATCH - 1) // BATCH):
            yield b, self.batch(b, min(BATCH, size - b * BATCH))[0]

    def queries(self, size: int, count: int) -> np.ndarray:
        """``count`` new points around subtopics of batches spread over the set."""
        rng = np.random.default_rng([self.seed, 10**9 + 1])
        nb = (size + BATCH - 1) // BATCH
        chosen = sorted(set(np.linspace(0, nb - 1, min(nb, 8)).astype(int).tolist()))
        per = -(-count // len(chosen))
        out = []
        for b in chosen:
            subs = self.batch(b, min(BATCH, size - b * BATCH))[1]
            out.append(self.around(rng, subs[rng.choice(len(subs), per, replace=False)]))
        return np.concatenate(out)[:count]


def neighbour_cosines(points: np.ndarray, base: np.ndarray, self_in_base: bool) -> np.ndarray:
    """(top-1, top-10) cosines of each point among base (itself excluded when inside)."""
    sims = points @ base.T
    if self_in_base:
        sims[sims > 0.99999] = -1.0
    top = -np.sort(-np.partition(sims, sims.shape[1] - 10, axis=1)[:, -10:], axis=1)
    return np.stack([top[:, 0], top[:, 9]], axis=1)


def quantiles(x: np.ndarray) -> np.ndarray:
    return np.quantile(x, [0.1, 0.5, 0.9], axis=0)  # rows: q, cols: top1/top10


def fit(real: np.ndarray, seed: int) -> tuple[float, float]:
    """s1, s2 whose synthetic set (as large as ``real``) has real-like neighbour cosines."""
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(real), 1000, replace=False)
    target = quantiles(neighbour_cosines(real[sample], real, True))
    best: tuple[float, float, float] = (np.inf, 0.0, 0.0)
    for s1 in (0.2, 0.35, 0.5):
        for s2 in (0.4, 0.5, 0.6, 0.7):
            syn = Generator(real, s1, s2, seed).batch(0, len(real))[0]
            got = quantiles(neighbour_cosines(syn[sample], syn, True))
            loss = float(np.abs(got - target).sum())
            print(f"  fit s1={s1} s2={s2}: loss {loss:.3f}", flush=True)
            best = min(best, (loss, s1, s2))
    return best[1], best[2]


def fit_report(real: np.ndarray, queries: np.ndarray, s1: float, s2: float, seed: int) -> None:
    syn = Generator(real, s1, s2, seed).batch(0, len(real))[0]
    sample = np.random.default_rng(seed).choice(len(real), 1000, replace=False)
    print(f"synthetic mixture: s1={s1} s2={s2}, {len(real)} real passages, same-size synthetic")
    print("                               top-1 cos p10/p50/p90   top-10 cos p10/p50/p90")
    rows = [
        ("passages among real", neighbour_cosines(real[sample], real, True)),
        ("synthetic among synthetic", neighbour_cosines(syn[sample], syn, True)),
        ("real queries on real", neighbour_cosines(queries, real, False)),
        ("real queries on synthetic", neighbour_cosines(queries, syn, False)),
    ]
    for name, cos in rows:
        q = quantiles(cos)
        print(
            f"  {name:28s} {q[0, 0]:.3f} {q[1, 0]:.3f} {q[2, 0]:.3f}"
            f"          {q[0, 1]:.3f} {q[1, 1]:.3f} {q[2, 1]:.3f}"
        )
    big = Generator(real, s1, s2, seed).batch(1, 200_000)[0]
    big64, real64 = big.astype(np.float64), real.astype(np.float64)
    mean_r, mean_s = real64.mean(0), big64.mean(0)
    std_r, std_s = real64.std(0), big64.std(0)
    print(
        f"  per-dimension mean: max |real - synthetic| {np.abs(mean_r - mean_s).max():.4f} "
        f"(real mean range {mean_r.min():.3f}..{mean_r.max():.3f}); "
        f"std ratio synthetic/real p5/p50/p95 "
        f"{' / '.join(f'{v:.2f}' for v in np.quantile(std_s / std_r, [0.05, 0.5, 0.95]))}"
    )
    rnd = np.random.default_rng(seed)
    pr = real[rnd.integers(0, len(real), 20000)] * real[rnd.integers(0, len(real), 20000)]
    ps = big[rnd.integers(0, len(big), 20000)] * big[rnd.integers(0, len(big), 20000)]
    print(f"  random-pair cosine mean: real {pr.sum(1).mean():.3f}, ", end="")
    print(f"synthetic {ps.sum(1).mean():.3f}")


# ----------------------------------------------------------------------------- indexes


def rss_now() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def peak_rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def training_sample(gen: Generator, size: int, count: int) -> np.ndarray:
    """The first ``count`` vectors of the set."""
    parts, have = [], 0
    for _, x in gen.batches(size):
        parts.append(x[: count - have])
        have += len(parts[-1])
        if have >= count:
            break
    return np.concatenate(parts)


class Int8Kind:
    def __init__(self, lists: int, quantizer: str) -> None:
        import faiss

        self.lists = lists
        if lists:
            self.index = faiss.IndexIVFScalarQuantizer(
                faiss.IndexFlatIP(DIM),
                DIM,
                lists,
                faiss.ScalarQuantizer.QT_8bit,
                faiss.METRIC_INNER_PRODUCT,
            )
            self.index.cp.niter = 10
            self.quantizer_kind = quantizer
        else:
            self.index = faiss.IndexScalarQuantizer(
                DIM, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )

    def train(self, sample: np.ndarray) -> None:
        import faiss

        self.index.train(sample)
        if self.lists and self.quantizer_kind == "hnsw":
            centroids = self.index.quantizer.reconstruct_n(0, self.lists)
            hnsw = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = 80
            hnsw.add(centroids)
            hnsw.hnsw.efSearch = 64
            self.index.quantizer = hnsw
            self._keep = hnsw  # python owns it

    def add(self, x: np.ndarray) -> None:
        self.index.add(x)

    def settings(self, probes: list[int], rescore: list[int]) -> list[tuple[int, int]]:
        return [(p, 0) for p in probes if p <= self.lists] if self.lists else [(0, 0)]

    def search(self, q: np.ndarray, probes: int, rescore: int) -> np.ndarray:
        import faiss

        if self.lists:
            self.index.nprobe = probes
            if self.quantizer_kind == "hnsw":
                faiss.downcast_index(self.index.quantizer).hnsw.efSearch = max(64, 2 * probes)
        return self.index.search(q, 10)[1]

    def save(self, path: Path) -> int:
        import faiss

        faiss.write_index(self.index, str(path))
        return path.stat().st_size

    def describe(self) -> str:
        if not self.lists:
            return "IndexScalarQuantizer SQ8"
        return f"IVF{self.lists}({self.quantizer_kind}) SQ8"


class BinaryKind:
    """Sign bits (above the training median) searched by Hamming distance, the top R rescored
    on int8 codes read from a file through a memory map."""

    def __init__(self, lists: int, quantizer: str, folder: Path) -> None:
        import faiss

        self.lists = lists
        self.quantizer_kind = quantizer
        if lists:
            q = faiss.IndexBinaryFlat(DIM)
            self.index = faiss.IndexBinaryIVF(q, DIM, lists)
            self.index.cp.niter = 10
            self._keep = q
        else:
            self.index = faiss.IndexBinaryFlat(DIM)
        self.sq = faiss.ScalarQuantizer(DIM, faiss.ScalarQuantizer.QT_8bit)
        self.codes_path = folder / "rescore.int8"
        self.codes_file = open(self.codes_path, "wb")  # noqa: SIM115
        self.codes: Any = None

    def bits(self, x: np.ndarray) -> np.ndarray:
        return np.packbits(x > self.thresholds, axis=1)

    def train(self, sample: np.ndarray) -> None:
        import faiss

        self.thresholds = np.median(sample, axis=0).astype(np.float32)
        self.sq.train(sample)
        if self.lists:
            self.index.train(self.bits(sample))
            if self.quantizer_kind == "hnsw":
                centroids = self.index.quantizer.reconstruct_n(0, self.lists)
                hnsw = faiss.IndexBinaryHNSW(DIM, 32)
                hnsw.add(centroids)
                hnsw.hnsw.efSearch = 64
                self.index.quantizer = hnsw
                self._keep = hnsw

    def add(self, x: np.ndarray) -> None:
        self.index.add(self.bits(x))
        self.codes_file.write(self.sq.compute_codes(x).tobytes())

    def settings(self, probes: list[int], rescore: list[int]) -> list[tuple[int, int]]:
        ps = [p for p in probes if p <= self.lists] if self.lists else [0]
        return [(p, r) for p in ps for r in rescore]

    def search(self, q: np.ndarray, probes: int, rescore: int) -> np.ndarray:
        import faiss

        if self.lists:
            self.index.nprobe = probes
            if self.quantizer_kind == "hnsw":
                faiss.downcast_IndexBinary(self.index.quantizer).hnsw.efSearch = max(64, 2 * probes)
        cand = self.index.search(self.bits(q), rescore)[1][0]
        cand = np.sort(cand[cand >= 0])
        scores = self.sq.decode(np.ascontiguousarray(self.codes[cand])) @ q[0]
        return cand[np.argsort(-scores)[:10]][None, :]

    def save(self, path: Path) -> int:
        import faiss

        faiss.write_index_binary(self.index, str(path))
        self.codes_file.close()
        self.codes = np.memmap(self.codes_path, dtype=np.uint8, mode="r").reshape(-1, DIM)
        return path.stat().st_size

    def describe(self) -> str:
        base = f"BinaryIVF{self.lists}({self.quantizer_kind})" if self.lists else "BinaryFlat"
        return f"{base} + int8 rescore"


# ----------------------------------------------------------------------------- run


def ground_truth_update(
    best: tuple[np.ndarray, np.ndarray], q: np.ndarray, x: np.ndarray, offset: int
) -> tuple[np.ndarray, np.ndarray]:
    scores = q @ x.T
    top = np.argpartition(-scores, 10, axis=1)[:, :10]
    s = np.concatenate([best[0], np.take_along_axis(scores, top, 1)], axis=1)
    i = np.concatenate([best[1], top + offset], axis=1)
    keep = np.argsort(-s, axis=1)[:, :10]
    return np.take_along_axis(s, keep, 1), np.take_along_axis(i, keep, 1)


def measure(kind: Any, queries: np.ndarray, truth: np.ndarray, probes: int, rescore: int) -> tuple:
    latencies, hits = [], 0
    for i in range(len(queries)):
        started = time.perf_counter()
        found = kind.search(queries[i : i + 1], probes, rescore)
        latencies.append(time.perf_counter() - started)
        hits += len(set(found[0].tolist()) & set(truth[i].tolist()))
    ms = np.array(latencies) * 1000
    return hits / (10 * len(queries)), float(np.median(ms)), float(np.percentile(ms, 95))


def product(gen: Generator, size: int, queries: np.ndarray, truth: np.ndarray, probes: str) -> None:
    """ragcli's own int8 segment of ``size`` vectors: ``build_index`` (√n lists, flat coarse
    quantizer, the collection's int8 grid trained on the first vectors, probes calibrated at
    build) searched with ``search_index`` as ``ragcli search`` does."""
    import faiss

    from ragcli.store.faiss_index import (
        GRID_SAMPLE,
        Quantizer,
        build_index,
        lists_for,
        search_index,
    )

    rss_start = rss_now()
    started = time.perf_counter()
    grid = Quantizer.train(training_sample(gen, size, min(size, GRID_SAMPLE)))

    def batches() -> Any:
        for b, x in gen.batches(size):
            yield np.arange(b * BATCH, b * BATCH + len(x), dtype=np.int64), x

    index, _ = build_index("int8", DIM, size, batches, grid)
    build_s = time.perf_counter() - started
    calibrated = index.nprobe
    rss_built = rss_now()
    path = Path(tempfile.mkdtemp(prefix="ragcli-10m-")) / "segment.faiss"
    faiss.write_index(index, str(path))
    index_bytes = path.stat().st_size
    path.unlink()
    print(
        f"\nragcli int8 segment  size {size:,}  lists {lists_for(size)} (calibrated to "
        f"{calibrated} probes)  build {build_s:.0f} s (generation included)"
    )
    print(
        f"index {index_bytes / 2**30:.3f} GiB; RSS before build {rss_start:.2f} GiB, after build "
        f"{rss_built:.2f} GiB, peak RSS {peak_rss():.2f} GiB"
    )
    print("| probes | recall@10 | p50 ms | p95 ms |\n|---:|---:|---:|---:|")
    for count in sorted({calibrated, *(int(v) for v in probes.split(","))}):
        index.nprobe = count
        latencies, hits = [], 0
        for i in range(len(queries)):
            begun = time.perf_counter()
            found = search_index(index, queries[i], 10)
            latencies.append(time.perf_counter() - begun)
            hits += len({hit for hit, _ in found} & set(truth[i].tolist()))
        ms = np.array(latencies) * 1000
        mark = " (calibrated)" if count == calibrated else ""
        print(
            f"| {count}{mark} | {hits / (10 * len(queries)):.3f} | {np.median(ms):.2f} | "
            f"{np.percentile(ms, 95):.2f} |",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--kind", choices=("int8", "binary", "ragcli"), default="int8")
    p.add_argument("--lists", type=int, default=None, help="IVF lists (default ~sqrt), 0: flat")
    p.add_argument("--train", type=int, default=None, help="training points (default 64/list)")
    p.add_argument("--quantizer", choices=("hnsw", "flat"), default="hnsw")
    p.add_argument("--probes", default="1,2,4,8,16,32,64,128,256")
    p.add_argument("--rescore", default="100,200,500,1000")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="threads while building")
    p.add_argument("--cache", type=Path, default=Path("/tmp/study-10m"))
    p.add_argument("--keep", action="store_true", help="keep the written index files")
    p.add_argument("--fit-only", action="store_true")
    p.add_argument("--embed-only", action="store_true")
    a = p.parse_args()
    a.cache.mkdir(parents=True, exist_ok=True)
    if a.embed_only:
        embed_real(a.cache)
        return

    import faiss

    real, real_queries = real_vectors(a.cache)
    fitted = a.cache / "fit.json"
    if fitted.exists():
        s1, s2 = json.loads(fitted.read_text())
    else:
        s1, s2 = fit(real, a.seed)
        fitted.write_text(json.dumps([s1, s2]))
    if a.fit_only:
        fit_report(real, real_queries, s1, s2, a.seed)
        return

    gen = Generator(real, s1, s2, a.seed)
    lists = a.lists if a.lists is not None else 1 << round(np.log2(max(1.0, a.size**0.5)))
    train_n = min(a.size, a.train or max(100_000, 64 * lists))
    rng = np.random.default_rng([a.seed, 7])
    half = a.queries // 2
    queries = np.concatenate(
        [
            real_queries[rng.choice(len(real_queries), half, replace=False)],
            gen.queries(a.size, a.queries - half),
        ]
    ).astype(np.float32)

    faiss.omp_set_num_threads(a.threads)
    if a.kind == "ragcli":
        truth_path = a.cache / f"truth-{a.size}-{a.queries}-{a.seed}.npy"
        if not truth_path.exists():
            best = (
                np.full((len(queries), 10), -np.inf, np.float32),
                np.zeros((len(queries), 10), int),
            )
            for b, x in gen.batches(a.size):
                best = ground_truth_update(best, queries, x, b * BATCH)
            np.save(truth_path, best[1])
        product(gen, a.size, queries, np.load(truth_path), a.probes)
        return
    rss_start = rss_now()
    folder = a.cache / f"{a.kind}-{a.size}-{lists}"
    folder.mkdir(exist_ok=True)
    kind: Any = (
        Int8Kind(lists, a.quantizer) if a.kind == "int8" else BinaryKind(lists, a.quantizer, folder)
    )
    t0 = time.perf_counter()
    kind.train(training_sample(gen, a.size, train_n))
    train_s = time.perf_counter() - t0
    truth_path = a.cache / f"truth-{a.size}-{a.queries}-{a.seed}.npy"
    have_truth = truth_path.exists()
    best = (np.full((len(queries), 10), -np.inf, np.float32), np.zeros((len(queries), 10), int))
    gen_s = add_s = truth_s = 0.0
    t = time.perf_counter()
    for b, x in gen.batches(a.size):
        t1 = time.perf_counter()
        gen_s += t1 - t
        kind.add(x)
        t2 = time.perf_counter()
        add_s += t2 - t1
        if not have_truth:
            best = ground_truth_update(best, queries, x, b * BATCH)
        t = time.perf_counter()
        truth_s += t - t2
        if b % 10 == 9:
            print(
                f"  {(b + 1) * BATCH:>10,} added  gen {gen_s:.0f}s add {add_s:.0f}s "
                f"truth {truth_s:.0f}s rss {rss_now():.2f} GB",
                flush=True,
            )
        del x
    if not have_truth:
        np.save(truth_path, best[1])
    truth = np.load(truth_path)
    rss_built = rss_now()
    index_bytes = kind.save(folder / "index.faiss")
    extra = kind.codes_path.stat().st_size if a.kind == "binary" else 0

    faiss.omp_set_num_threads(1)
    rows = []
    for probes, rescore in kind.settings(
        [int(v) for v in a.probes.split(",")], [int(v) for v in a.rescore.split(",")]
    ):
        recall, p50, p95 = measure(kind, queries, truth, probes, rescore)
        rows.append((probes, rescore, recall, p50, p95))
        print(
            f"  probes {probes:4d} rescore {rescore:5d}: recall@10 {recall:.3f} "
            f"p50 {p50:.2f} ms p95 {p95:.2f} ms",
            flush=True,
        )
        if p50 > 150:
            break

    print()
    print(
        f"{kind.describe()}  size {a.size:,}  lists {lists}  train {train_n:,}  "
        f"queries {len(queries)} ({half} real + {len(queries) - half} synthetic)"
    )
    print(
        f"build: train {train_s:.0f}s, add {add_s:.0f}s (generation {gen_s:.0f}s, "
        f"exact top-10 {truth_s:.0f}s, not counted), {a.threads} threads"
    )
    print(
        f"index {index_bytes / 2**30:.3f} GiB"
        + (f" + int8 rescoring codes on disk {extra / 2**30:.3f} GiB" if extra else "")
        + f"; RSS before build {rss_start:.2f} GiB, after build {rss_built:.2f} GiB"
        + f", peak RSS {peak_rss():.2f} GiB"
    )
    print("| probes | rescore | recall@10 | p50 ms | p95 ms |")
    print("|---:|---:|---:|---:|---:|")
    for probes, rescore, recall, p50, p95 in rows:
        print(f"| {probes} | {rescore} | {recall:.3f} | {p50:.2f} | {p95:.2f} |")
    if not a.keep:
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
