"""Fit the abstention decision on saved answers, across collections.

    python benchmarks/abstention.py NAME=ANSWERS.jsonl [NAME=ANSWERS.jsonl ...]

Each file is what ``ragcli eval --answers ... --min-verified 0 --save FILE`` wrote (every
answer generated and verified; the retrieval gate is applied afterwards, so any threshold can
be tried). The decision answers a question when
its retrieval evidence (best cosine) reaches ``min_score``, its verification (the generator's
probability of "yes") reaches ``min_verified``, and the answer passed its own checks. For every
pair on a grid it prints, per collection: the share of answerable questions answered with a gold
answer in it (``right``), the share wrongly withheld, and the share of unanswerable ones
withheld; then the pairs that keep every collection's ``right`` within 0.05 of its best,
ordered by the mean share of unanswerable questions withheld.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SCORES = [round(0.05 * i, 2) for i in range(0, 11)]  # 0 .. 0.5
VERIFIED = [round(0.1 * i, 1) for i in range(0, 10)]  # 0 .. 0.9


def _load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _figures(rows: list[dict], min_score: float, min_verified: float) -> dict[str, float]:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]

    def gives(r: dict) -> bool:
        if "checks" in r:
            own = r["checks"] in (None, "not verified")  # passed its own checks
        else:  # written before "checks": a gated answer's own verdict is unknown
            own = r["abstain_reason"] in (None, "weak retrieval", "not verified")
        verified = r.get("verified")
        trusted = verified is None or verified >= min_verified
        return own and r["evidence"] >= min_score and trusted

    right = sum(gives(r) and r["contains"] for r in answerable)
    withheld = sum(not gives(r) for r in answerable)
    refused = sum(not gives(r) for r in unanswerable)
    return {
        "right": right / len(answerable) if answerable else 0.0,
        "wrongly_withheld": withheld / len(answerable) if answerable else 0.0,
        "unanswerable_withheld": refused / len(unanswerable) if unanswerable else 0.0,
    }


def main() -> None:
    sets = {}
    for argument in sys.argv[1:]:
        name, _, path = argument.partition("=")
        sets[name] = _load(Path(path))
    if not sets:
        raise SystemExit(__doc__)
    table = []
    for min_score in SCORES:
        for min_verified in VERIFIED:
            figures = {n: _figures(rows, min_score, min_verified) for n, rows in sets.items()}
            table.append((min_score, min_verified, figures))
    best_right = {n: max(f[n]["right"] for _, _, f in table) for n in sets}
    kept = [row for row in table if all(row[2][n]["right"] >= best_right[n] - 0.05 for n in sets)]
    kept.sort(key=lambda row: -sum(f["unanswerable_withheld"] for f in row[2].values()))
    header = "  ".join(f"{n:>28}" for n in sets)
    print(f"min_score min_verified  {header}")
    print(" " * 24 + "  ".join(f"{'right  wrong-wh  unans-wh':>28}" for _ in sets))
    for min_score, min_verified, figures in kept[:15]:
        cells = "  ".join(
            f"{f['right']:>11.3f} {f['wrongly_withheld']:>8.3f} {f['unanswerable_withheld']:>8.3f}"
            for f in figures.values()
        )
        print(f"{min_score:9.2f} {min_verified:12.1f}  {cells}")
    for name, current in sets.items():
        now = _figures(current, 0.35, 0.0)
        print(f"today (0.35, off) on {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in now.items()))


if __name__ == "__main__":
    main()
