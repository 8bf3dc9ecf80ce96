"""PowerPoint .pptx through python-pptx (imported when a presentation is read): one section per
slide, cited as its slide number. Every block of slide N sits under the heading
"Slide N: <title>" ("Slide N" without a title): the title line, then the text of each shape in
the slide's shape order (groups read through), tables one whole block per row like Word's, and
last the speaker notes under "Slide N: <title> > Notes"."""

from __future__ import annotations

import io
from typing import Any

from ragcli.errors import LoaderError
from ragcli.loaders.office import (
    MAX_COLUMNS,
    MAX_DEPTH,
    check_xml_size,
    clean,
    library_error,
    one_line,
    real_title,
    repeated,
    table_blocks,
)
from ragcli.loaders.parsed import Parsed, open_zip
from ragcli.records import Block


def parse_pptx(data: bytes) -> Parsed:
    """PowerPoint .pptx: blocks per slide with ``page`` = the 1-based slide number."""
    with open_zip(data, "pptx") as archive:
        check_xml_size(archive, "pptx")
    from pptx import Presentation

    try:
        presentation = Presentation(io.BytesIO(data))
        slides = list(presentation.slides)
        core_title = presentation.core_properties.title
    except Exception as e:  # python-pptx raises many types on what is not a presentation
        raise library_error(e, "pptx", "a PowerPoint presentation") from e
    blocks: list[Block] = []
    notes: list[str] = []
    first_title: str | None = None
    for number, slide in enumerate(slides, start=1):
        try:
            title, slide_blocks = _slide(slide, number)
        except LoaderError as e:
            notes.append(f"slide {number} not read: {e}")
            continue
        except Exception as e:  # one odd slide must not lose the others
            notes.append(f"slide {number} not read ({type(e).__name__}: {e})")
            continue
        if number == 1:
            first_title = title
        blocks += slide_blocks
    return Parsed(blocks, real_title(core_title) or first_title, pages=len(slides), notes=notes)


def _slide(slide: Any, number: int) -> tuple[str | None, list[Block]]:
    """A slide's title and blocks: title line, shapes' text and tables, then its notes."""
    title_shape = slide.shapes.title
    title = None
    if title_shape is not None and title_shape.has_text_frame:
        title = one_line(title_shape.text_frame.text) or None
    heading = f"Slide {number}: {title}" if title else f"Slide {number}"
    blocks = [Block(title, page=number, heading=heading, is_heading=True)] if title else []
    skip = title_shape.shape_id if title_shape is not None else None
    for shape in slide.shapes:
        blocks += _shape(shape, number, heading, skip, 0)
    if slide.has_notes_slide:  # (asking for notes_slide would make one)
        frame = slide.notes_slide.notes_text_frame
        if frame is not None:
            blocks += _paragraphs(frame, number, f"{heading} > Notes")
    return title, blocks


def _shape(shape: Any, number: int, heading: str, skip: int | None, depth: int) -> list[Block]:
    """The blocks of one shape: its text frame's paragraphs, its table's rows, or those of the
    shapes of a group."""
    from pptx.shapes.group import GroupShape

    if depth > MAX_DEPTH:
        raise LoaderError(f"shapes grouped more than {MAX_DEPTH} deep")
    if isinstance(shape, GroupShape):
        return [b for s in shape.shapes for b in _shape(s, number, heading, skip, depth + 1)]
    if depth == 0 and skip is not None and shape.shape_id == skip:
        return []  # the title, already the slide's heading line
    if shape.has_text_frame:
        return _paragraphs(shape.text_frame, number, heading)
    if shape.has_table:
        return table_blocks(_rows(shape.table), heading, page=number)
    return []  # pictures, charts, media: no text of their own here


def _paragraphs(frame: Any, number: int, heading: str) -> list[Block]:
    """One block per non-empty paragraph (bullet) of a text frame."""
    blocks = []
    for paragraph in frame.paragraphs:
        text = clean(paragraph.text.replace("\v", "\n"))  # "\v": a line break in a paragraph
        if text:
            blocks.append(Block(text, page=number, heading=heading))
    return blocks


def _rows(table: Any) -> list[list[str | None]]:
    """A table's rows by column: a cell merged into the one on its left as None, a cell under
    one that spans rows as that cell's text."""
    rows: list[list[str | None]] = []
    down: dict[int, tuple[str, int]] = {}  # column -> (text, last row it spans down to)
    for r, row in enumerate(table.rows):
        cells: list[str | None] = []
        for c, cell in enumerate(row.cells):
            if c >= MAX_COLUMNS:
                break
            if cell.is_spanned:
                text, last = down.get(c, ("", -1))
                cells.append(repeated(text) if last >= r else None)
                continue
            text = cell.text.replace("\v", " ")
            if cell.is_merge_origin and cell.span_height > 1:
                down[c] = (text, r + cell.span_height - 1)
            cells.append(text)
        rows.append(cells)
    return rows
