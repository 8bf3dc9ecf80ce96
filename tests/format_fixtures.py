"""A mixed folder with one file of every format ragcli reads, each stating facts found nowhere
else, built with the formats' own libraries (no file is shipped). ``build_mixed_folder`` is
shared by the mixed-folder integration test and ``benchmarks/formats.py``.

``QUESTIONS`` pairs each format with a question only its file answers, the text a right
answer contains, and how its citation must read (source suffix, location unit).
"""

from __future__ import annotations

import email.message
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Expected:
    """A question whose answer only one file of the mixed folder holds."""

    format: str
    question: str
    answer: str  # text a right answer contains
    source: str  # the cited source ends with this
    location: str = ""  # the citation's location starts with this ("slide 2", "rows")
    ocr: bool = False


QUESTIONS = [
    Expected("docx", "How many passengers did the Harrowgate ferry carry on its first crossing?",
             "412", "ferry.docx"),
    Expected("odt", "How many varieties of pear does the Quillon orchard grow?", "38",
             "orchard.odt"),
    Expected("rtf", "How often does the Dunmore clock tower chime?", "15", "clock.rtf"),
    Expected("pptx", "Which cup did the Ostrava robotics team win in 2019?", "Vesna",
             "robots.pptx", "slide 2"),
    Expected("xlsx", "Who is the mayor of Tallinford?", "Varga", "towns.xlsx", "row"),
    Expected("csv", "How many platforms does Kestrel Point station have?", "6",
             "stations.csv", "row"),
    Expected("tsv", "Which river does the Morrow viaduct cross?", "Tamsin", "bridges.tsv", "row"),
    Expected("epub", "At which oasis did caravans on the salt road rest?", "Imdrar",
             "saltroad.epub"),
    Expected("ipynb", "Which lamp is the spectrometer calibrated with?", "neon",
             "spectrometer.ipynb"),
    Expected("eml", "Who will replace the slate tiles on the roof?", "Novak", "roof.eml"),
    Expected("eml attachment", "How much does the scaffolding rental cost per week?", "300",
             "roof.eml#scaffold.md"),
    Expected("mbox", "Where did the choir rehearsal move to?", "Linden",
             "club.mbox#Choir@example.org"),
    Expected("python", "What harmonic constant does the tide height calculation use?",
             "0.8127", "tides.py", "lines"),
    Expected("go", "What is the default greenhouse humidity in percent?", "64",
             "greenhouse.go", "lines"),
    Expected("image", "When does the Marigold bakery open?", "7", "bakery.png", "", ocr=True),
    Expected("scanned pdf", "What colour is the Pellham tram?", "green", "tram.pdf", "p.2",
             ocr=True),
]  # fmt: skip


def build_mixed_folder(root: Path, ocr: bool = True) -> Path:
    """Write one file of each format under ``root`` (made if needed); ``ocr=False`` leaves
    out the image and the scanned PDF."""
    root.mkdir(parents=True, exist_ok=True)
    _docx(root / "ferry.docx")
    _odt(root / "orchard.odt")
    (root / "clock.rtf").write_text(
        r"{\rtf1\ansi{\fonttbl\f0\fswiss Helvetica;}\f0\pard "
        r"{\b Dunmore clock tower}\par "
        r"The Dunmore clock tower chimes every 15 minutes, day and night.\par "
        r"Its bell was cast in Leeds.\par}"
    )
    _pptx(root / "robots.pptx")
    _xlsx(root / "towns.xlsx")
    (root / "stations.csv").write_text(
        "Station,Opened,Platforms\nAlder Cross,1902,2\nKestrel Point,1887,6\nMoss End,1911,1\n"
    )
    (root / "bridges.tsv").write_text(
        "Bridge\tRiver\tLength (m)\nMorrow viaduct\tTamsin\t310\nOld Stone bridge\tOsk\t45\n"
    )
    _epub(root / "saltroad.epub")
    _notebook(root / "spectrometer.ipynb")
    _eml(root / "roof.eml")
    _mbox(root / "club.mbox")
    (root / "tides.py").write_text(
        '"""Tide tables for the harbour."""\n\nimport math\n\n\n'
        "def compute_tide_height(hours: float) -> float:\n"
        '    """Tide height in metres; uses the Brandt harmonic constant 0.8127."""\n'
        "    return 0.8127 * math.sin(hours / 12.42 * 2 * math.pi)\n\n\n"
        "class Harbour:\n"
        "    def depth(self) -> float:\n"
        "        return 7.5\n"
    )
    (root / "greenhouse.go").write_text(
        "package greenhouse\n\n"
        "// DefaultHumidity is the greenhouse humidity in percent kept by default.\n"
        "const DefaultHumidity = 64\n\n"
        "// Vent opens the roof vents when the humidity rises above the default.\n"
        "func Vent(humidity int) bool {\n\treturn humidity > DefaultHumidity\n}\n"
    )
    if ocr:
        _text_image(
            ["The Marigold bakery opens at 7 am.", "It sells rye bread and plum cake."]
        ).save(root / "bakery.png")
        _scanned_pdf(root / "tram.pdf")
    return root


