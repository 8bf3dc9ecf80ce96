"""Spreadsheet loaders (xlsx, csv, tsv): rows as "Header: value" blocks with their row numbers,
header rules, chunks that never cut a row, and the bad-input matrix; every fixture is built
here (openpyxl writes the workbooks)."""

from __future__ import annotations

import datetime as dt
import io
import resource
import time
import zipfile
from pathlib import Path

import pytest

from ragcli.chunking import split_document
from ragcli.errors import LoaderError
from ragcli.loaders import LOADERS, load_documents, parse_csv, parse_tsv, parse_xlsx, sheets
from ragcli.records import Block, Document, location_label


def _load(path: Path) -> Document:
    (document,) = load_documents(path, path.name)
    return document


def _rows(blocks: list[Block]) -> list[tuple[str, int | None, str | None]]:
    return [(b.text, b.line_start, b.heading) for b in blocks if not b.is_heading]


def _workbook(path: Path) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sales = book.active
    sales.title = "Sales"
    sales.append(["Region", "Q3 revenue", "Closed on", "Deals"])
    sales.append(["North", "1.2M", dt.datetime(2024, 3, 1), 12.0])
    sales.append([])  # an empty row: skipped, but row numbers go on
    sales.append(["South", None, dt.datetime(2024, 3, 1, 14, 30), 7.25])  # an empty cell
    sales.append([None, None, None, None])
    staff = book.create_sheet("Staff")
    staff.append(["Name", "Started"])
    staff.append(["Ada", dt.date(2021, 5, 17)])
    staff.append(["Grace", 1998])
    book.properties.title = "Quarterly figures"
    book.save(path)
    return path


def test_xlsx_rows_carry_headers_row_numbers_and_sheet(tmp_path: Path) -> None:
    doc = _load(_workbook(tmp_path / "book.xlsx"))
    assert (doc.format, doc.title, doc.pages) == ("xlsx", "Quarterly figures", 2)
    assert doc.notes == []
    assert _rows(doc.blocks) == [
        ("Region: North; Q3 revenue: 1.2M; Closed on: 2024-03-01; Deals: 12", 2, "Sales"),
        ("Region: South; Closed on: 2024-03-01 14:30; Deals: 7.25", 4, "Sales"),
        ("Name: Ada; Started: 2021-05-17", 2, "Staff"),
        ("Name: Grace; Started: 1998", 3, "Staff"),
    ]
    headings = [(b.text, b.heading) for b in doc.blocks if b.is_heading]
    assert headings == [("Sales", "Sales"), ("Staff", "Staff")]
    assert doc.blocks[0].is_heading and doc.blocks[0].text == "Sales"
    rows = [b for b in doc.blocks if not b.is_heading]
    assert all(b.whole and b.line_end == b.line_start and b.page is None for b in rows)
    assert location_label(None, 2, 4, doc.format) == "rows 2-4"


