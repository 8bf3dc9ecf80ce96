"""PDF text clean-up over per-page lines: running headers and footers (and lone page numbers)
dropped, words hyphenated at line ends joined, simple tables kept as rows, paragraphs split where
the page shows a break.

pypdf's plain extraction gives one line per visual line and no paragraph breaks; a visitor on
that same pass gives where each line starts on the page (``read_page``), which is enough to
split paragraphs at vertical gaps or indentation and to tell which pages may hold a table. Only
those pages are read a second time in pypdf's layout mode (``read_layout``), whose column
alignment finds the table rows. Everything but ``read_page`` and ``read_layout`` is a pure
function of the lines.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ragcli.records import Block

# Header/footer lines are looked for among this many non-empty lines at each end of a page.
MARGIN_LINES = 3
# ... and must repeat (digits ignored) on at least this share of the pages, and on this many.
MARGIN_SHARE = 0.5
MARGIN_MIN_PAGES = 3

_DIGITS = re.compile(r"\d+")
_WS = re.compile(r"\s+")
# A line that is only a page number: "7", "- 7 -", "[7]", "Page 7", "Page 7 of 20", "vii".
_DECOR = r"[-\u2013\u2014\u00b7\u2022|\[\]<>*\s]*"
_PAGE_NUMBER = re.compile(
    rf"{_DECOR}(?:(?:Page|PAGE)\s*)?(?:\d{{1,5}}(?:\s*(?:of|/)\s*\d{{1,5}})?|[ivxl]{{1,6}}){_DECOR}"
)

# A word cut at the end of a line: letters then a hyphen (or a soft hyphen, always a cut).
_CUT = re.compile(r"([^\W\d_]+)([-\u00ad\u2010])$")
_NEXT_WORD = re.compile(r"[^\W\d_]+")
_JOINED_WORD = re.compile(r"\S*?[^\W\d_]+(?:-[^\W\d_]+)?")
_WORDS = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
# Left parts that usually start a real compound ("well-known", "self-contained"): their hyphen
# is kept when the document itself says nothing about the word.
COMPOUND_PREFIXES = frozenset(
    "all cross half ill non multi self semi so well".split()
)  # fmt: skip

# Layout-mode cells are separated by this many spaces or more.
_GUTTER = re.compile(r" {3,}")
TABLE_MIN_ROWS = 3
TABLE_MIN_CELLS = 3
TABLE_SLACK = 3

_SENTENCE_END = re.compile(r"[.!?:;][\"'\u201d\u2019)\]]*$")
_FULL_STOP = re.compile(r"[.!?][\"'\u201d\u2019)\]]*$")


@dataclass
class Line:
    """One visual line of a page as pypdf's plain extraction gives it, and where it starts.

    ``x``/``y`` are PDF points (y grows upwards), None where unknown; ``size`` the font size of
    its first fragment; ``cells`` how many well separated text runs it has (a table hint).
    """

    text: str
    x: float | None = None
    y: float | None = None
    size: float | None = None
    cells: int = 1


@dataclass
class PageText:
    """A page's plain lines, and its layout-mode lines where those were read."""

    lines: list[Line]
    layout: list[str] | None = None


@dataclass
class CleanStats:
    """What the clean-up changed, for benchmarks and tests."""

    margin_lines: int = 0  # header, footer and page-number lines dropped
    hyphen_joins: int = 0  # words rejoined across a line end
    kept_hyphens: int = 0  # of those, joined keeping the hyphen ("well-known")
    table_rows: int = 0  # lines emitted as table rows
    paragraph_splits: int = 0  # breaks found from the page geometry (not blank lines)
    removed: list[str] = field(default_factory=list)  # the dropped lines, for a look
    joins: list[str] = field(default_factory=list)  # the joined words


# --- reading a pypdf page -----------------------------------------------------------------


