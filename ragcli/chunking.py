"""Documents -> Chunks: token-aware, paragraph- and heading-aware, deterministic. No I/O."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ragcli.records import Block, Chunk, Document

# Counts tokens of many texts at once (the embedder's tokenizer, without special tokens).
TokenCounter = Callable[[Sequence[str]], list[int]]

_SENTENCE_END = re.compile(
    r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n(?=\s*[-*+•]\s|\s*\d+[.)]\s)"
)
_WS = re.compile(r"\s+")
# Packing counts a text as at least one token per this many characters. Real text has 4-5;
# a run the tokenizer reads as one unknown token (base64, a minified line) would otherwise
# make a chunk of megabytes that the embedder sees as "[UNK]".
MAX_CHARS_PER_TOKEN = 16


@dataclass
class _Unit:
    """A sentence (or a piece of an over-long one) with its position."""

    text: str
    tokens: int
    page: int | None
    line_start: int | None
    line_end: int | None
    heading: str | None
    starts_paragraph: bool
    is_heading: bool = False
    continues_lines: bool = False  # the next lines of the piece before (a cut whole block)


def split_sentences(text: str) -> list[tuple[int, str]]:
    """Split text into (offset, sentence) pairs at sentence ends and list items."""
    pieces: list[tuple[int, str]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        if text[start : m.start()].strip():
            pieces.append((start, text[start : m.start()]))
        start = m.end()
    if text[start:].strip():
        pieces.append((start, text[start:]))
    return pieces


def _units_of(block: Block) -> list[tuple[str, int | None, int | None]]:
    if block.whole:  # one unit, its line breaks kept (a spreadsheet row, a piece of code)
        text = block.text.rstrip()
        first = block.line_start
        if first is not None:
            first += len(text) - len(text.lstrip("\n"))  # blank lines left out before it
        return [(text.lstrip("\n"), first, block.line_end)]
    units = []
    line, counted = block.line_start or 0, 0  # line breaks counted incrementally: one pass
    for offset, sentence in split_sentences(block.text):
        first = last = None
        if block.line_start is not None:
            line += block.text.count("\n", counted, offset)
            counted = offset
            first = line
            last = first + sentence.strip().count("\n")
            if block.line_end is not None:
                last = min(last, block.line_end)
        units.append((_WS.sub(" ", sentence).strip(), first, last))
    return units


def _split_long(unit: _Unit, limit: int, count: TokenCounter) -> list[_Unit]:
    """Cut a unit longer than ``limit`` tokens at word boundaries, filling pieces to the limit.

    A unit of more than ``_COUNT_BATCH`` words (a megabyte on one line) is first grouped into
    windows of about a tenth of the limit, judged by length, and only the windows are counted:
    thousands of counts instead of a million, for pieces filled to within a window.
    """
    words = unit.text.split(" ")
    if len(words) > _COUNT_BATCH:
        words = _windows(unit.text, words, limit, count)
    pieces: list[_Unit] = []
    current: list[str] = []
    total = 0
    for text, cost in _atoms(words, limit, count):
        if current and total + cost > limit:
            pieces.append(_piece(unit, current, total, first=not pieces))
            current, total = [], 0
        current.append(text)
        total += cost
    if current:
        pieces.append(_piece(unit, current, total, first=not pieces))
    return pieces


def _windows(text: str, words: list[str], limit: int, count: TokenCounter) -> list[str]:
    """The words joined into runs of about a tenth of ``limit`` tokens, judged by length."""
    sample = text[:20_000]
    per_token = len(sample) / _cost(sample, count([sample])[0])
    budget = max(1, int(limit * per_token / 10))  # characters per window
    windows: list[str] = []
    current: list[str] = []
    size = 0
    for word in words:
        if current and size + len(word) > budget:
            windows.append(" ".join(current))
            current, size = [], 0
        current.append(word)
        size += len(word) + 1
    if current:
        windows.append(" ".join(current))
    return windows


def _atoms(words: list[str], limit: int, count: TokenCounter) -> Iterator[tuple[str, int]]:
    """(text, packing cost) of each word or window in order, none of them over ``limit``."""
    for start in range(0, len(words), _COUNT_BATCH):
        batch = words[start : start + _COUNT_BATCH]
        for word, tokens in zip(batch, count(batch)):
            cost = _cost(word, tokens)
            if cost <= limit:
                yield word, cost
            elif " " in word:  # a window that came out too long: its words one by one
                yield from _atoms(word.split(" "), limit, count)
            else:  # a single "word" longer than the limit (a URL, a hash, base64)
                yield from _cut_word(word, cost, limit, count)


def _cut_word(word: str, cost: int, limit: int, count: TokenCounter) -> list[tuple[str, int]]:
    """Cut one over-long word into parts of at most ``limit`` tokens, keeping every character."""
    step = max(1, len(word) * limit // cost)
    parts = [word[i : i + step] for i in range(0, len(word), step)]
    cut: list[tuple[str, int]] = []
    for part, part_cost in zip(parts, count(parts)):
        part_cost = _cost(part, part_cost)
        if part_cost > limit and len(part) > 1:
            cut += _cut_word(part, part_cost, limit, count)
        else:
            cut.append((part, part_cost))
    return cut


_COUNT_BATCH = 4096  # texts per call of the token counter, so its output stays small


def _count_all(texts: list[str], limit: int, count: TokenCounter) -> list[int]:
    """Packing costs of many texts, counted in batches.

    A text longer than ``limit * MAX_CHARS_PER_TOKEN`` characters is not counted: it is
    marked over the limit, and ``_split_long`` counts its pieces instead.
    """
    longest = limit * MAX_CHARS_PER_TOKEN
    costs: list[int] = []
    for start in range(0, len(texts), _COUNT_BATCH):
        batch = texts[start : start + _COUNT_BATCH]
        counted = iter(count([t for t in batch if len(t) <= longest]))
        costs += [
            _cost(t, next(counted)) if len(t) <= longest else max(_cost(t, 0), limit + 1)
            for t in batch
        ]
    return costs


def _cost(text: str, tokens: int) -> int:
    """Tokens a text counts for when packing: at least 1, and 1 per MAX_CHARS_PER_TOKEN."""
    return max(tokens, 1, len(text) // MAX_CHARS_PER_TOKEN)


def _piece(unit: _Unit, words: list[str], tokens: int, first: bool) -> _Unit:
    return _Unit(
        " ".join(words),
        tokens,
        unit.page,
        unit.line_start,
        unit.line_end,
        unit.heading,
        unit.starts_paragraph and first,
        unit.is_heading,
    )


def _make_units(blocks: Sequence[Block], limit: int, count: TokenCounter) -> list[_Unit]:
    raw: list[tuple[Block, str, int | None, int | None, bool]] = []
    for block in blocks:
        for i, (text, first, last) in enumerate(_units_of(block)):
            raw.append((block, text, first, last, i == 0))
    costs = _count_all([r[1] for r in raw], limit, count)
    units: list[_Unit] = []
    for (block, text, first, last, para), cost in zip(raw, costs):
        unit = _Unit(text, cost, block.page, first, last, block.heading, para, block.is_heading)
        units += _fit(unit, limit, count) if cost > limit else [unit]
    return units


def _fit(unit: _Unit, limit: int, count: TokenCounter) -> list[_Unit]:
    """A unit over ``limit`` tokens in pieces: between lines when it keeps its line breaks
    (only a whole block's does), else between words."""
    if unit.line_start is not None and "\n" in unit.text:
        return _split_lines(unit, limit, count)
    return _split_long(unit, limit, count)


def _split_lines(unit: _Unit, limit: int, count: TokenCounter) -> list[_Unit]:
    """Cut a whole multi-line unit (code) between lines, each piece as many whole lines as fit
    and its own line span; a single line over the limit is cut at words."""
    assert unit.line_start is not None
    lines = unit.text.split("\n")
    costs = _count_all(lines, limit, count)
    pieces: list[_Unit] = []
    start, total = 0, 0

    def flush(end: int) -> None:
        if end > start:
            text = "\n".join(lines[start:end])
            first = unit.line_start + start  # type: ignore[operator]
            last = first + end - start - 1
            piece = _Unit(text, total, unit.page, first, last, unit.heading, True)
            piece.continues_lines = bool(pieces)
            pieces.append(piece)

    for i, cost in enumerate(costs):
        if cost > limit:
            flush(i)
            line = unit.line_start + i
            long = _Unit(lines[i], cost, unit.page, line, line, unit.heading, True)
            pieces += _split_long(long, limit, count)
            start, total = i + 1, 0
        elif total + cost > limit:
            flush(i)
            start, total = i, cost
        else:
            total += cost
    flush(len(lines))
    return pieces


def _section_key(unit: _Unit) -> tuple[int | None, str | None]:
    return (unit.page, unit.heading)


def _pack(units: list[_Unit], size: int, overlap: int) -> list[list[_Unit]]:
    """Greedy packing within one section; prefer paragraph breaks, overlap mid-paragraph cuts."""
    chunks: list[list[_Unit]] = []
    current: list[_Unit] = []
    total = 0
    for unit in units:
        if current and total + unit.tokens > size:
            cut = _paragraph_cut(current, size)
            if cut:
                chunks.append(current[:cut])
                current = current[cut:]
                total = sum(u.tokens for u in current)
                if total + unit.tokens > size:  # the rest of the paragraph is a chunk of its own
                    chunks.append(current)
                    current, total = [], 0
            else:
                chunks.append(current)
                current = _overlap_tail(current, overlap)
                total = sum(u.tokens for u in current)
                while current and total + unit.tokens > size:  # carried tail leaves no room
                    total -= current.pop(0).tokens
        current.append(unit)
        total += unit.tokens
    if current:
        chunks.append(current)
    return chunks


def _pack_section(
    section: list[_Unit], size: int, overlap: int, count: TokenCounter
) -> list[list[_Unit]]:
    """Pack a section; every chunk that does not open with its heading gets the heading path.

    A chunk from the middle of a section then still says what it is about, to the embedder,
    to BM25 and to the reader. The heading's tokens are reserved so the limit still holds.
    """
    heading = section[-1].heading
    cost = count([heading])[0] + 1 if heading else 0
    if not heading or cost > size // 2:
        return _pack(section, size, overlap)
    budget = size - cost
    fitted = [p for u in section for p in (_fit(u, budget, count) if u.tokens > budget else [u])]
    groups = _pack(fitted, budget, overlap)
    for group in groups:
        if not group[0].is_heading:
            group.insert(0, _Unit(heading, cost, group[0].page, None, None, heading, True, True))
    return groups


def _paragraph_cut(units: list[_Unit], size: int) -> int:
    """Index of the last paragraph start past half the chunk, or 0 when there is none."""
    seen = 0
    cut = 0
    for i, unit in enumerate(units):
        if i and unit.starts_paragraph and seen >= size // 2:
            cut = i
        seen += unit.tokens
    return cut


def _overlap_tail(units: list[_Unit], overlap: int) -> list[_Unit]:
    tail: list[_Unit] = []
    total = 0
    for unit in reversed(units[1:]):
        if total + unit.tokens > overlap:
            break
        tail.insert(0, unit)
        total += unit.tokens
    return tail


def _join(units: list[_Unit]) -> str:
    parts: list[str] = []
    for i, unit in enumerate(units):
        if i:
            if unit.continues_lines and not units[i - 1].is_heading:
                parts.append("\n")
            elif unit.starts_paragraph or units[i - 1].is_heading:
                parts.append("\n\n")
            else:
                parts.append(" ")
        parts.append(unit.text)
    return "".join(parts)


def chunk_key(source: str, ordinal: int, text: str) -> str:
    """Deterministic chunk id from the document's source, position and text."""
    digest = hashlib.sha256(f"{source}\x00{ordinal}\x00{text}".encode()).hexdigest()
    return digest[:20]


def split_document(
    document: Document,
    count_tokens: TokenCounter,
    chunk_size: int,
    overlap: int,
    max_tokens: int | None = None,
) -> list[Chunk]:
    """Cut a document into chunks of at most ``chunk_size`` tokens (never above ``max_tokens``).

    Chunks never cross a heading or a PDF page, break at paragraph ends where they can, and
    repeat up to ``overlap`` tokens of whole sentences when a paragraph had to be cut.
    """
    size = min(chunk_size, max_tokens) if max_tokens else chunk_size
    overlap = min(overlap, size // 2)
    units = _make_units(document.blocks, size, count_tokens)
    groups: list[list[_Unit]] = []
    section: list[_Unit] = []
    for unit in units:
        if (
            section
            and _section_key(unit) != _section_key(section[-1])
            and not all(u.is_heading for u in section)  # headings stay with what follows
        ):
            groups += _pack_section(section, size, overlap, count_tokens)
            section = []
        section.append(unit)
    if section:
        groups += _pack_section(section, size, overlap, count_tokens)

    texts = [_join(g) for g in groups]
    exact = [
        n
        for start in range(0, len(texts), _COUNT_BATCH)
        for n in count_tokens(texts[start : start + _COUNT_BATCH])
    ]
    chunks: list[Chunk] = []
    for group, text, n_tokens in zip(groups, texts, exact):
        if max_tokens and n_tokens > max_tokens and len(group) > 1:
            # Joining can add a token or two at boundaries; halve rather than truncate.
            half = len(group) // 2
            pieces = [group[:half], group[half:]]
        else:
            pieces = [group]
        for piece in pieces:
            piece_text = text if len(pieces) == 1 else _join(piece)
            tokens = n_tokens if len(pieces) == 1 else count_tokens([piece_text])[0]
            ordinal = len(chunks)
            lines = [u.line_start for u in piece if u.line_start is not None]
            ends = [u.line_end for u in piece if u.line_end is not None]
            chunks.append(
                Chunk(
                    key=chunk_key(document.source, ordinal, piece_text),
                    ordinal=ordinal,
                    text=piece_text,
                    n_tokens=tokens,
                    page=piece[0].page,
                    line_start=min(lines) if lines else None,
                    line_end=max(ends) if ends else None,
                    heading=next((u.heading for u in piece if not u.is_heading), piece[-1].heading),
                )
            )
    return chunks
