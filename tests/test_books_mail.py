"""E-books (.epub), notebooks (.ipynb) and mail (.eml, .mbox): text in reading order under the
right headings, attachments and messages as documents of their own, and each kind of bad input
refused with a reason that says what is wrong."""

from __future__ import annotations

import base64
import json
import re
import time
import zipfile
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest

from ragcli.errors import LoaderError
from ragcli.loaders import load_documents
from ragcli.records import Document

# ---------------------------------------------------------------- EPUB


CONTAINER = """<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles>
    <rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>
  </rootfiles>
</container>"""

OPF = """<?xml version="1.0" encoding="UTF-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
    <dc:identifier id="id">urn:uuid:1234</dc:identifier>
    <dc:title>The Lighthouse Keeper</dc:title>
    <dc:language>en</dc:language>
  </metadata>
  <manifest>
    <item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>
    <item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>
    <item id="c1" href="text/chapter%201.xhtml" media-type="application/xhtml+xml"/>
    <item id="c2" href="text/ch2.xhtml" media-type="application/xhtml+xml"/>
    <item id="cover" href="images/cover.jpg" media-type="image/jpeg"/>
  </manifest>
  <spine toc="ncx">
    <itemref idref="c2"/>
    <itemref idref="c1"/>
  </spine>
</package>"""

NAV = """<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">
<head><title>Contents</title></head>
<body><nav epub:type="toc"><ol>
  <li><a href="text/ch2.xhtml">Chapter One: The Storm</a></li>
  <li><a href="text/chapter%201.xhtml#start">Chapter Two: The Calm</a></li>
</ol></nav></body></html>"""

NCX = """<?xml version="1.0" encoding="UTF-8"?>
<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1">
  <navMap>
    <navPoint id="p1"><navLabel><text>NCX One</text></navLabel>
      <content src="text/ch2.xhtml"/></navPoint>
    <navPoint id="p2"><navLabel><text>NCX Two</text></navLabel>
      <content src="text/chapter%201.xhtml"/></navPoint>
  </navMap>
</ncx>"""


def _xhtml(title: str, body: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml">\n'
        f"<head><title>{title}</title></head>\n<body>\n{body}\n</body></html>"
    )


CH_FIRST = _xhtml(
    "ch2",
    "<p>The wind rose over the harbour at dusk.</p>\n<h2>Night watch</h2>\n"
    "<p>The keeper climbed the stairs with a lamp.</p>",
)
CH_SECOND = _xhtml("ch1", "<h1>Chapter Two: The Calm</h1>\n<p>Morning came grey and still.</p>")


def _epub(
    path: Path,
    files: dict[str, str | bytes] | None = None,
    opf: str = OPF,
    nav: str | None = NAV,
) -> Path:
    members: dict[str, str | bytes] = {
        "META-INF/container.xml": CONTAINER,
        "OEBPS/content.opf": opf,
        "OEBPS/toc.ncx": NCX,
        "OEBPS/text/ch2.xhtml": CH_FIRST,
        "OEBPS/text/chapter 1.xhtml": CH_SECOND,
        "OEBPS/images/cover.jpg": b"\xff\xd8\xff\xe0 not really a jpeg",
    }
    if nav is not None:
        members["OEBPS/nav.xhtml"] = nav
    members.update(files or {})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        for name, content in members.items():
            z.writestr(name, content, compress_type=zipfile.ZIP_DEFLATED)
    return path


def _one(path: Path) -> Document:
    documents = load_documents(path, path.name)
    assert len(documents) == 1
    return documents[0]


def _refused(path: Path) -> str:
    with pytest.raises(LoaderError) as e:
        load_documents(path, path.name)
    return str(e.value)