def read_page(page: Any) -> list[Line]:
    """A pypdf page's plain text as lines, each with where it starts on the page.

    One extraction pass: the visitors see the same text pypdf returns, fragment by fragment, and
    the operators that show it, so the positions and table hints come at little cost. Falls
    back to bare lines when the fragments do not add up to the text.
    """
    fragments: list[tuple[str, float, float, float]] = []
    wide: Counter[float] = Counter()  # gaps of an em or more inside one TJ array, by line

    def visit(text: str, cm: list[float], tm: list[float], _font: Any, size: float) -> None:
        _, _, c, d, e, f = _multiply(tm, cm)
        fragments.append((text, e, f, abs(size * math.hypot(c, d)) or abs(size)))

    def operator(op: bytes, args: list[Any], cm: list[float], tm: list[float]) -> None:
        if op == b"TJ" and args and isinstance(args[0], list):
            gaps = _wide_kerns(args[0])
            if gaps:
                wide[round(_multiply(tm, cm)[5], 1)] += gaps

    text = page.extract_text(visitor_text=visit, visitor_operand_before=operator) or ""
    if "".join(t for t, *_ in fragments) != text:
        return [Line(t) for t in _normal_newlines(text).split("\n")]
    lines = lines_from_fragments(fragments)
    for line in lines:
        if line.y is not None:
            line.cells += wide[round(line.y, 1)]
    return lines


def _wide_kerns(items: list[Any]) -> int:
    """How many gaps of an em or more (a kern of -1000 or less) a TJ array has between text."""
    gaps = 0
    seen_text = False
    pending = False
    for item in items:
        if isinstance(item, (int, float)):
            pending = pending or (seen_text and item <= -1000)
        else:
            if pending:
                gaps += 1
            seen_text, pending = True, False
    return gaps


def read_pages(
    pages: Iterable[Any], layout: Literal["auto", "all", "none"] = "auto"
) -> list[PageText]:
    """Every page's lines; layout-mode lines too for the pages that may hold a table
    (``layout="auto"``), for all pages ("all") or none ("none"). A page that fails to read
    comes back empty: one bad page must not lose the others."""
    out: list[PageText] = []
    for page in pages:
        try:
            lines = read_page(page)
        except Exception:
            out.append(PageText([]))
            continue
        grid = None
        if layout == "all" or (layout == "auto" and may_hold_table(lines)):
            try:
                grid = read_layout(page)
            except Exception:
                grid = None
        out.append(PageText(lines, grid))
    return out


def read_layout(page: Any) -> list[str]:
    """A pypdf page's text in layout mode (columns kept by spaces), as lines."""
    text = page.extract_text(extraction_mode="layout") or ""
    return _normal_newlines(text).split("\n")


def _normal_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _multiply(m: list[float], n: list[float]) -> tuple[float, float, float, float, float, float]:
    a, b, c, d, e, f = (float(v) for v in m)
    p, q, r, s, t, u = (float(v) for v in n)
    return (
        a * p + b * r,
        a * q + b * s,
        c * p + d * r,
        c * q + d * s,
        e * p + f * r + t,
        e * q + f * s + u,
    )


def lines_from_fragments(fragments: Iterable[tuple[str, float, float, float]]) -> list[Line]:
    """Lines from (text, x, y, font size) fragments in output order; a line's position is that
    of the fragment it starts with, unknown when it starts inside a fragment."""
    lines: list[Line] = [Line("")]
    runs: list[list[tuple[float, float, int]]] = [[]]  # (x, size, offset in the line) per run
    for text, x, y, size in fragments:
        for n, piece in enumerate(_normal_newlines(text).split("\n")):
            if n:
                lines.append(Line(""))
                runs.append([])
            line = lines[-1]
            if piece.strip() and n == 0:
                if not line.text.strip():
                    line.x, line.y, line.size = x, y, size
                runs[-1].append((x, size, len(line.text)))
            line.text += piece
    for line, starts in zip(lines, runs):
        line.cells = _cells_from_runs(line.text, starts)
    return lines


def _cells_from_runs(text: str, runs: list[tuple[float, float, int]]) -> int:
    """How many runs of the line are separated by a clear gap: a run's next start is more than
    an em past where its text, at a generous 0.65 em a character, would end."""
    cells = len(_GUTTER.split(text.strip())) if text.strip() else 0
    gaps = 0
    for (x0, size, start), (x1, _, end) in zip(runs, runs[1:]):
        width = 0.65 * size * len(text[start:end].strip())
        if x1 - (x0 + width) > size:
            gaps += 1
    return max(cells, gaps + 1)


# --- headers, footers and page numbers ------------------------------------------------------


def margin_key(text: str) -> str:
    """A line as compared across pages: spaces collapsed, every number the same."""
    return _DIGITS.sub("#", _WS.sub(" ", text).strip())


def is_page_number(text: str) -> bool:
    """A line that is only a page number ("7", "- 7 -", "Page 7 of 20", "vii")."""
    return bool(text.strip()) and _PAGE_NUMBER.fullmatch(text.strip()) is not None


