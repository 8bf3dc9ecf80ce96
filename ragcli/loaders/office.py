"""Word (.docx), OpenDocument text (.odt) and RTF documents as blocks.

docx and odt: paragraphs and tables in document order under their heading path (Word's
"Heading 1-9" and "Title" styles or outline levels; ODF's ``text:h``), each table row one whole
block "Header: cell; Header: cell" named by the table's first row. They have no pages or line
numbers to cite, so a block carries its heading path only. RTF: the text striprtf extracts, one
block per paragraph with its line in that text. python-docx and striprtf are imported when such a
file is read; an ODT's XML is parsed with defusedxml (no DTDs, no entities).
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from typing import Any

from ragcli.errors import LoaderError
from ragcli.loaders.parsed import Parsed, open_zip
from ragcli.loaders.text import WS
from ragcli.records import Block

# The XML a document's text lives in is parsed whole into memory: a docx or pptx whose XML
# parts, or an odt whose content.xml, would unpack to more than this is refused.
MAX_XML_BYTES = 100 * 2**20
# Elements nested deeper than this (a list in a table in a text box ...) are refused.
MAX_DEPTH = 200
# RTF is read by a pure-Python tokenizer (about 1 MiB/s): larger text, once pictures and other
# binary groups are dropped, is refused rather than left to run for minutes.
MAX_RTF_BYTES = 32 * 2**20
# Columns of one table row read at most (ODF can repeat a cell thousands of times).
MAX_COLUMNS = 1024
# A merged cell's text is repeated in each row it spans only up to this length, and a table's
# rows stop (with what they made so far) past MAX_TABLE_CHARS: a small file whose cells repeat
# by merging or by reference must not make gigabytes of text.
MAX_REPEATED_CHARS = 200
MAX_TABLE_CHARS = 16 * 2**20

# Core-properties titles that libraries write when nobody gave one.
_DEFAULT_TITLES = {"word document", "powerpoint presentation"}


def clean(text: str) -> str:
    """Whitespace runs as one space, line breaks kept, blank lines and edges dropped."""
    lines = (WS.sub(" ", line).strip() for line in text.replace("\r", "\n").split("\n"))
    return "\n".join(line for line in lines if line)


def one_line(text: str) -> str:
    """All whitespace, line breaks included, as single spaces."""
    return WS.sub(" ", text).strip()


def real_title(title: str | None) -> str | None:
    """A core-properties title, or None when empty or a library's placeholder."""
    title = one_line(title or "")
    return title if title and title.lower() not in _DEFAULT_TITLES else None


class HeadingPath:
    """The headings above the current block, outermost first: ``"Chapter 2 > Setup"``."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, str]] = []
        self.first: str | None = None

    @property
    def path(self) -> str | None:
        return " > ".join(text for _, text in self.stack) or None

    def enter(self, level: int, text: str, page: int | None = None) -> Block:
        """A heading at ``level`` (lower is outer): the block of the heading line itself."""
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, text))
        if self.first is None:
            self.first = text
        return Block(text, page=page, heading=self.path, is_heading=True)


def table_blocks(
    rows: list[list[str | None]], heading: str | None, page: int | None = None
) -> list[Block]:
    """One whole block per row after the first, ``"Header: cell; Header: cell"``.

    The first non-empty row names the columns. ``None`` marks a cell merged into the one on its
    left: in the header row it repeats that name, elsewhere it is skipped. A table of one row is
    that row's cells. Empty cells are left out.
    """
    table = [[one_line(c) if c is not None else None for c in row] for row in rows]
    table = [row for row in table if any(row)]
    if not table:
        return []
    if len(table) == 1:
        text = "; ".join(c for c in table[0] if c)
        return [Block(text, page=page, heading=heading, whole=True)]
    names: list[str] = []
    for cell in table[0]:
        names.append(names[-1] if cell is None and names else (cell or "")[:MAX_REPEATED_CHARS])
    blocks = []
    made = 0
    for row in table[1:]:
        parts = []
        for i, cell in enumerate(row):
            if cell:
                name = names[i] if i < len(names) else ""
                parts.append(f"{name}: {cell}" if name else cell)
        text = "; ".join(parts)
        made += len(text)
        if made > MAX_TABLE_CHARS:
            break
        blocks.append(Block(text, page=page, heading=heading, whole=True))
    return blocks


def repeated(text: str) -> str:
    """A merged cell's text again, in a row it spans after its first: short texts only."""
    return text if len(text) <= MAX_REPEATED_CHARS else ""


