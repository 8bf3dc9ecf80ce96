"""EPUB e-books: the chapters in reading (spine) order, each XHTML file read by the HTML loader
and its headings put under the chapter's title from the table of contents; DRM refused.

The container's small XML files (container.xml, the OPF package, the NCX) are read with
``xml.etree`` after refusing any entity declaration (no entity expansion, no external DTD);
the chapters and the EPUB 3 navigation document with BeautifulSoup's HTML parser, which expands
no declared entities either.
"""

from __future__ import annotations

import posixpath
import zipfile
import zlib
from collections.abc import Iterator
from urllib.parse import unquote
from xml.etree import ElementTree

from ragcli.errors import LoaderError
from ragcli.loaders.html import parse_html
from ragcli.loaders.parsed import Parsed, open_zip
from ragcli.loaders.text import WS
from ragcli.records import Block

_CONTAINER = "META-INF/container.xml"
_ENCRYPTION = "META-INF/encryption.xml"
_XHTML_TYPES = {"application/xhtml+xml", "text/html", "application/xml"}
_XHTML_EXTENSIONS = (".xhtml", ".html", ".htm", ".xml")
# Fonts may be "encrypted" by the IDPF or Adobe obfuscation, which hides no text.
_FONT_EXTENSIONS = (".otf", ".ttf", ".woff", ".woff2", ".eot")


def parse_epub(data: bytes) -> Parsed:
    """An EPUB 2 or 3 book: one heading per chapter, its blocks under it, in spine order."""
    archive = open_zip(data, "epub")
    book = _Book(archive)
    opf_path = book.opf_path()
    opf = book.xml(opf_path)
    book.refuse_drm()
    base = posixpath.dirname(opf_path)
    manifest: dict[str, tuple[str, str, str]] = {}  # id -> (path, media type, properties)
    for item in _elements(opf, "item"):
        href = item.get("href")
        if item.get("id") and href:
            manifest[item.get("id", "")] = (
                _resolve(base, href),
                item.get("media-type", ""),
                item.get("properties", ""),
            )
    # Each file once, in its first place: a spine listing one chapter many times must not
    # multiply its text.
    spine = list(
        dict.fromkeys(
            manifest[ref.get("idref", "")] for ref in _elements(opf, "itemref")
            if ref.get("idref", "") in manifest
        )
    )  # fmt: skip
    if not spine:
        raise LoaderError("not a valid epub file (its package lists no chapters)")
    toc = book.toc(opf, manifest)
    blocks: list[Block] = []
    chapters = 0
    missing = 0
    chapter: str | None = None  # the title of the chapter read last
    for path, media_type, _ in spine:
        if media_type not in _XHTML_TYPES and not path.lower().endswith(_XHTML_EXTENSIONS):
            continue  # an image or SVG page: no text to read
        content = book.read(path)
        if content is None:
            missing += 1
            continue
        chapter_blocks, title = parse_html(content)
        if not any(b.text.strip() for b in chapter_blocks if not b.is_heading):
            continue  # a cover, a title page image: nothing to read
        chapters += 1
        previous = chapter
        if path in toc:
            chapter = toc[path]
        elif not toc or chapter is None:
            chapter = _opening_heading(chapter_blocks) or title
        # else a file the contents leave out: the rest of the chapter before (a split chapter)
        blocks += _under_chapter(chapter_blocks, chapter, opens=chapter != previous)
    notes = [f"{missing} chapter file(s) listed but missing from the book"] if missing else []
    return Parsed(blocks, _title(opf), pages=chapters or None, notes=notes)


