"""PDF text clean-up (``ragcli.loaders.pdf_text``): running headers/footers and page numbers
dropped, cut words joined, simple tables kept as rows, paragraphs split from the page geometry;
on synthetic line lists and on an fpdf2-generated PDF read through ``load_documents``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ragcli.loaders import load_documents
from ragcli.loaders.pdf_text import (
    CleanStats,
    Line,
    PageText,
    clean_pages,
    hyphen_join,
    is_page_number,
    join_hyphens,
    lines_from_fragments,
    margin_lines,
    match_rows,
    may_hold_table,
    page_blocks,
    paragraph_breaks,
    table_rows,
    vocabulary,
)

PLACES = (
    "ferry quay pier crane gull cliff mill tide bridge river island storm market lantern "
    "ledger orchard school archive timber customs"
).split()


def _body(n: int) -> list[str]:
    """Four lines of page ``n``: no digits, different on every page."""
    place = PLACES[n - 1]
    return [f"The {w} line about the {place}." for w in ("first", "second", "third", "fourth")]


# --- headers, footers, page numbers ---------------------------------------------------------


def test_repeated_headers_with_page_numbers_are_dropped() -> None:
    pages = [
        [f"Harbour Report 2023 · {n}", "", *_body(n), f"Page {n} of 10", f"- {n} -"]
        for n in range(1, 11)
    ]
    dropped = margin_lines(pages)
    for lines, drop in zip(pages, dropped):
        assert {lines[i] for i in drop} == {lines[0], lines[-2], lines[-1]}


def test_a_line_on_only_two_of_ten_pages_is_kept() -> None:
    pages = [[f"Chapter {n}", *_body(n), f"{n}"] for n in range(1, 11)]
    pages[2].insert(0, "Draft copy")
    pages[7].insert(0, "Draft copy")
    dropped = margin_lines(pages)
    kept = [
        lines[i] for lines, drop in zip(pages, dropped) for i in range(len(lines)) if i not in drop
    ]
    assert kept.count("Draft copy") == 2
    # "Chapter #" repeats at the top of every page: a running head, numbers ignored.
    assert not any(t.startswith("Chapter") for t in kept)
    # The lone page number at the bottom goes; the body stays.
    assert "5" not in kept and "The first line about the gull." in kept


def test_running_head_of_one_chapter_is_dropped_but_a_scattered_line_kept() -> None:
    pages = [_body(n) for n in range(1, 21)]
    for n in range(4, 10):  # a chapter's running head on 6 pages of 20
        pages[n] = [f"Chapter 2: Setup {n + 1}", *pages[n]]
    for n in (1, 10, 19):  # the same first line on 3 pages far apart: content, not a head
        pages[n] = ["Note on tides", *pages[n]]
    kept = [
        lines[i] for lines, drop in zip(pages, margin_lines(pages)) for i in range(len(lines))
        if i not in drop
    ]  # fmt: skip
    assert not any(t.startswith("Chapter 2") for t in kept)
    assert kept.count("Note on tides") == 3


def test_chapter_head_without_a_page_number_goes_only_next_to_a_footer() -> None:
    pages = [[*_body(n), "User Guide", f"Page {n}"] for n in range(1, 21)]
    for n in range(4, 10):  # the chapter's name between two footer lines, word for word
        pages[n].insert(-1, "Chapter 2 Graphics")
    for n in range(12, 15):  # a figure's label at the top of 3 pages in a row, word for word
        pages[n].insert(0, "(0,0) the Origin")
    kept = [
        lines[i] for lines, drop in zip(pages, margin_lines(pages)) for i in range(len(lines))
        if i not in drop
    ]  # fmt: skip
    assert "Chapter 2 Graphics" not in kept and "User Guide" not in kept
    assert kept.count("(0,0) the Origin") == 3
    assert not any(t.startswith("Page") for t in kept)


def test_margins_need_three_pages() -> None:
    pages = [["Same header", *_body(n)] for n in (1, 2)]
    assert margin_lines(pages) == [set(), set()]


def test_lone_page_numbers() -> None:
    assert all(is_page_number(t) for t in ["7", "- 7 -", "[12]", "Page 3 of 10", "xiv", "• 4 •"])
    assert not any(
        is_page_number(t) for t in ["12 400", "page 71).", "2023 Report", "C", "", "Total 7"]
    )
    # Only at the top or bottom of a page, and only when another page's number is off from its
    # place in the file by as much (or it says "Page"): not an axis label "0" on one page.
    pages = [
        ["3", "Alpha beta.", "42", "Gamma delta."],
        ["Epsilon.", "4"],
        ["Zeta.", "0"],
        ["Page 9", "Eta."],
        ["Theta."],
        ["viii", "Iota."],
    ]
    assert margin_lines(pages) == [{0}, {1}, set(), {0}, set(), {0}]
    assert margin_lines([["Total", "42"]]) == [set()]


# --- hyphenation ----------------------------------------------------------------------------


def test_cut_word_is_joined_without_its_hyphen() -> None:
    words = Counter()
    assert hyphen_join("keeps infor-", "mation about it", words) == "keeps information about it"
    lines, joined = join_hyphens(
        ["The trust collects infor-", "mation about every", "ferry."], words
    )
    assert lines == ["The trust collects information about every", "ferry."]
    assert joined == ["information"]


def test_real_compounds_keep_their_hyphen() -> None:
    # A usual compound prefix, when the document says nothing else about the word.
    assert hyphen_join("a well-", "known ledger", Counter()) == "a well-known ledger"
    # The document writes the compound with its hyphen elsewhere, never joined.
    words = vocabulary(["An x-ray of the hull.", "Built-in tools."])
    assert hyphen_join("took an x-", "ray today", words) == "took an x-ray today"
    assert hyphen_join("the built-", "in ones", words) == "the built-in ones"
    # ... but a word the document writes joined is joined, prefix or not.
    words = vocabulary(["Nonzero values are errors."])
    assert hyphen_join("a non-", "zero value", words) == "a nonzero value"
    # Capitalised words are cut like any other (TeX cuts names: "Delau-nay").
    assert hyphen_join("a Delau-", "nay mesh", Counter()) == "a Delaunay mesh"


def test_lines_that_are_not_cut_words_stay_apart() -> None:
    words = Counter()
    assert hyphen_join("ARITHMETIC EVALUA-", "TION follows", words) is None  # next is upper case
    assert hyphen_join("pages 10-", "12 are blank", words) is None  # next is a digit
    assert hyphen_join("a dash -", "then more", words) is None  # a dash, not a cut
    assert hyphen_join("width 12-", "inch", words) is None  # a digit before the hyphen
    assert hyphen_join("the end.", "next line", words) is None
    lines, joined = join_hyphens(["Section A-", "B follows", "here"], words)
    assert lines == ["Section A-", "B follows", "here"] and joined == []


def test_soft_hyphen_is_always_removed() -> None:
    assert hyphen_join("well\u00ad", "known", Counter()) == "wellknown"


# --- tables ---------------------------------------------------------------------------------

LAYOUT = [
    "Fleet costs for the year",
    "",
    "      Vessel          Year        Cost",
    "",
    "      Ferry One       1998      12 400",
    "",
    "      Tug Brisk       2004       8 100",
    "      Lantern         2011       3 000",
    "",
    "The costs above include dredging.",
]


def test_aligned_columns_are_a_table() -> None:
    assert table_rows(LAYOUT) == [
        [
            ["Vessel", "Year", "Cost"],
            ["Ferry One", "1998", "12 400"],
            ["Tug Brisk", "2004", "8 100"],
            ["Lantern", "2011", "3 000"],
        ]
    ]


def test_what_is_not_a_table() -> None:
    two_rows = LAYOUT[:6]
    assert table_rows(two_rows) == []
    two_columns = ["Attribute       Synonyms", "alignment       align", "leading         lead"]
    assert table_rows(two_columns) == []
    misaligned = ["a   b   c", "dddddddddddd   e   f", "g   hhhhhhhhhhhhhh   i"]
    assert table_rows(misaligned) == []
    prose = ["Some text that runs on", "and on with single spaces", "like any paragraph does"]
    assert table_rows(prose) == []


def test_table_rows_are_matched_to_plain_lines() -> None:
    plain = [
        "Fleet costs for the year",
        "Vessel Year Cost",
        "Ferry One 1998 12 400",
        "Tug Brisk 2004 8 100",
        "Lantern 2011 3 000",
        "The costs above include dredging.",
    ]
    rows = match_rows(plain, table_rows(LAYOUT))
    assert sorted(rows) == [1, 2, 3, 4] and rows[2] == ["Ferry One", "1998", "12 400"]
    lines = [Line(t) for t in plain]
    blocks = page_blocks(lines, LAYOUT, 3, Counter(), CleanStats())
    assert [(b.text, b.whole) for b in blocks] == [
        ("Fleet costs for the year", False),
        ("Vessel | Year | Cost", True),
        ("Ferry One | 1998 | 12 400", True),
        ("Tug Brisk | 2004 | 8 100", True),
        ("Lantern | 2011 | 3 000", True),
        ("The costs above include dredging.", False),
    ]
    assert all(b.page == 3 for b in blocks)


def test_table_hint_needs_three_rows_of_three_cells() -> None:
    rows = [Line("a b c", cells=3) for _ in range(3)]
    assert may_hold_table(rows)
    assert not may_hold_table([*rows[:2], Line("prose"), rows[0]])
    assert not may_hold_table([Line("a b", cells=2) for _ in range(5)])


def test_fragment_gaps_count_as_cells() -> None:
    # Three runs on one baseline, far apart for their text: three cells.
    row = [
        ("Vessel", 31.0, 600.0, 11.0),
        (" Year", 210.0, 600.0, 11.0),
        (" Cost", 345.0, 600.0, 11.0),
    ]
    # One sentence in three runs that follow each other closely: one cell.
    prose = [("The ", 31.0, 580, 11.0), ("bold", 50.0, 580, 11.0), (" word", 75.0, 580, 11.0)]
    lines = lines_from_fragments([*row, ("\n", 0.0, 0.0, 0.0), *prose])
    assert [(x.text, x.cells, x.x, x.y) for x in lines] == [
        ("Vessel Year Cost", 3, 31.0, 600.0),
        ("The bold word", 1, 31.0, 580.0),
    ]


# --- paragraphs -----------------------------------------------------------------------------


def _placed(rows: list[tuple[str, float, float]]) -> list[Line]:
    return [Line(text, x=x, y=y, size=10.0) for text, x, y in rows]


def test_paragraph_breaks_from_gaps_and_indentation() -> None:
    lines = _placed(
        [
            ("First paragraph starts here and", 72, 700),
            ("ends on this line.", 72, 688),
            ("Second paragraph after a small", 72, 674),  # 14 > 1.1 x 12, sentence ended
            ("gap goes on without a full stop", 72, 662),
            ("and here the gap is a little", 72, 648),  # 14 but no sentence end: same paragraph
            ("wider but it is the same sentence.", 72, 636),
            ("Indented third paragraph, same", 90, 624),  # indented after a full stop
            ("spacing as the lines before:", 72, 612),
            ("    code_after_a_colon()", 90, 600),  # indented after a colon: not a break
            ("Heading Without Stop", 72, 570),  # 30 >= 1.5 x 12: always a break
            ("Body under the heading.", 72, 558),
        ]
    )
    assert paragraph_breaks(lines) == {2, 6, 9}
    unknown = [Line(x.text) for x in lines]
    assert paragraph_breaks(unknown) == set()


def test_clean_pages_puts_it_together() -> None:
    pages = []
    for n in range(1, 5):
        place = PLACES[n]
        lines = [
            Line(f"Harbour Report · {n}", 72, 800, 9),
            Line(f"The {place} page opens with infor-", 72, 700, 10),
            Line(f"mation about the {place}.", 72, 688, 10),
            Line(f"A new paragraph on the {place}, after a gap.", 72, 670, 10),
            Line(f"It goes on about the {place}.", 72, 658, 10),
            Line(f"And ends with the {place}.", 72, 646, 10),
            Line(f"{n}", 300, 40, 9),
        ]
        pages.append(PageText(lines))
    blocks, stats = clean_pages(pages)
    assert [b.text for b in blocks[1]] == [
        "The pier page opens with information about the pier.",
        "A new paragraph on the pier, after a gap.\nIt goes on about the pier.\n"
        "And ends with the pier.",
    ]
    assert stats.margin_lines == 8 and stats.hyphen_joins == 4 and stats.paragraph_splits == 4
    assert [b.page for b in blocks[3]] == [4, 4]


# --- a generated PDF through load_documents ---------------------------------------------------

HEADER = "Marrowick Harbour Trust Annual Report"


def _report_pdf(path: Path) -> None:
    from fpdf import FPDF

    class Report(FPDF):
        def header(self) -> None:
            self.set_font("Helvetica", size=9)
            self.cell(0, 8, f"{HEADER} 2023", align="C")
            self.ln(12)

        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("Helvetica", size=9)
            self.cell(0, 8, f"Page {self.page_no()} of {{nb}}", align="C")

    pdf = Report()
    pdf.set_font("Helvetica", size=11)
    places = ["ferry", "quay", "lighthouse", "slipway", "pier"]
    for n, place in enumerate(places):
        pdf.add_page()
        pdf.multi_cell(
            0, 6,
            f"The {place} trust collects infor-\nmation about the {place} and keeps a well-\n"
            f"known ledger of its repairs. The {place} was inspected in spring.",
        )  # fmt: skip
        pdf.ln(6)
        pdf.multi_cell(0, 6, f"A second paragraph tells how the {place} fared in the storms.")
        if n == 1:
            pdf.ln(6)
            with pdf.table(col_widths=(40, 30, 50)) as table:
                for cells in [
                    ("Vessel", "Year", "Cost"),
                    ("Ferry One", "1998", "12 400"),
                    ("Tug Brisk", "2004", "8 100"),
                    ("Lantern", "2011", "3 000"),
                ]:
                    row = table.row()
                    for cell in cells:
                        row.cell(cell)
    pdf.output(str(path))


def test_generated_pdf_is_cleaned_up(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    _report_pdf(path)
    (doc,) = load_documents(path, path.name)
    assert doc.format == "pdf" and doc.pages == 5
    assert sorted({b.page for b in doc.blocks}) == [1, 2, 3, 4, 5]
    for block in doc.blocks:
        assert HEADER not in block.text and "Page " not in block.text
    text = doc.text
    assert text.count("information about the") == 5 and "infor-" not in text
    assert text.count("well-known ledger") == 5
    rows = [b for b in doc.blocks if b.whole]
    assert [b.text for b in rows] == [
        "Vessel | Year | Cost",
        "Ferry One | 1998 | 12 400",
        "Tug Brisk | 2004 | 8 100",
        "Lantern | 2011 | 3 000",
    ]
    assert all(b.page == 2 for b in rows)
    # The gap between the two paragraphs splits them, though pypdf gives no blank line.
    page1 = [b.text for b in doc.blocks if b.page == 1]
    assert page1 == [
        "The ferry trust collects information about the ferry and keeps a well-known ledger of "
        "its repairs. The ferry was inspected in spring.",
        "A second paragraph tells how the ferry fared in the storms.",
    ]