def test_header_rules_generic_and_duplicate_names(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Data"
    sheet.append([None, None])  # leading empty rows: the header is the first non-empty row
    sheet.append(["Item", None, "Amount", "Amount"])
    sheet.append(["pen", "blue", 3, 4, "extra"])
    numbers = book.create_sheet("Numbers")  # no header: a first row of numbers and dates is data
    numbers.append([1, 2.5, dt.datetime(2020, 1, 2)])
    numbers.append([3, None, None])
    hidden = book.create_sheet("Lookup")  # hidden sheets are read too
    hidden.sheet_state = "hidden"
    hidden.append(["Code", "Meaning"])
    hidden.append(["X1", "expedited"])
    book.create_sheet("Blank")  # an empty sheet: nothing, no note
    book.save(tmp_path / "h.xlsx")

    doc = _load(tmp_path / "h.xlsx")
    assert doc.pages == 4 and doc.title is None and doc.notes == []
    assert _rows(doc.blocks) == [
        ("Item: pen; Column B: blue; Amount: 3; Amount (Column D): 4; Column E: extra", 3, "Data"),
        ("Column A: 1; Column B: 2.5; Column C: 2020-01-02", 1, "Numbers"),
        ("Column A: 3", 2, "Numbers"),
        ("Code: X1; Meaning: expedited", 2, "Lookup"),
    ]


def test_cell_values_read_as_people_write_them() -> None:
    fmt = sheets.format_value
    assert [fmt(v) for v in (None, 3.0, 0.1 + 0.2, 1234.5, -2.0, 7, True)] == [
        "", "3", "0.3", "1234.5", "-2", "7", "TRUE",
    ]  # fmt: skip
    assert fmt(dt.datetime(2024, 3, 1)) == "2024-03-01"
    assert fmt(dt.datetime(2024, 3, 1, 9, 5, 7)) == "2024-03-01 09:05:07"
    assert fmt(dt.time(14, 30)) == "14:30"
    assert fmt("  padded \n") == "padded"
    assert sheets.xlsx_column(1) == "A" and sheets.xlsx_column(28) == "AB"
    assert sheets.xlsx_column(16384) == "XFD"


CSV = (
    'Name,Address,Notes\n'
    '"Smith, John","1 High St, Leeds","first line\nsecond line"\n'
    '\n'
    'Jones,"2 Low Rd",""\n'
    ',,\n'
    'Brown,3 Mid Way,"says ""hi"""\n'
)  # fmt: skip


def test_csv_quoted_commas_and_multiline_cell_keep_record_numbers(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(CSV)
    doc = _load(path)
    assert (doc.format, doc.title, doc.pages, doc.notes) == ("csv", None, None, [])
    assert _rows(doc.blocks) == [
        ("Name: Smith, John; Address: 1 High St, Leeds; Notes: first line\nsecond line", 2, None),
        # the multi-line cell is one record: Jones is row 4 (a blank line is row 3), not line 5
        ("Name: Jones; Address: 2 Low Rd", 4, None),
        ('Name: Brown; Address: 3 Mid Way; Notes: says "hi"', 6, None),
    ]
    assert all(b.whole and not b.is_heading for b in doc.blocks)


def test_csv_delimiter_sniffed_and_tsv_is_tab(tmp_path: Path) -> None:
    (tmp_path / "eu.csv").write_text("Produkt;Preis\nÄpfel;1,50\nBirnen;2,30\n", "cp1252")
    assert _rows(_load(tmp_path / "eu.csv").blocks) == [
        ("Produkt: Äpfel; Preis: 1,50", 2, None),
        ("Produkt: Birnen; Preis: 2,30", 3, None),
    ]
    (tmp_path / "one.csv").write_text("City\nOslo\nLima\n")  # one column: nothing to sniff
    assert [b.text for b in _load(tmp_path / "one.csv").blocks] == ["City: Oslo", "City: Lima"]
    (tmp_path / "b.tsv").write_text("Bridge\tRiver, if any\nMorrow, old\tTamsin\n\t\n")
    doc = _load(tmp_path / "b.tsv")
    assert doc.format == "tsv"
    assert _rows(doc.blocks) == [("Bridge: Morrow, old; River, if any: Tamsin", 2, None)]
    assert _rows(parse_tsv(b"1\t2\n3\t4\n").blocks) == [
        ("column 1: 1; column 2: 2", 1, None),  # a numeric first row: no header
        ("column 1: 3; column 2: 4", 2, None),
    ]
    assert {ext: LOADERS[ext][0] for ext in (".xlsx", ".csv", ".tsv")} == {
        ".xlsx": "xlsx", ".csv": "csv", ".tsv": "tsv",
    }  # fmt: skip


def test_chunks_of_a_csv_never_cut_a_row_and_cite_row_ranges(tmp_path: Path) -> None:
    lines = ["id,city,note"] + [f"{i},City {i % 7},item number {i} of the list" for i in range(200)]
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(lines) + "\n")
    doc = _load(path)
    row_text = {b.line_start: b.text for b in doc.blocks}
    assert len(row_text) == 200 and min(row_text) == 2 and max(row_text) == 201

    chunks = split_document(doc, lambda texts: [len(t.split()) for t in texts], 40, 8)
    assert len(chunks) > 10
    covered: set[int] = set()
    for chunk in chunks:
        assert chunk.line_start is not None and chunk.line_end is not None
        span = range(chunk.line_start, chunk.line_end + 1)
        # the chunk is exactly its rows, whole, in order: no row cut, none from elsewhere
        assert chunk.text == "\n\n".join(row_text[n] for n in span)
        assert chunk.n_tokens <= 40
        assert location_label(chunk.page, chunk.line_start, chunk.line_end, doc.format) == (
            f"rows {chunk.line_start}-{chunk.line_end}"
        )
        covered.update(span)
    assert covered == set(row_text)


def test_sheet_rows_stay_whole_under_the_sheet_heading(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Parts"
    sheet.append(["Part", "Supplier", "Remark"])
    for i in range(60):
        sheet.append([f"P-{i}", f"Supplier {i % 5}", f"ordered in batch {i} last spring"])
    book.save(tmp_path / "parts.xlsx")
    doc = _load(tmp_path / "parts.xlsx")
    row_text = {b.line_start: b.text for b in doc.blocks if not b.is_heading}
    chunks = split_document(doc, lambda texts: [len(t.split()) for t in texts], 40, 8)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.heading == "Parts" and chunk.line_start and chunk.line_end
        head, body = chunk.text.split("\n\n", 1)
        assert head == "Parts"  # the sheet's name tops every chunk
        span = range(chunk.line_start, chunk.line_end + 1)
        assert body == "\n\n".join(row_text[n] for n in span)
        assert location_label(chunk.page, chunk.line_start, chunk.line_end, "xlsx").startswith(
            "rows "
        )


# ---------------------------------------------------------------------------------------------
# Bad input


def _xlsx_bytes(tmp_path: Path) -> bytes:
    return _workbook(tmp_path / "source.xlsx").read_bytes()


def _rezip(data: bytes, replace: dict[str, bytes | None]) -> bytes:
    """The ZIP ``data`` with some members replaced (or dropped, for None)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename in replace:
                new = replace[info.filename]
                if new is not None:
                    dst.writestr(info.filename, new, zipfile.ZIP_DEFLATED)
            else:
                dst.writestr(info, src.read(info.filename))
    return out.getvalue()


def _zip_bomb(path: Path) -> None:
    """A ZIP named .xlsx with a 300 MB member of zeros, written in chunks (small in memory)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            zeros = bytes(1024 * 1024)
            for _ in range(300):
                member.write(zeros)


def _expect(path: Path, reason: str) -> None:
    with pytest.raises(LoaderError, match=reason):
        load_documents(path, path.name)


def test_bad_xlsx_files_refused_with_a_reason(tmp_path: Path) -> None:
    good = _xlsx_bytes(tmp_path)
    cases = {
        "truncated.xlsx": (good[: len(good) // 2], "not a valid xlsx file"),
        "text.xlsx": (b"Region,Revenue\nNorth,1.2M\n", "not a valid xlsx file"),
        "encrypted.xlsx": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4096), "encrypted xlsx"),
        "noworkbook.xlsx": (
            _rezip(good, {"xl/workbook.xml": None}),
            r"corrupt or unreadable xlsx \(KeyError",
        ),
        "badxml.xlsx": (
            _rezip(good, {"xl/workbook.xml": b"<workbook><sheets><sheet name="}),
            "corrupt or unreadable xlsx",
        ),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        _expect(tmp_path / name, reason)


def test_damaged_sheet_keeps_the_rows_before_the_damage(tmp_path: Path) -> None:
    good = _xlsx_bytes(tmp_path)
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        sheet = z.read("xl/worksheets/sheet1.xml")
    cut = sheet.index(b'<row r="4"')  # rows 1-3 intact, row 4 onwards lost mid-tag
    (tmp_path / "damaged.xlsx").write_bytes(
        _rezip(good, {"xl/worksheets/sheet1.xml": sheet[: cut + 12]})
    )
    doc = _load(tmp_path / "damaged.xlsx")
    assert [n for _, n, h in _rows(doc.blocks) if h == "Sales"] == [2]
    assert [n for _, n, h in _rows(doc.blocks) if h == "Staff"] == [2, 3]  # the next sheet read
    assert len(doc.notes) == 1 and "sheet 'Sales' damaged after row 2" in doc.notes[0]


def test_empty_and_header_only_files_refused(tmp_path: Path) -> None:
    from openpyxl import Workbook

    Workbook().save(tmp_path / "empty.xlsx")
    _expect(tmp_path / "empty.xlsx", "no text found")
    book = Workbook()
    book.active.append(["Region", "Revenue"])
    book.save(tmp_path / "header.xlsx")
    _expect(tmp_path / "header.xlsx", "sheet 'Sheet' has a header row and no data row")
    (tmp_path / "header.csv").write_text("Region,Revenue\n\n")
    _expect(tmp_path / "header.csv", r"only a header row \(row 1\), no data row")
    (tmp_path / "commas.csv").write_text(",,,\n, ,\n")
    _expect(tmp_path / "commas.csv", "no text found")
    (tmp_path / "blank.tsv").write_text("\n\t\n")
    _expect(tmp_path / "blank.tsv", "empty file")


def test_zip_bomb_xlsx_refused_before_unpacking(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    _zip_bomb(path)
    assert path.stat().st_size < 2 * 1024 * 1024
    _expect(path, "zip bomb")


def test_bad_csv_files_refused_with_a_reason(tmp_path: Path) -> None:
    cases = {
        "binary.csv": (b"\x00\x01\x02\x03PK" * 100, "binary file"),
        "open_quote.csv": (b'a,b\n1,2\n3,"never closed\n4,5\n', r"malformed CSV at row 3"),
        "after_quote.tsv": (b'a\tb\n1\t2\n3\t4\n"x"y\tz\n', r"malformed TSV at row 4"),
        "huge_cell.csv": (b'a,b\n1,"' + b"x" * 200_000 + b'"\n', "malformed CSV at row 2"),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        _expect(tmp_path / name, reason)
    with pytest.raises(LoaderError, match="binary file"):
        parse_csv(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)


def test_cell_limit_stops_with_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sheets, "MAX_CSV_CELLS", 30)
    (tmp_path / "long.csv").write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(100)))
    doc = _load(tmp_path / "long.csv")
    assert [b.line_start for b in doc.blocks] == list(range(2, 16))  # 15 rows of 2 cells
    assert doc.notes == ["read the first 15 rows: the file is over the limit of 30 cells or "
                         f"{sheets.MAX_TEXT_CHARS:,} characters of text; "
                         "the rest was not read"]  # fmt: skip

    monkeypatch.setattr(sheets, "MAX_XLSX_CELLS", 10)
    parsed = parse_xlsx(_xlsx_bytes(tmp_path))  # Sales: 4 + 4 + 0 cells, then 4 more: over
    assert [n for _, n, _ in _rows(parsed.blocks)] == [2]
    assert parsed.notes == [
        "read the first 3 rows of sheet 'Sales': the workbook is over the limit of 10 cells "
        f"or {sheets.MAX_TEXT_CHARS:,} characters of text; the rest was not read",
        "sheets not read (over the limit): 'Staff'",
    ]
    assert parsed.pages == 2


def test_text_made_by_repetition_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a 100 KB header name repeated on every row: cut to MAX_HEADER_CHARS
    header = "x" * 100_000
    doc = parse_csv(f"{header},b\n".encode() + b"1,2\n" * 300)
    assert len(doc.blocks) == 300
    assert doc.blocks[0].text == f"{'x' * sheets.MAX_HEADER_CHARS}: 1; b: 2"
    # rows' text past the character budget, across sheets too: stopped with a note
    monkeypatch.setattr(sheets, "MAX_TEXT_CHARS", 100)
    doc = parse_csv(b"name,value\n" + b"alpha,1\n" * 50)
    assert 5 <= len(doc.blocks) < 50 and "characters of text" in doc.notes[0]


def test_sparse_sheet_with_a_far_cell_stays_cheap(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Key", "Value"])
    sheet.append(["a", 1])
    sheet.cell(row=1_048_576, column=16_384, value="the very last cell")
    book.save(tmp_path / "sparse.xlsx")
    started = time.perf_counter()
    doc = _load(tmp_path / "sparse.xlsx")
    print(f"sparse sheet to row 1,048,576: {time.perf_counter() - started:.2f} s")
    assert _rows(doc.blocks) == [
        ("Key: a; Value: 1", 2, "Sheet"),
        ("Column XFD: the very last cell", 1_048_576, "Sheet"),
    ]


def test_huge_csv_read_in_bounded_time_and_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write("id,name,city,amount,date\n")
        for i in range(200_000):
            f.write(f'{i},"Name {i}, Jr",City{i % 97},{i * 1.5},2024-01-{i % 28 + 1:02d}\n')
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    doc = _load(path)
    seconds = time.perf_counter() - started
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(
        f"200k-row csv ({path.stat().st_size / 2**20:.1f} MiB): {seconds:.2f} s, "
        f"peak RSS grew {grown:.0f} MiB"
    )
    assert len(doc.blocks) == 200_000 and doc.notes == []
    assert doc.blocks[-1].line_start == 200_001
    assert doc.blocks[-1].text == (
        "id: 199999; name: Name 199999, Jr; city: City82; amount: 299998.5; date: 2024-01-24"
    )
