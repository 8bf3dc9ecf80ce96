"""``--rerank llm`` against the default ranking: quality and time per question.

    python benchmarks/rerank.py [--data ../shared/data] [--only NAME,...] [-n 20] [-k 10]

On the first N judged questions of each collection of ``benchmarks/retrieval.py`` (indexed
the same way, in the same RAGCLI_HOME), it runs ``search -k K`` with the default ranking and
with the bundled generator reranking the fused candidates (``--rerank llm``), and prints
nDCG@K of both with the paired bootstrap interval of the difference, and the seconds per
question of each. The generator reads every reranked passage, so this is slow on a CPU.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

import retrieval as collections  # noqa: E402

from ragcli.config import load_settings  # noqa: E402
from ragcli.pipeline import comparing  # noqa: E402
from ragcli.pipeline.searching import Searcher  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--only", default="squad2-tune,scifact-train")
    parser.add_argument("-n", "--questions", type=int, default=20)
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("RAGCLI_HOME", str(Path(tempfile.gettempdir()) / "ragcli-bench"))
    base = load_settings()
    loaders = collections.shared_collections(base, args.data)
    print(
        f"| collection | questions | nDCG@{args.k} default | with --rerank llm [95% CI] | "
        "s per question: default | with --rerank llm |"
    )
    print("|---|---|---|---|---|---|")
    for name in args.only.split(","):
        settings, questions = loaders[name]()
        questions = questions[: args.questions]
        scored: dict[str, dict[str, float]] = {"default": {}, "llm": {}}
        seconds: dict[str, list[float]] = {"default": [], "llm": []}
        for label, rerank in (("default", None), ("llm", "llm")):
            with Searcher(dataclasses.replace(settings, rerank=rerank)) as searcher:
                for question in questions:
                    started = time.perf_counter()
                    hits = searcher.search(question.text, args.k).hits
                    seconds[label].append(time.perf_counter() - started)
                    scored[label][question.qid] = comparing.score(hits, question, args.k)
        ci = comparing.bootstrap(scored["llm"], scored["default"])
        before, after = comparing.mean(scored["default"]), comparing.mean(scored["llm"])
        fast, slow = statistics.median(seconds["default"]), statistics.median(seconds["llm"])
        print(
            f"| {name} | {len(questions)} | {before:.4f} | {after:.4f} ({ci.mean:+.3f} "
            f"[{ci.low:+.3f}, {ci.high:+.3f}]) | {fast:.3f} | {slow:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
