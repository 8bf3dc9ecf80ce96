"""Retrieval quality with documents embedded in float32 and in bfloat16, side by side.

    python benchmarks/precision.py [DATASET_DIR]     (default: ../shared/data/cranfield)

Evaluates the BEIR dataset (``ragcli eval``: index the corpus, run every judged query) once
with ``RAGCLI_EMBED_PRECISION=float32`` and once with ``bfloat16``, each into a fresh home, and
prints nDCG@10 per retrieval mode for both, their difference, and the indexing time of each.
Queries are embedded in float32 either way.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODES = ("hybrid", "dense", "lexical")


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/cranfield")
    from ragcli import pipeline
    from ragcli.config import load_settings

    results: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    for precision in ("float32", "bfloat16"):
        os.environ["RAGCLI_HOME"] = tempfile.mkdtemp(prefix=f"ragcli-{precision}-")
        results[precision] = {}
        for mode in MODES:
            started = time.perf_counter()
            settings = load_settings(mode=mode, embed_precision=precision)
            report = pipeline.evaluate(settings, dataset_dir=root)
            if mode == MODES[0]:  # the first evaluation indexes the corpus
                seconds[precision] = time.perf_counter() - started
            results[precision][mode] = report.metrics["ndcg@10"]

    print(f"dataset: {root}")
    print("| mode | nDCG@10 float32 | nDCG@10 bfloat16 | difference |")
    print("|---|---|---|---|")
    for mode in MODES:
        a, b = results["float32"][mode], results["bfloat16"][mode]
        print(f"| {mode} | {a:.4f} | {b:.4f} | {b - a:+.4f} |")
    print(
        f"index + first evaluation: float32 {seconds['float32']:.1f} s, "
        f"bfloat16 {seconds['bfloat16']:.1f} s "
        f"(ratio {seconds['float32'] / seconds['bfloat16']:.2f})"
    )


if __name__ == "__main__":
    main()
