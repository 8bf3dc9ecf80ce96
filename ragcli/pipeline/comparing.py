"""Retrieval settings side by side: per-question nDCG@10 of each, with paired bootstrap intervals.

Used by ``ragcli tune`` and ``benchmarks/retrieval.py``. Each question's first rankings (query
vector, dense and lexical lists) are fetched once at the largest pool; every setting then only
fuses the part of them its pool takes, as ``search`` would (and redoes the dense search when it
uses feedback), so comparing a dozen settings costs little more than one evaluation. Like
``eval``, it scores the whole ranking, before ``search`` drops near-duplicates.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ragcli.evaluation import ndcg
from ragcli.pipeline.evaluating import judged_id
from ragcli.pipeline.searching import Searcher
from ragcli.records import Hit
from ragcli.retrieval import POOL, Fusion, Rankings, combine, rankings

COMPARE_POOL = 300  # chunks per first ranking fetched once, the most any setting may use
METRIC = "ndcg@10"


@dataclass
class JudgedQuestion:
    """A question, what a hit counts as (``unit``) and each unit's graded relevance."""

    qid: str
    text: str
    grades: dict[str, int]
    unit: Callable[[Hit], str]


@dataclass(frozen=True)
class Setting:
    """One setting to compare: a retrieval mode and, for hybrid, its fusion."""

    label: str
    mode: str
    fusion: Fusion

    def to_dict(self) -> dict[str, object]:
        return {"label": self.label, "mode": self.mode, "fusion": self.fusion.to_dict()}


@dataclass
class Interval:
    """A paired comparison: mean difference and its bootstrap confidence interval."""

    mean: float
    low: float
    high: float

    @property
    def beyond_noise(self) -> bool:
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict[str, float]:
        return {"mean": round(self.mean, 4), "low": round(self.low, 4), "high": round(self.high, 4)}


def document_unit(judged_ids: set[str]) -> Callable[[Hit], str]:
    """Hits count as their document, named as the judgments name it (path, name or stem)."""
    return lambda hit: judged_id(hit.doc_id, judged_ids)


def score(ranked: Iterable[Hit], question: JudgedQuestion, depth: int = 10) -> float:
    """nDCG@``depth`` of a chunk ranking, each unit counted at its first (best) chunk."""
    units: list[str] = []
    seen: set[str] = set()
    for hit in ranked:
        unit = question.unit(hit)
        if unit not in seen:
            seen.add(unit)
            units.append(unit)
            if len(units) == depth:
                break
    return ndcg(units, question.grades, depth)


class Comparison:
    """Questions over one open collection, scored under any number of settings."""

    def __init__(self, searcher: Searcher, questions: Sequence[JudgedQuestion]) -> None:
        self.searcher = searcher
        self.questions = list(questions)
        self._first: dict[str, Rankings] = {}
        self._hits: dict[int, Hit] = {}

    def first(self, question: JudgedQuestion) -> Rankings:
        """Both first rankings at the largest pool; each mode uses what it needs of them."""
        if question.qid not in self._first:
            s = self.searcher
            self._first[question.qid] = rankings(
                s.store, s.embedder, question.text, "hybrid", COMPARE_POOL, s.how.filters
            )
        return self._first[question.qid]

    def ranked(self, question: JudgedQuestion, setting: Setting) -> list[Hit]:
        pool = min(setting.fusion.pool or POOL, COMPARE_POOL)  # what search uses for k <= 20
        first = self.first(question).cut(pool)
        fused = combine(self.searcher.store, first, setting.mode, setting.fusion)
        missing = [c.row_id for c in fused if c.row_id not in self._hits]
        if missing:
            for hit in self.searcher.store.hits([(i, 0.0) for i in missing]):
                self._hits[hit.row_id] = hit
        return [self._hits[c.row_id] for c in fused if c.row_id in self._hits]

    def scores(self, setting: Setting) -> dict[str, float]:
        """Each question's nDCG@10 under one setting."""
        return {q.qid: score(self.ranked(q, setting), q) for q in self.questions}


def bootstrap(
    ours: dict[str, float], theirs: dict[str, float], rounds: int = 2000, seed: int = 0
) -> Interval:
    """Mean of ``ours - theirs`` over shared questions, with a 95% paired bootstrap interval."""
    keys = sorted(set(ours) & set(theirs))
    if not keys:
        return Interval(0.0, 0.0, 0.0)
    diffs = [ours[k] - theirs[k] for k in keys]
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds))
    return Interval(
        statistics.fmean(diffs), means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1]
    )


def mean(values: dict[str, float]) -> float:
    return statistics.fmean(values.values()) if values else 0.0