def page_number_value(text: str) -> int | None:
    """The number a page-number line says ("Page 7 of 20": 7, "vii": 7), None if it is not one."""
    if not is_page_number(text):
        return None
    digits = _DIGITS.search(text)
    if digits:
        return int(digits.group(0))
    roman = re.search(r"[ivxl]+", text)
    return _roman(roman.group(0)) if roman else None


def _roman(text: str) -> int:
    values = [{"i": 1, "v": 5, "x": 10, "l": 50}[c] for c in text]
    return sum(-v if v < w else v for v, w in zip(values, [*values[1:], 0]))


def _margin_indexes(lines: list[str]) -> list[int]:
    filled = [i for i, t in enumerate(lines) if t.strip()]
    if len(filled) <= 2 * MARGIN_LINES:
        return filled
    return filled[:MARGIN_LINES] + filled[-MARGIN_LINES:]


def margin_lines(pages: list[list[str]]) -> list[set[int]]:
    """Per page, the indexes of its running header/footer lines and lone page numbers.

    A header/footer is a line among the first or last ``MARGIN_LINES`` non-empty lines of a page
    whose text, numbers ignored, comes back the same way on at least half of the pages (and on
    ``MARGIN_MIN_PAGES``). A running head that changes with the chapter is one found on at least
    half of the pages from its first to its last appearance (and on ``MARGIN_MIN_PAGES``) that
    either carries a number that changes on every page (its page number) or sits next to a
    header/footer line on every page: a line repeated word for word on a few pages in a row is
    more likely content (a figure's labels, a table's header) and stays.

    A lone page number is a line that is only a number ("- 7 -", "Page 7 of 20", "vii") at the
    top or bottom of what is left of a page; it is dropped when it says "Page", or when another
    page's lone number is off from its place in the file by the same amount (pages 7, 9, 11
    printed "1", "3", "5"): a figure's axis label "0" at the bottom of a page is not.
    """
    where: dict[str, dict[int, str]] = {}  # key -> page -> the line as written there
    for number, lines in enumerate(pages):
        for i in _margin_indexes(lines):
            if not is_page_number(lines[i]):  # those are judged one by one, below
                key = margin_key(lines[i])
                where.setdefault(key, {}).setdefault(number, _WS.sub(" ", lines[i]))
    running = {
        key
        for key, found in where.items()
        if len(found) >= max(MARGIN_MIN_PAGES, MARGIN_SHARE * len(pages))
    }
    for key, found in where.items():
        numbers = sorted(found)
        span = numbers[-1] - numbers[0] + 1
        if key in running or len(found) < max(MARGIN_MIN_PAGES, MARGIN_SHARE * span):
            continue
        numbered = "#" in key and len(set(found.values())) == len(found)
        if numbered or all(_next_to(pages[n], key, running) for n in numbers):
            running.add(key)
    dropped = [
        {i for i in _margin_indexes(lines) if margin_key(lines[i]) in running} for lines in pages
    ]
    # Lone page numbers: (page, line, printed number - page's place in the file) each.
    lone: list[tuple[int, int, int]] = []
    for number, (lines, drop) in enumerate(zip(pages, dropped)):
        left = [i for i, t in enumerate(lines) if t.strip() and i not in drop]
        ends: set[int] = set()
        for side in (left[:MARGIN_LINES], left[::-1][:MARGIN_LINES]):
            for i in side:  # "Page 3 of 10" then "- 3 -": both
                value = page_number_value(lines[i])
                if value is None:
                    break
                if i not in ends:
                    ends.add(i)
                    lone.append((number, i, value - number))
    offsets = Counter(offset for _, _, offset in lone)
    for number, i, offset in lone:
        if offsets[offset] >= 2 or pages[number][i].strip().upper().startswith("PAGE"):
            dropped[number].add(i)
    return dropped


def _next_to(lines: list[str], key: str, running: set[str]) -> bool:
    """Whether the margin line ``key`` has a running header/footer line next to it."""
    keys = [margin_key(t) for t in lines if t.strip()]
    edges = set(range(MARGIN_LINES)) | set(range(len(keys) - MARGIN_LINES, len(keys)))
    return any(
        k == key
        and n in edges
        and any(0 <= j < len(keys) and keys[j] in running for j in (n - 1, n + 1))
        for n, k in enumerate(keys)
    )


# --- hyphenation ----------------------------------------------------------------------------


