"""Hits + question -> chat messages within the generator's token budget; citations back."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Any

from ragcli.records import Hit
from ragcli.retrieval import STOPWORDS

SYSTEM_PROMPT = (
    "You are a careful assistant that answers questions using only the numbered passages "
    "the user provides. Each passage starts with its number in square brackets. "
    "Cite the passage that supports each sentence of your answer with its number in square "
    "brackets, for example [2]. If the passages do not contain the answer, say that you do "
    "not know; never answer from your own knowledge."
)

# The bundled 1.5B model copies a concrete example sentence into its answers; an elided
# example ("... [3].") gives it the citation format without any content to copy.
_INSTRUCTION = (
    "Using only the passages above, answer the question briefly. After each sentence, write "
    'the number of the passage that supports it in square brackets, for example: "... [3]." '
    "If the passages do not answer the question, reply exactly: I don't know."
)


# Asked after the answer, of the same passages and question but without the answer: the
# generator's probability of "yes" is the answer's verification. Asking whether the passages
# state the answer at all separated right answers from answers to unanswerable questions where
# asking whether "your answer" is stated did not (README, "Answers you can check"). The prompt up
# to the question is the answer's own, so the prompt cache holds it and only this is new.
VERIFY_QUESTION = "Do the passages above state the answer to this question? Reply yes or no."


def verification_messages(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The answer's prompt with the verification question in place of what followed the
    question (the instruction, in full context)."""
    *before, last = messages
    content = last["content"]
    if content.endswith(_INSTRUCTION):
        content = content[: -len(_INSTRUCTION)].rstrip()
    return [*before, {**last, "content": f"{content}\n\n{VERIFY_QUESTION}"}]


# A follow-up ("who built it?") is rewritten into a question retrieval can use alone. The prompt
# stays short: the rewrite is paid before every follow-up's answer.
REWRITE_TURNS = 3  # earlier turns shown to the rewrite
_EARLIER_ANSWER_WORDS = 30  # each earlier answer cut to this many words
_REWRITE_INSTRUCTION = (
    "Rewrite the follow-up question as one standalone question that names what it refers to, "
    "so that it can be understood without the conversation. Reply with the question only."
)
_MARKER = re.compile(r"\s*\[\d+\]")


def earlier_turns(earlier: Sequence[tuple[str, str]]) -> str:
    """Earlier questions and their answers (markers removed, cut short), one line each."""
    lines: list[str] = []
    for question, answer in earlier:
        lines.append(f"Q: {' '.join(question.split())}")
        words = _MARKER.sub("", answer).split()
        if words:
            cut = len(words) > _EARLIER_ANSWER_WORDS
            lines.append(f"A: {' '.join(words[:_EARLIER_ANSWER_WORDS])}{' …' if cut else ''}")
    return "\n".join(lines)


def rewrite_messages(earlier: Sequence[tuple[str, str]], question: str) -> list[dict[str, str]]:
    """Chat messages asking for ``question`` as a standalone question, given the last
    ``REWRITE_TURNS`` (question, answer) pairs of the conversation."""
    user = (
        f"Conversation:\n{earlier_turns(earlier[-REWRITE_TURNS:])}\n\n"
        f"Follow-up question: {' '.join(question.split())}\n\n{_REWRITE_INSTRUCTION}"
    )
    return [{"role": "user", "content": user}]


def passage_label(hit: Hit) -> str:
    """``source, location (heading)`` as shown to the model and the user."""
    parts = [hit.source]
    if hit.location:
        parts.append(hit.location)
    label = ", ".join(parts)
    if hit.heading:
        label += f" ({hit.heading})"
    return label


def format_passage(number: int, hit: Hit, short: bool = False) -> str:
    """``[n] label`` and the passage's text; ``short``: the label is the file's name and the
    heading only (fewer tokens to read)."""
    label = passage_label(hit)
    if short:
        name = PurePath(hit.source.split("#", 1)[0]).name or hit.source
        label = f"{name} ({hit.heading})" if hit.heading else name
    return f"[{number}] {label}\n{hit.text.strip()}"


def build_messages(
    question: str,
    hits: Sequence[Hit],
    count_tokens: Callable[[list[dict[str, str]]], int],
    budget: int,
    compact: bool = False,
    earlier: Sequence[tuple[str, str]] = (),
) -> tuple[list[dict[str, str]], list[Hit]]:
    """Chat messages holding as many passages (best first) as fit in ``budget`` prompt tokens.

    ``count_tokens`` measures a whole message list with the generator's chat template, so the
    template's own overhead is part of the budget. Returns the messages and the packed hits.
    ``earlier``: a conversation's earlier (question, answer) pairs, shown before the question.
    """
    packed: list[Hit] = []
    messages = _messages(question, packed, compact, earlier)
    for hit in hits:
        candidate = _messages(question, [*packed, hit], compact, earlier)
        if count_tokens(candidate) > budget:
            continue  # a shorter passage further down may still fit
        packed.append(hit)
        messages = candidate
    return messages, packed


