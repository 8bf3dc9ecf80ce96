"""Ingest speed per format: files/s and chunks/s, and how much of it is reading.

    python benchmarks/formats.py [--files 10] [--per-file 20] [--data ../shared/data/cranfield]

For every format ragcli reads, writes ``--files`` files each holding ``--per-file`` Cranfield
abstracts (real text) in that format's own structure (a heading and paragraph per abstract in
Word, a slide per abstract, a row per abstract in spreadsheets, a chapter per abstract in an
e-book, a cell per abstract in a notebook, a message per abstract in an mbox, a function per
abstract in Python, a page per abstract in PDF), then ingests each format's folder into its
own fresh collection with the bundled embedder, in this process (imports and the model load
paid once beforehand), and prints per format: files, chunks, seconds, files/s, chunks/s, the
share of the time spent reading and chunking (in the read-ahead thread, beside embedding and
committing) and the reading and chunking time per file.
OCR is measured apart, on A4 pages of 20 lines rendered at 200 dpi, as images and as a
scanned PDF.
"""

from __future__ import annotations

import argparse
import email.message
import json
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

Abstract = tuple[str, str]  # title, text


def _abstracts(data: Path, count: int) -> list[Abstract]:
    out = []
    with (data / "corpus.jsonl").open() as lines:
        for line in lines:
            record = json.loads(line)
            if record.get("text", "").strip():
                out.append(((record.get("title") or record["_id"]).strip()[:80], record["text"]))
            if len(out) == count:
                break
    return out


def _docx(path: Path, items: list[Abstract]) -> None:
    import docx

    document = docx.Document()
    for title, text in items:
        document.add_heading(title, level=2)
        document.add_paragraph(text)
    document.save(str(path))


def _odt(path: Path, items: list[Abstract]) -> None:
    from xml.sax.saxutils import escape

    body = "".join(
        f'<text:h text:outline-level="2">{escape(t)}</text:h><text:p>{escape(x)}</text:p>'
        for t, x in items
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0">'
        f"<office:body><office:text>{body}</office:text></office:body></office:document-content>"
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.text", zipfile.ZIP_STORED)
        z.writestr("content.xml", content, zipfile.ZIP_DEFLATED)


def _rtf(path: Path, items: list[Abstract]) -> None:
    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("{", "\\{").replace("}", "\\}")

    body = "".join(f"{{\\b {esc(t)}}}\\par {esc(x)}\\par " for t, x in items)
    path.write_text("{\\rtf1\\ansi " + body + "}")


def _pptx(path: Path, items: list[Abstract]) -> None:
    from pptx import Presentation

    deck = Presentation()
    for title, text in items:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = text
    deck.save(str(path))


def _xlsx(path: Path, items: list[Abstract]) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Title", "Abstract"])
    for title, text in items:
        sheet.append([title, text])
    book.save(str(path))


def _delimited(separator: str) -> Callable[[Path, list[Abstract]], None]:
    def write(path: Path, items: list[Abstract]) -> None:
        import csv

        with path.open("w", newline="") as out:
            table = csv.writer(out, delimiter=separator)
            table.writerow(["Title", "Abstract"])
            table.writerows(items)

    return write


def _epub(path: Path, items: list[Abstract]) -> None:
    from xml.sax.saxutils import escape

    manifest = "".join(
        f'<item id="c{i}" href="c{i}.xhtml" media-type="application/xhtml+xml"/>'
        for i in range(len(items))
    )
    spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(items)))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip", zipfile.ZIP_STORED)
        z.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:'
            'opendocument:xmlns:container"><rootfiles><rootfile full-path="content.opf" '
            'media-type="application/oebps-package+xml"/></rootfiles></container>',
        )
        z.writestr(
            "content.opf",
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
            '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Abstracts'
            f"</dc:title></metadata><manifest>{manifest}</manifest><spine>{spine}</spine>"
            "</package>",
        )
        for i, (title, text) in enumerate(items):
            z.writestr(
                f"c{i}.xhtml",
                '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body>'
                f"<h1>{escape(title)}</h1><p>{escape(text)}</p></body></html>",
            )


def _ipynb(path: Path, items: list[Abstract]) -> None:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": [f"## {t}\n", x]} for t, x in items
    ]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}))  # fmt: skip


def _message(title: str, text: str) -> email.message.EmailMessage:
    message = email.message.EmailMessage()
    message["Subject"], message["From"] = title, "lab@example.org"
    message["Date"] = "Tue, 03 Mar 2026 09:30:00 +0000"
    message.set_content(text)
    return message


def _eml(path: Path, items: list[Abstract]) -> None:
    path.write_bytes(_message(items[0][0], "\n\n".join(x for _, x in items)).as_bytes())


def _mbox(path: Path, items: list[Abstract]) -> None:
    with path.open("wb") as out:
        for title, text in items:
            out.write(b"From lab@example.org Tue Mar  3 09:30:00 2026\n")
            out.write(_message(title, text).as_bytes().replace(b"\nFrom ", b"\n>From ") + b"\n")


def _python(path: Path, items: list[Abstract]) -> None:
    functions = [
        f'def abstract_{i}() -> str:\n    """{t}"""\n    return {x!r}\n'
        for i, (t, x) in enumerate(items)
    ]
    path.write_text("\n\n".join(functions))


