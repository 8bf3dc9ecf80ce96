"""The ``eval --answers`` use case: ask judged questions, score the answers and the abstentions.

Every question is answered, checked and verified with the abstention decision off, and the
decision (``ragcli/abstention.py``: the gate before generating, then the confidence threshold)
is then applied to what was recorded, exactly as ``ask`` applies it. That gives the figures at
the threshold in use and, from the same answers, at every other threshold: the trade-off between
the share of questions answered and how many of those answers are right.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragcli import abstention
from ragcli.answer_metrics import (
    AnswerQuestion,
    AnswerScore,
    AnswerSummary,
    contains_answer,
    load_answer_questions,
    score_answer,
    summarize,
)
from ragcli.config import Settings
from ragcli.errors import UsageError
from ragcli.evaluation import Dataset
from ragcli.pipeline.answering import abstain_threshold, ask_batch
from ragcli.pipeline.evaluating import dataset_collection
from ragcli.pipeline.events import Events
from ragcli.pipeline.ingesting import ingest
from ragcli.records import Answer

# Confidence thresholds the trade-off is traced at.
CURVE_STEPS = 41


@dataclass
class CurvePoint:
    """Answers at one abstention threshold."""

    threshold: float
    answered: float  # share of all questions answered
    correct: float | None  # of the answered ones, share right (an answerable one, answer found)
    abstention_precision: float | None
    abstention_recall: float | None

    def to_dict(self) -> dict[str, Any]:
        return {k: _rounded(v, 4) for k, v in self.__dict__.items()}


@dataclass
class AnswerEvalReport:
    """An answer evaluation: the figures at the threshold in use, the trade-off, the rows."""

    collection: str
    questions_file: str
    threshold: float
    summary: AnswerSummary
    curve: list[CurvePoint]
    seconds: float
    scores: list[AnswerScore] = field(default_factory=list)
    saved: str | None = None
    plot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {}
        for name, value in self.summary.to_dict().items():
            if isinstance(value, dict):  # latency percentiles
                summary[name] = {k: _rounded(v, 3) for k, v in value.items()}
            else:
                summary[name] = _rounded(value, 4)
        return {
            "collection": self.collection,
            "questions_file": self.questions_file,
            "threshold": self.threshold,
            "summary": summary,
            "curve": [p.to_dict() for p in self.curve],
            "seconds": round(self.seconds, 3),
            "saved": self.saved,
            "plot": self.plot,
        }


def _rounded(value: Any, digits: int) -> Any:
    return round(value, digits) if isinstance(value, float) else value


def _row(
    question: AnswerQuestion, answer: Answer, score: AnswerScore, reason: str | None
) -> dict[str, Any]:
    """One question's line in ``--save``: what was asked, said, cited and decided."""
    return {
        "id": question.id,
        "question": question.question,
        "gold_answers": question.answers,
        "gold_documents": question.gold,
        "answerable": question.answerable,
        "answer": answer.text,
        "abstained": score.abstained,
        "abstain_reason": reason,
        # What the answer's own checks said, whatever the threshold (None: it passed them).
        "checks": answer.abstain_reason,
        "evidence": round(answer.evidence, 4),
        "verified": answer.verified,
        "confidence": answer.confidence,
        "citations": [c.to_dict() for c in answer.citations],
        "sentences": answer.sentences,
        "passages": [h.to_dict() for h in answer.passages],
        "exact_match": score.exact_match,
        "f1": round(score.f1, 4),
        "contains": score.contains,
        "cited_gold": score.cited_gold,
        "timings": {k: round(v, 4) for k, v in answer.timings.items()},
    }


def _gated(answer: Answer, settings: Settings, threshold: float) -> tuple[bool, str | None]:
    """Whether ``ask`` would have withheld the answer at ``threshold``, and why."""
    if abstention.withheld_before(answer.evidence, threshold, settings.min_score):
        return True, "weak retrieval"
    if answer.abstained:
        return True, answer.abstain_reason
    reason = abstention.withheld_after(
        answer.confidence, answer.verified, threshold, settings.min_verified
    )
    return reason is not None, reason


def _answered(
    settings: Settings,
    questions: list[AnswerQuestion],
    events: Events,
) -> Iterator[tuple[AnswerQuestion, Answer, float]]:
    """Each question with its ungated answer and the seconds it took."""
    by_index = {str(i): q for i, q in enumerate(questions)}
    pairs = ((key, q.question) for key, q in by_index.items())
    events.start(len(questions), "answering")
    started = time.perf_counter()
    try:
        for key, answer in ask_batch(settings, pairs, None, events, abstain=False):
            seconds = time.perf_counter() - started
            events.advance()
            yield by_index[key], answer, seconds
            started = time.perf_counter()
    finally:
        events.finish()


