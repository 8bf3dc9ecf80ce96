"""The answer scorer, against hand-computed cases and SQuAD 2.0's own evaluation functions."""

from __future__ import annotations

import collections
import json
import random
import re
import string
from pathlib import Path

import pytest

from ragcli.answer_metrics import (
    AnswerQuestion,
    contains_answer,
    exact_match,
    load_answer_questions,
    normalize_answer,
    percentile,
    score_answer,
    summarize,
    token_f1,
)
from ragcli.errors import UsageError

# -- the reference: the functions of SQuAD 2.0's official evaluate-v2.0.py ----------------------


def _ref_normalize(s: str) -> str:
    def remove_articles(text: str) -> str:
        return re.sub(re.compile(r"\b(a|an|the)\b", re.UNICODE), " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def _ref_tokens(s: str) -> list[str]:
    return _ref_normalize(s).split() if s else []


def _ref_exact(gold: str, pred: str) -> int:
    return int(_ref_normalize(gold) == _ref_normalize(pred))


def _ref_f1(gold: str, pred: str) -> float:
    gold_toks, pred_toks = _ref_tokens(gold), _ref_tokens(pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def _ref_scores(golds: list[str], pred: str) -> tuple[float, float]:
    golds = [g for g in golds if _ref_normalize(g)] or [""]  # as the script does
    return max(_ref_exact(g, pred) for g in golds), max(_ref_f1(g, pred) for g in golds)


# -- hand-computed cases -----------------------------------------------------------------------


def test_normalisation_drops_case_punctuation_articles_and_extra_spaces() -> None:
    assert normalize_answer("The  Eiffel-Tower, in an instant!") == "eiffeltower in instant"
    assert normalize_answer("A") == ""


def test_exact_match_and_f1_by_hand() -> None:
    assert exact_match("the Normans", ["Normans", "Norse"]) == 1.0
    assert exact_match("Normans from Normandy", ["Normans"]) == 0.0
    # predicted "in 911 ad" vs gold "911": precision 1/3, recall 1 -> F1 0.5
    assert token_f1("in 911 AD", ["911"]) == pytest.approx(0.5)
    # the best gold counts: "10th century" vs "10th and 11th centuries" / "10th century"
    assert token_f1("the 10th century", ["10th and 11th centuries", "10th century"]) == 1.0
    assert token_f1("Rollo", ["Charles III"]) == 0.0


def test_an_unanswerable_question_scores_only_an_empty_answer() -> None:
    assert exact_match("", []) == 1.0 and token_f1("", []) == 1.0
    assert exact_match("Rollo", []) == 0.0 and token_f1("Rollo", []) == 0.0


def test_containment_is_by_whole_tokens_and_ignores_markers() -> None:
    assert contains_answer("The charter was granted in 1762 [1].", ["1762"])
    assert not contains_answer("It was granted in 17620 [1].", ["1762"])
    assert contains_answer("Designed by Odile Varrance [2][3].", ["odile varrance"])
    assert not contains_answer("Designed by Odile [2].", ["Odile Varrance"])


@pytest.mark.parametrize("seed", range(5))
def test_the_scorer_agrees_with_squad_s_own_functions(seed: int) -> None:
    rng = random.Random(seed)
    words = ["the", "a", "Normans", "911", "Rollo", "Charles", "III,", "in", "AD.", "century"]
    for _ in range(200):
        golds = [
            " ".join(rng.choices(words, k=rng.randint(1, 4))) for _ in range(rng.randint(1, 3))
        ]
        pred = " ".join(rng.choices(words, k=rng.randint(0, 6)))
        ref_em, ref_f1 = _ref_scores(golds, pred)
        kept = [g for g in golds if normalize_answer(g)]
        assert exact_match(pred, kept) == ref_em, (golds, pred)
        assert token_f1(pred, kept) == pytest.approx(ref_f1), (golds, pred)


# -- one answer, many answers ------------------------------------------------------------------


def _q(answerable: bool, qid: str = "q") -> AnswerQuestion:
    answers = ["1762"] if answerable else []
    gold = ["history.txt"] if answerable else []
    return AnswerQuestion(qid, "When?", answers, gold, answerable)


def test_a_withheld_answer_is_the_empty_answer() -> None:
    right = score_answer(_q(False), "", True, [], 1.0)
    assert (right.exact_match, right.f1, right.cited_gold) == (1.0, 1.0, False)
    wrong = score_answer(_q(True), "", True, [], 1.0)
    assert (wrong.exact_match, wrong.contains) == (0.0, False)


def test_a_citation_counts_when_it_names_a_gold_document() -> None:
    cited = [{"source": "corpus/history.txt", "doc_id": None}]
    assert score_answer(_q(True), "In 1762 [1].", False, cited, 1.0).cited_gold
    other = [{"source": "observatory.md", "doc_id": None}]
    assert not score_answer(_q(True), "In 1762 [1].", False, other, 1.0).cited_gold
    by_id = [{"source": "corpus.jsonl", "doc_id": "Normans-03"}]
    question = AnswerQuestion("n", "When?", ["911"], ["Normans-03"], True)
    assert score_answer(question, "In 911 [1].", False, by_id, 1.0).cited_gold


def test_the_summary_counts_abstention_both_ways() -> None:
    scores = [
        score_answer(_q(True, "a1"), "In 1762 [1].", False, [{"source": "history.txt"}], 2.0),
        score_answer(_q(True, "a2"), "", True, [], 1.0),  # wrongly withheld
        score_answer(_q(False, "u1"), "", True, [], 1.0),  # rightly withheld
        score_answer(_q(False, "u2"), "In 1800 [1].", False, [], 4.0),  # answered anyway
    ]
    summary = summarize(scores)
    assert (summary.answerable, summary.unanswerable) == (2, 2)
    assert summary.contains == 0.5 and summary.cited_gold == 1.0
    assert summary.wrongly_abstained == 0.5 and summary.abstained_unanswerable == 0.5
    assert summary.abstention_precision == 0.5 and summary.abstention_recall == 0.5
    assert summary.latency_s["p50"] == 1.5
    assert summary.exact_match == 0.0 and summary.f1 == pytest.approx((2 / 3) / 2)


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 90) == 5.0
    assert percentile([], 50) is None


def test_both_question_formats_load(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    records = [
        {"id": "s", "question": "Q1?", "answers": ["911"], "doc_ids": ["N-3"]},
        {"id": "u", "question": "Q2?", "answers": [], "doc_ids": [], "is_impossible": True},
        {"id": "q01", "question": "Q3?", "answer": "1762", "source": "history.txt"},
        {"id": "q28", "question": "Q4?", "answer": None, "source": None, "answerable": False},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    loaded = load_answer_questions(path)
    assert [(q.id, q.answerable, q.answers, q.gold) for q in loaded] == [
        ("s", True, ["911"], ["N-3"]),
        ("u", False, [], []),
        ("q01", True, ["1762"], ["history.txt"]),
        ("q28", False, [], []),
    ]


def test_a_bad_questions_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "x"}\n')
    with pytest.raises(UsageError, match="line 1: not a question record"):
        load_answer_questions(path)
    with pytest.raises(UsageError, match="cannot read"):
        load_answer_questions(tmp_path / "missing.jsonl")


def test_merged_markers_are_not_part_of_the_answer() -> None:
    # The sentence check writes a run of markers as "[1, 2]"; scoring must not read "1 2".
    score = score_answer(_q(True), "1762 [1, 2]", False, [], 1.0)
    assert score.exact_match == 1.0 and score.f1 == 1.0 and score.contains