def test_epub_chapters_in_spine_order_under_their_toc_titles(tmp_path: Path) -> None:
    doc = _one(_epub(tmp_path / "book.epub"))
    assert doc.format == "epub"
    assert doc.title == "The Lighthouse Keeper"
    assert doc.pages == 2  # chapters with text; the cover image is no chapter
    got = [(b.text, b.heading, b.is_heading) for b in doc.blocks]
    assert got == [
        ("Chapter One: The Storm", "Chapter One: The Storm", True),
        ("The wind rose over the harbour at dusk.", "Chapter One: The Storm", False),
        ("Night watch", "Chapter One: The Storm > Night watch", True),
        ("The keeper climbed the stairs with a lamp.", "Chapter One: The Storm > Night watch",
         False),
        ("Chapter Two: The Calm", "Chapter Two: The Calm", True),
        ("Morning came grey and still.", "Chapter Two: The Calm", False),
    ]  # fmt: skip
    assert all(b.line_start is None and b.line_end is None and b.page is None for b in doc.blocks)
    assert "Contents" not in doc.text  # the navigation document is not in the spine


def test_epub_spine_listing_a_chapter_many_times_reads_it_once(tmp_path: Path) -> None:
    repeated = OPF.replace('<itemref idref="c1"/>', '<itemref idref="c1"/>' * 500)
    assert repeated.count('idref="c1"') == 500
    doc = _one(_epub(tmp_path / "book.epub", opf=repeated))
    assert doc.pages == 2 and doc.text.count("Morning came grey and still.") == 1


def test_epub2_ncx_titles_when_there_is_no_nav(tmp_path: Path) -> None:
    opf = OPF.replace('<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" '
                      'properties="nav"/>', "")  # fmt: skip
    doc = _one(_epub(tmp_path / "book.epub", opf=opf, nav=None))
    headings = [b.text for b in doc.blocks if b.is_heading]
    assert headings[0] == "NCX One"
    assert doc.blocks[1].heading == "NCX One"
    assert "NCX Two" in {b.heading for b in doc.blocks}


def test_epub_without_any_toc_uses_the_chapter_headings(tmp_path: Path) -> None:
    opf = OPF.replace('properties="nav"', "").replace(' toc="ncx"', "")
    opf = opf.replace('<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>', "")
    doc = _one(_epub(tmp_path / "book.epub", opf=opf, nav=None))
    # the first file opens with no heading: its <title>; the second opens with its <h1>
    assert [(b.text, b.heading) for b in doc.blocks[:4]] == [
        ("ch2", "ch2"),
        ("The wind rose over the harbour at dusk.", "ch2"),
        ("Night watch", "ch2 > Night watch"),
        ("The keeper climbed the stairs with a lamp.", "ch2 > Night watch"),
    ]
    assert [b.heading for b in doc.blocks if b.text.startswith("Morning")] == [
        "Chapter Two: The Calm"
    ]


def test_epub_with_drm_is_refused_but_obfuscated_fonts_are_not(tmp_path: Path) -> None:
    drm = """<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"
      xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>
      <enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
      <enc:CipherData><enc:CipherReference URI="OEBPS/text/ch2.xhtml"/></enc:CipherData>
      </enc:EncryptedData></encryption>"""
    path = _epub(tmp_path / "drm.epub", {"META-INF/encryption.xml": drm})
    assert _refused(path) == "encrypted (DRM) e-book: its text cannot be read"
    fonts = drm.replace("OEBPS/text/ch2.xhtml", "OEBPS/fonts/serif.otf")
    doc = _one(_epub(tmp_path / "fonts.epub", {"META-INF/encryption.xml": fonts}))
    assert "harbour at dusk" in doc.text