def _messages(
    question: str,
    hits: Sequence[Hit],
    compact: bool = False,
    earlier: Sequence[tuple[str, str]] = (),
) -> list[dict[str, str]]:
    """``compact``: the instruction goes into the system message, which is the same for every
    question (the generator's prompt cache keeps it) and the passages get short labels."""
    passages = "\n\n".join(format_passage(i, h, short=compact) for i, h in enumerate(hits, start=1))
    if earlier:
        passages += f"\n\nEarlier in this conversation:\n{earlier_turns(earlier)}"
    if compact:
        user = f"Passages:\n\n{passages}\n\nQuestion: {question.strip()}"
        return [
            {"role": "system", "content": FOCUSED_SYSTEM_PROMPT},
            {"role": "user", "content": user},
        ]
    user = f"Passages:\n\n{passages}\n\nQuestion: {question.strip()}\n\n{_INSTRUCTION}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


@dataclass
class Packing:
    """The prompt, the passages in it (numbered from 1), and what was left out and why."""

    messages: list[dict[str, str]]
    passages: list[Hit]
    dropped: list[dict[str, Any]] = field(default_factory=list)


def _normalized(text: str) -> str:
    return " ".join(text.lower().split())


def _join_adjacent(first: Hit, second: Hit) -> Hit:
    """One passage from two neighbouring chunks of a document, their overlap said once."""
    earlier, later = (first, second) if first.ordinal < second.ordinal else (second, first)
    tail = later.text
    if later.heading and tail.startswith(later.heading + "\n\n"):
        tail = tail[len(later.heading) + 2 :]
    for size in range(min(len(earlier.text), len(tail)), 7, -1):
        if earlier.text.endswith(tail[:size]):
            tail = tail[size:]
            break
    starts = [h.line_start for h in (earlier, later) if h.line_start is not None]
    ends = [h.line_end for h in (earlier, later) if h.line_end is not None]
    return replace(
        first,
        text=(earlier.text.rstrip() + "\n\n" + tail.lstrip()).strip(),
        line_start=min(starts) if starts else None,
        line_end=max(ends) if ends else None,
        ordinal=earlier.ordinal,
        page=earlier.page,
        score=max(first.score, second.score),
    )


def merge_passages(hits: Sequence[Hit]) -> tuple[list[Hit], list[dict[str, Any]]]:
    """Join neighbouring chunks of one document and drop exact repeats, best-ranked first."""
    kept: list[Hit] = []
    spans: list[tuple[str, int, int]] = []  # source, first and last ordinal of each kept passage
    seen: dict[str, str] = {}
    dropped: list[dict[str, Any]] = []
    for hit in hits:
        key = _normalized(hit.text)
        if key in seen:
            dropped.append({"chunk_id": hit.chunk_key, "reason": "duplicate", "of": seen[key]})
            continue
        seen[key] = hit.chunk_key
        for i, (source, low, high) in enumerate(spans):
            if (
                source == hit.source
                and hit.page == kept[i].page
                and low - 1 <= hit.ordinal <= high + 1
            ):
                dropped.append(
                    {"chunk_id": hit.chunk_key, "reason": "merged", "into": kept[i].chunk_key}
                )
                kept[i] = _join_adjacent(kept[i], hit)
                spans[i] = (source, min(low, hit.ordinal), max(high, hit.ordinal))
                break
        else:
            kept.append(hit)
            spans.append((hit.source, hit.ordinal, hit.ordinal))
    return kept, dropped


# A passage's sentences: after . ! ? and before a capital, digit, quote or bracket, or at a
# blank line (a line break inside a paragraph is wrapping; a table or list stays whole).
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])|\n\s*\n")
_TERM = re.compile(r"\w+")

# "focused": the generator reads the sentences closest to the question (and their neighbours),
# FOCUS_WORDS words in all, instead of whole passages (README, "Answers you can check").
FOCUS_WORDS = 100
FOCUS_CENTRES = 6  # sentences the selection grows from
FOCUS_WINDOW = (0, 1, -1)  # around each: itself, then the one after, then the one before
_CENTRE_WORDS = 6  # a shorter fragment (a heading, a table cell) is kept only as a neighbour
LEXICAL_WEIGHT = 2.0  # a sentence's score: cosine + this x its share of the question's words

# In focused mode the instruction lives in the system message, which is the same for every
# question (the generator's prompt cache keeps it); the user turn ends with the question. (A
# reminder after the question that offered "I don't know" made the bundled model decline 20
# of 40 answerable SQuAD questions, most of them with the answer in its passages.)
FOCUSED_SYSTEM_PROMPT = (
    "You answer questions using only the numbered passages the user provides. "
    "Answer in one short sentence that gives the fact asked for, copying the passage's own "
    "words for it exactly (every name, number and item it lists), and end it with the number "
    "of the passage that supports it in square brackets, "
    'for example: "... [3]." If the passages do not answer the question, reply exactly: '
    "I don't know."
)

