from __future__ import annotations

from ragcli.prompting import (
    FOCUS_WORDS,
    FOCUSED_SYSTEM_PROMPT,
    build_messages,
    focus_passages,
    format_passage,
    merge_passages,
    pack_passages,
    rewrite_messages,
)
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


_FERRY = (
    "Ferry\n\nThe ferry leaves Pellhaven pier four times a day in winter. The crossing to "
    "Dunscar Quay takes 47 minutes. Tickets are sold on board, and bicycles travel free."
)
_OBSERVATORY = (
    "Gullstone Observatory\n\nOverview\n\nGullstone Observatory stands on the summit of "
    "Gullstone Hill, 212 metres above sea level. Because the island has almost no street "
    "lighting, the observatory enjoys dark skies. It is run by the Astronomical Society.\n\n"
    "Founding\n\nThe observatory was founded in 1911 by Tobiah Marsk, a retired ship's\n"
    "navigator. He paid for the first dome with money from a salvage company. Marsk kept a "
    "nightly observing diary until shortly before his death. His will left the observatory "
    "to the island."
)


def test_focus_keeps_the_sentences_that_bear_on_the_question() -> None:
    hit = Hit(1, 0.8, _OBSERVATORY, "observatory.md", "k1")
    (focused,) = focus_passages("Who founded Gullstone Observatory, and in what year?", [hit])
    # the founding sentence (founded is a rarer word than observatory), the one after it and
    # the one before it, within the words allowed
    assert "founded in 1911 by Tobiah Marsk, a retired ship's navigator." in focused.text
    assert "He paid for the first dome" in focused.text
    assert len(focused.text.split()) <= FOCUS_WORDS + 1  # + an ellipsis
    assert len(focused.text) < len(hit.text) and focused.source == hit.source


def test_focus_spends_its_words_across_passages_by_closeness_to_the_question() -> None:
    hits = [
        Hit(1, 0.9, _OBSERVATORY, "observatory.md", "k1"),
        Hit(2, 0.8, _FERRY, "ferry.md", "k2"),
        Hit(3, 0.7, "Gulls nest on the cliffs. " * 3 + "The cliffs are high.", "birds.md", "k3"),
    ]
    close = {"The crossing to Dunscar Quay takes 47 minutes.": 0.9}

    def similarity(question: str, sentences: list[str]) -> list[float]:
        return [close.get(s, 0.0) for s in sentences]

    # no word of the question is in the answer's sentence: the similarity finds it
    focused = focus_passages("How long does it take to get over?", hits, similarity, words=40)
    texts = {h.chunk_key: h.text for h in focused}
    assert "takes 47 minutes" in texts["k2"]
    assert sum(len(t.split()) for t in texts.values()) <= 40 + 2 * len(texts)  # + ellipses
    assert [h.rank for h in focused] == sorted(h.rank for h in focused)  # order kept


def test_a_short_fragment_is_kept_only_beside_a_sentence() -> None:
    text = "Tides\n\nThe tide rises twice a day. Spring tides come after a full moon."
    hit = Hit(1, 0.8, text, "a.md", "k1")

    def heading_first(question: str, sentences: list[str]) -> list[float]:
        return [1.0 if s == "Tides" else 0.0 for s in sentences]

    # the heading is closest but no centre: the best full sentence takes the words
    (tight,) = focus_passages("Tides?", [hit], heading_first, words=7)
    assert tight.text == "Spring tides come after a full moon."
    (roomy,) = focus_passages("Tides?", [hit], heading_first, words=100)
    assert roomy.text.startswith("Tides") and "twice a day" in roomy.text


def test_focus_keeps_a_table_with_the_sentence_that_introduces_it() -> None:
    text = (
        "Patterns\n\nLacemakers start with one of the three patterns below. Each is worked "
        "from a pricking card.\n\nPattern\n\nBobbins\n\nHeron's Ladder\n\n14\n\nGull Wing\n\n22"
        "\n\nThe Guild meets on Tuesdays in the old school hall. New members pay no fee at all."
    )
    (focused,) = focus_passages(
        "How many bobbins does the Heron's Ladder pattern need?",
        [Hit(1, 0.8, text, "guide.html", "k1")],
    )
    assert "Heron's Ladder\n14" in focused.text and "Bobbins" in focused.text


def test_focused_packing_shortens_the_prompt() -> None:
    hit = Hit(1, 0.8, _OBSERVATORY, "observatory.md", "k1")
    question = "Who founded Gullstone Observatory?"
    full = pack_passages(question, [hit], count, 10_000)
    far = Hit(2, 0.7, "Short.", "far.md", "k2")
    focused = pack_passages(question, [hit, far], count, 10_000, focused=True)
    assert count(focused.messages) < count(full.messages)
    assert focused.messages[0]["content"] == FOCUSED_SYSTEM_PROMPT  # the same for every question
    user = focused.messages[-1]["content"]
    assert "Tobiah Marsk" in user and user.endswith(f"Question: {question}")
    assert user.startswith("Passages:\n\n[1] observatory.md\n")  # a short label
    assert focused.dropped == [{"chunk_id": "k2", "reason": "not focused"}]


def test_rewrite_prompt_holds_the_last_turns_shortened() -> None:
    earlier = [
        ("Who founded the observatory?", "Tobiah Marsk founded it in 1911 [1]."),
        ("What did he do before?", " ".join(["navigator"] * 50) + " [2]"),
        ("Which telescope is there?", "The Wenlow refractor [1]."),
        ("Who made it?", ""),
    ]
    (message,) = rewrite_messages(earlier, "  When was  it installed? ")
    text = message["content"]
    assert message["role"] == "user"
    assert "Who founded the observatory?" not in text  # three turns at most
    assert "Q: What did he do before?\nA: " + " ".join(["navigator"] * 30) + " …" in text
    assert "A: The Wenlow refractor." in text and "[1]" not in text and "[2]" not in text
    assert "Q: Who made it?\n\nFollow-up question: When was it installed?" in text
    assert text.endswith("Reply with the question only.")


def test_earlier_turns_go_before_the_question_when_given() -> None:
    hits = [_hit(1)]
    plain = pack_passages("Who made it?", hits, count, 10_000)
    earlier = [("Which telescope is there?", "The Wenlow refractor [1].")]
    followed = pack_passages("Who made it?", hits, count, 10_000, earlier=earlier)
    assert "Earlier in this conversation" not in plain.messages[-1]["content"]
    user = followed.messages[-1]["content"]
    assert user.index("[1] doc1.md") < user.index("Earlier in this conversation:")
    assert user.index("A: The Wenlow refractor.") < user.index("Question: Who made it?")


def test_verification_asks_of_the_answers_own_prompt_up_to_the_question() -> None:
    from ragcli.prompting import VERIFY_QUESTION, verification_messages

    hit = Hit(1, 0.8, _OBSERVATORY, "observatory.md", "k1")
    question = "Who founded Gullstone Observatory?"
    for focused in (False, True):
        packing = pack_passages(question, [hit], count, 10_000, focused=focused)
        asked = verification_messages(packing.messages)
        answer_user, check_user = packing.messages[-1]["content"], asked[-1]["content"]
        assert asked[:-1] == packing.messages[:-1]  # the same system message
        prefix = answer_user[: answer_user.index(f"Question: {question}")]
        assert check_user == f"{prefix}Question: {question}\n\n{VERIFY_QUESTION}"
