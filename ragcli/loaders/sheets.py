"""Spreadsheets: ``.xlsx`` through openpyxl (streamed, imported when a workbook is read) and
``.csv``/``.tsv`` through the standard library, one block per data row that names its columns
("Region: North; Q3 revenue: 1.2M") and carries the row number the spreadsheet shows.

Rules shared by all three formats:

* The header is the first non-empty row. A header cell that is empty is named after its column
  ("Column C" in a workbook, "column 3" in a CSV/TSV file); a name seen before in the same
  header keeps its text and adds the column ("Amount (Column D)"); a data cell to the right of
  the header gets the column's name. When every non-empty cell of that first row is a number,
  a date or a time (or text written like one), the file has no header: all columns get
  column names and the row is read as data. A title line above the table is not recognised:
  it becomes the header.
* Each data row is one ``Block`` with ``whole=True`` (the chunker never cuts a row, and breaks
  chunks between rows), ``line_start == line_end ==`` the row number (the header row is row 1
  when the table starts at the top), empty cells left out; a row with no value is skipped.
  A sheet or file with a header row and no data row gives no block (a note says so).
* At most ``MAX_XLSX_CELLS`` or ``MAX_CSV_CELLS`` cells are read from one file (cells up to
  the last filled cell of each row, blanks included); the rows after that are left out, and a
  note says where reading stopped. A workbook's rows with no cell at all cost nothing but are
  bounded too (``MAX_ROWS_SCANNED``), so a sparse sheet whose one cell sits on row 1,048,576
  stays cheap.

A workbook gives a heading block per sheet (its name; ``heading`` of its rows), reads every
sheet, hidden ones included (they often hold lookup tables the visible ones refer to), and
takes cell values as last calculated (``data_only``): a formula never calculated (a file
written by a script) has no value. Dates read as ISO dates (``2024-03-01``, with the time when
there is one), whole floats without ``.0``, other floats to Excel's 15 significant digits.
Cell formats are not applied: a percentage reads as its fraction (0.15).

A CSV/TSV row number counts records, not physical lines: a quoted cell spanning lines is one
row, as a spreadsheet program shows it; blank lines count as (empty) rows for the same reason.
A ``.csv`` file's delimiter is sniffed (comma, semicolon, tab or pipe; comma when unsure);
a ``.tsv`` file's is the tab. Quoting is the usual one (``"a ""quoted"" word"``), read
strictly: a quote left open or text after a closing quote is an error naming its row.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator, Sequence
from typing import Any

from ragcli.errors import LoaderError
from ragcli.loaders.office import check_xml_size
from ragcli.loaders.parsed import Parsed, open_zip
from ragcli.loaders.text import WS, decode_text
from ragcli.records import Block

# Cells read from one file at most (blanks inside a row up to its last filled cell count).
# openpyxl reads some 50-100 thousand cells a second: a workbook costs 10-20 seconds at most.
# The csv module is ten times faster; there the bound is memory (1M cells: ~120 MiB of blocks).
MAX_XLSX_CELLS = 1_000_000
MAX_CSV_CELLS = 5_000_000
# Rows visited at most, empty ones included (cheap, but not free).
MAX_ROWS_SCANNED = 5_000_000
# Characters of row text made from one file at most: a cell repeated by reference (a shared
# string, a long header name on every row) must not turn a small file into gigabytes.
MAX_TEXT_CHARS = 64 * 2**20
# A header name is cut to this many characters: it is repeated on every row.
MAX_HEADER_CHARS = 200
# The characters a CSV delimiter may be, in order of preference when the sniffer hesitates.
_CSV_DELIMITERS = ",;\t|"
# Enough of a CSV file to sniff its delimiter from.
_SNIFF_CHARS = 64 * 1024
# A number, a date or a time written as text: digits with separators, a sign or a percent.
_NUMERIC = re.compile(r"[-+]?[\d\s.,:/%+-]*\d[\d\s.,:/%+-]*")


class _Budget:
    """The cells and rows one file may still cost."""

    def __init__(self, cells: int) -> None:
        self.limit = self.cells = cells
        self.rows = MAX_ROWS_SCANNED
        self.chars_before = 0  # the text of the sheets read before this one

    def spend(self, cells: int, table: _Table) -> bool:
        """Pay for a row of ``cells`` cells (and the text the rows before it made); False
        when the file is over its budget."""
        self.cells -= cells
        self.rows -= 1
        within = self.chars_before + table.chars <= MAX_TEXT_CHARS
        return self.cells >= 0 and self.rows >= 0 and within


def xlsx_column(index: int) -> str:
    """The letters of a 1-based column index: 1 -> ``A``, 28 -> ``AB``."""
    letters = ""
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _xlsx_name(index: int) -> str:
    return f"Column {xlsx_column(index)}"


def _csv_name(index: int) -> str:
    return f"column {index}"


def format_value(value: Any) -> str:
    """A cell's value as text: ISO dates, integral floats without ``.0``, stripped strings."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        spec = "seconds" if value.second or value.microsecond else "minutes"
        return value.isoformat(sep=" ", timespec=spec)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat(timespec="seconds" if value.second else "minutes")
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return f"{value:.15g}"
    return str(value).strip()


