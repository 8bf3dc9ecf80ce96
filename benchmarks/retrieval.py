"""Retrieval settings across every shared collection, with paired bootstrap intervals.

    python benchmarks/retrieval.py [--data ../shared/data] [--only NAME,...] [--grid]

Collections (each indexed once with the default chunking, cached in RAGCLI_HOME, default a
folder under the system's temporary directory that later runs reuse):

- ``cranfield`` and ``scifact-train``: BEIR folders, documents ranked by their best chunk,
  nDCG@10 against the graded qrels;
- ``squad2-tune``: the answerable questions, the gold paragraph as the only relevant document;
- ``sample``: the sample corpus's answerable questions, the relevant unit being any chunk of
  the gold file that covers the gold lines (or page).

For each setting it prints nDCG@10 per collection and their mean, and the paired bootstrap
95% interval of its difference from the default before (RRF + feedback) per collection.
``--grid`` adds more settings (candidate pools, feedback strengths, RRF weights). Then the
search latency of the default and of the default before, in a warm process. Each setting fuses
the part of the first rankings that ``search`` would (its pool), so the figures are those of
``search -k 10``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ragcli.config import Settings, load_settings  # noqa: E402
from ragcli.evaluation import Dataset, load_dataset  # noqa: E402
from ragcli.pipeline import comparing  # noqa: E402
from ragcli.pipeline.comparing import JudgedQuestion, Setting  # noqa: E402
from ragcli.pipeline.evaluating import dataset_collection  # noqa: E402
from ragcli.pipeline.ingesting import ingest  # noqa: E402
from ragcli.pipeline.searching import Searcher  # noqa: E402
from ragcli.records import Hit  # noqa: E402
from ragcli.retrieval import Fusion  # noqa: E402
from ragcli.store.location import location_for  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def _ingested(settings: Settings, name: str, paths: list[str]) -> Settings:
    settings = dataclasses.replace(settings, collection=name)
    location = location_for(settings)
    if not location.exists():
        print(f"indexing {', '.join(paths)} into {name} ...", file=sys.stderr)
        ingest(settings, paths)
    return settings


def beir(settings: Settings, root: Path) -> tuple[Settings, list[JudgedQuestion]]:
    dataset = load_dataset(root)
    settings = _ingested(settings, dataset_collection(settings, dataset), [str(dataset.corpus)])
    judged_ids = {d for docs in dataset.qrels.values() for d in docs}
    unit = comparing.document_unit(judged_ids)
    questions = [
        JudgedQuestion(qid, text, dataset.qrels[qid], unit)
        for qid, text in dataset.queries.items()
        if qid in dataset.qrels
    ]
    return settings, questions


def squad(settings: Settings, root: Path) -> tuple[Settings, list[JudgedQuestion]]:
    dataset = Dataset(root, {}, {})
    settings = _ingested(settings, dataset_collection(settings, dataset), [str(dataset.corpus)])
    records = [json.loads(line) for line in (root / "questions.jsonl").open(encoding="utf-8")]
    judged_ids = {d for r in records for d in r["doc_ids"]}
    unit = comparing.document_unit(judged_ids)
    questions = [
        JudgedQuestion(r["id"], r["question"], {d: 1 for d in r["doc_ids"]}, unit)
        for r in records
        if r["doc_ids"]
    ]
    return settings, questions


def _gold_unit(record: dict) -> object:
    source, page, lines = record["source"], record.get("page"), record.get("lines")

    def unit(hit: Hit) -> str:
        if not hit.source.replace("\\", "/").endswith(source):
            return f"#{hit.row_id}"
        if page is not None and hit.page == page:
            return "gold"
        covered = lines and hit.line_start is not None and hit.line_end is not None
        if covered and hit.line_start <= lines[1] and lines[0] <= hit.line_end:
            return "gold"
        return f"#{hit.row_id}"

    return unit


def sample(settings: Settings, root: Path) -> tuple[Settings, list[JudgedQuestion]]:
    settings = _ingested(settings, "bench-sample-corpus", [str(root)])
    records = [json.loads(line) for line in (root / "questions.jsonl").open(encoding="utf-8")]
    questions = [
        JudgedQuestion(r["id"], r["question"], {"gold": 1}, _gold_unit(r))
        for r in records
        if r.get("answerable", True)
    ]
    return settings, questions


def shared_collections(
    base: Settings, data: Path
) -> dict[str, Callable[[], tuple[Settings, list[JudgedQuestion]]]]:
    """Each shared collection by name: a call that indexes it if needed and gives its questions."""
    return {
        "cranfield": lambda: beir(base, data / "cranfield"),
        "scifact-train": lambda: beir(base, data / "scifact-train"),
        "squad2-tune": lambda: squad(base, data / "squad2-tune"),
        "sample": lambda: sample(base, REPO / "sample_corpus"),
    }


def settings_to_compare(grid: bool) -> list[Setting]:
    """The reference (the default before) first: every interval is against it."""
    rows = [
        Setting(
            "RRF + feedback, pool 50 (the default before)", "hybrid", Fusion(method="rrf", pool=50)
        ),
        Setting("default: convex a=0.6 + feedback, pool 100", "hybrid", Fusion()),
        Setting("plain RRF, pool 50", "hybrid", Fusion(method="rrf", feedback_weight=0.0, pool=50)),
        Setting("dense", "dense", Fusion()),
        Setting("lexical (BM25)", "lexical", Fusion()),
    ]
    for alpha in (0.4, 0.5, 0.7):
        for weight in (0.0, 1.0):
            label = f"convex a={alpha}" + (" + feedback" if weight else "")
            rows.append(Setting(label, "hybrid", Fusion(alpha=alpha, feedback_weight=weight)))
    rows.append(Setting("convex a=0.6, no feedback", "hybrid", Fusion(feedback_weight=0.0)))
    if grid:
        for pool in (50, 200, 300):
            rows.append(Setting(f"default, pool {pool}", "hybrid", Fusion(pool=pool)))
        for weight in (0.5, 2.0):
            rows.append(
                Setting(f"default, feedback {weight}", "hybrid", Fusion(feedback_weight=weight))
            )
        rows.append(Setting("default, feedback depth 5", "hybrid", Fusion(feedback_depth=5)))
        rows.append(Setting("RRF + feedback, pool 100", "hybrid", Fusion(method="rrf")))
        for dense_weight in (0.7, 1.5):
            rows.append(
                Setting(
                    f"RRF + feedback, dense weight {dense_weight}",
                    "hybrid",
                    Fusion(method="rrf", dense_weight=dense_weight, pool=50),
                )
            )
    return rows


def latency(searcher: Searcher, questions: list[JudgedQuestion], fusion: Fusion) -> list[float]:
    """Milliseconds of one warm ``search`` (k = 4) per question, for the first 100."""
    searcher.how.mode, searcher.how.fusion = "hybrid", fusion
    times = []
    for question in questions[:100]:
        started = time.perf_counter()
        searcher.search(question.text, 4)
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--only", default="", help="comma-separated collection names")
    parser.add_argument("--grid", action="store_true", help="compare more settings")
    args = parser.parse_args()
    os.environ.setdefault("RAGCLI_HOME", str(Path(tempfile.gettempdir()) / "ragcli-bench"))
    base = load_settings()
    loaders = shared_collections(base, args.data)
    names = [n for n in loaders if not args.only or n in args.only.split(",")]
    rows = settings_to_compare(args.grid)
    results: dict[str, dict[str, dict[str, float]]] = {}  # collection -> label -> per query
    seconds: dict[str, float] = {}
    timed: dict[str, list[list[float]]] = {}  # collection -> [before, default] latencies
    for name in names:
        settings, questions = loaders[name]()
        with Searcher(settings) as searcher:
            comparison = comparing.Comparison(searcher, questions)
            started = time.perf_counter()
            results[name] = {row.label: comparison.scores(row) for row in rows}
            seconds[name] = time.perf_counter() - started
            timed[name] = [latency(searcher, questions, row.fusion) for row in rows[:2]]
        print(
            f"{name}: {len(questions)} judged questions, collection {settings.collection}, "
            f"{len(rows)} settings in {seconds[name]:.0f} s",
            file=sys.stderr,
        )

    default = rows[0].label
    print(
        "nDCG@10 per collection; in brackets the difference from the default before with "
        "its paired bootstrap 95% interval (* beyond noise)\n"
    )
    print("| setting | " + " | ".join(names) + " | mean |")
    print("|---|" + "---|" * (len(names) + 1))
    for row in rows:
        cells = []
        for name in names:
            ours = results[name][row.label]
            cell = f"{comparing.mean(ours):.4f}"
            if row.label != default:
                ci = comparing.bootstrap(ours, results[name][default])
                cell += (
                    f" ({ci.mean:+.3f} [{ci.low:+.3f}, {ci.high:+.3f}]"
                    f"{'*' if ci.beyond_noise else ''})"
                )
            cells.append(cell)
        overall = statistics.fmean(comparing.mean(results[n][row.label]) for n in names)
        print(f"| {row.label} | " + " | ".join(cells) + f" | {overall:.4f} |")

    print("\nsearch latency, k = 4, warm process, ms p50 / p95 (first 100 questions)\n")
    print("| setting | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for i, row in enumerate(rows[:2]):
        cells = []
        for name in names:
            times = timed[name][i]
            cells.append(
                f"{statistics.median(times):.1f} / {times[int(0.95 * (len(times) - 1))]:.1f}"
            )
        print(f"| {row.label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
