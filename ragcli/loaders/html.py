"""HTML: the visible text (no scripts, styles or comments), one block per block-level element,
headings tracked; BeautifulSoup imported when an HTML file is read."""

from __future__ import annotations

from typing import Any

from ragcli.loaders.text import WS, Sections, decode_text
from ragcli.records import Block

_HTML_SKIP = {"script", "style", "noscript", "template", "svg", "head", "iframe", "object"}
_HTML_BLOCKS = {
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog",
    "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3",
    "h4", "h5", "h6", "header", "html", "legend", "li", "main", "nav", "ol", "p", "pre",
    "section", "summary", "table", "td", "th", "tr", "ul",
}  # fmt: skip
_HTML_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


def parse_html(data: bytes) -> tuple[list[Block], str | None]:
    """HTML: visible text only, one block per block-level element, headings tracked."""
    from bs4 import BeautifulSoup, NavigableString
    from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

    soup = BeautifulSoup(decode_text(data), "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    for tag in soup.find_all(list(_HTML_SKIP)):
        tag.decompose()
    skip_types = (Comment, Declaration, Doctype, ProcessingInstruction)
    groups: list[tuple[Any, list[str]]] = []
    for s in soup.find_all(string=True):
        if not isinstance(s, NavigableString) or isinstance(s, skip_types):
            continue
        block = next((p for p in s.parents if p.name in _HTML_BLOCKS), soup)
        if groups and groups[-1][0] is block:
            groups[-1][1].append(str(s))
        else:
            groups.append((block, [str(s)]))
    sections = Sections()
    sections.title = title
    for node, strings in groups:
        raw = "".join(strings)
        text = WS.sub(" ", raw).strip()
        if not text:
            continue
        start = getattr(node, "sourceline", None) or 1
        end = start + raw.strip().count("\n")
        name = getattr(node, "name", None)
        if name in _HTML_HEADINGS:
            sections.heading(_HTML_HEADINGS[name], text, start, end)
        else:
            sections.blocks.append(
                Block(text, line_start=start, line_end=end, heading=sections.path)
            )
    return sections.blocks, title
