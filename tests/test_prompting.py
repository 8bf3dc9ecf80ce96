from __future__ import annotations

from ragcli.prompting import build_messages, format_passage, merge_passages, pack_passages
from ragcli.records import Hit


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


def _chunk(ordinal: int, text: str, source: str = "doc.md", rank: int = 1) -> Hit:
    return Hit(
        rank, 1.0 / rank, text, source, f"{source}:{ordinal}", line_start=ordinal * 10,
        line_end=ordinal * 10 + 5, heading="Guide", ordinal=ordinal,
    )  # fmt: skip


def test_neighbouring_chunks_merge_and_duplicates_drop() -> None:
    first = _chunk(2, "Guide\n\nAlpha one. Beta two.", rank=1)
    second = _chunk(3, "Guide\n\nBeta two. Gamma three.", rank=2)  # overlaps "Beta two."
    far = _chunk(7, "Guide\n\nOmega.", rank=3)
    repeat = _chunk(1, "Guide\n\nAlpha one. Beta two.", "copy.md", rank=4)
    merged, dropped = merge_passages([first, second, far, repeat])
    assert [h.chunk_key for h in merged] == ["doc.md:2", "doc.md:7"]
    assert merged[0].text == "Guide\n\nAlpha one. Beta two.\n\nGamma three."
    assert (merged[0].line_start, merged[0].line_end) == (20, 35)
    assert {d["chunk_id"]: d["reason"] for d in dropped} == {
        "doc.md:3": "merged",
        "copy.md:1": "duplicate",
    }


def test_pack_reports_passages_over_budget() -> None:
    empty, _ = build_messages("What?", [], count, budget=10_000)
    hits = [_hit(1, 20), _hit(2, 400), _hit(3, 20)]
    hits[2].text = " ".join(["other"] * 20)
    packing = pack_passages("What?", hits, count, budget=count(empty) + 80)
    assert [h.rank for h in packing.passages] == [1, 3]
    assert packing.dropped == [{"chunk_id": "k2", "reason": "over budget"}]