def _reason(error: Exception) -> str:
    """An exception as one line: its type and message."""
    return WS.sub(" ", f"{type(error).__name__}: {error}").strip()[:300]


def _is_numeric(value: Any) -> bool:
    if isinstance(value, str):
        return bool(_NUMERIC.fullmatch(value.strip()))
    return isinstance(value, (int, float, dt.date, dt.time, dt.timedelta))


class _Table:
    """Turns one sheet's (or file's) rows into blocks, the first non-empty row as header."""

    def __init__(self, column_name: Any, heading: str | None) -> None:
        self.column_name = column_name  # 1-based column index -> "Column C" / "column 3"
        self.heading = heading
        self.names: list[str] | None = None  # None until the header row is seen
        self.header_row: int | None = None
        self.blocks: list[Block] = []
        self.chars = 0  # of the rows' text so far

    def add(self, number: int, cells: Sequence[Any]) -> None:
        """Take row ``number`` (as the spreadsheet numbers it) with its cells' values."""
        values = [format_value(v) for v in cells]
        if not any(values):
            return
        if self.names is None:
            self.header_row = number
            if all(_is_numeric(v) for v, text in zip(cells, values) if text):
                self.names = []  # no header: this row is data, every column named by position
            else:
                self.names = self._header(values)
                return
        parts = [f"{self._name(i)}: {v}" for i, v in enumerate(values) if v]
        text = "; ".join(parts)
        self.chars += len(text)
        self.blocks.append(
            Block(text, line_start=number, line_end=number, heading=self.heading, whole=True)
        )

    def _name(self, i: int) -> str:
        assert self.names is not None
        return self.names[i] if i < len(self.names) else self.column_name(i + 1)

    def _header(self, values: list[str]) -> list[str]:
        names: list[str] = []
        seen: set[str] = set()
        for i, value in enumerate(values):
            name = WS.sub(" ", value).strip()[:MAX_HEADER_CHARS]
            if not name:
                name = self.column_name(i + 1)
            elif name in seen:
                name = f"{name} ({self.column_name(i + 1)})"
            seen.add(name)
            names.append(name)
        return names

    def header_only(self) -> bool:
        """A header row was read, and no data row."""
        return bool(self.names) and not self.blocks


# ---------------------------------------------------------------------------------------------
# xlsx


def parse_xlsx(data: bytes) -> Parsed:
    """An Excel workbook: per sheet, a heading block (its name), then a block per data row."""
    # A zip bomb, encryption, not a ZIP: refused before openpyxl. Sheets are streamed, but
    # the shared strings are read whole.
    with open_zip(data, "xlsx") as archive:
        check_xml_size(archive, "xlsx", {"xl/sharedStrings.xml"})
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many types (KeyError, XML errors) on bad input
        raise LoaderError(f"corrupt or unreadable xlsx ({_reason(e)})") from e
    try:
        return _read_workbook(workbook)
    finally:
        workbook.close()


