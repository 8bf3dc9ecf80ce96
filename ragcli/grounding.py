"""Answer -> checked answer: ``[n]`` markers resolved, each sentence tested against its passages.

A small model can cite a passage and still say something the passage does not say (a birth
year, a price, a programming language it made up). Each sentence is checked lexically: the
share of its content words found in the passages it cites, and every number it states must
appear there; and for stance: a negation just before a word it shares with the passage
sentence it leans on must be in both or neither, and a bare yes or no must match what the
passage says of the question. The threshold was calibrated on the sample corpus's questions
(README, "Answers you can check").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ragcli.records import Citation, Hit
from ragcli.retrieval import STOPWORDS

SUPPORT_THRESHOLD = 0.75
_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?\]])\s+(?!\[\d)")
# A full stop that ends no sentence: an initial ("E.I. du Pont", "Y. pestis", "U.S. Army") or
# a title before a name.
_NOT_AN_END = re.compile(r"(?:\b[A-Z]|\b(?:Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|vs|e\.g|i\.e))\.$")
# A list item's number ("Members receive: 1. free travel; 2. ..."): the passage states no
# such number, so an answer cannot take it from there.
_ENUMERATOR = re.compile(r"(?:^|(?<=[\n:;]))[ \t]*\d{1,2}[.)](?=\s)", re.MULTILINE)
_WORD = re.compile(r"\w+")
# A number said in words and in digits is one claim ("six stops" backs "6 stops").
_NUMBER_WORDS = dict(
    zip(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split(),
        map(str, range(21)),
    )
)
_NUMBER_WORDS.update(
    zip("thirty forty fifty sixty seventy eighty ninety".split(), map(str, range(30, 100, 10)))
)
# Words an answer uses about itself rather than about the subject.
_ANSWER_WORDS = frozenset(
    "according passage passages mentioned mention mentions stated states state says text "
    "context document documents provided information answer based also yes".split()
)
_DECLINE = re.compile(
    r"\b(?:i\s+(?:do\s+not|don't|cannot|can't|could\s+not|couldn't)\s+(?:know|find|answer|tell)"
    r"|(?:do|does|did)\s+not\s+(?:contain|mention|say|state|provide|include|specify|give)"
    r"|(?:don't|doesn't|didn't)\s+(?:contain|mention|say|state|provide|include|specify|give)"
    r"|(?:is|are|was|were)\s+not\s+(?:mentioned|stated|provided|given|specified|included)"
    r"|no\s+(?:information|mention)\b)",
    re.IGNORECASE,
)


# Stance: a sentence and the passage sentence it leans on must agree on negation, and a bare
# "yes"/"no" must match what the passage says of the question.
_NEGATIONS = frozenset("not no never cannot none neither nor".split())
_YES_NO = re.compile(r"^\s*(yes|no)\b[\s,.;:!]*", re.IGNORECASE)
_PASSAGE_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _closest_sentence(words: set[str], passages: Sequence[str]) -> str | None:
    """The passage sentence sharing the most content words (at least two) with ``words``."""
    best, overlap = None, 1
    for passage in passages:
        for sentence in _PASSAGE_SENTENCE.split(passage):
            shared = len(words & {_stem(w) for w in _content_words(sentence)})
            if shared > overlap:
                best, overlap = sentence, shared
    return best


def _bare_yes_no(sentence: str) -> bool:
    """A sentence that is only "Yes" or "No" (and markers)."""
    stripped = _MARKER.sub(" ", sentence)
    answer = _YES_NO.match(stripped)
    return answer is not None and not _content_words(stripped[answer.end() :])


def _negates(text: str, words: set[str]) -> bool:
    """Whether a negation stands just before (within three words of) one of ``words``: "cannot
    end" negates "end"; "did not appear" says nothing of a name earlier in the sentence."""
    tokens = _WORD.findall(re.sub(r"n't\b", " not", text.lower()))
    for i, token in enumerate(tokens):
        if token in _NEGATIONS and any(_stem(t) in words for t in tokens[i + 1 : i + 4]):
            return True
    return False


def stance_agrees(sentence: str, passages: Sequence[str], question: str = "") -> bool | None:
    """Whether the passages take the sentence's stance: its negation, or for a bare yes/no the
    question's statement. None when no passage sentence is close enough to tell."""
    body = _MARKER.sub(" ", sentence)
    answer = _YES_NO.match(body)
    rest = body[answer.end() :] if answer else body
    words = {_stem(w) for w in _content_words(rest)}
    said_no = answer is not None and answer.group(1).lower() == "no"
    if len(words) >= 2:  # a statement: negated, or led by "No" ("No, it spans the river")
        closest = _closest_sentence(words, passages)
        shared = words & {_stem(w) for w in _content_words(closest or "")}
        claimed = _negates(rest, shared) or said_no
    elif answer is not None and question:  # a bare yes or no: the question, or its denial
        words = {_stem(w) for w in _content_words(question)}
        closest = _closest_sentence(words, passages)
        shared = words & {_stem(w) for w in _content_words(closest or "")}
        claimed = _negates(question, shared) != said_no
    else:
        return None
    if closest is None:
        return None
    return claimed == _negates(closest, shared)