def check_xml_size(archive: zipfile.ZipFile, kind: str, names: set[str] | None = None) -> None:
    """Refuse a container whose XML (``names``, or every .xml and .rels member) is too big to
    parse in memory."""
    total = sum(
        m.file_size
        for m in archive.infolist()
        if (m.filename in names if names is not None else m.filename.endswith((".xml", ".rels")))
    )
    if total > MAX_XML_BYTES:
        raise LoaderError(
            f"refused: the {kind} file's XML would unpack to {total / 2**20:.0f} MiB "
            f"(the limit is {MAX_XML_BYTES // 2**20} MiB)"
        )


_OOXML_KINDS = {
    "presentationml.presentation.main": "a PowerPoint presentation",
    "wordprocessingml.document.main": "a Word document",
    "spreadsheetml.sheet.main": "an Excel workbook",
}


def library_error(error: Exception, kind: str, what: str) -> LoaderError:
    """The LoaderError for what python-docx or python-pptx raised opening a ``kind`` file that
    should be ``what`` ("a Word document")."""
    message = str(error)
    if isinstance(error, (zlib.error, zipfile.BadZipFile, EOFError)):
        return LoaderError(f"corrupt {kind} file (damaged compressed data: {message})")
    content_type = re.search(r"content type is '([^']*)'", message)
    if isinstance(error, ValueError) and content_type:
        found = content_type.group(1)
        found = next((v for k, v in _OOXML_KINDS.items() if k in found), f"of type {found}")
        return LoaderError(f"not {what} (the file is {found})")
    if isinstance(error, KeyError) and "[Content_Types].xml" in message:
        return LoaderError(f"not {what} (a ZIP file, but not an Office Open XML one)")
    return LoaderError(f"corrupt file or not {what} ({type(error).__name__}: {message})")


