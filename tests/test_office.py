"""Word, OpenDocument text, RTF and PowerPoint loaders: structure (heading paths, tables in
document order, slides, notes, titles), chunking that keeps slide and heading, and bad input
(corrupt, truncated, encrypted, empty, lying extension, zip bomb, too big) refused with a
reason through ``load_documents``. Every fixture is made here."""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

import pytest

from ragcli.chunking import split_document
from ragcli.errors import LoaderError
from ragcli.loaders import (
    LOADERS,
    load_documents,
    office,
    parse_docx,
    parse_odt,
    parse_pptx,
    parse_rtf,
)
from ragcli.records import location_label

docx = pytest.importorskip("docx")
pptx = pytest.importorskip("pptx")
pytest.importorskip("striprtf")
pytest.importorskip("defusedxml")

OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00junk" * 200


def words(texts: list[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def reason(path: Path) -> str:
    with pytest.raises(LoaderError) as info:
        load_documents(path, path.name)
    return str(info.value)


def test_formats_registered():
    assert LOADERS[".docx"][0] == "docx"
    assert LOADERS[".odt"][0] == "odt"
    assert LOADERS[".rtf"][0] == "rtf"
    assert LOADERS[".pptx"][0] == "pptx"


# --- docx -------------------------------------------------------------------------------------


def make_docx(path: Path, title: str | None = "Quarterly Report") -> Path:
    document = docx.Document()
    if title is not None:
        document.core_properties.title = title
    document.add_heading("Report", 0)
    document.add_paragraph("Intro paragraph.")
    document.add_heading("Setup", 1)
    document.add_paragraph("Install it.")
    table = document.add_table(rows=3, cols=2)
    for r, row in enumerate([["Name", "Value"], ["alpha", "1"], ["beta", "2"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("After the table.")
    document.add_heading("Linux", 2)
    document.add_paragraph("Use apt.", style="List Bullet")
    document.add_heading("Results", 1)
    document.add_paragraph("All good.")
    document.save(str(path))
    return path


def test_docx_headings_tables_in_order(tmp_path):
    parsed = parse_docx(make_docx(tmp_path / "r.docx").read_bytes())
    got = [(b.text, b.heading, b.is_heading, b.whole) for b in parsed.blocks]
    assert got == [
        ("Report", "Report", True, False),
        ("Intro paragraph.", "Report", False, False),
        ("Setup", "Report > Setup", True, False),
        ("Install it.", "Report > Setup", False, False),
        ("Name: alpha; Value: 1", "Report > Setup", False, True),
        ("Name: beta; Value: 2", "Report > Setup", False, True),
        ("After the table.", "Report > Setup", False, False),
        ("Linux", "Report > Setup > Linux", True, False),
        ("Use apt.", "Report > Setup > Linux", False, False),
        ("Results", "Report > Results", True, False),
        ("All good.", "Report > Results", False, False),
    ]
    assert parsed.title == "Quarterly Report"
    assert parsed.pages is None
    assert all(b.page is None and b.line_start is None for b in parsed.blocks)


def test_docx_title_falls_back_to_first_heading(tmp_path):
    parsed = parse_docx(make_docx(tmp_path / "r.docx", title=None).read_bytes())
    assert parsed.title == "Report"


def test_docx_tracked_changes_breaks_text_boxes_and_merged_cells(tmp_path):
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    document = docx.Document()
    p = document.add_paragraph("Kept ")
    p._p.append(parse_xml(f'<w:ins {nsdecls("w")} w:id="1" w:author="a"><w:r><w:t>inserted'
                          "</w:t></w:r></w:ins>"))  # fmt: skip
    p._p.append(parse_xml(f'<w:del {nsdecls("w")} w:id="2" w:author="a"><w:r><w:delText>'
                          "GONE</w:delText></w:r></w:del>"))  # fmt: skip
    p._p.append(parse_xml(f'<w:r {nsdecls("w")}><w:br/><w:t>next</w:t><w:tab/>'
                          "<w:t>line</w:t></w:r>"))  # fmt: skip
    box = document.add_paragraph("Anchor.")
    box._p.append(parse_xml(
        f'<w:r {nsdecls("w")}><w:pict><w:txbxContent><w:p><w:r><w:t>In the box</w:t></w:r>'
        "</w:p></w:txbxContent></w:pict></w:r>"
    ))  # fmt: skip
    table = document.add_table(rows=3, cols=3)
    table.cell(1, 0).merge(table.cell(2, 0))  # "North" spans two rows
    table.cell(0, 1).merge(table.cell(0, 2))  # "Quarter" heads two columns
    for (r, c), value in {
        (0, 0): "Region", (0, 1): "Quarter", (1, 0): "North", (1, 1): "5", (1, 2): "6",
        (2, 1): "7", (2, 2): "8",
    }.items():  # fmt: skip
        table.cell(r, c).text = value
    document.save(str(tmp_path / "t.docx"))
    texts = [b.text for b in parse_docx((tmp_path / "t.docx").read_bytes()).blocks]
    assert texts[0] == "Kept inserted\nnext line"
    assert texts[1:3] == ["Anchor.", "In the box"]
    assert texts[3:] == [
        "Region: North; Quarter: 5; Quarter: 6",
        "Region: North; Quarter: 7; Quarter: 8",
    ]


def test_docx_load_and_chunk(tmp_path):
    [doc] = load_documents(make_docx(tmp_path / "r.docx"), "r.docx")
    assert doc.format == "docx" and doc.title == "Quarterly Report" and doc.pages is None
    chunks = split_document(doc, words, 200, 20)
    by_heading = {c.heading: c.text for c in chunks}
    assert "Name: beta; Value: 2" in by_heading["Report > Setup"]
    assert "Use apt." in by_heading["Report > Setup > Linux"]
    assert all(c.page is None and c.line_start is None for c in chunks)


# --- pptx -------------------------------------------------------------------------------------


def make_pptx(path: Path, title: str | None = None) -> Path:
    from pptx.util import Inches

    deck = pptx.Presentation()
    if title is not None:
        deck.core_properties.title = title
    slide = deck.slides.add_slide(deck.slide_layouts[0])
    slide.shapes.title.text = "Launch Plan"
    slide.placeholders[1].text = "Q3 kickoff"
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Budget"
    body = slide.placeholders[1].text_frame
    body.text = "Hardware costs"
    body.add_paragraph().text = "Travel"
    shape = slide.shapes.add_table(3, 2, Inches(1), Inches(4), Inches(4), Inches(1))
    for r, row in enumerate([["Item", "Cost"], ["Laptops", "900"], ["Flights", "400"]]):
        for c, value in enumerate(row):
            shape.table.cell(r, c).text = value
    slide.notes_slide.notes_text_frame.text = "Mention the risks."
    slide = deck.slides.add_slide(deck.slide_layouts[6])  # blank: no title
    group = slide.shapes.add_group_shape()
    box = group.shapes.add_textbox(Inches(1), Inches(1), Inches(3), Inches(1))
    box.text_frame.text = "Grouped text"
    deck.save(str(path))
    return path


def test_pptx_slides_titles_tables_notes(tmp_path):
    parsed = parse_pptx(make_pptx(tmp_path / "d.pptx").read_bytes())
    got = [(b.text, b.page, b.heading, b.is_heading, b.whole) for b in parsed.blocks]
    assert got == [
        ("Launch Plan", 1, "Slide 1: Launch Plan", True, False),
        ("Q3 kickoff", 1, "Slide 1: Launch Plan", False, False),
        ("Budget", 2, "Slide 2: Budget", True, False),
        ("Hardware costs", 2, "Slide 2: Budget", False, False),
        ("Travel", 2, "Slide 2: Budget", False, False),
        ("Item: Laptops; Cost: 900", 2, "Slide 2: Budget", False, True),
        ("Item: Flights; Cost: 400", 2, "Slide 2: Budget", False, True),
        ("Mention the risks.", 2, "Slide 2: Budget > Notes", False, False),
        ("Grouped text", 3, "Slide 3", False, False),
    ]
    assert parsed.pages == 3
    assert parsed.title == "Launch Plan"  # no core title: the first slide's
    assert parse_pptx(make_pptx(tmp_path / "t.pptx", "Deck").read_bytes()).title == "Deck"


def test_pptx_load_and_chunk_keeps_slide_and_heading(tmp_path):
    [doc] = load_documents(make_pptx(tmp_path / "d.pptx"), "d.pptx")
    assert doc.format == "pptx" and doc.pages == 3 and doc.title == "Launch Plan"
    chunks = split_document(doc, words, 200, 20)
    where = {(c.page, c.heading): c.text for c in chunks}
    assert "Item: Flights; Cost: 400" in where[(2, "Slide 2: Budget")]
    assert "Mention the risks." in where[(2, "Slide 2: Budget > Notes")]
    assert "Mention the risks." not in where[(2, "Slide 2: Budget")]
    assert where[(3, "Slide 3")].endswith("Grouped text")
    notes = next(c for c in chunks if c.heading == "Slide 2: Budget > Notes")
    assert location_label(notes.page, notes.line_start, notes.line_end, doc.format) == "slide 2"


# --- odt --------------------------------------------------------------------------------------

_ODT_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/"'
)

ODT_BODY = """
<text:tracked-changes><text:changed-region text:id="c1"><text:deletion>
  <text:p>DELETED TEXT</text:p></text:deletion></text:changed-region></text:tracked-changes>
<text:h text:outline-level="1">Guide</text:h>
<text:p>Plain <text:span>nested <text:span>spans</text:span></text:span>,<text:s text:c="3"/>
  spaced<text:tab/>tabbed<text:line-break/>broken<office:annotation><text:p>A COMMENT</text:p>
  </office:annotation>.<text:note text:note-class="footnote">
  <text:note-citation>1</text:note-citation><text:note-body><text:p>The footnote.</text:p>
  </text:note-body></text:note></text:p>
<text:h text:outline-level="2">Install</text:h>
<text:list><text:list-item><text:p>First item</text:p></text:list-item></text:list>
<table:table table:name="T">
  <table:table-header-rows><table:table-row>
    <table:table-cell><text:p>Host</text:p></table:table-cell>
    <table:table-cell table:number-columns-spanned="2"><text:p>Ports</text:p></table:table-cell>
    <table:covered-table-cell/>
  </table:table-row></table:table-header-rows>
  <table:table-row>
    <table:table-cell table:number-rows-spanned="2"><text:p>web</text:p></table:table-cell>
    <table:table-cell><text:p>80</text:p></table:table-cell>
    <table:table-cell><text:p>443</text:p></table:table-cell>
  </table:table-row>
  <table:table-row>
    <table:covered-table-cell/>
    <table:table-cell><text:p>8080</text:p></table:table-cell>
    <table:table-cell/>
  </table:table-row>
</table:table>
<text:h text:outline-level="1">Usage</text:h>
<text:p>Run it.</text:p>
"""


def odt_bytes(
    body: str = ODT_BODY,
    title: str | None = "ODT Guide",
    mimetype: str = "application/vnd.oasis.opendocument.text",
    manifest: str = "",
    content: str | None = None,
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", mimetype, compress_type=zipfile.ZIP_STORED)
        archive.writestr(
            "content.xml",
            content
            if content is not None
            else f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODT_NS}>'
            f"<office:body><office:text>{body}</office:text></office:body>"
            "</office:document-content>",
        )
        if title is not None:
            archive.writestr(
                "meta.xml",
                f"<office:document-meta {_ODT_NS}><office:meta><dc:title>{title}</dc:title>"
                "</office:meta></office:document-meta>",
            )
        archive.writestr(
            "META-INF/manifest.xml",
            '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:'
            f'manifest:1.0">{manifest}</manifest:manifest>',
        )
    return buffer.getvalue()


def test_odt_structure(tmp_path):
    parsed = parse_odt(odt_bytes())
    got = [(b.text, b.heading, b.is_heading, b.whole) for b in parsed.blocks]
    assert got == [
        ("Guide", "Guide", True, False),
        ("Plain nested spans, spaced tabbed\nbroken.", "Guide", False, False),
        ("The footnote.", "Guide", False, False),
        ("Install", "Guide > Install", True, False),
        ("First item", "Guide > Install", False, False),
        ("Host: web; Ports: 80; Ports: 443", "Guide > Install", False, True),
        ("Host: web; Ports: 8080", "Guide > Install", False, True),
        ("Usage", "Usage", True, False),
        ("Run it.", "Usage", False, False),
    ]
    assert parsed.title == "ODT Guide"
    assert parse_odt(odt_bytes(title=None)).title == "Guide"


def test_odt_load_and_chunk(tmp_path):
    path = tmp_path / "g.odt"
    path.write_bytes(odt_bytes())
    [doc] = load_documents(path, "g.odt")
    assert doc.format == "odt" and doc.title == "ODT Guide"
    chunks = split_document(doc, words, 200, 20)
    by_heading = {c.heading: c.text for c in chunks}
    assert "Host: web; Ports: 8080" in by_heading["Guide > Install"]
    assert by_heading["Usage"].endswith("Run it.")
    assert not any("DELETED" in c.text or "COMMENT" in c.text for c in chunks)


# --- rtf --------------------------------------------------------------------------------------

RTF = (
    rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\froman Times;}}"
    rb"{\info{\title Minutes of the meeting}}"
    rb"{\*\shppict{\pict\pngblip\picw10\pich10 89504e470d0a1a0a0000000d49484452}}"
    rb"\pard Hello caf\'e9 world.\par"
    b"\n"
    rb"\pard Second \b bold\b0  paragraph.\par"
    b"\n"
    rb"\pard\par Third after a blank line.\par"
    rb"\pard See {\field{\*\fldinst{HYPERLINK \"http://x.example\"}}{\fldrslt{the site}}} and"
    rb" \{braces\} \\ kept.\par}"
)


def test_rtf_paragraphs_and_title():
    parsed = parse_rtf(RTF)
    # no line numbers: the lines of the RTF source are not lines a reader sees
    got = [(b.text, b.line_start, b.line_end) for b in parsed.blocks]
    assert got == [
        ("Hello café world.", None, None),
        ("Second bold paragraph.", None, None),
        ("Third after a blank line.", None, None),
        ("See the site and {braces} \\ kept.", None, None),
    ]
    assert parsed.title == "Minutes of the meeting"


def test_rtf_load_and_chunk(tmp_path):
    path = tmp_path / "m.rtf"
    path.write_bytes(RTF)
    [doc] = load_documents(path, "m.rtf")
    assert doc.format == "rtf"
    [chunk] = split_document(doc, words, 200, 20)
    assert (chunk.line_start, chunk.line_end) == (None, None) and "café" in chunk.text


def test_rtf_unclosed_fields_do_not_hang():
    """striprtf's hyperlink regex takes cubic time on one long line of fields (80 s for
    these 62 kB); the loader puts each group on its own line first."""
    data = b"{\\rtf1\\ansi " + b'{\\field{\\*\\fldinst{HYPERLINK "x' * 2000 + b"\\pard Tail.\\par}"
    parsed = parse_rtf(data)  # 80 s before the groups were split onto their own lines
    assert parsed.blocks == []  # all of it inside field instructions


# --- bad input --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory) -> bytes:
    """A ZIP whose one member inflates to 300 MB of zeros, written in chunks."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            zeros = bytes(1024 * 1024)
            for _ in range(300):
                member.write(zeros)
    return path.read_bytes()


def damaged(data: bytes, member: str) -> bytes:
    """``data`` with the compressed bytes of ``member`` overwritten (the directory intact)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(member)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    middle = start + info.compress_size // 2
    return data[:middle] + b"\xff" * 16 + data[middle + 16 :]


def empty_docx(path: Path) -> Path:
    docx.Document().save(str(path))
    return path


def empty_pptx(path: Path) -> Path:
    deck = pptx.Presentation()
    deck.slides.add_slide(deck.slide_layouts[6])  # a slide with nothing on it
    deck.save(str(path))
    return path


@pytest.mark.parametrize(
    "suffix, make, member, what",
    [
        (".docx", make_docx, "word/document.xml", "a Word document"),
        (".pptx", make_pptx, "ppt/slides/slide2.xml", "a PowerPoint presentation"),
    ],
)
def test_office_open_xml_bad_input(tmp_path, zip_bomb, suffix, make, member, what):
    kind = suffix[1:]
    good = make(tmp_path / f"good{suffix}").read_bytes()
    bad = tmp_path / f"bad{suffix}"

    bad.write_bytes(damaged(good, member))
    assert reason(bad).startswith(f"corrupt {kind} file (damaged compressed data")

    bad.write_bytes(good[: len(good) // 2])
    assert f"not a valid {kind} file" in reason(bad)

    bad.write_bytes(OLE)
    assert f"encrypted {kind} file" in reason(bad)

    bad.write_bytes(b"Just some notes that were saved with the wrong name.\n")
    assert f"not a valid {kind} file" in reason(bad)

    bad.write_bytes(zip_bomb)
    assert "zip bomb" in reason(bad)

    other = make_pptx(tmp_path / "o.pptx") if kind == "docx" else make_docx(tmp_path / "o.docx")
    bad.write_bytes(other.read_bytes())  # the other format under this name
    other_kind = "a PowerPoint presentation" if kind == "docx" else "a Word document"
    assert reason(bad) == f"not {what} (the file is {other_kind})"

    bad.write_bytes(odt_bytes())  # a ZIP, but not Office Open XML
    assert reason(bad) == f"not {what} (a ZIP file, but not an Office Open XML one)"

    empty = (empty_docx if suffix == ".docx" else empty_pptx)(tmp_path / f"empty{suffix}")
    assert reason(empty) == "no text found"


def test_office_xml_size_limit(tmp_path, monkeypatch):
    docx_path = make_docx(tmp_path / "r.docx")
    pptx_path = make_pptx(tmp_path / "d.pptx")
    odt_path = tmp_path / "g.odt"
    odt_path.write_bytes(odt_bytes())
    monkeypatch.setattr(office, "MAX_XML_BYTES", 1000)
    assert "refused: the docx file's XML would unpack to" in reason(docx_path)
    assert "refused: the pptx file's XML would unpack to" in reason(pptx_path)
    assert "refused: the odt file's XML would unpack to" in reason(odt_path)


def test_office_large_files_read(tmp_path):
    """Thousands of paragraphs and slides are read whole, in order."""
    document = docx.Document()
    for i in range(3000):
        if i % 100 == 0:
            document.add_heading(f"Part {i // 100}", 1)
        document.add_paragraph(f"Paragraph {i} of the long report.")
    document.save(str(tmp_path / "big.docx"))
    [doc] = load_documents(tmp_path / "big.docx", "big.docx")
    body = [b for b in doc.blocks if not b.is_heading]
    assert len(body) == 3000 and body[-1].text == "Paragraph 2999 of the long report."
    assert body[-1].heading == "Part 29"

    deck = pptx.Presentation()
    for i in range(300):
        deck.slides.add_slide(deck.slide_layouts[5]).shapes.title.text = f"Topic {i + 1}"
    deck.save(str(tmp_path / "big.pptx"))
    [doc] = load_documents(tmp_path / "big.pptx", "big.pptx")
    assert doc.pages == 300 and doc.blocks[-1].heading == "Slide 300: Topic 300"


def test_odt_bad_input(tmp_path, zip_bomb):
    bad = tmp_path / "bad.odt"
    good = odt_bytes()

    bad.write_bytes(damaged(good, "content.xml"))
    assert "corrupt odt file (damaged compressed data in content.xml" in reason(bad)

    bad.write_bytes(odt_bytes(content="<office:document-content><office:body>"))
    assert "corrupt odt file (content.xml is not well-formed XML" in reason(bad)

    bad.write_bytes(good[: len(good) // 2])
    assert "not a valid odt file" in reason(bad)

    manifest = (
        '<manifest:file-entry manifest:full-path="content.xml"><manifest:encryption-data/>'
        "</manifest:file-entry>"
    )
    bad.write_bytes(odt_bytes(manifest=manifest, content="\x8f\x01 encrypted bytes"))
    assert "encrypted OpenDocument file" in reason(bad)

    bad.write_bytes(odt_bytes(body="<text:p/><text:p>   </text:p>"))
    assert reason(bad) == "no text found"

    bad.write_bytes(b"Plain text, not a zip.\n")
    assert "not a valid odt file" in reason(bad)

    bad.write_bytes(odt_bytes(mimetype="application/vnd.oasis.opendocument.spreadsheet"))
    assert "not an OpenDocument text file" in reason(bad)

    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        f"<office:document-content {_ODT_NS}><office:body><office:text><text:p>&lol2;</text:p>"
        "</office:text></office:body></office:document-content>"
    )
    bad.write_bytes(odt_bytes(content=laughs))
    assert "refused: content.xml declares a DTD" in reason(bad)

    bad.write_bytes(zip_bomb)
    assert "zip bomb" in reason(bad)


def test_rtf_bad_input(tmp_path, monkeypatch):
    bad = tmp_path / "bad.rtf"

    bad.write_bytes(b"Meeting notes\nnot really rich text\n")
    assert reason(bad) == "not an RTF file (it does not start with {\\rtf)"

    bad.write_bytes(OLE)
    assert reason(bad).startswith("not an RTF file")

    bad.write_bytes(b"{\\rtf1\\ansi " + random.Random(0).randbytes(20_000) + b"}")
    assert reason(bad) == "corrupt RTF (binary data where its text should be)"

    bad.write_bytes(rb"{\rtf1\ansi{\fonttbl{\f0 Times;}}\pard\par}")
    assert reason(bad) == "no text found"

    bad.write_bytes(RTF[: len(RTF) * 3 // 4])  # truncated: what is there is read
    [doc] = load_documents(bad, "bad.rtf")
    texts = [b.text for b in doc.blocks]
    assert texts[0] == "Hello café world." and "Second bold paragraph.".startswith(texts[1])

    # Pictures are dropped before the size limit applies; text over it is refused.
    monkeypatch.setattr(office, "MAX_RTF_BYTES", 1024 * 1024)
    picture = b"{\\pict\\pngblip " + b"0123456789abcdef" * (256 * 1024) + b"}"
    bad.write_bytes(b"{\\rtf1\\ansi " + picture + b"\\pard Caption.\\par}")
    [doc] = load_documents(bad, "bad.rtf")
    assert [b.text for b in doc.blocks] == ["Caption."]
    bad.write_bytes(b"{\\rtf1\\ansi " + b"\\pard Many words here.\\par\n" * 60_000 + b"}")
    assert "refused: 2 MiB of RTF without its pictures (the limit is 1 MiB)" in reason(bad)


def test_a_long_merged_cell_is_not_repeated_in_every_row_it_spans(tmp_path):
    import docx

    document = docx.Document()
    table = document.add_table(rows=60, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Notes", "Item"
    merged = table.cell(1, 0).merge(table.cell(59, 0))
    merged.text = "long " * 1000
    short = document.add_table(rows=4, cols=2)
    short.cell(0, 0).text, short.cell(0, 1).text = "Region", "Town"
    short.cell(1, 0).merge(short.cell(3, 0)).text = "North"
    for row in range(1, 60):
        table.cell(row, 1).text = f"item {row}"
    for row in range(1, 4):
        short.cell(row, 1).text = f"town {row}"
    path = tmp_path / "merged.docx"
    document.save(str(path))
    [doc] = load_documents(path, "merged.docx")
    assert doc.text.count("long long") < 1100  # said once, not 59 times
    assert [b.text for b in doc.blocks if "town" in b.text] == [
        "Region: North; Town: town 1", "Region: North; Town: town 2",
        "Region: North; Town: town 3",
    ]  # fmt: skip
