"""Fit the abstention decision (ragcli/abstention.py) on saved answers, across collections.

    python benchmarks/abstention.py NAME=ANSWERS.jsonl [NAME=ANSWERS.jsonl ...] [--folds 2]

Each file is what ``ragcli eval --answers ... --save FILE`` wrote: every answer generated,
checked and verified with the decision off, so any decision can be tried on it afterwards.
An answer that passed its own checks is *right* when its question is answerable and a gold
answer stands in it. On those answers two logistic models of "right" are fitted, each
collection weighing the same whatever its size: on the retrieval evidence and the generator's
verification (``WITH_VERIFICATION``), and on the evidence alone (``EVIDENCE_ONLY``).

Printed: the coefficients to put in ragcli/abstention.py; then, for thresholds on the
confidence, per collection, the share of answerable questions answered with a gold answer
(``right``), the share of them withheld, the share of unanswerable ones withheld, and abstention
precision; first with the coefficients fitted on all the files, then held out: each file's
questions split into ``--folds`` parts (by article where records carry one), each part scored
with the models fitted on the rest and on the other files. Also printed: the same figures for the
decision in ragcli/abstention.py as it stands.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ragcli import abstention  # noqa: E402
from ragcli.abstention import Calibration  # noqa: E402
from ragcli.answer_metrics import contains_answer  # noqa: E402

THRESHOLDS = [0.3, 0.35, 0.4, 0.45, 0.47, 0.5, 0.52, 0.55, 0.6, 0.65, 0.7]


def _load(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for row in rows:
        row["right"] = row["answerable"] and contains_answer(row["answer"], row["gold_answers"])
        row["passed"] = row.get("checks") is None  # the model's own checks let it through
    return rows


def _features(rows: list[dict], verified: bool) -> np.ndarray:
    columns = [[1.0] * len(rows), [r["evidence"] for r in rows]]
    if verified:
        columns.append([r["verified"] or 0.0 for r in rows])
    return np.array(columns, dtype=np.float64).T


def fit(collections: dict[str, list[dict]], verified: bool, l2: float = 0.01) -> np.ndarray:
    """Logistic regression by Newton's method on the answers that passed their checks; each
    collection's rows weigh 1 in all."""
    rows, weights = [], []
    for members in collections.values():
        passed = [r for r in members if r["passed"] and (r["verified"] is not None or not verified)]
        rows += passed
        weights += [1.0 / len(passed)] * len(passed)
    x, w = _features(rows, verified), np.array(weights)
    y = np.array([float(r["right"]) for r in rows])
    beta = np.zeros(x.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-x @ beta))
        gradient = x.T @ (w * (p - y)) + l2 * np.r_[0.0, beta[1:]]
        ridge = l2 * np.diag([0.0] + [1.0] * (len(beta) - 1))
        hessian = (x * (w * p * (1 - p))[:, None]).T @ x + ridge
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-9:
            break
    return beta


def _models(beta_v: np.ndarray, beta_e: np.ndarray) -> tuple[Calibration, Calibration]:
    return (
        Calibration(float(beta_v[0]), float(beta_v[1]), float(beta_v[2])),
        Calibration(float(beta_e[0]), float(beta_e[1])),
    )


def _gives(row: dict, threshold: float, beta_v: np.ndarray, beta_e: np.ndarray) -> bool:
    """As ask decides: the gate before generating, the model's checks, the confidence."""
    models = _models(beta_v, beta_e)
    if abstention.withheld_before(row["evidence"], threshold, models=models):
        return False
    given = abstention.confidence(row["evidence"], row["verified"], models)
    return row["passed"] and abstention.withheld_after(given, row["verified"], threshold) is None


def _table(title: str, scored: dict[str, list[tuple[dict, np.ndarray, np.ndarray]]]) -> None:
    print(f"\n{title}")
    print("threshold  " + "  ".join(f"{name:>36}" for name in scored))
    print("           " + "  ".join(f"{'right wrongly unans precision':>36}" for _ in scored))
    for t in THRESHOLDS:
        cells = []
        for parts in scored.values():
            rows = [r for r, _, _ in parts]
            answerable = max(sum(r["answerable"] for r in rows), 1)
            unanswerable = max(len(rows) - sum(r["answerable"] for r in rows), 1)
            ids = {id(r) for r, bv, be in parts if _gives(r, t, bv, be)}
            withheld = [r for r in rows if id(r) not in ids]
            right = sum(r["right"] for r in rows if id(r) in ids) / answerable
            wrongly = sum(r["answerable"] for r in withheld) / answerable
            unans = sum(not r["answerable"] for r in withheld) / unanswerable
            precision = sum(not r["answerable"] for r in withheld) / max(len(withheld), 1)
            cells.append(f"{right:5.2f} {wrongly:7.2f} {unans:5.2f} {precision:9.2f}")
        print(f"{t:9.2f}  " + "  ".join(f"{c:>36}" for c in cells))


def _folds(rows: list[dict], folds: int) -> list[list[dict]]:
    keys = sorted({r.get("article") or r["id"] for r in rows})
    part = {k: i % folds for i, k in enumerate(keys)}
    return [[r for r in rows if part[r.get("article") or r["id"]] == f] for f in range(folds)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+", help="NAME=ANSWERS.jsonl")
    parser.add_argument("--folds", type=int, default=2)
    args = parser.parse_args()
    collections = {}
    for spec in args.files:
        name, _, path = spec.partition("=")
        collections[name] = _load(Path(path))
    for name, rows in collections.items():
        passed = [r for r in rows if r["passed"]]
        print(
            f"{name}: {len(rows)} questions ({sum(r['answerable'] for r in rows)} answerable), "
            f"{len(passed)} passed their checks, {sum(r['right'] for r in passed)} of them right"
        )
    beta_v, beta_e = fit(collections, True), fit(collections, False)
    print(
        f"\nWITH_VERIFICATION = Calibration(intercept={beta_v[0]:.3f}, evidence={beta_v[1]:.3f}, "
        f"verified={beta_v[2]:.3f})"
    )
    print(f"EVIDENCE_ONLY = Calibration(intercept={beta_e[0]:.3f}, evidence={beta_e[1]:.3f})")
    _table(
        "fitted on all (in-sample)",
        {n: [(r, beta_v, beta_e) for r in rows] for n, rows in collections.items()},
    )
    held: dict[str, list[tuple[dict, np.ndarray, np.ndarray]]] = {}
    for name, rows in collections.items():
        held[name] = []
        for f, part in enumerate(parts := _folds(rows, args.folds)):
            rest = [r for g, other in enumerate(parts) if g != f for r in other]
            training = {**{n: c for n, c in collections.items() if n != name}, name: rest}
            bv, be = fit(training, True), fit(training, False)
            held[name] += [(r, bv, be) for r in part]
    _table(f"held out ({args.folds} folds per collection, fitted on the rest)", held)
    shipped_v = np.array(
        [
            abstention.WITH_VERIFICATION.intercept,
            abstention.WITH_VERIFICATION.evidence,
            abstention.WITH_VERIFICATION.verified,
        ]
    )
    shipped_e = np.array([abstention.EVIDENCE_ONLY.intercept, abstention.EVIDENCE_ONLY.evidence])
    _table(
        f"as shipped (ragcli/abstention.py; threshold {abstention.ABSTAIN_THRESHOLD})",
        {n: [(r, shipped_v, shipped_e) for r in rows] for n, rows in collections.items()},
    )


if __name__ == "__main__":
    main()
