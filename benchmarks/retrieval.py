"""Retrieval quality and latency by mode on a BEIR dataset (default: Cranfield).

    python benchmarks/retrieval.py [DATASET_DIR]

Indexes the corpus once (cached in RAGCLI_HOME, default a temporary folder), then for each
retrieval mode prints nDCG@10, Recall@10, Recall@100 and MRR@10 over all judged queries, and
the median and 95th-percentile latency of one ``search`` (k=4) in a warm process. The hybrid
mode is also shown without pseudo-relevance feedback, the plain reciprocal rank fusion it
builds on.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/cranfield")
    os.environ.setdefault("RAGCLI_HOME", tempfile.mkdtemp(prefix="ragcli-bench-"))

    from ragcli import pipeline
    from ragcli.config import load_settings
    from ragcli.evaluation import read_queries
    from ragcli.retrieval import Fusion

    questions = list(read_queries(root / "queries.jsonl").values())[:100]
    variants = [
        ("hybrid (default)", "hybrid", None),
        ("hybrid without feedback (plain RRF)", "hybrid", Fusion(feedback_weight=0.0)),
        ("dense", "dense", None),
        ("lexical (BM25)", "lexical", None),
    ]
    rows = []
    for label, mode, fusion in variants:
        report = pipeline.evaluate(load_settings(mode=mode), dataset_dir=root, fusion=fusion)
        latencies = []
        settings = load_settings(mode=mode, collection=report.collection)
        with pipeline.Searcher(settings, fusion=fusion) as searcher:
            for question in questions:
                started = time.perf_counter()
                searcher.search(question, 4)
                latencies.append((time.perf_counter() - started) * 1000)
        rows.append((label, report.metrics, sorted(latencies)))

    print(f"dataset: {root} ({report.queries} judged queries), collection {report.collection}")
    print("| mode | nDCG@10 | R@10 | R@100 | MRR@10 | search p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|---|")
    for label, m, lat in rows:
        p95 = lat[int(0.95 * (len(lat) - 1))]
        print(
            f"| {label} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | {m['recall@100']:.4f} | "
            f"{m['mrr@10']:.4f} | {statistics.median(lat):.1f} | {p95:.1f} |"
        )


if __name__ == "__main__":
    main()