def vocabulary(lines: Iterable[str]) -> Counter[str]:
    """Lower-cased words (hyphenated compounds as one word) counted over the document."""
    words: Counter[str] = Counter()
    for line in lines:
        words.update(w.lower() for w in _WORDS.findall(line))
    return words


def hyphen_join(left: str, right: str, words: Counter[str]) -> str | None:
    """How the end of line ``left`` and the start of line ``right`` join, or None when the
    line does not end in a cut word.

    A cut is letters + "-" at the end of a line and a lower-case letter starting the next. The
    word is rejoined without the hyphen unless it is a real compound: the document uses the
    hyphenated form elsewhere and never the joined one, or (when it uses neither) the left part
    is a usual compound prefix ("well-known", "self-"). A capitalised left part is no sign
    either way: TeX cuts names too ("Delau-nay"). A soft hyphen is always removed.
    """
    cut = _CUT.search(left.rstrip())
    first = right.lstrip()[:1]
    if cut is None or not first.islower():
        return None
    stem, hyphen = cut.group(1), cut.group(2)
    nxt = _NEXT_WORD.match(right.lstrip())
    tail = nxt.group(0).lower() if nxt else ""
    head = left.rstrip()[: cut.start(2)]
    if hyphen != "\u00ad":
        joined, compound = (stem + tail).lower(), f"{stem}-{tail}".lower()
        if words[compound] and not words[joined]:
            return f"{head}-{right.lstrip()}"
        if not words[joined] and stem.lower() in COMPOUND_PREFIXES:
            return f"{head}-{right.lstrip()}"
    return head + right.lstrip()


def join_hyphens(lines: list[str], words: Counter[str]) -> tuple[list[str], list[str]]:
    """The lines with words cut at line ends rejoined onto the first line; and those words."""
    out: list[str] = []
    joined: list[str] = []
    for line in lines:
        merged = hyphen_join(out[-1], line, words) if out else None
        if merged is None:
            out.append(line)
            continue
        start = out[-1].rstrip().rfind(" ") + 1
        word = _JOINED_WORD.match(merged, start)
        joined.append(word.group(0) if word else merged[start:])
        out[-1] = merged
    return out, joined


# --- tables ---------------------------------------------------------------------------------


def _cells(line: str) -> list[tuple[int, int, str]]:
    """(start, end, text) of each cell of a layout-mode line: runs split at 3+ spaces."""
    cells = []
    for m in re.finditer(r"\S+(?: {1,2}\S+)*", line):
        cells.append((m.start(), m.end(), m.group(0)))
    return cells


def _aligned(a: list[tuple[int, int, str]], b: list[tuple[int, int, str]]) -> bool:
    """Same number of cells and every gutter (the gap between two cells) overlapping, give or
    take ``TABLE_SLACK`` columns (layout mode places header fonts a little differently): holds
    for left-, right- and centre-aligned columns alike."""
    if len(a) != len(b):
        return False
    for (_, a0, _), (a1, _, _), (_, b0, _), (b1, _, _) in zip(a, a[1:], b, b[1:]):
        if not (a0 < b1 + TABLE_SLACK and b0 < a1 + TABLE_SLACK):
            return False
    return True


def table_rows(layout: list[str]) -> list[list[list[str]]]:
    """The simple tables of a page in layout mode, each a list of rows of cells.

    A table is ``TABLE_MIN_ROWS`` or more non-blank lines in a row (blank lines between them
    allowed) of ``TABLE_MIN_CELLS`` or more cells each, the cells separated by 3+ spaces and the
    gaps between cells lined up from one line to the next.
    """
    tables: list[list[list[str]]] = []
    run: list[list[tuple[int, int, str]]] = []

    def close() -> None:
        if len(run) >= TABLE_MIN_ROWS:
            tables.append([[" ".join(text.split()) for _, _, text in cells] for cells in run])
        run.clear()

    for line in layout:
        if not line.strip():
            continue
        cells = _cells(line)
        if len(cells) < TABLE_MIN_CELLS:
            close()
            continue
        if run and not _aligned(run[-1], cells):
            close()
        run.append(cells)
    close()
    return tables


def may_hold_table(lines: list[Line]) -> bool:
    """Whether the plain lines hint at a table (worth a layout-mode read): ``TABLE_MIN_ROWS``
    lines in a row with ``TABLE_MIN_CELLS`` or more well separated runs each."""
    streak = 0
    for line in lines:
        if not line.text.strip():
            continue
        streak = streak + 1 if line.cells >= TABLE_MIN_CELLS else 0
        if streak >= TABLE_MIN_ROWS:
            return True
    return False


