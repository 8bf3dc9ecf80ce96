from __future__ import annotations

from pathlib import Path

import pytest

from ragcli.errors import LoaderError
from ragcli.loaders import decode_text, load_documents, parse_html, parse_markdown, parse_rst

from .conftest import SAMPLE_CORPUS


def _load(path: Path):
    (document,) = load_documents(path, path.name)
    return document


def test_text_paragraphs_keep_line_ranges(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("first line\nsecond line\n\n\nthird paragraph\n")
    doc = _load(path)
    assert doc.format == "text"
    assert [(b.text, b.line_start, b.line_end) for b in doc.blocks] == [
        ("first line\nsecond line", 1, 2),
        ("third paragraph", 5, 5),
    ]
    assert len(doc.sha256) == 64 and doc.size == path.stat().st_size


def test_crlf_and_legacy_encodings(tmp_path: Path) -> None:
    assert decode_text(b"a\r\nb") == "a\nb"
    assert decode_text("café".encode("cp1252")) == "café"
    assert decode_text("naïve\r\nx".encode("utf-16")) == "naïve\nx"
    assert decode_text(b"\xef\xbb\xbfbom") == "bom"


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("blank.md", b"  \n\n \t\n", "empty file"),
        ("binary.txt", b"\x00\x01\x02ELF" * 50, "binary file"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "corrupt or unreadable PDF"),
        ("slides.key", b"PK\x03\x04....", "unsupported file type"),
    ],
)
def test_unusable_files_raise_loader_error(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoaderError, match=reason):
        _load(path)


def test_markdown_headings_and_code_fences() -> None:
    text = (
        b"---\ntitle: x\n---\n# Guide\n\nIntro text.\n\n## Setup\n\n"
        b"Run it.\n\n```\n# not a heading\n```\n\n"
        b"Other\n-----\n\nUnder setext.\n"
    )
    blocks, title = parse_markdown(text)
    assert title == "Guide"
    by_text = {b.text: b for b in blocks}
    assert by_text["Intro text."].heading == "Guide"
    assert by_text["Run it."].heading == "Guide > Setup"
    assert by_text["```\n# not a heading\n```"].heading == "Guide > Setup"
    assert by_text["Under setext."].heading == "Guide > Other"
    assert by_text["Run it."].line_start == 10
    assert by_text["Guide"].is_heading


def test_rst_section_titles_set_levels() -> None:
    text = (
        b"=====\nTitle\n=====\n\nIntro.\n\nPart\n----\n\nBody text\nmore.\n\nNext\n----\n\nEnd.\n"
    )
    blocks, title = parse_rst(text)
    assert title == "Title"
    by_text = {b.text: b for b in blocks}
    assert by_text["Intro."].heading == "Title"
    assert by_text["Body text\nmore."].heading == "Title > Part"
    assert (by_text["Body text\nmore."].line_start, by_text["Body text\nmore."].line_end) == (
        10,
        11,
    )
    assert by_text["End."].heading == "Title > Next"


def test_html_keeps_visible_text_only() -> None:
    html = b"""<html><head><title>Page</title><style>p { color: red }</style></head>
<body><script>var secret = "hidden";</script>
<h1>Main</h1>
<p>Visible <b>bold</b> text.</p>
<!-- a comment -->
<ul><li>item one</li><li>item two</li></ul>
<noscript>enable js</noscript>
</body></html>"""
    blocks, title = parse_html(html)
    text = " ".join(b.text for b in blocks)
    assert title == "Page"
    assert "Visible bold text." in text and "item one" in text
    for hidden in ("color: red", "secret", "a comment", "enable js"):
        assert hidden not in text
    paragraph = next(b for b in blocks if b.text == "Visible bold text.")
    assert paragraph.heading == "Main" and paragraph.line_start == 4


def test_sample_html_drops_script_and_style() -> None:
    doc = _load(SAMPLE_CORPUS / "guides" / "netlace.html")
    assert "should never be indexed" not in doc.text
    assert "DOMContentLoaded" not in doc.text
    assert "Rosalind Quaye" in doc.text


def test_pdf_pages_are_numbered() -> None:
    doc = _load(SAMPLE_CORPUS / "harbour_trust_report_2023.pdf")
    assert doc.format == "pdf"
    pages = sorted({b.page for b in doc.blocks})
    assert pages == [1, 2, 3, 4]
    assert all(b.line_start is None for b in doc.blocks)
    page3 = " ".join(b.text for b in doc.blocks if b.page == 3)
    assert "Hallow and Brisk" in page3


def test_pdf_without_text_layer_is_reported(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    path = tmp_path / "scan.pdf"
    with open(path, "wb") as f:
        writer.write(f)
    with pytest.raises(LoaderError, match="probably scanned"):
        _load(path)


def test_truncated_pdf_is_reported(tmp_path: Path) -> None:
    data = (SAMPLE_CORPUS / "harbour_trust_report_2023.pdf").read_bytes()
    path = tmp_path / "cut.pdf"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(LoaderError):
        _load(path)
