"""float32, int8 and binary vectors side by side on real collections: quality and size.

    python benchmarks/vector_kinds.py [--data ../shared/data] [--only cranfield,scifact-train]

Each BEIR folder is ingested once per codec (``ingest --vectors KIND``; the embedding cache
makes the second and third ingests reuse the first one's vectors, so all three hold the same
vectors) and compacted, so each collection is one segment of its codec. Then, per collection:

- recall@10 of dense search against exact float32 search (the same chunks by key), over every
  judged query;
- nDCG@10 of dense and of hybrid (the default) retrieval, as ``ragcli eval`` scores it;
- the bytes per chunk of the vector files on disk, and of what a search reads whole into
  memory (for binary, the bits; its int8 file is memory-mapped and only the rescored rows are
  read);
- dense search latency p50 in a warm process (one query at a time).

RAGCLI_HOME defaults to a folder under the system's temporary directory that later runs reuse.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

KINDS = ("float32", "int8", "binary")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[2] / "shared/data")
    parser.add_argument("--only", default="cranfield,scifact-train")
    args = parser.parse_args()
    os.environ.setdefault("RAGCLI_HOME", str(Path(tempfile.gettempdir()) / "ragcli-kinds"))

    from ragcli import manage
    from ragcli.config import load_settings
    from ragcli.evaluation import load_dataset
    from ragcli.pipeline.evaluating import dataset_collection, evaluate
    from ragcli.pipeline.searching import Searcher
    from ragcli.store import FaissStore

    print(f"CPU: {_cpu()}")
    header = (
        f"{'collection':<15}{'vectors':<9}{'chunks':>8}{'recall@10':>11}{'nDCG dense':>12}"
        f"{'nDCG hybrid':>13}{'disk B/chunk':>14}{'RAM B/chunk':>13}{'p50 ms':>8}"
    )
    rows = []
    for name in args.only.split(","):
        dataset = load_dataset(args.data / name)
        exact: dict[str, list[str]] = {}
        for kind in KINDS:
            settings = load_settings(vectors=kind)
            settings = dataclasses.replace(
                settings, collection=dataset_collection(settings, dataset)
            )
            hybrid = evaluate(settings, args.data / name)  # ingests on the first run
            manage.compact(settings)
            dense = evaluate(dataclasses.replace(settings, mode="dense"), args.data / name)
            queries = [q for qid, q in dataset.queries.items() if qid in dataset.qrels]
            found: dict[str, list[str]] = {}
            latencies = []
            with Searcher(dataclasses.replace(settings, mode="dense")) as searcher:
                store = searcher.store
                vectors = searcher.embedder.embed_queries(queries)
                for question, vector in zip(queries, vectors):
                    started = time.perf_counter()
                    scored = store.dense(vector, 10)
                    latencies.append(time.perf_counter() - started)
                    found[question] = [h.chunk_key for h in store.hits(scored)]
            if kind == "float32":
                exact = found
            recall = statistics.mean(
                len(set(found[q]) & set(exact[q])) / max(len(exact[q]), 1) for q in queries
            )
            with FaissStore.open(settings.collection_dir) as reader:
                chunks = reader.chunk_count
                disk = sum(
                    (settings.collection_dir / f).stat().st_size
                    for s in reader.segments
                    for f in s.files()
                )
                resident = sum(
                    (settings.collection_dir / (s.bits_file if s.codec == "binary" else s.file))
                    .stat()
                    .st_size
                    for s in reader.segments
                )
            rows.append(
                f"{name:<15}{kind:<9}{chunks:>8}{recall:>11.3f}"
                f"{dense.metrics['ndcg@10']:>12.4f}{hybrid.metrics['ndcg@10']:>13.4f}"
                f"{disk / chunks:>14.0f}{resident / chunks:>13.0f}"
                f"{1000 * statistics.median(latencies):>8.2f}"
            )
            print(rows[-1], flush=True)
    print()
    print(header)
    print("\n".join(rows))


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