def _markdown(path: Path, items: list[Abstract]) -> None:
    path.write_text("\n\n".join(f"## {t}\n\n{x}" for t, x in items))


def _text(path: Path, items: list[Abstract]) -> None:
    path.write_text("\n\n".join(x for _, x in items))


def _html(path: Path, items: list[Abstract]) -> None:
    from html import escape

    body = "".join(f"<h2>{escape(t)}</h2><p>{escape(x)}</p>" for t, x in items)
    path.write_text(f"<html><body>{body}</body></html>")


def _pdf(path: Path, items: list[Abstract]) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for title, text in items:
        pdf.add_page()
        pdf.multi_cell(0, 6, (title + "\n\n" + text).encode("latin-1", "replace").decode("latin-1"))
    pdf.output(str(path))


FORMATS: dict[str, tuple[str, Callable[[Path, list[Abstract]], None]]] = {
    "text": (".txt", _text), "markdown": (".md", _markdown), "html": (".html", _html),
    "pdf": (".pdf", _pdf), "docx": (".docx", _docx), "odt": (".odt", _odt),
    "rtf": (".rtf", _rtf), "pptx": (".pptx", _pptx), "xlsx": (".xlsx", _xlsx),
    "csv": (".csv", _delimited(",")), "tsv": (".tsv", _delimited("\t")),
    "epub": (".epub", _epub), "ipynb": (".ipynb", _ipynb), "eml": (".eml", _eml),
    "mbox": (".mbox", _mbox), "python": (".py", _python),
}  # fmt: skip


def _ocr_files(folder: Path, pages: int, abstracts: list[Abstract]) -> None:
    """``pages`` A4 pages at 200 dpi, each of 20 lines of a different Cranfield abstract, as
    images and as one scanned PDF (every page distinct: none is read from the OCR cache)."""
    import io
    import textwrap

    from fpdf import FPDF
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=36)
    pdf = FPDF()
    for i in range(2 * pages):
        lines = textwrap.wrap(abstracts[i][1], 70)[:20]
        image = Image.new("RGB", (1654, 2339), "white")
        draw = ImageDraw.Draw(image)
        for n, line in enumerate(lines):
            draw.text((120, 150 + 90 * n), line, fill="black", font=font)
        if i < pages:
            image.save(folder / f"page{i}.png")
            continue
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        pdf.add_page()
        pdf.image(buffer, x=0, y=0, w=210)
    pdf.output(str(folder / "scanned.pdf"))


def _ingest(folder: Path, collection: str) -> tuple[float, int, int, float]:
    from ragcli import pipeline
    from ragcli.config import load_settings
    from ragcli.pipeline.events import Events

    settings = load_settings(collection=collection)
    started = time.perf_counter()
    report = pipeline.ingest(settings, [str(folder)], Events())
    seconds = time.perf_counter() - started
    reading = sum(f.seconds for f in report.files)
    if report.skipped:
        print(f"  skipped in {collection}: {[(s.path, s.reason) for s in report.skipped]}")
    return seconds, len(report.added), report.chunks_added, reading


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--per-file", type=int, default=20)
    parser.add_argument("--ocr-pages", type=int, default=4)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cranfield"))
    args = parser.parse_args()
    os.environ["RAGCLI_HOME"] = tempfile.mkdtemp(prefix="ragcli-formats-")
    work = Path(tempfile.mkdtemp(prefix="ragcli-formats-files-"))
    abstracts = _abstracts(args.data, args.files * args.per_file)

    # Imports, the embedder's load and its one-time ONNX export, paid before any timing.
    warm = work / "warm"
    warm.mkdir()
    (warm / "a.txt").write_text("warm-up text")
    _ingest(warm, "warm")

    print(f"{args.files} files x {args.per_file} Cranfield abstracts per format")
    print(f"{'format':10} {'files':>5} {'chunks':>6} {'seconds':>8} {'files/s':>8} "
          f"{'chunks/s':>8} {'reading':>8} {'read ms/file':>12}")  # fmt: skip
    for name, (suffix, write) in FORMATS.items():
        folder = work / name
        folder.mkdir()
        for i in range(args.files):
            items = abstracts[i * args.per_file : (i + 1) * args.per_file]
            write(folder / f"f{i}{suffix}", items)
        seconds, files, chunks, reading = _ingest(folder, f"bench-{name}")
        print(f"{name:10} {files:5d} {chunks:6d} {seconds:8.2f} {files / seconds:8.2f} "
              f"{chunks / seconds:8.1f} {reading / seconds:8.0%} "
              f"{1000 * reading / max(files, 1):12.0f}")  # fmt: skip

    from ragcli.loaders import ocr

    if ocr.engine() is None:
        print("OCR: no engine installed (pip install 'ragcli[ocr]')")
        return
    folder = work / "ocr"
    folder.mkdir()
    _ocr_files(folder, args.ocr_pages, abstracts)
    seconds, files, chunks, reading = _ingest(folder, "bench-ocr")
    pages = 2 * args.ocr_pages
    print(f"OCR: {args.ocr_pages} A4 images + a {args.ocr_pages}-page scanned PDF (20 lines a "
          f"page): {pages} pages, "
          f"{chunks} chunks in {seconds:.1f} s, {seconds / pages:.2f} s per page "
          f"({reading / seconds:.0%} reading)")  # fmt: skip


if __name__ == "__main__":
    main()
