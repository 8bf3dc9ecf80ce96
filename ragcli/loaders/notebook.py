"""Jupyter notebooks (``.ipynb``, nbformat 4 and 3): Markdown cells read as Markdown, their
headings carried across cells; each code cell one unbroken block; raw cells as plain text;
outputs never read."""

from __future__ import annotations

import json
from typing import Any

from ragcli.errors import LoaderError
from ragcli.loaders.markdown import parse_markdown
from ragcli.loaders.parsed import Parsed
from ragcli.loaders.text import paragraphs
from ragcli.records import Block


def parse_notebook(data: bytes) -> Parsed:
    """A notebook's cells in order; no line numbers (a notebook has no lines a reader sees)."""
    try:
        notebook = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise LoaderError(f"not a valid notebook ({type(e).__name__}: {e})") from e
    if not isinstance(notebook, dict):
        raise LoaderError("not a valid notebook (its JSON is not an object)")
    version = notebook.get("nbformat")
    if isinstance(version, int) and version < 3:
        raise LoaderError(f"unsupported notebook format {version} (save it again in Jupyter)")
    cells = _cells(notebook)
    stack: list[tuple[int, str]] = []
    blocks: list[Block] = []
    first_heading: str | None = None
    for cell in cells:
        kind = cell.get("cell_type")
        if kind == "markdown":
            blocks += _markdown(_source(cell.get("source")), stack)
        elif kind == "heading":  # nbformat 3's heading cell
            text = " ".join(_source(cell.get("source")).split())
            level = cell.get("level")
            if text:
                _push(stack, level if isinstance(level, int) else 1, text)
                blocks.append(Block(text, heading=_path(stack), is_heading=True))
        elif kind == "code":
            code = _source(cell.get("source", cell.get("input"))).strip("\n")
            if code.strip():
                blocks.append(Block(code, heading=_path(stack), whole=True))
        elif kind == "raw":
            text = _source(cell.get("source"))
            for b in paragraphs(text.split("\n"), 1, _path(stack)):
                blocks.append(Block(b.text, heading=b.heading))
        if first_heading is None and stack:
            first_heading = stack[0][1]
    metadata = notebook.get("metadata")
    title = metadata.get("title") if isinstance(metadata, dict) else None
    if not isinstance(title, str) or not title.strip():
        title = first_heading
    return Parsed(blocks, title.strip() if title else None)


def _cells(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    if isinstance(notebook.get("cells"), list):
        cells = notebook["cells"]
    elif isinstance(notebook.get("worksheets"), list):  # nbformat 3
        cells = [
            cell
            for sheet in notebook["worksheets"]
            if isinstance(sheet, dict) and isinstance(sheet.get("cells"), list)
            for cell in sheet["cells"]
        ]
    else:
        raise LoaderError("not a valid notebook (no cells)")
    return [cell for cell in cells if isinstance(cell, dict)]


def _source(value: object) -> str:
    """A cell's source: one string, or (as saved) a list of lines that keep their newlines."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return ""


def _markdown(source: str, stack: list[tuple[int, str]]) -> list[Block]:
    """One Markdown cell's blocks under the notebook's heading stack, which its headings move.

    A blank first line keeps a cell that opens with a ``---`` rule from being read as front
    matter; the heading's level is read back from its source line.
    """
    text = "\n" + source
    lines = text.split("\n")
    blocks: list[Block] = []
    for b in parse_markdown(text.encode("utf-8"))[0]:
        if b.is_heading and b.text.strip():
            _push(stack, _level(lines, b), b.text)
            blocks.append(Block(b.text, heading=_path(stack), is_heading=True))
        elif not b.is_heading:
            blocks.append(Block(b.text, heading=_path(stack)))
    return blocks


def _level(lines: list[str], heading: Block) -> int:
    first = lines[(heading.line_start or 1) - 1].lstrip(" ")
    if first.startswith("#"):
        return len(first) - len(first.lstrip("#"))
    underline = lines[(heading.line_end or 1) - 1].strip()
    return 1 if underline.startswith("=") else 2  # a setext heading


def _push(stack: list[tuple[int, str]], level: int, text: str) -> None:
    while stack and stack[-1][0] >= level:
        stack.pop()
    stack.append((level, text))


def _path(stack: list[tuple[int, str]]) -> str | None:
    return " > ".join(t for _, t in stack) or None