def _docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = "Harrowgate ferry"
    document.add_heading("Harrowgate ferry", level=1)
    document.add_heading("History", level=2)
    document.add_paragraph(
        "The Harrowgate ferry carried 412 passengers on its first crossing in 1898."
    )
    table = document.add_table(rows=2, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Captain", "Years"
    table.rows[1].cells[0].text, table.rows[1].cells[1].text = "Edith Marr", "1898-1910"
    document.save(str(path))


def _odt(path: Path) -> None:
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        "<office:body><office:text>"
        '<text:h text:outline-level="1">Quillon orchard</text:h>'
        "<text:p>The Quillon orchard grows 38 varieties of pear on the south slope.</text:p>"
        "</office:text></office:body></office:document-content>"
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.text", zipfile.ZIP_STORED)
        z.writestr("content.xml", content, zipfile.ZIP_DEFLATED)


def _pptx(path: Path) -> None:
    from pptx import Presentation

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[0])
    first.shapes.title.text = "Ostrava robotics"
    first.placeholders[1].text = "A school team since 2012."
    second = deck.slides.add_slide(deck.slide_layouts[1])
    second.shapes.title.text = "Results"
    second.placeholders[1].text = "The Ostrava robotics team won the Vesna Cup in 2019."
    second.notes_slide.notes_text_frame.text = "Mention the coach, Jiri Hala."
    deck.save(str(path))


def _xlsx(path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Towns"
    sheet.append(["City", "Population", "Mayor"])
    sheet.append(["Brackwater", 12040, "Tomas Reid"])
    sheet.append(["Tallinford", 48210, "Ilse Varga"])
    book.save(str(path))


def _epub(path: Path) -> None:
    container = (
        '<?xml version="1.0"?><container version="1.0" '
        'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
        '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )
    opf = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
        'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<dc:title>Desert roads</dc:title><dc:identifier id="id">x</dc:identifier></metadata>'
        '<manifest><item id="c1" href="one.xhtml" media-type="application/xhtml+xml"/>'
        '<item id="c2" href="two.xhtml" media-type="application/xhtml+xml"/></manifest>'
        '<spine><itemref idref="c1"/><itemref idref="c2"/></spine></package>'
    )
    page = (
        '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>{0}'
        "</title></head><body><h1>{0}</h1><p>{1}</p></body></html>"
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip", zipfile.ZIP_STORED)
        z.writestr("META-INF/container.xml", container)
        z.writestr("OEBPS/content.opf", opf)
        z.writestr("OEBPS/one.xhtml", page.format("The coast", "Fishing boats left at dawn."))
        z.writestr(
            "OEBPS/two.xhtml",
            page.format(
                "The salt road", "Caravans on the salt road rested at the oasis of Imdrar."
            ),
        )


def _notebook(path: Path) -> None:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Spectrometer\n"]},
        {"cell_type": "markdown", "metadata": {}, "source": [
            "## Calibration\n", "The spectrometer is calibrated with a neon lamp at 640 nm.\n"]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1,
         "source": ["peaks = find_peaks(signal)\n"],
         "outputs": [{"output_type": "stream", "name": "stdout",
                      "text": ["OUTPUT-NOT-INDEXED\n"]}]},
    ]  # fmt: skip
    notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(notebook))


def _message(subject: str, sender: str, body: str, date: str) -> email.message.EmailMessage:
    message = email.message.EmailMessage()
    message["Subject"], message["From"], message["To"] = subject, sender, "house@example.org"
    message["Date"], message["Message-ID"] = date, f"<{subject.replace(' ', '.')}@example.org>"
    message.set_content(body)
    return message


def _eml(path: Path) -> None:
    message = _message(
        "Roof repair", "office@example.org",
        "The roofer, Pavel Novak, will replace the slate tiles on Thursday.\n",
        "Tue, 03 Mar 2026 09:30:00 +0000",
    )  # fmt: skip
    message.add_attachment(
        b"# Scaffolding\n\nThe scaffolding rental costs 300 euros per week.\n",
        maintype="text", subtype="markdown", filename="scaffold.md",
    )  # fmt: skip
    path.write_bytes(message.as_bytes())


def _mbox(path: Path) -> None:
    messages = [
        _message("Choir", "anna@example.org",
                 "The choir rehearsal moved to the Linden Hall from next week.\n",
                 "Mon, 02 Mar 2026 18:00:00 +0000"),
        _message("Tickets", "ben@example.org", "Concert tickets are on sale at the door.\n",
                 "Wed, 04 Mar 2026 12:00:00 +0000"),
    ]  # fmt: skip
    with path.open("wb") as out:
        for message in messages:
            out.write(b"From sender@example.org Mon Mar  2 18:00:00 2026\n")
            out.write(message.as_bytes().replace(b"\nFrom ", b"\n>From ") + b"\n")


def _text_image(lines: list[str]):  # -> PIL.Image.Image
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=40)
    image = Image.new("RGB", (1400, 120 + 70 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((60, 60 + 70 * i), line, fill="black", font=font)
    return image


def _scanned_pdf(path: Path) -> None:
    """Page 1 has a text layer; page 2 is only a picture of text (a scan)."""
    import io

    from fpdf import FPDF

    picture = io.BytesIO()
    _text_image(["The Pellham tram is painted green.", "It runs every ten minutes."]).save(
        picture, format="PNG"
    )
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Pellham transport notes. The tram depot is on Quay Street.")
    pdf.add_page()
    pdf.image(picture, x=10, y=20, w=190)
    pdf.output(str(path))