def _too_deep(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise LoaderError(f"refused: elements nested more than {MAX_DEPTH} deep")


# --- docx -------------------------------------------------------------------------------------

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_W_VAL = _W + "val"
# Containers of paragraphs and tables, walked through for what they hold.
_W_WRAPPERS = {_W + "sdt", _W + "sdtContent", _W + "customXml"}
# Inside a paragraph: not text (deleted or moved-away text, properties, field codes, the
# legacy copy of a drawing).
_W_SKIP = {
    _W + "del", _W + "moveFrom", _W + "pPr", _W + "rPr", _W + "sdtPr", _W + "instrText",
    _W + "delText", _MC_FALLBACK,
}  # fmt: skip
_HEADING_NAME = re.compile(r"heading\s*([1-9])", re.IGNORECASE)


def parse_docx(data: bytes) -> Parsed:
    """Word .docx: paragraphs and table rows in document order under their heading path."""
    with open_zip(data, "docx") as archive:
        check_xml_size(archive, "docx")
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
        body = document.element.body
        levels = _docx_heading_levels(document)
        core_title = document.core_properties.title
    except Exception as e:  # python-docx raises many types on what is not a Word document
        raise library_error(e, "docx", "a Word document") from e
    walker = _DocxWalker(levels)
    walker.container(body, 0)
    return Parsed(walker.blocks, real_title(core_title) or walker.headings.first)


def _docx_heading_levels(document: Any) -> dict[str, int]:
    """Style id -> heading level of the paragraph styles that make headings: "Title" (0),
    "Heading N" (N), one with an outline level, or one based on such a style."""
    from docx.enum.style import WD_STYLE_TYPE

    levels: dict[str, int] = {}
    for style in document.styles:
        if style.type != WD_STYLE_TYPE.PARAGRAPH:
            continue
        current, level = style, None
        for _ in range(10):  # styles are based on styles; a loop must end
            if current is None:
                break
            level = _docx_style_level(current)
            if level is not None:
                break
            current = current.base_style
        if level is not None and style.style_id:
            levels[style.style_id] = level
    return levels


def _docx_style_level(style: Any) -> int | None:
    name = (style.name or "").strip()
    if name.lower() == "title":
        return 0
    match = _HEADING_NAME.fullmatch(name)
    if match:
        return int(match.group(1))
    return _outline_level(style.element.find(_W + "pPr"))


def _outline_level(ppr: Any) -> int | None:
    """Word's outline level 0-8 as heading level 1-9; 9 (body text) and none as None."""
    outline = ppr.find(_W + "outlineLvl") if ppr is not None else None
    value = outline.get(_W_VAL) if outline is not None else None
    if value is not None and value.isdigit() and int(value) < 9:
        return int(value) + 1
    return None


class _DocxWalker:
    """Walks a docx body (or text box) in document order, collecting blocks."""

    def __init__(self, levels: dict[str, int]) -> None:
        self.levels = levels
        self.headings = HeadingPath()
        self.blocks: list[Block] = []

    def container(self, element: Any, depth: int) -> None:
        _too_deep(depth)
        for child in element:
            if child.tag == _W + "p":
                self.paragraph(child, depth + 1)
            elif child.tag == _W + "tbl":
                rows = _docx_rows(child, depth + 1)
                self.blocks += table_blocks(rows, self.headings.path)
            elif child.tag in _W_WRAPPERS:
                self.container(child, depth + 1)

    def paragraph(self, p: Any, depth: int) -> None:
        boxes: list[Any] = []
        text = clean(_docx_text(p, boxes, depth))
        if text:
            level = self._level(p)
            if level is None:
                self.blocks.append(Block(text, heading=self.headings.path))
            else:
                self.blocks.append(self.headings.enter(level, one_line(text)))
        for box in boxes:  # text boxes anchored in this paragraph, after it
            self.container(box, depth + 1)

    def _level(self, p: Any) -> int | None:
        ppr = p.find(_W + "pPr")
        if ppr is None:
            return None
        outline = ppr.find(_W + "outlineLvl")
        if outline is not None:  # set on the paragraph itself: wins over its style
            return _outline_level(ppr)
        style = ppr.find(_W + "pStyle")
        return self.levels.get(style.get(_W_VAL, "")) if style is not None else None


def _docx_text(element: Any, boxes: list[Any], depth: int) -> str:
    """A paragraph's visible text (tracked insertions in, deletions out); the text boxes in it
    are added to ``boxes`` rather than read into it."""
    _too_deep(depth)
    parts: list[str] = []
    for child in element:
        tag = child.tag
        if not isinstance(tag, str) or tag in _W_SKIP:
            continue
        if tag == _W + "t":
            parts.append(child.text or "")
        elif tag == _W + "tab":
            parts.append("\t")
        elif tag in (_W + "br", _W + "cr"):
            parts.append("\n")
        elif tag == _W + "noBreakHyphen":
            parts.append("-")
        elif tag == _W + "txbxContent":
            boxes.append(child)
        else:
            parts.append(_docx_text(child, boxes, depth + 1))
    return "".join(parts)


def _docx_plain(element: Any, depth: int) -> list[str]:
    """The text of a table cell's paragraphs, nested tables and text boxes, in order."""
    _too_deep(depth)
    out: list[str] = []
    for child in element:
        if child.tag == _W + "p":
            boxes: list[Any] = []
            out.append(_docx_text(child, boxes, depth + 1))
            for box in boxes:
                out += _docx_plain(box, depth + 1)
        elif child.tag in (_W + "tbl", _W + "tr", _W + "tc") or child.tag in _W_WRAPPERS:
            out += _docx_plain(child, depth + 1)
    return out


def _docx_children(element: Any, tag: str, depth: int) -> list[Any]:
    """``element``'s children with ``tag``, looking through content controls."""
    _too_deep(depth)
    found = []
    for child in element:
        if child.tag == tag:
            found.append(child)
        elif child.tag in _W_WRAPPERS:
            found += _docx_children(child, tag, depth + 1)
    return found


def _int_val(parent: Any, name: str, default: int) -> int:
    element = parent.find(_W + name) if parent is not None else None
    value = element.get(_W_VAL) if element is not None else None
    return int(value) if value is not None and value.isdigit() else default


def _docx_rows(table: Any, depth: int) -> list[list[str | None]]:
    """A table's rows on its grid: merged cells as None right of their text, a vertically
    merged cell's text repeated in the rows it spans."""
    rows: list[list[str | None]] = []
    above: dict[int, str] = {}  # grid column -> the text of the last cell that started there
    for tr in _docx_children(table, _W + "tr", depth + 1):
        row: list[str | None] = [""] * min(_int_val(tr.find(_W + "trPr"), "gridBefore", 0), 64)
        for tc in _docx_children(tr, _W + "tc", depth + 1):
            if len(row) >= MAX_COLUMNS:
                break
            tcpr = tc.find(_W + "tcPr")
            merge = tcpr.find(_W + "vMerge") if tcpr is not None else None
            column = len(row)
            if merge is not None and merge.get(_W_VAL, "continue") != "restart":
                text = repeated(above.get(column, ""))
            else:
                text = " ".join(_docx_plain(tc, depth + 2))
                above[column] = text
            span = max(1, min(_int_val(tcpr, "gridSpan", 1), MAX_COLUMNS))
            row += [text] + [None] * (span - 1)
        rows.append(row)
    return rows


# --- odt --------------------------------------------------------------------------------------

_ODF = "urn:oasis:names:tc:opendocument:xmlns:"
_TEXT = "{" + _ODF + "text:1.0}"
_TABLE = "{" + _ODF + "table:1.0}"
_OFFICE = "{" + _ODF + "office:1.0}"
_DRAW = "{" + _ODF + "drawing:1.0}"
_STYLE = "{" + _ODF + "style:1.0}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_ODT_MIMETYPE = "application/vnd.oasis.opendocument.text"
# Not the document's text: comments, the deleted text of tracked changes, list and note
# numbers (the note's body is read as a paragraph of its own).
_ODT_SKIP = {
    _OFFICE + "annotation", _OFFICE + "annotation-end", _TEXT + "tracked-changes",
    _TEXT + "note-citation", _TEXT + "number", _TEXT + "sequence-decls",
    _TEXT + "variable-decls", _TEXT + "user-field-decls", _OFFICE + "forms",
}  # fmt: skip


def parse_odt(data: bytes) -> Parsed:
    """OpenDocument text: headings, paragraphs, list items and table rows in document order."""
    with open_zip(data, "odt") as archive:
        names = set(archive.namelist())
        mimetype = _member(archive, "mimetype", names).decode("ascii", "replace").strip()
        if mimetype and not mimetype.startswith(_ODT_MIMETYPE):
            raise LoaderError(f"not an OpenDocument text file (its mimetype is {mimetype!r})")
        if "content.xml" not in names:
            raise LoaderError("not an OpenDocument text file (no content.xml)")
        manifest = _member(archive, "META-INF/manifest.xml", names)
        if b"encryption-data" in manifest:
            raise LoaderError("encrypted OpenDocument file (a password is needed)")
        check_xml_size(archive, "odt", {"content.xml"})
        content = _odt_xml(_member(archive, "content.xml", names), "content.xml")
        meta = _member(archive, "meta.xml", names)
    title = None
    if meta:
        element = _odt_xml(meta, "meta.xml").find(f"{_OFFICE}meta/{_DC}title")
        title = one_line(element.text or "") if element is not None else None
    body = content.find(f"{_OFFICE}body/{_OFFICE}text")
    if body is None:
        raise LoaderError("not an OpenDocument text file (no text body in content.xml)")
    walker = _OdtWalker(_odt_title_styles(content))
    walker.container(body, 0)
    return Parsed(walker.blocks, title or walker.headings.first)


def _member(archive: zipfile.ZipFile, name: str, names: set[str]) -> bytes:
    if name not in names:
        return b""
    try:
        return archive.read(name)
    except (zlib.error, zipfile.BadZipFile, EOFError) as e:  # a bad CRC, a broken stream
        raise LoaderError(f"corrupt odt file (damaged compressed data in {name}: {e})") from e


def _odt_xml(data: bytes, name: str) -> Any:
    """Parse an ODF XML part with defusedxml: a DTD, entity or external reference is refused."""
    from xml.etree.ElementTree import ParseError

    import defusedxml.ElementTree
    from defusedxml import DefusedXmlException

    try:
        return defusedxml.ElementTree.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as e:
        raise LoaderError(f"refused: {name} declares a DTD or entities ({e})") from e
    except ParseError as e:
        raise LoaderError(f"corrupt odt file ({name} is not well-formed XML: {e})") from e


def _odt_title_styles(content: Any) -> set[str]:
    """Names of the automatic paragraph styles derived from the "Title" style."""
    names = {"Title"}
    styles = content.find(_OFFICE + "automatic-styles")
    for style in styles if styles is not None else []:
        if style.get(_STYLE + "parent-style-name") == "Title":
            names.add(style.get(_STYLE + "name", ""))
    return names


def _count(element: Any, attribute: str, limit: int) -> int:
    value = element.get(attribute, "1")
    return max(1, min(int(value), limit)) if value.isdigit() else 1


class _OdtWalker:
    """Walks an ODT body in document order, collecting blocks."""

    def __init__(self, title_styles: set[str]) -> None:
        self.title_styles = title_styles
        self.headings = HeadingPath()
        self.blocks: list[Block] = []

    def container(self, element: Any, depth: int) -> None:
        _too_deep(depth)
        for child in element:
            tag = child.tag
            if tag in _ODT_SKIP:
                continue
            if tag in (_TEXT + "p", _TEXT + "h"):
                self.paragraph(child, depth + 1)
            elif tag == _TABLE + "table":
                rows = _odt_rows(child, depth + 1)
                self.blocks += table_blocks(rows, self.headings.path)
            else:  # lists, sections, indexes, frames, text boxes: what they hold
                self.container(child, depth + 1)

    def paragraph(self, p: Any, depth: int) -> None:
        inner: list[Any] = []
        text = clean(_odt_text(p, inner, depth))
        if text:
            if p.tag == _TEXT + "h":
                level = _count(p, _TEXT + "outline-level", 10)
                self.blocks.append(self.headings.enter(level, one_line(text)))
            elif p.get(_TEXT + "style-name") in self.title_styles:
                self.blocks.append(self.headings.enter(0, one_line(text)))
            else:
                self.blocks.append(Block(text, heading=self.headings.path))
        for element in inner:  # notes and text boxes of this paragraph, after it
            self.container(element, depth + 1)


def _odt_text(element: Any, inner: list[Any], depth: int) -> str:
    """A paragraph's text: spans and links read through, ``text:s``, ``text:tab`` and
    ``text:line-break`` as what they stand for; notes and frames added to ``inner``."""
    _too_deep(depth)
    parts = [_odt_spaces(element.text)]
    for child in element:
        tag = child.tag
        if tag == _TEXT + "s":
            parts.append(" " * _count(child, _TEXT + "c", 100))
        elif tag == _TEXT + "tab":
            parts.append("\t")
        elif tag == _TEXT + "line-break":
            parts.append("\n")
        elif tag == _TEXT + "note":
            inner += [c for c in child if c.tag == _TEXT + "note-body"]
        elif tag == _DRAW + "frame":
            inner.append(child)
        elif tag not in _ODT_SKIP:
            parts.append(_odt_text(child, inner, depth + 1))
        parts.append(_odt_spaces(child.tail))
    return "".join(parts)


def _odt_spaces(text: str | None) -> str:
    """ODF collapses white space in text like HTML: runs are one space, newlines included."""
    return re.sub(r"[ \t\r\n]+", " ", text) if text else ""


def _odt_plain(element: Any, depth: int) -> list[str]:
    """The text of a table cell's paragraphs, lists and nested tables, in order."""
    _too_deep(depth)
    out: list[str] = []
    for child in element:
        if child.tag in _ODT_SKIP:
            continue
        if child.tag in (_TEXT + "p", _TEXT + "h"):
            inner: list[Any] = []
            out.append(_odt_text(child, inner, depth + 1))
            for element_inside in inner:
                out += _odt_plain(element_inside, depth + 1)
        else:
            out += _odt_plain(child, depth + 1)
    return out


def _odt_row_elements(element: Any, depth: int) -> list[Any]:
    """A table's rows, through header-rows, rows and row-groups."""
    _too_deep(depth)
    rows = []
    for child in element:
        if child.tag == _TABLE + "table-row":
            rows.append(child)
        elif child.tag in (
            _TABLE + "table-header-rows", _TABLE + "table-rows", _TABLE + "table-row-group",
        ):  # fmt: skip
            rows += _odt_row_elements(child, depth + 1)
    return rows


def _odt_rows(table: Any, depth: int) -> list[list[str | None]]:
    """A table's rows by column: a cell covered by a merge as None, or, under a cell that
    spans rows, that cell's text. A repeated row is read once."""
    rows: list[list[str | None]] = []
    down: dict[int, tuple[str, int]] = {}  # column -> (text, last row it spans down to)
    for index, tr in enumerate(_odt_row_elements(table, depth + 1)):
        row: list[str | None] = []
        for cell in tr:
            if len(row) >= MAX_COLUMNS:
                break
            repeat = _count(cell, _TABLE + "number-columns-repeated", MAX_COLUMNS)
            if cell.tag == _TABLE + "covered-table-cell":
                for _ in range(repeat):
                    text, last = down.get(len(row), ("", -1))
                    row.append(repeated(text) if last >= index else None)
            elif cell.tag == _TABLE + "table-cell":
                text = " ".join(_odt_plain(cell, depth + 2))
                spans = _count(cell, _TABLE + "number-rows-spanned", 1 << 20)
                for _ in range(repeat):
                    if spans > 1:
                        down[len(row)] = (text, index + spans - 1)
                    row.append(text)
        rows.append(row[:MAX_COLUMNS])
    return rows


# --- rtf --------------------------------------------------------------------------------------

# Groups that hold pictures, embedded objects and other binary data as hex: dropped before
# tokenizing (striprtf would skip them one character at a time).
_RTF_BINARY = re.compile(
    r"\{\s*(?:\\\*\s*)?\\(?:pict|objdata|datastore|themedata|colorschememapping|blipuid|"
    r"fontemb|fontfile|passwordhash|mmathPict)(?![a-zA-Z])"
)
_RTF_BRACE = re.compile(r"\\[\\{}]|[{}]")
# Control characters (not tab or line breaks) and replaced undecodable bytes: what binary junk
# in an RTF file's text turns into.
_RTF_JUNK = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd]")
_RTF_TITLE = re.compile(r"\{\\title\b ?([^{}]*)\}")
# A group's opening brace (not an escaped "\{"). RTF ignores line breaks in its source, so one
# is put before each: striprtf's hyperlink regex backtracks without end on a long line of
# unclosed fields; with groups on lines of their own it no longer matches (a link's text is
# still read, its address no longer appended).
_RTF_GROUP = re.compile(r"(?<!\\)((?:\\\\)*)\{")


