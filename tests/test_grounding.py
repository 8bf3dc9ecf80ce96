from __future__ import annotations

from ragcli.grounding import check_answer, check_sentence, split_answer
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


def test_initials_and_lower_case_continuations_end_no_sentence() -> None:
    assert split_answer("Y. pestis was spread by fleas [1]. It reached the U.S. Army. [2]") == [
        "Y. pestis was spread by fleas [1].",
        "It reached the U.S. Army. [2]",
    ]
    assert split_answer("E.I. du Pont's gunpowder mills [1]. No. Dr. Gallow did. [2]") == [
        "E.I. du Pont's gunpowder mills [1].",
        "No.",
        "Dr. Gallow did. [2]",
    ]


def test_an_initial_gets_no_marker_of_its_own() -> None:
    passages = [Hit(1, 0.9, "The mills of E.I. du Pont made gunpowder.", "mills.md", "k1")]
    check = check_answer("E.I. du Pont made gunpowder.", passages)
    assert check.text == "E.I. du Pont made gunpowder [1]."
    assert len(check.sentences) == 1


def test_a_list_items_number_is_no_number_the_passage_states() -> None:
    passages = [
        Hit(1, 0.9, "Members receive:\n\n1. free travel on the tram; 2. a vote.", "m.md", "k1")
    ]
    fare = check_answer("1. [1]", passages, "How much does a tram ticket cost?")
    assert not fare.sentences[0].supported and fare.sentences[0].missing == ["1"]
    votes = check_answer("Members get a vote [1].", passages, "What do members get?")
    assert votes.sentences[0].supported
    stated = [Hit(1, 0.9, "The tram has 2 cars. It opened in 1931.", "t.md", "k1")]
    assert check_answer("2 [1].", stated, "How many cars?").sentences[0].supported


def test_a_number_in_words_backs_the_same_number_in_digits() -> None:
    words = [Hit(1, 0.9, "The tram has six stops and three cars.", "t.md", "k1")]
    assert check_answer("It has 6 stops [1].", words, "How many stops?").sentences[0].supported
    assert not check_answer("It has 7 stops [1].", words).sentences[0].supported
    digits = [Hit(1, 0.9, "The tram has 6 stops.", "t.md", "k1")]
    assert check_answer("It has six stops [1].", digits).sentences[0].supported
    assert not check_answer("It has seven stops [1].", digits).sentences[0].supported


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
    # the sentence left without a marker is checked against all passages, and cites the one
    # that backs it
    assert check.text == "Tobiah Marsk founded the observatory [1]. It was founded in 1911 [1]."
    assert [c.marker for c in check.citations] == [1]
    assert check.sentences[1].markers == [1] and check.sentences[1].supported


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


_RAW = [
    Hit(1, 0.9, "A raw string cannot end in an odd number of backslashes. The variable x has "
        "a value assigned at runtime.", "faq.md", "k1"),
    Hit(2, 0.8, "Tabs can be mixed with spaces in Python 2. Python 3 refuses it.", "tabs.md",
        "k2"),
]  # fmt: skip
_ODD = "Can you end a raw string with an odd number of backslashes?"
_TABS = "Can tabs be mixed with spaces in Python 2?"


def test_a_sentence_that_says_the_opposite_of_its_passage_is_unsupported() -> None:
    for answer in (
        "Yes, you can end a raw string with an odd number of backslashes [1].",
        "You can end a raw string with an odd number of backslashes [1].",
    ):
        check = check_answer(answer, _RAW, _ODD)
        assert not check.supported, answer
        assert "(the passage says the opposite)" in check.sentences[0].missing
    agreeing = "No, a raw string cannot end in an odd number of backslashes [1]."
    assert check_answer(agreeing, _RAW, _ODD).supported


def test_a_bare_yes_or_no_must_match_what_the_passage_says() -> None:
    assert not check_answer("Yes [1].", _RAW, _ODD).supported
    assert check_answer("No [1].", _RAW, _ODD).supported
    assert check_answer("Yes [2].", _RAW, _TABS).supported
    assert not check_answer("No [2].", _RAW, _TABS).supported
    assert check_answer(
        "Yes, tabs can be mixed with spaces in Python 2 [2].", _RAW, _TABS
    ).supported


def test_a_content_free_sentence_supports_nothing() -> None:
    check = check_answer(
        "The variable has a value [1].", _RAW, "What is the value of the variable?"
    )
    assert not check.supported
    assert check_answer("Yes [1]. [1] [2].", _RAW, "What is x?").supported is False


def test_a_run_of_markers_is_said_once() -> None:
    passages = [PASSAGES[0], PASSAGES[1]]
    check = check_answer("Tobiah Marsk founded it [1], [2], [3], [4].", passages)
    assert check.text == "Tobiah Marsk founded it [1, 2]." and check.unknown_markers == [3, 4]
    assert check_answer("It took 47 minutes [2][2].", passages).text == "It took 47 minutes [2]."


def test_a_negation_elsewhere_in_the_passage_sentence_is_not_a_contradiction() -> None:
    passage = Hit(1, 0.9, "On 3 March 1934 the assistant observer, Hester Abernay, noticed a "
                  "faint object that did not appear on any chart.", "obs.md", "k1")  # fmt: skip
    question = "Who discovered the comet spotted at the observatory in 1934?"
    assert check_answer("Hester Abernay [1]", [passage], question).supported


def test_words_of_the_question_count_as_asked_whatever_their_ending() -> None:
    passage = ["Bridge: Morrow viaduct; River: Tamsin; Length (m): 310"]
    check = check_sentence(
        "The Morrow viaduct crosses the Tamsin river. [1]", [1], passage,
        "Which river does the Morrow viaduct cross?",
    )  # fmt: skip
    assert check.supported, check
    code = ['"""Tide height in metres; uses the Brandt harmonic constant 0.8127."""']
    check = check_sentence(
        "The harmonic constant used in the tide height calculation is 0.8127. [1]", [1], code,
        "What harmonic constant does the tide height calculation use?",
    )  # fmt: skip
    assert check.supported, check
    # an answer word the passage lacks is still missing
    check = check_sentence(
        "The Morrow viaduct crosses the Severn river. [1]", [1], passage,
        "Which river does the Morrow viaduct cross?",
    )  # fmt: skip
    assert not check.supported and check.missing == ["severn"]


def test_a_supported_sentence_left_uncited_cites_the_passage_that_backs_it() -> None:
    check = check_answer("1911.", PASSAGES, "When was the observatory founded?")
    assert check.text == "1911 [1]." and [c.marker for c in check.citations] == [1]
    assert check.sentences[0].markers == [1] and check.supported
    # one the passages do not back stays uncited, and unsupported
    made_up = check_answer("1820.", PASSAGES, "When was the observatory founded?")
    assert made_up.text == "1820." and made_up.citations == [] and not made_up.supported