@dataclass
class SentenceCheck:
    """One sentence of an answer, the passages it cites, and whether they back it."""

    text: str
    markers: list[int]
    support: float
    missing: list[str]
    supported: bool
    claims: int = 0  # words checked: content words that are not already in the question
    backed_by: list[int] = field(default_factory=list)  # every passage that backs it

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "markers": self.markers,
            "support": round(self.support, 3),
            "missing": self.missing,
            "supported": self.supported,
            "backed_by": self.backed_by,
        }


@dataclass
class AnswerCheck:
    """The verdict on a generated answer."""

    text: str  # the answer with markers that point nowhere removed
    citations: list[Citation]
    unknown_markers: list[int]
    sentences: list[SentenceCheck] = field(default_factory=list)
    declined: bool = False  # the model said it does not know

    @property
    def supported(self) -> bool:
        """Some sentence says something the passages back (restating the question is not it)."""
        return any(s.backed_by and s.claims for s in self.sentences)


def strip_markers(text: str) -> str:
    """The text without its ``[n]`` / ``[n, m]`` markers."""
    return _MARKER.sub(" ", text)


def declines(text: str) -> bool:
    """Whether the model says it does not know (or that the text does not say)."""
    return bool(_DECLINE.search(text))


def _stem(word: str) -> str:
    """A crude English stem (needs/need, founded/found, painting/paint), enough to compare."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _forms(word: str) -> set[str]:
    """The word and what it may be with an ending taken off, so that the forms of one word
    meet whichever endings each has (crosses/cross, used/use, tides/tide)."""
    forms = {word, _stem(word)}
    for suffix in ("ing", "ed", "es", "s", "d"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            forms.add(word[: -len(suffix)])
    return forms


def _content_words(text: str) -> list[str]:
    words = _WORD.findall(_MARKER.sub(" ", text).lower())
    return [w for w in dict.fromkeys(words) if w not in STOPWORDS and w not in _ANSWER_WORDS]


def _found(word: str, vocabulary: set[str], prefixes: set[str]) -> bool:
    if word in vocabulary or _stem(word) in vocabulary:
        return True
    # Same stem, other ending (founded/founder, painted/paint): compare 5-letter prefixes.
    return not word.isdigit() and len(word) >= 6 and word[:5] in prefixes


def check_sentence(
    text: str, markers: list[int], passages: Sequence[str], question: str = ""
) -> SentenceCheck:
    """How much of the sentence the given passages back; every number must be there.

    Words the question already used are not claims of the answer and are not checked.
    """
    vocabulary = {w for p in passages for w in _WORD.findall(_ENUMERATOR.sub(" ", p).lower())}
    vocabulary |= {_stem(w) for w in vocabulary}
    vocabulary |= {_NUMBER_WORDS[w] for w in vocabulary if w in _NUMBER_WORDS}
    vocabulary |= {w for w, digits in _NUMBER_WORDS.items() if digits in vocabulary}
    prefixes = {w[:5] for w in vocabulary if len(w) >= 5}
    asked = {form for w in _content_words(question) for form in _forms(w)}
    words = [w for w in _content_words(text) if not _forms(w) & asked]
    missing = [w for w in words if not _found(w, vocabulary, prefixes)]
    support = 1.0 - len(missing) / len(words) if words else 1.0
    numbers_ok = not any(any(c.isdigit() for c in w) for w in missing)
    stance = stance_agrees(text, passages, question)
    if stance is False:
        missing.append("(the passage says the opposite)")
    elif stance and not words and _YES_NO.match(_MARKER.sub(" ", text)):
        # A yes or no that restates the question: its claim is the stance, which the
        # passage backs.
        words, support = ["(yes/no)"], 1.0
    supported = bool(passages) and support >= SUPPORT_THRESHOLD and numbers_ok
    supported = supported and stance is not False
    return SentenceCheck(text, markers, support, missing, supported, claims=len(words))


def split_answer(text: str) -> list[str]:
    """Sentences of an answer, each keeping the markers written after it. A full stop
    followed by a lower-case word, or after an initial or a title, ends no sentence."""
    text = text.strip()
    sentences, start = [], 0
    for match in _SENTENCE_BREAK.finditer(text):
        before = text[start : match.start()]
        if before.endswith(".") and (
            text[match.end() : match.end() + 1].islower() or _NOT_AN_END.search(before)
        ):
            continue
        sentences.append(before.strip())
        start = match.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


_MARKER_RUN = re.compile(r"\[\d+(?:,\s*\d+)*\](?:[\s,;]*\[\d+(?:,\s*\d+)*\])+")


def _tidy(text: str) -> str:
    """Runs of markers said once ("[1], [2], [2]" -> "[1, 2]"), and the spaces and commas
    that removed markers leave behind."""

    def merge(match: re.Match[str]) -> str:
        numbers = sorted({int(n) for n in re.findall(r"\d+", match.group(0))})
        return "[" + ", ".join(map(str, numbers)) + "]"

    text = _MARKER_RUN.sub(merge, text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"(?:[ \t]*,)+[ \t]*([.;:!?])", r"\1", text)  # "theory [1],,." -> "theory [1]."
    text = re.sub(r",(?:[ \t]*,)+", ",", text)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", text).strip()


def _cite(sentence: str, number: int) -> str:
    """The sentence with ``[number]`` before its closing punctuation ("1924." -> "1924 [1].")."""
    body = sentence.rstrip()
    end = len(body) - len(body.rstrip(".!?"))
    return f"{body[: len(body) - end]} [{number}]{body[len(body) - end :]}"


def check_answer(text: str, passages: Sequence[Hit], question: str = "") -> AnswerCheck:
    """Resolve markers, drop the ones that point nowhere, and test every sentence.

    A sentence is ``supported`` by the passages it cites (by any, if it cites none);
    ``backed_by`` lists every passage that would back it, so a wrong marker shows.
    """
    unknown: list[int] = []
    cited: dict[int, Citation] = {}

    def resolve(match: re.Match[str]) -> str:
        kept = []
        for number in (int(n) for n in match.group(1).split(",")):
            if 1 <= number <= len(passages):
                kept.append(number)
                cited.setdefault(number, Citation(number, passages[number - 1]))
            elif number not in unknown:
                unknown.append(number)
        return "[" + ", ".join(str(n) for n in kept) + "]" if kept else ""

    cleaned = _tidy(_MARKER.sub(resolve, text))
    sentences = []
    for sentence in split_answer(cleaned):
        markers = sorted(
            {int(n) for m in _MARKER.finditer(sentence) for n in m.group(1).split(",")}
        )
        if not _content_words(sentence) and not _bare_yes_no(sentence):
            continue
        sources = [passages[n - 1].text for n in markers] or [p.text for p in passages]
        checked = check_sentence(sentence, markers, sources, question)
        checked.backed_by = [
            n
            for n, passage in enumerate(passages, start=1)
            if (checked.supported and n in markers)
            or check_sentence(sentence, [n], [passage.text], question).supported
        ]
        if not markers and checked.supported and checked.claims and checked.backed_by:
            # A supported sentence the model left uncited cites the best-ranked passage
            # that backs it on its own.
            number = checked.backed_by[0]
            cited.setdefault(number, Citation(number, passages[number - 1]))
            checked.markers = [number]
            cited_text = _cite(sentence, number)
            cleaned = cleaned.replace(sentence, cited_text, 1)
            checked.text = cited_text
        sentences.append(checked)
    return AnswerCheck(
        text=cleaned,
        citations=[cited[n] for n in sorted(cited)],
        unknown_markers=unknown,
        sentences=sentences,
        declined=bool(_DECLINE.search(cleaned)) or not cleaned,
    )


class MarkerFilter:
    """Streams answer text while dropping ``[n]`` markers that point to no passage.

    Text from a ``[`` on is held back until the bracket closes (or clearly is not a marker),
    so what a terminal shows matches the checked answer.
    """

    _LONGEST = 24  # "[12, 13, 14]" and the like; anything longer is not a marker

    def __init__(self, passages: int) -> None:
        self.passages = passages
        self.held = ""

    def feed(self, piece: str) -> str:
        out = []
        for char in piece:
            if self.held:
                self.held += char
                if char == "]":
                    out.append(self._resolve(self.held))
                    self.held = ""
                elif len(self.held) > self._LONGEST or not re.fullmatch(r"\[[\d,\s]*", self.held):
                    out.append(self.held)
                    self.held = ""
            elif char == "[":
                self.held = char
            else:
                out.append(char)
        return "".join(out)

    def flush(self) -> str:
        held, self.held = self.held, ""
        return held

    def _resolve(self, marker: str) -> str:
        match = _MARKER.fullmatch(marker)
        if not match:
            return marker
        kept = [n for n in match.group(1).split(",") if 1 <= int(n) <= self.passages]
        return "[" + ", ".join(n.strip() for n in kept) + "]" if kept else ""