def parse_rtf(data: bytes) -> Parsed:
    """RTF: the text striprtf extracts, one block per paragraph with its line in that text."""
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{\\rtf"):
        raise LoaderError("not an RTF file (it does not start with {\\rtf)")
    from striprtf.striprtf import rtf_to_text

    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError:
        source = data.decode("cp1252", errors="replace")  # RTF is 7-bit; raw bytes are rare
    source = _drop_binary_groups(source)
    if len(source) > MAX_RTF_BYTES:
        raise LoaderError(
            f"refused: {len(source) / 2**20:.0f} MiB of RTF without its pictures "
            f"(the limit is {MAX_RTF_BYTES // 2**20} MiB)"
        )
    source = _RTF_GROUP.sub("\\1\n{", source)
    try:
        text = rtf_to_text(source, errors="replace")
        match = _RTF_TITLE.search(source)
        title = (
            one_line(rtf_to_text("{\\rtf1 " + match.group(1) + "}", errors="replace"))
            if match
            else None
        )
    except (ValueError, LookupError, IndexError) as e:
        raise LoaderError(f"corrupt RTF ({type(e).__name__}: {e})") from e
    sample = text[:65536]
    if len(_RTF_JUNK.findall(sample)) * 10 > len(sample):
        raise LoaderError("corrupt RTF (binary data where its text should be)")
    blocks = []
    for line in text.replace("\r\n", "\n").split("\n"):
        line = clean(line)
        if line:
            blocks.append(Block(line))  # RTF has no lines a reader sees: cited by file
    return Parsed(blocks, title or None)


def _drop_binary_groups(source: str) -> str:
    """``source`` without the groups ``_RTF_BINARY`` starts (to their closing brace)."""
    pieces: list[str] = []
    position = 0
    for match in _RTF_BINARY.finditer(source):
        if match.start() < position:  # inside a group already dropped
            continue
        pieces.append(source[position : match.start()])
        depth, end = 0, len(source)
        for brace in _RTF_BRACE.finditer(source, match.start()):
            token = brace.group()
            if token == "{":
                depth += 1
            elif token == "}":
                depth -= 1
                if depth == 0:
                    end = brace.end()
                    break
        position = end
    pieces.append(source[position:])
    return "".join(pieces)