def _squeeze(text: str) -> str:
    return "".join(text.split())


def match_rows(lines: list[str], tables: list[list[list[str]]]) -> dict[int, list[str]]:
    """Plain line index -> the cells of the table row it holds: a row matches the next plain
    line, in order, with the same characters (spaces ignored)."""
    found: dict[int, list[str]] = {}
    squeezed = [_squeeze(t) for t in lines]
    cursor = 0
    for table in tables:
        for cells in table:
            key = "".join(_squeeze(c) for c in cells)
            for i in range(cursor, len(lines)):
                if squeezed[i] == key:
                    found[i] = cells
                    cursor = i + 1
                    break
    return found


# --- paragraphs -----------------------------------------------------------------------------


def paragraph_breaks(lines: list[Line]) -> set[int]:
    """Indexes of lines that start a paragraph, judged from the page geometry.

    The usual line spacing of the page is the median distance between consecutive lines. A
    line starts a paragraph after a gap of 1.5 times that, or, when the line before ends a
    sentence (or a clause: ":" ";"), after a gap of 1.1 times it, or, after a full stop, when it
    is indented by an em or more from the page's usual left edge (not after a colon: that is
    how code follows "def f():"). Lines whose position is unknown are never split.
    """
    placed = [(i, line, line.y) for i, line in enumerate(lines) if line.text.strip() and line.y]
    gaps = [a - b for (_, _, a), (_, _, b) in zip(placed, placed[1:]) if a > b]
    if len(gaps) < 2:
        return set()
    spacing = statistics.median(gaps)
    edges = Counter(round(line.x) for _, line, _ in placed if line.x is not None)
    left = edges.most_common(1)[0][0] if edges else None
    breaks = set()
    for (_, above, y0), (j, line, y1) in zip(placed, placed[1:]):
        gap = y0 - y1
        end = above.text.rstrip()
        if gap >= 1.5 * spacing:
            breaks.add(j)
        elif _SENTENCE_END.search(end):
            em = line.size or spacing
            indented = left is not None and line.x is not None and line.x - left >= em
            if gap >= 1.1 * spacing or (indented and _FULL_STOP.search(end)):
                breaks.add(j)
    return breaks


# --- all together ---------------------------------------------------------------------------


def clean_pages(pages: list[PageText]) -> tuple[list[list[Block]], CleanStats]:
    """Blocks per page (1-based page numbers) from the pages' lines, cleaned up."""
    stats = CleanStats()
    texts = [[line.text for line in page.lines] for page in pages]
    dropped = margin_lines(texts)
    words = vocabulary(t for lines in texts for t in lines)
    out: list[list[Block]] = []
    for number, (page, drop) in enumerate(zip(pages, dropped), start=1):
        stats.margin_lines += len(drop)
        stats.removed += [page.lines[i].text.strip() for i in sorted(drop)]
        lines = [line for i, line in enumerate(page.lines) if i not in drop]
        out.append(page_blocks(lines, page.layout, number, words, stats))
    return out, stats


def page_blocks(
    lines: list[Line], layout: list[str] | None, page: int, words: Counter[str], stats: CleanStats
) -> list[Block]:
    """One page's blocks: paragraphs (at blank lines and geometric breaks) with cut words
    rejoined, and table rows as whole blocks, cells joined by " | "."""
    rows = match_rows([x.text for x in lines], table_rows(layout)) if layout else {}
    breaks = paragraph_breaks(lines)
    blocks: list[Block] = []
    current: list[str] = []

    def paragraph() -> None:
        joined, cut = join_hyphens(current, words)
        stats.hyphen_joins += len(cut)
        stats.kept_hyphens += sum("-" in w for w in cut)
        stats.joins += cut
        blocks.append(Block("\n".join(joined).strip(), page=page))
        current.clear()

    for i, line in enumerate(lines):
        if i in rows:
            if current:
                paragraph()
            blocks.append(Block(" | ".join(rows[i]), page=page, whole=True))
            stats.table_rows += 1
        elif not line.text.strip():
            if current:
                paragraph()
        else:
            if i in breaks and current:
                stats.paragraph_splits += 1
                paragraph()
            current.append(line.text)
    if current:
        paragraph()
    return blocks
