from __future__ import annotations

import random
from pathlib import Path

import pytest

from ragcli.errors import UsageError
from ragcli.evaluation import (
    documents_from_chunks,
    load_dataset,
    read_qrels,
    read_queries,
    read_trec_run,
    score_run,
    write_trec_run,
)


def _random_case(seed: int):
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(300)]
    qrels, run = {}, {}
    for q in range(40):
        qid = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 25))
        qrels[qid] = {d: rng.randint(0, 4) for d in judged}
        ranked = rng.sample(docs, 120)
        # strictly decreasing, distinct scores: trec_eval orders by score
        run[qid] = [(d, 1000.0 - i - rng.random() * 0.5) for i, d in enumerate(ranked)]
    qrels["empty-run"] = {"d1": 2}
    return qrels, run


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_metrics_match_pytrec_eval(seed: int) -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    qrels, run = _random_case(seed)
    ours = score_run(run, qrels).per_query
    mrr_run = {q: dict(r[:10]) for q, r in run.items()}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10", "recall.100"})
    reference = evaluator.evaluate({q: dict(r) for q, r in run.items()})
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(mrr_run)
    for qid in run:
        if not any(g > 0 for g in qrels[qid].values()):
            continue  # trec_eval skips queries without a relevant document for recall
        assert ours[qid]["ndcg@10"] == pytest.approx(reference[qid]["ndcg_cut_10"], abs=1e-9)
        assert ours[qid]["recall@10"] == pytest.approx(reference[qid]["recall_10"], abs=1e-9)
        assert ours[qid]["recall@100"] == pytest.approx(reference[qid]["recall_100"], abs=1e-9)
        assert ours[qid]["mrr@10"] == pytest.approx(rr[qid]["recip_rank"], abs=1e-9)
    assert ours["empty-run"] == {"ndcg@10": 0, "recall@10": 0, "recall@100": 0, "mrr@10": 0}


def test_hand_computed_values() -> None:
    qrels = {"q": {"a": 3, "b": 1, "c": 0}}
    scores = score_run({"q": [("x", 3.0), ("b", 2.0), ("a", 1.0)]}, qrels).means
    dcg = 1 / 1.5849625007211562 + 3 / 2.0
    ideal = 3 / 1.0 + 1 / 1.5849625007211562
    assert scores["ndcg@10"] == pytest.approx(dcg / ideal)
    assert scores["mrr@10"] == pytest.approx(0.5)
    assert scores["recall@10"] == 1.0


def test_chunks_aggregate_to_their_best_document() -> None:
    ranked = [("a", 0.9), ("b", 0.8), ("a", 0.7), ("c", 0.6), ("b", 0.5)]
    assert documents_from_chunks(ranked, 10) == [("a", 0.9), ("b", 0.8), ("c", 0.6)]
    assert documents_from_chunks(ranked, 2) == [("a", 0.9), ("b", 0.8)]


def test_trec_run_round_trip_keeps_order_through_ties(tmp_path: Path) -> None:
    run = {"1": [("d3", 0.5), ("d1", 0.5), ("d2", 0.25)]}
    path = tmp_path / "run.trec"
    write_trec_run(run, path, "tag")
    lines = path.read_text().splitlines()
    assert lines[0] == "1 Q0 d3 1 0.500000 tag"
    back = read_trec_run(path)
    assert [d for d, _ in back["1"]] == ["d3", "d1", "d2"]
    scores = [s for _, s in back["1"]]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 3


def test_readers_accept_beir_and_plain_forms(tmp_path: Path) -> None:
    (tmp_path / "q.jsonl").write_text('{"_id": "7", "text": "what?"}\n')
    (tmp_path / "q.txt").write_text("first\n\nsecond\n")
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n7\td1\t2\n")
    (tmp_path / "qrels.trec").write_text("7 0 d1 2\n7 0 d2 0\n")
    assert read_queries(tmp_path / "q.jsonl") == {"7": "what?"}
    assert read_queries(tmp_path / "q.txt") == {"1": "first", "3": "second"}
    assert read_qrels(tmp_path / "qrels.tsv") == {"7": {"d1": 2}}
    assert read_qrels(tmp_path / "qrels.trec") == {"7": {"d1": 2, "d2": 0}}
    with pytest.raises(UsageError, match="qrels/test.tsv is missing"):
        (tmp_path / "corpus.jsonl").write_text("{}\n")
        (tmp_path / "queries.jsonl").write_text("{}\n")
        load_dataset(tmp_path)
