"""Hits + question -> chat messages within the generator's token budget; citations back."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ragcli.models import Citation, Hit

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

_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


def passage_label(hit: Hit) -> str:
    """``source, location (heading)`` as shown to the model and the user."""
    parts = [hit.source]
    if hit.location:
        parts.append(hit.location)
    label = ", ".join(parts)
    if hit.heading:
        label += f" ({hit.heading})"
    return label


def format_passage(number: int, hit: Hit) -> str:
    return f"[{number}] {passage_label(hit)}\n{hit.text.strip()}"


def build_messages(
    question: str,
    hits: Sequence[Hit],
    count_tokens: Callable[[list[dict[str, str]]], int],
    budget: int,
) -> tuple[list[dict[str, str]], list[Hit]]:
    """Chat messages holding as many passages (best first) as fit in ``budget`` prompt tokens.

    ``count_tokens`` measures a whole message list with the generator's chat template, so the
    template's own overhead is part of the budget. Returns the messages and the packed hits.
    """
    packed: list[Hit] = []
    messages = _messages(question, packed)
    for hit in hits:
        candidate = _messages(question, [*packed, hit])
        if count_tokens(candidate) > budget:
            continue  # a shorter passage further down may still fit
        packed.append(hit)
        messages = candidate
    return messages, packed


def _messages(question: str, hits: Sequence[Hit]) -> list[dict[str, str]]:
    passages = "\n\n".join(format_passage(i, h) for i, h in enumerate(hits, start=1))
    user = f"Passages:\n\n{passages}\n\nQuestion: {question.strip()}\n\n{_INSTRUCTION}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def find_citations(answer: str, passages: Sequence[Hit]) -> tuple[list[Citation], list[int]]:
    """Resolve ``[n]`` markers in the answer to passages; also return markers that point nowhere."""
    cited: list[Citation] = []
    unknown: list[int] = []
    for match in _MARKER.finditer(answer):
        for number in (int(n) for n in match.group(1).split(",")):
            if 1 <= number <= len(passages):
                if all(c.marker != number for c in cited):
                    cited.append(Citation(number, passages[number - 1]))
            elif number not in unknown:
                unknown.append(number)
    cited.sort(key=lambda c: c.marker)
    return cited, unknown