# cosine similarity of the question to each of some sentences
Similarity = Callable[[str, list[str]], Sequence[float]]


def _terms(text: str) -> set[str]:
    """Content words, cut to 5 letters so that a word's forms meet (founded/founder)."""
    return {w[:5] for w in _TERM.findall(text.lower()) if w not in STOPWORDS}


def _sentences(text: str) -> list[str]:
    """Sentences; a fragment of three words or fewer (a heading, a table cell) joins the one
    before it, so that a table stays with what introduces it."""
    out: list[str] = []
    for piece in (" ".join(p.split()) for p in _SENTENCE.split(text.strip())):
        if not piece:
            continue
        if out and len(piece.split()) <= 3:
            out[-1] += "\n" + piece
        else:
            out.append(piece)
    return out


def _lexical(question: str, sentences: list[str]) -> list[float]:
    """Each sentence's share of the question's words, a word counting more the fewer of the
    sentences hold it."""
    asked = _terms(question)
    held = [asked & _terms(s) for s in sentences]
    weight = {}
    for term in asked:
        count = sum(term in terms for terms in held)
        if count:
            weight[term] = math.log(1 + len(sentences) / count)
    total = sum(weight.values()) or 1.0
    return [sum(weight[t] for t in terms) / total for terms in held]


def focus_passages(
    question: str,
    hits: Sequence[Hit],
    similarity: Similarity | None = None,
    words: int = FOCUS_WORDS,
) -> list[Hit]:
    """The passages cut to what bears on the question, ``words`` words in all.

    Every sentence of every passage is scored by its cosine similarity to the question (when
    ``similarity`` is given) plus its share of the question's words. The best
    ``FOCUS_CENTRES`` sentences are kept first, then the sentence after each (where an answer
    often goes on), then the one before (what "it" refers to), while the words last. Passages
    keep their order; one with nothing kept is left out, and what is cut from a kept one is
    marked with an ellipsis.
    """
    per = [_sentences(hit.text) for hit in hits]
    flat = [(p, i) for p, sentences in enumerate(per) for i in range(len(sentences))]
    if not flat:
        return list(hits)
    texts = [per[p][i] for p, i in flat]
    scores = [LEXICAL_WEIGHT * s for s in _lexical(question, texts)]
    if similarity is not None:
        scores = [s + float(c) for s, c in zip(scores, similarity(question, texts))]
    centres = [n for n, text in enumerate(texts) if len(text.split()) >= _CENTRE_WORDS]
    centres = sorted(centres or range(len(flat)), key=lambda n: -scores[n])[:FOCUS_CENTRES]
    chosen: set[tuple[int, int]] = set()
    used = 0
    for step in FOCUS_WINDOW:
        for n in centres:
            p, i = flat[n][0], flat[n][1] + step
            if not 0 <= i < len(per[p]) or (p, i) in chosen:
                continue
            size = len(per[p][i].split())
            if chosen and used + size > words:
                continue
            chosen.add((p, i))
            used += size
    focused = []
    for p, hit in enumerate(hits):
        kept = sorted(i for q, i in chosen if q == p)
        if not kept:
            continue
        parts: list[str] = []
        for i in kept:
            if parts and i - 1 not in kept:
                parts.append("…")
            parts.append(per[p][i])
        focused.append(replace(hit, text="\n".join(parts)))
    return focused


def pack_passages(
    question: str,
    hits: Sequence[Hit],
    count_tokens: Callable[[list[dict[str, str]]], int],
    budget: int,
    focused: bool = False,
    earlier: Sequence[tuple[str, str]] = (),
    similarity: Similarity | None = None,
) -> Packing:
    """Merge, deduplicate, then fit as many passages as the budget holds, best first;
    ``focused``: cut to the sentences that bear on the question (``focus_passages``, scored
    with ``similarity`` when given); ``earlier``: a conversation's earlier (question, answer)
    pairs, shown before the question."""
    merged, dropped = merge_passages(hits)
    if focused:
        kept = focus_passages(question, merged, similarity)
        kept_keys = {h.chunk_key for h in kept}
        for hit in merged:
            if hit.chunk_key not in kept_keys:
                dropped.append({"chunk_id": hit.chunk_key, "reason": "not focused"})
        merged = kept
    messages, packed = build_messages(
        question, merged, count_tokens, budget, compact=focused, earlier=earlier
    )
    packed_keys = {h.chunk_key for h in packed}
    for hit in merged:
        if hit.chunk_key not in packed_keys:
            dropped.append({"chunk_id": hit.chunk_key, "reason": "over budget"})
    return Packing(messages, packed, dropped)
