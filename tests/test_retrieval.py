from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragcli import pipeline
from ragcli.config import load_settings
from ragcli.errors import NoMatchError, UsageError
from ragcli.filters import Filters
from ragcli.records import Hit
from ragcli.retrieval import Fusion, _distinct, fuse, query_terms

pytestmark = pytest.mark.usefixtures("fake_models")


def test_query_terms_drop_stopwords_and_repeats() -> None:
    assert query_terms("What is the Kettle works' kettle output?") == ["kettle", "works", "output"]
    assert query_terms("the of and") == []


def test_fusion_rewards_agreement_and_follows_weights() -> None:
    dense = [(1, 0.9), (2, 0.8), (3, 0.7)]
    lexical = [(3, 12.0), (4, 9.0)]
    fused = fuse(dense, lexical, Fusion(method="rrf", k=60))
    assert fused[0].row_id == 3  # found by both
    assert fused[0].score == pytest.approx(1 / 63 + 1 / 61)
    assert (fused[0].dense_rank, fused[0].lexical_rank) == (3, 1)
    lexical_heavy = fuse(
        dense, lexical, Fusion(method="rrf", k=60, dense_weight=0.1, lexical_weight=1.0)
    )
    assert [c.row_id for c in lexical_heavy[:2]] == [3, 4]


def _hit(rank: int, text: str, source: str) -> Hit:
    return Hit(rank, 1.0 / rank, text, source, f"k{rank}")


def test_near_duplicates_and_per_document_cap() -> None:
    hits = [
        _hit(1, "the lamp burned whale oil until 1901", "a"),
        _hit(2, "The lamp burned whale oil until 1901!", "b"),  # same words
        _hit(3, "the keeper was Ivo Sand", "a"),
        _hit(4, "ferries stopped running", "a"),
    ]
    assert [h.rank for h in _distinct(hits, None)] == [1, 3, 4]
    assert [h.rank for h in _distinct(hits, 1)] == [1]


def test_modes_explain_and_path_filter(corpus: Path) -> None:
    settings = load_settings()
    pipeline.ingest(settings, [str(corpus)])
    for mode in ("dense", "lexical", "hybrid"):
        result = pipeline.search(load_settings(mode=mode), "whale oil lamp", top_k=3, explain=True)
        assert result.mode == mode
        assert result.hits[0].source.endswith("gamma.rst"), mode
        explain = result.hits[0].explain
        assert explain is not None
        # the score shown is the passage's cosine similarity, except in lexical mode (BM25)
        shown = "fused_score" if mode == "lexical" else "similarity"
        assert explain[shown] == pytest.approx(result.hits[0].score, abs=1e-6)
        if mode != "lexical":
            assert explain["dense_rank"] is not None
            assert 0 < explain["similarity"] <= 1
            assert all(-1 <= h.score <= 1 for h in result.hits)
        else:
            assert explain["similarity"] is None
        if mode != "dense":
            assert explain["lexical_rank"] is not None and explain["lexical_score"] > 0
    only_md = pipeline.search(settings, "whale oil lamp", top_k=5, filters=Filters("*.md"))
    assert only_md.hits and all(h.source.endswith(".md") for h in only_md.hits)
    with pytest.raises(NoMatchError, match=r"matches the filters \(path '\*.nothing'\)"):
        pipeline.search(settings, "whale oil lamp", filters=Filters("*.nothing"))


def test_unknown_mode_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown retrieval mode"):
        load_settings(mode="fuzzy")


def test_lexical_index_follows_updates(corpus: Path) -> None:
    settings = load_settings(mode="lexical")
    pipeline.ingest(settings, [str(corpus)])
    assert pipeline.search(settings, "Brindle").hits
    (corpus / "alpha.txt").write_text("Nothing about bridges any more.\n")
    pipeline.ingest(settings, [str(corpus)])
    assert not any("Brindle" in h.text for h in pipeline.search(settings, "Brindle").hits)
    assert pipeline.search(settings, "bridges").hits[0].source.endswith("alpha.txt")


def test_jsonl_corpus_records_become_documents(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    records = [
        {"_id": "d1", "title": "Wing flutter", "text": "Flutter of swept wings at high speed."},
        {"_id": "d2", "title": "Heat transfer", "text": "Heat transfer in laminar flow."},
    ]
    corpus.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    settings = load_settings()
    report = pipeline.ingest(settings, [str(corpus)])
    assert report.added == [str(corpus)] or report.added[0].endswith("corpus.jsonl")
    hits = pipeline.search(settings, "laminar heat transfer", top_k=1).hits
    assert hits[0].doc_id == "d2" and hits[0].source.endswith("corpus.jsonl#d2")
    assert hits[0].heading == "Heat transfer"
    again = pipeline.ingest(settings, [str(corpus)])
    assert again.chunks_added == 0 and len(again.unchanged) == 1
    corpus.write_text(json.dumps(records[0]) + "\n")
    changed = pipeline.ingest(settings, [str(corpus)])
    assert changed.chunks_removed == 2 and changed.chunks_added == 1


def test_search_batch_loads_once_and_keeps_ids(corpus: Path) -> None:
    settings = load_settings()
    pipeline.ingest(settings, [str(corpus)])
    results = list(pipeline.search_batch(settings, [("a", "whale oil"), ("b", "kettles")]))
    assert [qid for qid, _ in results] == ["a", "b"]
    assert results[1][1].hits[0].source.endswith("beta.md")