class _Book:
    """The container of one EPUB: its members by name, read once each."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.names = {info.filename: info.filename for info in archive.infolist()}
        for name in list(self.names):
            self.names.setdefault(name.lower(), name)

    def read(self, path: str) -> bytes | None:
        name = self.names.get(path) or self.names.get(path.lower())
        if name is None:
            return None
        try:
            return self.archive.read(name)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as e:
            raise LoaderError(f"not a valid epub file (corrupt member {name!r}: {e})") from e

    def xml(self, path: str) -> ElementTree.Element:
        data = self.read(path)
        if data is None:
            raise LoaderError(f"not a valid epub file (no {path})")
        return _parse_xml(data, path)

    def opf_path(self) -> str:
        if self.read(_CONTAINER) is None:
            raise LoaderError(f"not a valid epub file (no {_CONTAINER}; a ZIP of something else?)")
        container = self.xml(_CONTAINER)
        for rootfile in _elements(container, "rootfile"):
            full_path = rootfile.get("full-path")
            if full_path and rootfile.get("media-type", "").endswith("oebps-package+xml"):
                return _resolve("", full_path)
        for rootfile in _elements(container, "rootfile"):
            if rootfile.get("full-path"):
                return _resolve("", rootfile.get("full-path", ""))
        raise LoaderError("not a valid epub file (its container names no package)")

    def refuse_drm(self) -> None:
        """LoaderError when encryption.xml lists any file other than a font (DRM: Adobe ADEPT,
        Readium LCP, ...); obfuscated fonts alone are fine."""
        data = self.read(_ENCRYPTION)
        if data is None:
            return
        try:
            root = _parse_xml(data, _ENCRYPTION)
        except LoaderError as e:
            raise LoaderError("encrypted (DRM) e-book (its encryption.xml is unreadable)") from e
        for reference in _elements(root, "CipherReference"):
            uri = unquote(reference.get("URI", "")).lower()
            if not uri.endswith(_FONT_EXTENSIONS):
                raise LoaderError("encrypted (DRM) e-book: its text cannot be read")

    def toc(
        self, opf: ElementTree.Element, manifest: dict[str, tuple[str, str, str]]
    ) -> dict[str, str]:
        """Chapter file -> its first title in the table of contents (EPUB 3 nav, else NCX)."""
        titles: dict[str, str] = {}
        nav = next((path for path, _, props in manifest.values() if "nav" in props.split()), None)
        if nav is not None and (content := self.read(nav)) is not None:
            titles = _nav_titles(content, posixpath.dirname(nav))
        if titles:
            return titles
        spine = next(_elements(opf, "spine"), None)
        ncx_id = spine.get("toc") if spine is not None else None
        ncx = manifest.get(ncx_id or "") or next(
            (m for m in manifest.values() if m[1] == "application/x-dtbncx+xml"), None
        )
        if ncx is None or self.read(ncx[0]) is None:
            return {}
        try:
            root = self.xml(ncx[0])
        except LoaderError:
            return {}  # a broken table of contents: the chapters' own headings serve
        base = posixpath.dirname(ncx[0])
        for point in _elements(root, "navPoint"):
            label = next(_elements(point, "text"), None)
            content_el = next(_elements(point, "content"), None)
            if label is None or content_el is None or not content_el.get("src"):
                continue
            text = WS.sub(" ", "".join(label.itertext())).strip()
            if text:
                titles.setdefault(_resolve(base, content_el.get("src", "")), text)
        return titles


def _parse_xml(data: bytes, path: str) -> ElementTree.Element:
    if b"<!ENTITY" in data:
        raise LoaderError(f"refused: {path} in the epub declares XML entities")
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError as e:
        raise LoaderError(f"not a valid epub file ({path}: {e})") from e


def _elements(root: ElementTree.Element, name: str) -> Iterator[ElementTree.Element]:
    """Descendants named ``name`` in any namespace (EPUBs differ in prefixes and versions)."""
    for element in root.iter():
        tag = element.tag
        if isinstance(tag, str) and tag.rsplit("}", 1)[-1] == name:
            yield element


def _resolve(base: str, href: str) -> str:
    """A manifest or table-of-contents link as a member name: fragment dropped, unquoted."""
    path = unquote(href.split("#", 1)[0])
    return posixpath.normpath(posixpath.join(base, path)).lstrip("/")


def _title(opf: ElementTree.Element) -> str | None:
    for element in _elements(opf, "title"):
        text = WS.sub(" ", "".join(element.itertext())).strip()
        if text:
            return text
    return None


def _nav_titles(content: bytes, base: str) -> dict[str, str]:
    from bs4 import BeautifulSoup

    from ragcli.loaders.text import decode_text

    soup = BeautifulSoup(decode_text(content), "html.parser")
    navs = soup.find_all("nav")
    toc = next((n for n in navs if "toc" in str(n.get("epub:type", "")).split()), None)
    toc = toc or (navs[0] if navs else None)
    titles: dict[str, str] = {}
    if toc is None:
        return titles
    for link in toc.find_all("a"):
        href = link.get("href")
        text = WS.sub(" ", link.get_text(" ", strip=True)).strip()
        if isinstance(href, str) and href and text:
            titles.setdefault(_resolve(base, href), text)
    return titles


def _opening_heading(blocks: list[Block]) -> str | None:
    """The heading a chapter file opens with, if it opens with one."""
    return blocks[0].text if blocks and blocks[0].is_heading else None


def _under_chapter(blocks: list[Block], chapter: str | None, opens: bool) -> list[Block]:
    """A chapter file's blocks with the chapter title at the top of each heading path, no lines
    (an XHTML file's lines mean nothing to a reader), and, when the file ``opens`` the chapter
    but not with that heading, a heading block for the chapter."""
    out: list[Block] = []
    first = blocks[0] if blocks else None
    if chapter and opens and not (first and first.is_heading and first.text == chapter):
        out.append(Block(chapter, heading=chapter, is_heading=True))
    for b in blocks:
        heading = b.heading
        if chapter and heading != chapter and not (heading or "").startswith(chapter + " > "):
            heading = f"{chapter} > {heading}" if heading else chapter
        out.append(Block(b.text, heading=heading, is_heading=b.is_heading, whole=b.whole))
    return out
