"""``ingest --report``: what was read of each file, the garbled-text signal, and the figures
``status`` and ``list`` keep of files read with warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.quality import file_report, garbled_share
from ragcli.records import Block, Chunk, Document

runner = CliRunner()


def _pdf(path: Path, pages: list[str]) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
    pdf.output(str(path))


def test_garbled_share_flags_broken_words_and_spares_real_ones() -> None:
    assert garbled_share("The kettle works were founded by Ada Pell in 1870.") == 0.0
    assert garbled_share("") == 0.0
    # a replacement character, mojibake, a symbol run, a vowel-less run, flipping case
    broken = "caf\ufffd donâ€™t !#$%& qwrtzxcv tHiSiS"
    assert garbled_share(broken) == 1.0
    assert garbled_share("one two three caf\ufffd") == 0.25
    # code, e-mail addresses, URLs, hyphenated words and acronyms are not garbled
    assert garbled_share("f(x, y) a.b@c.org https://x.org/a-b well-known NASA's") == 0.0


def test_file_report_counts_pages_empty_pages_ocr_and_chunks() -> None:
    blocks = [
        Block("First page text.", page=1),
        Block("Third page read from the scan.", page=3, ocr=True),
    ]
    document = Document(
        path=Path("/x/a.pdf"), source="a.pdf", format="pdf", blocks=blocks, sha256="0",
        size=10, mtime=0.0, pages=4, notes=["something odd"],
    )  # fmt: skip
    chunk = Chunk("k", 0, "First page text.", 3, page=1)
    report = file_report("a.pdf", "added", [document], [[chunk, chunk]], 0.5)
    assert report.format == "pdf" and report.pages == 4
    assert report.empty_pages == 2 and report.ocr_pages == 1
    assert report.chunks == 2 and report.warnings == ["something odd"]
    assert report.characters_per_page == round(len(document.text) / 4)
    assert report.garbled == 0.0


@pytest.mark.usefixtures("fake_models")
def test_ingest_report_file_status_and_list(corpus: Path, tmp_path: Path) -> None:
    _pdf(corpus / "scan.pdf", ["", "", "Only the third page has text about lighthouses."])
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf")
    target = tmp_path / "read.jsonl"
    result = runner.invoke(app, ["ingest", str(corpus), "--report", str(target)])
    assert result.exit_code == 0, result.output
    rows = {Path(r["source"]).name: r for r in map(json.loads, target.read_text().splitlines())}
    assert set(rows) == {"alpha.txt", "beta.md", "gamma.rst", "scan.pdf", "broken.pdf"}
    scan = rows["scan.pdf"]
    assert scan["status"] == "added" and scan["format"] == "pdf"
    assert scan["pages"] == 3 and scan["empty_pages"] == 2 and scan["ocr_pages"] == 0
    assert scan["chunks"] >= 1 and any("probably scanned" in w for w in scan["warnings"])
    assert rows["beta.md"]["sections"] >= 2 and rows["beta.md"]["pages"] is None
    broken = rows["broken.pdf"]
    assert broken["status"] == "skipped" and "PDF" in broken["warnings"][0]
    assert "1 with warnings" in result.stdout

    again = runner.invoke(app, ["ingest", str(corpus), "--report", "-"])
    lines = [json.loads(line) for line in again.stdout.splitlines()]
    assert {r["status"] for r in lines} == {"unchanged", "skipped"}
    assert "collection" in again.stderr  # the summary moves to stderr

    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert status["files_with_warnings"] == 1 and status["files_with_ocr"] == 0
    listed = json.loads(runner.invoke(app, ["list", "--json"]).stdout)["documents"]
    scan_entry = next(d for d in listed if d["source"].endswith("scan.pdf"))
    assert scan_entry["pages"] == 3 and scan_entry["ocr_pages"] == []
    assert any("probably scanned" in w for w in scan_entry["warnings"])
    assert all(d["warnings"] == [] for d in listed if not d["source"].endswith("scan.pdf"))


@pytest.mark.usefixtures("fake_models")
def test_report_to_stdout_refused_with_json(corpus: Path) -> None:
    result = runner.invoke(app, ["ingest", str(corpus), "--report", "-", "--json"])
    assert result.exit_code == 2 and "--report - and --json" in result.stderr


@pytest.mark.usefixtures("fake_models")
def test_report_to_an_unwritable_place_is_refused_before_reading(
    corpus: Path, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["ingest", str(corpus), "--report", str(tmp_path / "no" / "x")])
    assert result.exit_code == 2 and "cannot write the report" in result.stderr
    status = runner.invoke(app, ["status", "--json"])
    assert status.exit_code != 0  # nothing was ingested
    for flag in ("--watch", "--dry-run"):
        refused = runner.invoke(app, ["ingest", str(corpus), "--report", "r.jsonl", flag])
        assert refused.exit_code == 2 and f"not with {flag}" in refused.stderr


def test_location_labels_name_each_formats_unit() -> None:
    from ragcli.records import location_label

    assert location_label(3, None, None, "pdf") == "p.3"
    assert location_label(3, None, None, "pdf", ocr=True) == "p.3, OCR"
    assert location_label(2, None, None, "pptx") == "slide 2"
    assert location_label(None, 2, 30, "xlsx") == "rows 2-30"
    assert location_label(None, 7, 7, "csv") == "row 7"
    assert location_label(None, 4, 9, "python") == "lines 4-9"
    assert location_label(1, None, None, "image", ocr=True) == "OCR"
    assert location_label(2, None, None, "image", ocr=True) == "frame 2, OCR"
    assert location_label(None, None, None, "docx") == ""


@pytest.mark.usefixtures("fake_models")
def test_a_touched_file_with_the_same_bytes_is_not_parsed_again(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from ragcli.loaders import reading

    parsed: list[int] = []
    fmt, parse = reading.LOADERS[".txt"]

    def counting(data: bytes):  # type: ignore[no-untyped-def]
        parsed.append(len(data))
        return parse(data)

    monkeypatch.setitem(reading.LOADERS, ".txt", (fmt, counting))
    assert runner.invoke(app, ["ingest", str(corpus)]).exit_code == 0
    assert len(parsed) == 1
    alpha = corpus / "alpha.txt"
    os.utime(alpha, (alpha.stat().st_atime, alpha.stat().st_mtime + 60))  # touched, same bytes
    again = json.loads(runner.invoke(app, ["ingest", str(corpus), "--json"]).stdout)
    assert again["files"]["unchanged"] == 3 and len(parsed) == 1  # hashed, not parsed
    alpha.write_text("The Brindle bridge opened in 1933.\n")  # changed: parsed and updated
    again = json.loads(runner.invoke(app, ["ingest", str(corpus), "--json"]).stdout)
    assert again["files"]["updated"] == 1 and len(parsed) == 2
