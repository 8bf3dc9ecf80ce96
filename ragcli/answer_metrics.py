"""Scoring generated answers: SQuAD 2.0's exact match and token F1, containment, citations,
abstention precision and recall, latency percentiles.

The normalisation and the two metrics follow the official SQuAD 2.0 evaluation script: lower
case, punctuation and the articles a/an/the dropped, whitespace collapsed; the best score over
the gold answers counts; an unanswerable question scores 1 only when the system gives no answer.
"""

from __future__ import annotations

import collections
import json
import math
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragcli.errors import UsageError
from ragcli.grounding import strip_markers

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD's ``normalize_answer``)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer."""
    if not golds:
        return float(not _tokens(prediction))
    return max(float(normalize_answer(prediction) == normalize_answer(g)) for g in golds)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """The best harmonic mean of token precision and recall over the gold answers."""
    if not golds:
        return float(not _tokens(prediction))
    return max(_f1(_tokens(prediction), _tokens(g)) for g in golds)


def _f1(predicted: list[str], gold: list[str]) -> float:
    if not predicted or not gold:
        return float(predicted == gold)
    common = collections.Counter(predicted) & collections.Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def contains_answer(response: str, golds: Sequence[str]) -> bool:
    """Whether a gold answer stands in the response, as whole normalised tokens."""
    said = f" {normalize_answer(strip_markers(response))} "
    return any(normalize_answer(g) and f" {normalize_answer(g)} " in said for g in golds)


@dataclass
class AnswerQuestion:
    """A question with what a right answer says and where it stands."""

    id: str
    question: str
    answers: list[str]
    gold: list[str]  # document ids or sources that hold the answer
    answerable: bool


def load_answer_questions(path: Path) -> list[AnswerQuestion]:
    """Questions from JSON Lines: SQuAD-style (``answers``, ``doc_ids``, ``is_impossible``) or
    the sample corpus's (``answer``, ``source``, ``answerable``)."""
    questions = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            questions.append(_question(record, number))
        except (ValueError, TypeError, KeyError) as e:
            raise UsageError(
                f"{path}, line {number}: not a question record ({e})",
                'each line a JSON object: {"id", "question", "answers": [...], '
                '"doc_ids": [...], "is_impossible"}',
            ) from None
    if not questions:
        raise UsageError(f"{path} holds no questions")
    return questions


def _question(record: dict[str, Any], number: int) -> AnswerQuestion:
    answers = record.get("answers")
    if answers is None:
        answers = [record["answer"]] if record.get("answer") else []
    gold = record.get("doc_ids")
    if gold is None:
        gold = [record["source"]] if record.get("source") else []
    answerable = not record.get("is_impossible", False) and record.get("answerable", True)
    answerable = bool(answerable and answers)
    return AnswerQuestion(
        id=str(record.get("id", number)),
        question=str(record["question"]),
        answers=[str(a) for a in answers],
        gold=[str(g) for g in gold],
        answerable=answerable,
    )


@dataclass
class AnswerScore:
    """How one answer did."""

    id: str
    answerable: bool
    abstained: bool
    exact_match: float
    f1: float
    contains: bool
    cited_gold: bool
    seconds: float
    first_token_s: float | None = None
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _cites_gold(citations: Iterable[dict[str, Any]], gold: Sequence[str]) -> bool:
    wanted = set(gold)
    for cited in citations:
        source, doc_id = str(cited.get("source") or ""), str(cited.get("doc_id") or "")
        if doc_id in wanted or source in wanted or any(source.endswith("/" + g) for g in wanted):
            return True
    return False


def score_answer(
    question: AnswerQuestion,
    text: str,
    abstained: bool,
    citations: Sequence[dict[str, Any]],
    seconds: float,
    first_token_s: float | None = None,
    confidence: float | None = None,
) -> AnswerScore:
    """Score one response: a withheld answer is the empty answer."""
    said = "" if abstained else strip_markers(text)
    golds = question.answers if question.answerable else []
    return AnswerScore(
        id=question.id,
        answerable=question.answerable,
        abstained=abstained,
        exact_match=exact_match(said, golds),
        f1=token_f1(said, golds),
        contains=bool(golds) and not abstained and contains_answer(said, golds),
        cited_gold=not abstained and _cites_gold(citations, question.gold),
        seconds=seconds,
        first_token_s=first_token_s,
        confidence=confidence,
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100), linear between the nearest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass
class AnswerSummary:
    """An answer evaluation's figures; a rate is None where no question counts towards it."""

    questions: int
    answerable: int
    unanswerable: int
    exact_match: float | None
    f1: float | None
    contains: float | None  # of answerable questions, a gold answer stands in the response
    cited_gold: float | None  # of answered answerable questions, a citation is a gold document
    wrongly_abstained: float | None  # of answerable questions
    abstained_unanswerable: float | None  # of unanswerable questions
    abstention_precision: float | None  # of abstentions, the share on unanswerable questions
    abstention_recall: float | None  # same as abstained_unanswerable
    latency_s: dict[str, float | None] = field(default_factory=dict)
    first_token_s: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def summarize(scores: Sequence[AnswerScore]) -> AnswerSummary:
    """The figures over many scored answers."""
    answerable = [s for s in scores if s.answerable]
    unanswerable = [s for s in scores if not s.answerable]
    answered = [s for s in answerable if not s.abstained]
    abstained = [s for s in scores if s.abstained]
    recall = _mean([float(s.abstained) for s in unanswerable])
    seconds = [s.seconds for s in scores]
    first = [s.first_token_s for s in scores if s.first_token_s is not None]
    return AnswerSummary(
        questions=len(scores),
        answerable=len(answerable),
        unanswerable=len(unanswerable),
        exact_match=_mean([s.exact_match for s in answerable]),
        f1=_mean([s.f1 for s in answerable]),
        contains=_mean([float(s.contains) for s in answerable]),
        cited_gold=_mean([float(s.cited_gold) for s in answered]),
        wrongly_abstained=_mean([float(s.abstained) for s in answerable]),
        abstained_unanswerable=recall,
        abstention_precision=_mean([float(not s.answerable) for s in abstained]),
        abstention_recall=recall,
        latency_s={f"p{q}": percentile(seconds, q) for q in (50, 90, 95)},
        first_token_s={f"p{q}": percentile(first, q) for q in (50, 90, 95)},
    )
