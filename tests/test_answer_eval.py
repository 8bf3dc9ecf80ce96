"""``eval --answers`` as a use case, on the fake models: scores, the gate, the trade-off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragcli import pipeline
from ragcli.config import load_settings
from ragcli.pipeline.answer_eval import evaluate_answers

from .conftest import FakeGenerator

pytestmark = pytest.mark.usefixtures("fake_models")


def _questions(tmp_path: Path) -> Path:
    path = tmp_path / "questions.jsonl"
    records = [
        {"id": "k", "question": "Who was the lighthouse keeper?", "answers": ["Ivo Sand"],
         "doc_ids": ["gamma.rst"]},
        {"id": "b", "question": "When did the Brindle bridge open?", "answers": ["1932"],
         "doc_ids": ["alpha.txt"]},
        {"id": "u", "question": "Who painted the harbour mural?", "answers": [],
         "is_impossible": True},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_every_answer_is_scored_and_saved(corpus: Path, tmp_path: Path) -> None:
    settings = load_settings(abstain_threshold=0.0, top_k=3, context="full")
    pipeline.ingest(settings, [str(corpus)])
    saved = tmp_path / "answers.jsonl"
    report = evaluate_answers(settings, _questions(tmp_path), save=saved)
    rows = [json.loads(line) for line in saved.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["k", "b", "u"]
    by_id = {r["id"]: r for r in rows}
    # The fake answers with the first sentence of the best passage: right for both questions.
    assert by_id["k"]["contains"] and by_id["k"]["cited_gold"]
    assert "Ivo Sand" in by_id["k"]["answer"]
    assert by_id["k"]["passages"] and by_id["k"]["sentences"][0]["supported"]
    assert by_id["b"]["contains"] and not by_id["u"]["abstained"]
    summary = report.summary
    assert (summary.answerable, summary.unanswerable) == (2, 1)
    assert summary.contains == 1.0 and summary.wrongly_abstained == 0.0
    assert summary.abstained_unanswerable == 0.0 and summary.latency_s["p50"] is not None
    data = report.to_dict()
    assert data["threshold"] == 0.0 and len(data["curve"]) == 41


def test_the_decision_is_applied_as_ask_applies_it(corpus: Path, tmp_path: Path) -> None:
    # no confidence reaches 1: ask would withhold every answer before generating
    settings = load_settings(abstain_threshold=1.0, context="full")
    pipeline.ingest(settings, [str(corpus)])
    report = evaluate_answers(settings, _questions(tmp_path))
    assert all(s.abstained for s in report.scores)
    assert report.summary.wrongly_abstained == 1.0
    assert report.summary.abstained_unanswerable == 1.0
    assert report.summary.abstention_precision == pytest.approx(1 / 3)
    # Answers were still generated, so the trade-off covers the thresholds below the gate.
    curve = report.curve
    assert curve[0].threshold == 0.0 and curve[0].answered == 1.0
    assert curve[0].correct == pytest.approx(2 / 3)
    assert curve[-1].threshold == 1.0
    shares = [p.answered for p in curve]
    assert shares == sorted(shares, reverse=True)


def test_the_trade_off_is_drawn(corpus: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    settings = load_settings(abstain_threshold=0.0)
    pipeline.ingest(settings, [str(corpus)])
    plot = tmp_path / "trade-off.png"
    report = evaluate_answers(settings, _questions(tmp_path), plot=plot)
    assert report.plot == str(plot)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_answers_from_the_command_line(corpus: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ragcli.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(corpus)]).exit_code == 0
    questions = _questions(tmp_path)
    result = runner.invoke(
        app,
        ["eval", "--answers", str(questions), "--abstain-threshold", "0", "--context", "full",
         "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["summary"]["answerable"] == 2 and data["summary"]["contains"] == 1.0
    assert data["threshold"] == 0.0
    plain = runner.invoke(app, ["eval", "--answers", str(questions)])
    assert plain.exit_code == 0 and "figure\tvalue" in plain.stdout
    wrong = runner.invoke(app, ["eval", "--save", str(tmp_path / "x.jsonl")])
    assert wrong.exit_code == 2 and "--save and --plot go with --answers" in wrong.output


class _DoubtingGenerator(FakeGenerator):
    """The fake generator, also asked to verify: "yes" with the probability it is given."""

    verdict = 0.2
    asked: list[list[dict[str, str]]] = []

    def yes_probability(self, messages: list[dict[str, str]]) -> float:
        type(self).asked.append(messages)
        return self.verdict


def test_the_verification_and_the_confidence_decide_whether_to_answer(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragcli import abstention
    from ragcli.models import generation
    from ragcli.prompting import VERIFY_QUESTION

    monkeypatch.setattr(generation, "open_generator", _DoubtingGenerator)
    settings = load_settings(abstain_threshold=0.0)
    pipeline.ingest(settings, [str(corpus)])
    question = "Who was the lighthouse keeper?"
    # threshold 0: no decision to make, so the generator is not asked
    unasked = pipeline.ask(settings, question)
    assert unasked.verified is None and not unasked.abstained and not _DoubtingGenerator.asked
    assert unasked.confidence is None
    doubted = pipeline.ask(load_settings(abstain_threshold=0.0, min_verified=0.5), question)
    assert doubted.abstained and doubted.abstain_reason == "not verified"
    assert doubted.verified == 0.2 and doubted.to_dict()["verified"] == 0.2
    (messages,) = _DoubtingGenerator.asked
    # The answer's own prompt up to the question (the prompt cache holds it), then the check.
    assert [m["role"] for m in messages] == ["system", "user"]
    content = messages[1]["content"]
    assert content.endswith(f"Question: {question}\n\n{VERIFY_QUESTION}")
    # the confidence decides: P(right) from the evidence and the verification
    sure = pipeline.ask(load_settings(abstain_threshold=0.01), question)
    assert not sure.abstained and sure.verified == 0.2
    assert sure.confidence == pytest.approx(abstention.confidence(sure.evidence, 0.2))
    assert sure.to_dict()["confidence"] == round(sure.confidence, 4)
    # between what it got and what a verification of 1 would give: generated, then withheld
    best = abstention.WITH_VERIFICATION.best_case(sure.evidence)
    doubtful = pipeline.ask(load_settings(abstain_threshold=(sure.confidence + best) / 2), question)
    assert doubtful.abstained and doubtful.abstain_reason == "low confidence" and doubtful.text
    # a threshold no confidence reaches: withheld before generating
    hopeless = pipeline.ask(load_settings(abstain_threshold=1.0), question)
    assert hopeless.abstained and hopeless.abstain_reason == "weak retrieval"
    assert hopeless.text == "" and hopeless.confidence is None


def test_yes_share_reads_either_case_and_spacing() -> None:
    import math

    from ragcli.models.generation import yes_share

    share = yes_share([("Yes", math.log(0.3)), (" yes", math.log(0.1)), ("No", math.log(0.4))])
    assert share == pytest.approx(0.5)
    assert yes_share([("The", -0.1)]) is None
