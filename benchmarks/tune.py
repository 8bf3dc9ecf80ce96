"""What ``ragcli tune`` chooses on each shared collection, and whether the choice holds.

    python benchmarks/tune.py [--data ../shared/data] [--only NAME,...] [-n 60]

For each collection of ``benchmarks/retrieval.py`` (indexed the same way, in the same
RAGCLI_HOME), it runs ``tune`` as a user would, with questions the bundled generator writes
(kept in RAGCLI_HOME/tune, so a second run only scores), without writing the choice. Then it
scores every candidate setting on the collection's real judged questions and prints:

- the time to write the questions, and how many were rejected;
- the setting tune would keep, and on the real questions its nDCG@10 against the default's,
  with the paired bootstrap 95% interval;
- how well the synthetic questions rank the settings: Spearman's correlation between the
  settings' nDCG@10 on the held-out half of the synthetic questions and on the real ones.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import retrieval as collections  # noqa: E402

from ragcli.config import load_settings  # noqa: E402
from ragcli.pipeline import comparing, tuning  # noqa: E402
from ragcli.pipeline.searching import Searcher  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def spearman(a: list[float], b: list[float]) -> float:
    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        out = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2
            i = j + 1
        return out

    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    var = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / var if var else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--only", default="", help="comma-separated collection names")
    parser.add_argument("-n", "--questions", type=int, default=tuning.QUESTIONS)
    args = parser.parse_args()
    os.environ.setdefault("RAGCLI_HOME", str(Path(tempfile.gettempdir()) / "ragcli-bench"))
    base = load_settings()
    loaders = collections.shared_collections(base, args.data)
    names = [n for n in loaders if not args.only or n in args.only.split(",")]
    print(
        "| collection | questions (rejected) | writing s | tune keeps | real nDCG@10: kept "
        "vs default [95% CI] | best on real | Spearman (held-out synthetic vs real) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in names:
        settings, real = loaders[name]()
        started = time.perf_counter()
        report = tuning.tune(settings, count=args.questions, dry_run=True)
        writing = time.perf_counter() - started
        with Searcher(settings) as searcher:
            comparison = comparing.Comparison(searcher, real)
            on_real = {s: comparison.scores(s) for s in tuning.SETTINGS}
        chosen = report.chosen
        assert chosen is not None
        default = on_real[tuning.DEFAULT]
        kept = on_real[chosen.setting]
        ci = comparing.bootstrap(kept, default)
        best_real = max(tuning.SETTINGS, key=lambda s: comparing.mean(on_real[s]))
        rho = spearman(
            [r.held_out for r in report.rows],
            [comparing.mean(on_real[r.setting]) for r in report.rows],
        )
        print(
            f"| {name} | {report.questions} ({report.rejected} of {report.generated} new) | "
            f"{writing:.0f} | {chosen.setting.label} | {comparing.mean(kept):.4f} vs "
            f"{comparing.mean(default):.4f} ({ci.mean:+.3f} [{ci.low:+.3f}, {ci.high:+.3f}]) | "
            f"{best_real.label} {comparing.mean(on_real[best_real]):.4f} | {rho:+.2f} |",
            flush=True,
        )
        for row in report.rows:
            print(
                f"  {row.setting.label}: synthetic {row.ndcg:.4f} (fit {row.fit:.4f}, held-out "
                f"{row.held_out:.4f}), real {comparing.mean(on_real[row.setting]):.4f}",
                file=sys.stderr,
            )


if __name__ == "__main__":
    main()