def test_epub_bad_input(tmp_path: Path) -> None:
    good = _epub(tmp_path / "good.epub").read_bytes()
    truncated = tmp_path / "truncated.epub"
    truncated.write_bytes(good[: len(good) // 2])
    assert "not a valid epub file" in _refused(truncated)
    corrupt = tmp_path / "corrupt.epub"
    corrupt.write_bytes(good[:200] + bytes(400) + good[600:])  # deflated data overwritten
    assert "not a valid epub file (corrupt member" in _refused(corrupt)
    lying = tmp_path / "notes.epub"
    lying.write_text("just some notes, not a book\n")
    assert "not a valid epub file (corrupt or not a ZIP container" in _refused(lying)
    other_zip = tmp_path / "other.epub"
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
    assert "no META-INF/container.xml" in _refused(other_zip)
    empty = _epub(tmp_path / "empty.epub", {
        "OEBPS/text/ch2.xhtml": _xhtml("x", ""), "OEBPS/text/chapter 1.xhtml": _xhtml("y", ""),
    })  # fmt: skip
    assert _refused(empty) == "no text found"
    entities = OPF.replace('<?xml version="1.0" encoding="UTF-8"?>',
                           '<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaa">]>')  # fmt: skip
    assert "declares XML entities" in _refused(_epub(tmp_path / "ent.epub", opf=entities))


def test_epub_corrupt_member_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stored.epub"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr("META-INF/container.xml", CONTAINER)
        z.writestr("OEBPS/content.opf", OPF)
        z.writestr("OEBPS/nav.xhtml", NAV)
        z.writestr("OEBPS/text/ch2.xhtml", CH_FIRST)
        z.writestr("OEBPS/text/chapter 1.xhtml", CH_SECOND)
    data = bytearray(path.read_bytes())
    at = data.index(b"The wind rose")
    data[at : at + 4] = b"XXXX"  # stored, so the CRC no longer matches
    path.write_bytes(bytes(data))
    reason = _refused(path)
    assert reason.startswith("not a valid epub file (corrupt member 'OEBPS/text/ch2.xhtml'")
    assert "Bad CRC-32" in reason


def test_epub_zip_bomb_is_refused_from_its_directory(tmp_path: Path) -> None:
    path = _epub(tmp_path / "bomb.epub")
    chunk = b"\0" * (1 << 20)
    with (
        zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z,
        z.open("OEBPS/text/zeros.xhtml", "w", force_zip64=True) as member,
    ):
        for _ in range(300):
            member.write(chunk)
    assert path.stat().st_size < 2 * 2**20
    reason = _refused(path)
    assert reason.startswith("refused: 'OEBPS/text/zeros.xhtml' would unpack")
    assert "zip bomb" in reason


# ---------------------------------------------------------------- notebooks


def _cell(kind: str, source: str | list[str], **extra: object) -> dict[str, object]:
    return {"cell_type": kind, "metadata": {}, "source": source, **extra}


def _notebook(cells: list[dict[str, object]], **metadata: object) -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": cells})


def test_notebook_markdown_and_code_without_outputs(tmp_path: Path) -> None:
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": ["SECRET_STDOUT 42\n"]},
        {"output_type": "execute_result", "execution_count": 1, "metadata": {},
         "data": {"text/plain": ["SECRET_RESULT"], "image/png": "iVBORw0KGgo="}},
    ]  # fmt: skip
    cells = [
        _cell("markdown", ["# Tide tables\n", "\n", "We load the tide readings.\n"]),
        _cell(
            "code",
            ["import csv\n", "\n", "rows = list(csv.reader(open('t.csv')))\n"],
            outputs=outputs,
            execution_count=1,
        ),  # fmt: skip
        _cell("markdown", "## Cleaning\n\nDrop the missing hours."),
        _cell("code", "rows = [r for r in rows if r[1]]", outputs=[], execution_count=2),
        _cell("markdown", "---\nA rule opens this cell.\n\n---"),
        _cell("markdown", "Plotting\n========\n\nOne chart per month."),
        _cell("code", "   ", outputs=[]),
    ]
    path = tmp_path / "tides.ipynb"
    path.write_text(_notebook(cells))
    doc = _one(path)
    assert doc.format == "ipynb"
    assert doc.title == "Tide tables"
    assert "SECRET" not in doc.text and "iVBOR" not in doc.text
    got = [(b.text, b.heading, b.is_heading, b.whole) for b in doc.blocks]
    assert got == [
        ("Tide tables", "Tide tables", True, False),
        ("We load the tide readings.", "Tide tables", False, False),
        ("import csv\n\nrows = list(csv.reader(open('t.csv')))", "Tide tables", False, True),
        ("Cleaning", "Tide tables > Cleaning", True, False),
        ("Drop the missing hours.", "Tide tables > Cleaning", False, False),
        ("rows = [r for r in rows if r[1]]", "Tide tables > Cleaning", False, True),
        ("---\nA rule opens this cell.", "Tide tables > Cleaning", False, False),
        ("---", "Tide tables > Cleaning", False, False),
        ("Plotting", "Plotting", True, False),
        ("One chart per month.", "Plotting", False, False),
    ]
    assert all(b.line_start is None and b.page is None for b in doc.blocks)


def test_notebook_metadata_title_and_nbformat3(tmp_path: Path) -> None:
    path = tmp_path / "titled.ipynb"
    path.write_text(_notebook([_cell("markdown", "# Heading")], title="Harbour Survey"))
    assert _one(path).title == "Harbour Survey"
    v3 = {
        "nbformat": 3, "nbformat_minor": 0, "metadata": {"name": "old"},
        "worksheets": [{"cells": [
            {"cell_type": "heading", "level": 1, "source": ["Old notebook"]},
            {"cell_type": "markdown", "source": ["Some prose."]},
            {"cell_type": "code", "language": "python", "input": ["x = 1\n", "y = 2"],
             "outputs": [{"output_type": "pyout", "text": ["HIDDEN"]}]},
        ]}],
    }  # fmt: skip
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(v3))
    doc = _one(path)
    assert [(b.text, b.heading, b.whole) for b in doc.blocks] == [
        ("Old notebook", "Old notebook", False),
        ("Some prose.", "Old notebook", False),
        ("x = 1\ny = 2", "Old notebook", True),
    ]
    assert doc.title == "Old notebook" and "HIDDEN" not in doc.text


