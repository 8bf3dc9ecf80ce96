"""Hits + question -> chat messages within the generator's token budget; citations back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ragcli.records import Hit

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


def pack_passages(
    question: str,
    hits: Sequence[Hit],
    count_tokens: Callable[[list[dict[str, str]]], int],
    budget: int,
) -> Packing:
    """Merge, deduplicate, then fit as many passages as the budget holds, best first."""
    merged, dropped = merge_passages(hits)
    messages, packed = build_messages(question, merged, count_tokens, budget)
    packed_keys = {h.chunk_key for h in packed}
    for hit in merged:
        if hit.chunk_key not in packed_keys:
            dropped.append({"chunk_id": hit.chunk_key, "reason": "over budget"})
    return Packing(messages, packed, dropped)
