from __future__ import annotations

from ragcli.models import Hit
from ragcli.prompting import build_messages, find_citations, format_passage


def _hit(n: int, words: int = 10) -> Hit:
    return Hit(
        n,
        0.9 - n / 10,
        " ".join(["word"] * words),
        f"doc{n}.md",
        f"k{n}",
        line_start=n,
        line_end=n + 2,
    )


def count(messages: list[dict[str, str]]) -> int:
    return sum(len(m["content"].split()) for m in messages)


def test_passages_are_numbered_with_their_sources() -> None:
    messages, packed = build_messages("What?", [_hit(1), _hit(2)], count, budget=10_000)
    assert packed == [_hit(1), _hit(2)]
    assert messages[0]["role"] == "system" and "[2]" in messages[0]["content"]
    user = messages[1]["content"]
    assert "[1] doc1.md, lines 1-3\n" in user and "[2] doc2.md, lines 2-4\n" in user
    assert "Question: What?" in user
    pdf = Hit(1, 0.5, "text", "r.pdf", "k", page=3, heading="Costs")
    assert format_passage(4, pdf).startswith("[4] r.pdf, p.3 (Costs)\n")


def test_budget_drops_passages_that_do_not_fit() -> None:
    empty, _ = build_messages("What?", [], count, budget=10_000)
    overhead = count(empty)
    hits = [_hit(1, 50), _hit(2, 500), _hit(3, 50)]
    messages, packed = build_messages("What?", hits, count, budget=overhead + 130)
    assert [h.rank for h in packed] == [1, 3]
    assert count(messages) <= overhead + 130


def test_citations_resolve_and_unknown_markers_are_reported() -> None:
    passages = [_hit(1), _hit(2)]
    cited, unknown = find_citations("A [2]. B [1, 2]. C [7]. D [2][9].", passages)
    assert [c.marker for c in cited] == [1, 2]
    assert cited[1].hit is passages[1]
    assert unknown == [7, 9]
    assert find_citations("No markers here.", passages) == ([], [])
