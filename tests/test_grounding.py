from __future__ import annotations

from ragcli.grounding import check_answer, split_answer
from ragcli.records import Hit

PASSAGES = [
    Hit(1, 0.9, "The observatory was founded in 1911 by Tobiah Marsk, a retired navigator.",
        "obs.md", "k1"),
    Hit(2, 0.8, "The ferry crossing to Dunscar Quay takes 47 minutes.", "ferry.md", "k2"),
]  # fmt: skip


def test_sentences_keep_their_markers() -> None:
    assert split_answer("Tobiah Marsk founded it. [1] The crossing takes 47 minutes [2].") == [
        "Tobiah Marsk founded it. [1]",
        "The crossing takes 47 minutes [2].",
    ]


def test_supported_answer_with_valid_markers() -> None:
    check = check_answer("The observatory was founded by Tobiah Marsk in 1911. [1]", PASSAGES)
    assert check.supported and not check.declined
    assert [c.marker for c in check.citations] == [1]
    (sentence,) = check.sentences
    assert sentence.markers == [1] and sentence.support == 1.0 and sentence.missing == []


def test_invented_number_is_unsupported_even_with_a_valid_marker() -> None:
    check = check_answer("Tobiah Marsk was born in 1881. [1]", PASSAGES)
    (sentence,) = check.sentences
    assert not sentence.supported and "1881" in sentence.missing
    assert not check.supported


def test_sentence_is_checked_against_the_passage_it_cites() -> None:
    check = check_answer("The ferry crossing takes 47 minutes. [1]", PASSAGES)
    assert not check.sentences[0].supported  # true, but not what passage 1 says
    right = check_answer("The ferry crossing takes 47 minutes. [2]", PASSAGES)
    assert right.sentences[0].supported


def test_unknown_markers_are_removed_and_reported() -> None:
    check = check_answer(
        "Tobiah Marsk founded the observatory [1, 7]. It was founded in 1911 [9].", PASSAGES
    )
    assert check.unknown_markers == [7, 9]
    assert check.text == "Tobiah Marsk founded the observatory [1]. It was founded in 1911."
    assert [c.marker for c in check.citations] == [1]
    # the uncited sentence is checked against all passages
    assert check.sentences[1].markers == [] and check.sentences[1].supported


def test_declining_is_recognised() -> None:
    for text in (
        "I don't know.",
        "The passages do not mention his date of birth.",
        "His birthday is not mentioned in the passages [1].",
        "",
    ):
        assert check_answer(text, PASSAGES).declined, text
    assert not check_answer("Tobiah Marsk [1].", PASSAGES).declined


def test_marker_filter_drops_markers_that_point_nowhere_while_streaming() -> None:
    from ragcli.grounding import MarkerFilter

    pieces = ["Tobiah", " Marsk [", "1", "] founded it", " [7]. Also [", "1, 9] and [x] ok ["]
    f = MarkerFilter(passages=2)
    text = "".join(f.feed(p) for p in pieces) + f.flush()
    assert text == "Tobiah Marsk [1] founded it . Also [1] and [x] ok ["


def test_question_words_are_not_claims_and_miscitations_show() -> None:
    question = "How long does the ferry crossing take?"
    check = check_answer("The ferry crossing takes 47 minutes [1].", PASSAGES, question)
    (sentence,) = check.sentences
    assert sentence.claims == 2  # "47", "minutes": the rest restates the question
    assert not sentence.supported and sentence.backed_by == [2]
    assert check.supported  # the claim is in the passages, under the wrong marker
    restated = check_answer("The ferry crossing takes [2].", PASSAGES, question)
    assert not restated.supported  # nothing said beyond the question