def test_notebook_bad_input(tmp_path: Path) -> None:
    good = _notebook([_cell("markdown", "# T\n\nText."), _cell("code", "print(1)")])
    invalid = tmp_path / "invalid.ipynb"
    invalid.write_text("this is { not json")
    assert _refused(invalid).startswith("not a valid notebook (JSONDecodeError: ")
    truncated = tmp_path / "truncated.ipynb"
    truncated.write_text(good[: len(good) // 2])
    assert _refused(truncated).startswith("not a valid notebook (JSONDecodeError: ")
    empty = tmp_path / "empty.ipynb"
    empty.write_text(_notebook([]))
    assert _refused(empty) == "no text found"
    outputs_only = tmp_path / "outputs.ipynb"
    outputs_only.write_text(_notebook([_cell("code", "", outputs=[{"text": "out"}])]))
    assert _refused(outputs_only) == "no text found"
    array = tmp_path / "array.ipynb"
    array.write_text("[1, 2, 3]")
    assert _refused(array) == "not a valid notebook (its JSON is not an object)"
    no_cells = tmp_path / "nocells.ipynb"
    no_cells.write_text('{"nbformat": 4, "metadata": {}}')
    assert _refused(no_cells) == "not a valid notebook (no cells)"
    ancient = tmp_path / "ancient.ipynb"
    ancient.write_text('{"nbformat": 2, "worksheets": []}')
    assert _refused(ancient).startswith("unsupported notebook format 2")
    binary = tmp_path / "binary.ipynb"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    assert _refused(binary).startswith("not a valid notebook (")


# ---------------------------------------------------------------- mail

MAIL_DATE = datetime(2024, 3, 5, 14, 30, tzinfo=timezone.utc)


def _mail(
    subject: str = "Quarterly tide report",
    body: str | None = "Hello team,\n\nThe spring tides peaked at 4.2 metres.\n\nRegards,\nAnn",
    html: str | None = None,
    attachments: tuple[tuple[str, bytes, str, str], ...] = (),
    message_id: str | None = None,
) -> EmailMessage:
    m = EmailMessage()
    m["From"] = "Ann Keeper <ann@harbour.example>"
    m["To"] = "team@harbour.example"
    m["Subject"] = subject
    m["Date"] = format_datetime(MAIL_DATE)
    m["Message-ID"] = message_id or make_msgid(domain="harbour.example")
    if body is not None:
        m.set_content(body, cte="quoted-printable")
    if html is not None:
        if body is None:
            m.set_content(html, subtype="html")
        else:
            m.add_alternative(html, subtype="html")
    for filename, data, maintype, subtype in attachments:
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return m


def test_eml_with_alternative_body_and_attachments(tmp_path: Path) -> None:
    notes_md = b"# Readings\n\nBuoy 7 drifted two metres north.\n"
    m = _mail(
        html="<html><body><p>HTML_ONLY version of the mail</p></body></html>",
        attachments=(
            ("notes.md", notes_md, "text", "markdown"),
            ("../../etc/tides.txt", "Låg tide at 03:10.\n".encode("latin-1"), "application",
             "octet-stream"),
            ("logo.png", b"\x89PNG\r\n\x1a\n", "image", "png"),
        ),
    )  # fmt: skip
    m.add_attachment(b"\x89PNG\r\n\x1a\n", maintype="image", subtype="png",
                     filename="signature.png", disposition="inline", cid="<sig@x>")  # fmt: skip
    m.get_payload()[1].replace_header("Content-Type", 'text/plain; charset="iso-8859-1"')
    m.get_payload()[1].set_param("name", "ignored")  # a name param only: the filename wins
    path = tmp_path / "x.eml"
    path.write_bytes(bytes(m))
    documents = {d.source: d for d in load_documents(path, "x.eml")}
    assert set(documents) == {"x.eml", "x.eml#notes.md", "x.eml#tides.txt"}  # no picture
    mail = documents["x.eml"]
    assert mail.format == "eml" and mail.title == "Quarterly tide report"
    assert mail.date == MAIL_DATE.timestamp()
    assert mail.blocks[0].text == "Quarterly tide report" and mail.blocks[0].is_heading
    assert mail.blocks[1].text == (
        "From: Ann Keeper <ann@harbour.example>; To: team@harbour.example; "
        "Date: Tue, 05 Mar 2024 14:30:00 +0000"
    )
    assert "The spring tides peaked at 4.2 metres." in mail.text
    assert "HTML_ONLY" not in mail.text  # the plain part is preferred
    assert all(b.heading == "Quarterly tide report" and b.line_start is None for b in mail.blocks)
    notes = documents["x.eml#notes.md"]
    assert notes.format == "markdown"
    assert [(b.text, b.heading) for b in notes.blocks][1] == (
        "Buoy 7 drifted two metres north.",
        "Readings",
    )
    assert notes.key == f"{path}#notes.md"
    assert documents["x.eml#tides.txt"].text.strip() == "Låg tide at 03:10."
    # pictures, attached or shown inline, are not read: photos and logos, not documents
    assert mail.notes == []


def test_eml_html_only_and_encodings(tmp_path: Path) -> None:
    m = _mail(body=None, html="<h1>Notice</h1><p>Pier 4 closes on Friday &amp; Saturday.</p>")
    path = tmp_path / "notice.eml"
    path.write_bytes(bytes(m))
    doc = _one(path)
    assert ("Pier 4 closes on Friday & Saturday.", "Quarterly tide report > Notice") in [
        (b.text, b.heading) for b in doc.blocks
    ]
    raw = (
        b"From: =?utf-8?q?J=C3=B6rg?= <j@example.org>\r\nSubject: =?utf-8?b?w4RyZ2Vy?=\r\n"
        b"Date: not a date at all\r\nContent-Type: text/plain; charset=koi8-r\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode("Привет, мир".encode("koi8-r"))
        + b"\r\n"
    )
    path = tmp_path / "ru.eml"
    path.write_bytes(raw)
    doc = _one(path)
    assert doc.title == "Ärger" and doc.date is None
    assert doc.blocks[1].text.startswith("From: Jörg <j@example.org>; Date: not a date")
    assert doc.blocks[-1].text == "Привет, мир"


def test_eml_bad_input(tmp_path: Path) -> None:
    no_body = tmp_path / "nobody.eml"
    no_body.write_bytes(bytes(_mail(body=None)))
    assert _refused(no_body) == "the mail has no body text"
    picture_only = tmp_path / "pic.eml"
    picture_only.write_bytes(
        bytes(_mail(body=None, attachments=(("a.png", b"PNG", "image", "png"),)))
    )
    assert _refused(picture_only) == "the mail has no body text"
    garbage = tmp_path / "garbage.eml"
    garbage.write_bytes(bytes(range(256)) * 40)
    assert _refused(garbage) == "not a mail message (no mail headers found)"
    text = tmp_path / "text.eml"
    text.write_text("Dear diary,\n\nno headers here.\n")
    assert _refused(text) == "not a mail message (no mail headers found)"
    binary_body = tmp_path / "binbody.eml"
    binary_body.write_bytes(b"From: a@b.c\r\nSubject: s\r\n\r\n" + b"\x00\x01\x02" * 500)
    assert _refused(binary_body).startswith("binary file")
    broken_attachment = _mail(attachments=(("bad.pdf", b"%PDF-1.4 truncated", "application",
                                            "pdf"),))  # fmt: skip
    path = tmp_path / "att.eml"
    path.write_bytes(bytes(broken_attachment))
    (doc,) = load_documents(path, "att.eml")
    assert any(n.startswith("attachment 'bad.pdf' not read") for n in doc.notes)


def _mbox(messages: list[EmailMessage]) -> bytes:
    out = b""
    for m in messages:
        body = bytes(m).replace(b"\r\n", b"\n")
        body = re.sub(rb"(?m)^(>*From )", rb">\1", body)
        out += b"From MAILER-DAEMON Tue Mar  5 14:30:00 2024\n" + body.rstrip(b"\n") + b"\n\n"
    return out


def test_mbox_messages_and_attachments_are_documents(tmp_path: Path) -> None:
    first = _mail("Buoys", body="From the north pier the buoys look fine.\n\nFrom here on, rain.",
                  message_id="<m1@harbour.example>")  # fmt: skip
    second = _mail("Rota", body="Night shifts rotate weekly.", message_id="")
    del second["Message-ID"]
    third = _mail("Minutes", body="Minutes attached.", message_id="<m3@harbour.example>",
                  attachments=(("minutes.md", b"# Minutes\n\nWe agreed on new lamps.\n", "text",
                                "markdown"),))  # fmt: skip
    path = tmp_path / "box.mbox"
    data = _mbox([first, second, third])  # a Message-ID as some mailers write them:
    path.write_bytes(data.replace(b"<m1@harbour.example>", b"<buoy/1 #x@harbour.example>"))
    documents = {d.source: d for d in load_documents(path, "box.mbox")}
    assert list(documents) == [
        "box.mbox#buoy_1_x@harbour.example",
        "box.mbox#message-2",
        "box.mbox#m3@harbour.example",
        "box.mbox#m3@harbour.example#minutes.md",
    ]
    buoys = documents["box.mbox#buoy_1_x@harbour.example"]
    assert buoys.format == "mbox" and buoys.title == "Buoys"
    assert buoys.date == MAIL_DATE.timestamp()
    assert "From the north pier the buoys look fine." in buoys.text  # >From unquoted
    assert "From here on, rain." in buoys.text
    assert documents["box.mbox#message-2"].text.endswith("Night shifts rotate weekly.")
    minutes = documents["box.mbox#m3@harbour.example#minutes.md"]
    assert minutes.format == "markdown" and "new lamps" in minutes.text
    assert len({d.key for d in documents.values()}) == 4


def test_mbox_with_a_bad_message_reads_the_others(tmp_path: Path) -> None:
    good = _mail("Fine", body="All is well.", message_id="<a@x>")
    empty = _mail("Nothing", body=None, message_id="<b@x>")
    data = _mbox([good, empty]) + b"From x\nSubject: bin\n\n" + b"\x00\x01\x02\x03" * 100 + b"\n"
    path = tmp_path / "mixed.mbox"
    path.write_bytes(data)
    (doc,) = load_documents(path, "mixed.mbox")
    assert doc.source == "mixed.mbox#a@x"
    assert doc.notes == [
        "1 of 3 message(s) not read: message 3 (binary file (contains NUL bytes))",
        "1 of 3 message(s) have no body text",
    ]


def test_mbox_bad_input(tmp_path: Path) -> None:
    not_mbox = tmp_path / "mail.mbox"
    not_mbox.write_bytes(bytes(_mail()))  # a single .eml saved as .mbox
    assert _refused(not_mbox) == "not an mbox file (it does not open with a 'From ' line)"
    garbage = tmp_path / "garbage.mbox"
    garbage.write_bytes(bytes(range(1, 256)) * 10)
    assert _refused(garbage) == "not an mbox file (it does not open with a 'From ' line)"
    zero = tmp_path / "zero.mbox"
    zero.write_bytes(b"From MAILER-DAEMON Tue Mar  5 14:30:00 2024\n\n\n")
    assert _refused(zero) == "no messages with text in this mbox"
    truncated = tmp_path / "truncated.mbox"
    data = _mbox([_mail("One", body="First message body.")])
    truncated.write_bytes(data[: data.index(b"First message") + 5])
    assert _one(truncated).text.endswith("First")  # what is there is read


def test_huge_mbox_is_read_whole_with_unique_ids(tmp_path: Path) -> None:
    count = 2000
    one = _mbox([_mail("Routine log", body="Lamp checked. Fuel at 80 percent.\n" * 5)])
    path = tmp_path / "huge.mbox"
    path.write_bytes(one * count)  # the same Message-ID each time: ids made unique
    started = time.perf_counter()
    documents = load_documents(path, "huge.mbox")
    seconds = time.perf_counter() - started
    assert len(documents) == count
    assert len({d.source for d in documents}) == count
    print(f"\n{count} messages ({path.stat().st_size / 2**20:.1f} MiB) in {seconds:.1f} s")


def test_forwarded_message_and_odd_attachment_names(tmp_path: Path) -> None:
    inner = _mail("Lamp order", body="Order 12 new lamp lenses from Hartmann.")
    outer = _mail("Fwd: Lamp order", body="See the forwarded mail.")
    outer.add_attachment(inner)  # message/rfc822
    outer.add_attachment(b"Dup one.\n", maintype="text", subtype="plain", filename="a#b.txt")
    outer.add_attachment(b"Dup two.\n", maintype="text", subtype="plain", filename="C:\\x\\a#b.txt")
    path = tmp_path / "fwd.eml"
    path.write_bytes(bytes(outer))
    documents = {d.source: d for d in load_documents(path, "fwd.eml")}
    assert set(documents) == {
        "fwd.eml", "fwd.eml#attachment-1.eml", "fwd.eml#a_b.txt", "fwd.eml#a_b-2.txt",
    }  # fmt: skip
    forwarded = documents["fwd.eml#attachment-1.eml"]
    assert forwarded.format == "eml" and forwarded.title == "Lamp order"
    assert "Hartmann" in forwarded.text
    assert documents["fwd.eml#a_b-2.txt"].text == "Dup two."


def test_epub_file_left_out_of_the_contents_continues_its_chapter(tmp_path: Path) -> None:
    opf = OPF.replace(
        '<itemref idref="c1"/>', '<itemref idref="c2b"/>\n    <itemref idref="c1"/>'
    ).replace(
        '<item id="cover"',
        '<item id="c2b" href="text/ch2b.xhtml" media-type="application/xhtml+xml"/>\n'
        '    <item id="cover"',
    )
    part = _xhtml("Lighthouse", "<p>By midnight the storm had passed.</p>")
    doc = _one(_epub(tmp_path / "split.epub", {"OEBPS/text/ch2b.xhtml": part}, opf=opf))
    assert doc.pages == 3
    got = [(b.text, b.heading) for b in doc.blocks if not b.is_heading]
    assert got == [
        ("The wind rose over the harbour at dusk.", "Chapter One: The Storm"),
        ("The keeper climbed the stairs with a lamp.", "Chapter One: The Storm > Night watch"),
        ("By midnight the storm had passed.", "Chapter One: The Storm"),
        ("Morning came grey and still.", "Chapter Two: The Calm"),
    ]
    assert [b.text for b in doc.blocks if b.is_heading].count("Chapter One: The Storm") == 1