def _dataset_settings(settings: Settings, folder: Path, events: Events) -> Settings:
    """Settings for a collection of ``folder/corpus.jsonl``, ingested (or brought up to date)."""
    corpus = folder / "corpus.jsonl"
    if not corpus.is_file():
        raise UsageError(
            f"{folder} holds no corpus.jsonl", "give a folder with corpus.jsonl, or -c COLLECTION"
        )
    name = dataset_collection(settings, Dataset(folder, {}, {}))
    settings = dataclasses.replace(settings, collection=name)
    events.status(f"indexing {corpus} into collection '{name}'")
    ingest(settings, [str(corpus)], events)
    return settings


def evaluate_answers(
    settings: Settings,
    questions_file: Path,
    dataset_dir: Path | None = None,
    events: Events | None = None,
    save: Path | None = None,
    plot: Path | None = None,
) -> AnswerEvalReport:
    """Ask every question of ``questions_file`` and score what comes back: of the collection
    in ``settings``, or of ``dataset_dir``'s corpus.jsonl (ingested first)."""
    events = events or Events()
    questions = load_answer_questions(questions_file)
    if dataset_dir is not None:
        settings = _dataset_settings(settings, dataset_dir, events)
    threshold = abstain_threshold(settings)
    started = time.perf_counter()
    results: list[tuple[AnswerQuestion, Answer, AnswerScore]] = []
    out = _open_save(save)
    try:
        for question, answer, seconds in _answered(settings, questions, events):
            withheld, reason = _gated(answer, settings, threshold)
            retrieve = answer.timings.get("retrieve_s", 0.0)
            first = answer.timings.get("first_token_s")
            if reason == "weak retrieval":  # ask would have stopped after retrieval
                seconds, first = retrieve, None
            score = score_answer(
                question,
                answer.text,
                withheld,
                [c.to_dict() for c in answer.citations],
                seconds,
                first_token_s=(retrieve + first) if first is not None else None,
                confidence=answer.confidence,
            )
            results.append((question, answer, score))
            if out is not None:
                row = _row(question, answer, score, reason)
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                out.flush()
    finally:
        if out is not None:
            out.close()
    scores = [s for _, _, s in results]
    ungated = [(q, a) for q, a, _ in results]  # each answer as the model and the check left it
    report = AnswerEvalReport(
        collection=settings.collection,
        questions_file=str(questions_file),
        threshold=threshold,
        summary=summarize(scores),
        curve=trade_off(ungated, settings),
        seconds=time.perf_counter() - started,
        scores=scores,
        saved=str(save) if save else None,
    )
    if plot is not None:
        plot_trade_off(report, plot)
        report.plot = str(plot)
    return report


def _open_save(save: Path | None) -> Any:
    if save is None:
        return None
    try:
        return save.open("w", encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write {save}: {e.strerror or e}") from None


def trade_off(answers: list[tuple[AnswerQuestion, Answer]], settings: Settings) -> list[CurvePoint]:
    """Answered share and correctness as the confidence threshold moves from 0 to 1.

    A question counts as answered at a threshold when ``ask`` would give its answer there (see
    ``_gated``); it is right when the question is answerable and a gold answer stands in it.
    """
    right_answer = [q.answerable and contains_answer(a.text, q.answers) for q, a in answers]
    points = []
    for step in range(CURVE_STEPS):
        threshold = step / (CURVE_STEPS - 1)
        answered = right = withheld = withheld_rightly = unanswerable = 0
        for (question, answer), good in zip(answers, right_answer):
            gives = not _gated(answer, settings, threshold)[0]
            unanswerable += not question.answerable
            if gives:
                answered += 1
                right += good
            else:
                withheld += 1
                withheld_rightly += not question.answerable
        points.append(
            CurvePoint(
                threshold=threshold,
                answered=answered / len(answers) if answers else 0.0,
                correct=right / answered if answered else None,
                abstention_precision=withheld_rightly / withheld if withheld else None,
                abstention_recall=withheld_rightly / unanswerable if unanswerable else None,
            )
        )
    return points


def plot_trade_off(report: AnswerEvalReport, path: Path) -> None:
    """Draw the trade-off to a PNG (matplotlib, the ``plot`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(
            "--plot needs matplotlib", "pip install 'ragcli[plot]' (or matplotlib)"
        ) from None
    points = [(p.answered, p.correct) for p in report.curve if p.correct is not None]
    figure, axes = plt.subplots(figsize=(6, 4.5))
    axes.plot([x for x, _ in points], [y for _, y in points], marker=".")
    here = min(report.curve, key=lambda p: abs(p.threshold - report.threshold))
    if here.correct is not None:
        axes.scatter([here.answered], [here.correct], color="red", zorder=3)
        axes.annotate(f"threshold {report.threshold:.2f}", (here.answered, here.correct))
    axes.set_xlabel("share of questions answered")
    axes.set_ylabel("share of answers that are right")
    axes.set_xlim(0, 1.02)
    axes.set_ylim(0, 1.02)
    axes.set_title(f"{report.collection}: answered vs right as the threshold moves")
    axes.grid(True, alpha=0.3)
    try:
        figure.savefig(path, dpi=110, bbox_inches="tight")
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        plt.close(figure)