def _read_workbook(workbook: Any) -> Parsed:
    sheets = list(workbook.worksheets)
    title = (workbook.properties.title or "").strip() or None
    blocks: list[Block] = []
    notes: list[str] = []
    budget = _Budget(MAX_XLSX_CELLS)
    for index, sheet in enumerate(sheets):
        table = _Table(_xlsx_name, sheet.title)
        stopped = _read_sheet(sheet, table, budget, notes)
        budget.chars_before += table.chars
        if table.blocks:
            blocks.append(Block(sheet.title, heading=sheet.title, is_heading=True))
            blocks += table.blocks
        elif table.header_only():
            notes.append(f"sheet {sheet.title!r} has a header row and no data row")
        if stopped and index + 1 < len(sheets):
            left = ", ".join(repr(s.title) for s in sheets[index + 1 :])
            notes.append(f"sheets not read (over the limit): {left}")
            break
    return Parsed(blocks, title, pages=len(sheets), notes=notes)


def _read_sheet(sheet: Any, table: _Table, budget: _Budget, notes: list[str]) -> bool:
    """Read a sheet's rows into ``table``; True when the workbook's budget ran out in it."""
    # The dimension a sheet declares may be wrong or huge ("A1:XFD1048576"): without it
    # openpyxl returns each row up to its last cell and never pads with empty rows at the end.
    sheet.reset_dimensions()
    number = 0
    try:
        for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            if not budget.spend(len(cells), table):
                notes.append(
                    f"read the first {number - 1} rows of sheet {sheet.title!r}: the workbook "
                    f"is over the limit of {budget.limit:,} cells or {MAX_TEXT_CHARS:,} "
                    "characters of text; the rest was not read"
                )
                return True
            table.add(number, cells)
    except Exception as e:  # a damaged sheet: keep its rows read so far, and the other sheets
        notes.append(
            f"sheet {sheet.title!r} damaged after row {number}; the rest of it was not read "
            f"({_reason(e)})"
        )
    return False


# ---------------------------------------------------------------------------------------------
# csv, tsv


def parse_csv(data: bytes) -> Parsed:
    """A CSV file (delimiter sniffed: comma, semicolon, tab or pipe): a block per data row."""
    text = decode_text(data)
    return _read_delimited(text, _sniff_delimiter(text), "CSV")


def parse_tsv(data: bytes) -> Parsed:
    """A tab-separated file: a block per data row."""
    return _read_delimited(decode_text(data), "\t", "TSV")


def _sniff_delimiter(text: str) -> str:
    """The delimiter of a CSV text, judged from its beginning; a comma when unsure."""
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only
    try:
        return csv.Sniffer().sniff(sample, delimiters=_CSV_DELIMITERS).delimiter
    except csv.Error:
        first = sample.split("\n", 1)[0]
        counts = {d: first.count(d) for d in _CSV_DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def _records(text: str, delimiter: str, kind: str) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) of each record; a malformed one is a LoaderError naming its row.

    A cell over the csv module's field limit (128 KiB) is malformed too: usually a quote left
    open that swallowed the rest of the file.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    number = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise LoaderError(
                f"malformed {kind} at row {number + 1} (line {reader.line_num}): {e}"
            ) from e
        number += 1
        yield number, cells


def _read_delimited(text: str, delimiter: str, kind: str) -> Parsed:
    table = _Table(_csv_name, None)
    budget = _Budget(MAX_CSV_CELLS)
    notes: list[str] = []
    for number, cells in _records(text, delimiter, kind):
        if not budget.spend(len(cells), table):
            notes.append(
                f"read the first {number - 1} rows: the file is over the limit of "
                f"{budget.limit:,} cells or {MAX_TEXT_CHARS:,} characters of text; the rest "
                "was not read"
            )
            break
        table.add(number, cells)
    if table.header_only():
        notes.append(f"only a header row (row {table.header_row}), no data row")
    return Parsed(table.blocks, notes=notes)
