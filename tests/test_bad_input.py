"""Bad input, one kind per test: a one-line warning naming the file and why, counted in the
summary, and the other files ingested all the same."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ragcli import pipeline
from ragcli.config import load_settings
from ragcli.store import FaissStore

from .conftest import SAMPLE_CORPUS

pytestmark = pytest.mark.usefixtures("fake_models")

SAMPLE_PDF = SAMPLE_CORPUS / "harbour_trust_report_2023.pdf"
GOOD = ["alpha.txt", "beta.md", "gamma.rst"]


class Collect(pipeline.Events):
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def _ingest(corpus: Path, **settings: object):
    events = Collect()
    report = pipeline.ingest(load_settings(**settings), [str(corpus)], events)
    return report, events.warnings


def _pdf(pages: list[str | None]) -> bytes:
    """A PDF whose pages carry these texts (None: a blank page, as a scan without OCR)."""
    from pypdf import PdfReader, PdfWriter

    text_pages = iter(PdfReader(SAMPLE_PDF).pages)
    writer = PdfWriter()
    for text in pages:
        if text is None:
            writer.add_blank_page(width=200, height=200)
        else:
            writer.add_page(next(text_pages))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _encrypted_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=SAMPLE_PDF)
    writer.encrypt(user_password="secret", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


SKIPPED: dict[str, tuple[str, Callable[[], bytes], str]] = {
    "corrupt PDF": ("broken.pdf", lambda: b"%PDF-1.7\n" + os.urandom(2000), "corrupt"),
    "truncated PDF": (
        "cut.pdf",
        lambda: SAMPLE_PDF.read_bytes()[: SAMPLE_PDF.stat().st_size // 3],
        "PDF",
    ),
    "encrypted PDF": ("locked.pdf", _encrypted_pdf, "encrypted PDF (a password is needed)"),
    "PDF with no text layer": (
        "scan.pdf", lambda: _pdf([None, None]), "probably scanned: no text layer",
    ),
    "binary with a text extension": (
        "blob.txt", lambda: bytes(range(1, 32)) * 200, "binary file",
    ),
    "binary with NUL bytes": ("image.md", lambda: b"\x89PNG\x00\x00" * 100, "binary file"),
    "empty": ("empty.txt", lambda: b"", "empty file"),
    "only whitespace": ("blank.rst", lambda: b" \n\t\n", "empty file"),
    "JSON nested too deeply": ("deep.jsonl", lambda: b"[" * 100_000, "nested too deeply"),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(SKIPPED))
def test_unusable_file_is_skipped_with_one_warning(corpus: Path, kind: str) -> None:
    name, make, reason = SKIPPED[kind]
    (corpus / name).write_bytes(make())
    report, warnings = _ingest(corpus)
    assert [(Path(s.path).name, reason in s.reason) for s in report.skipped] == [(name, True)]
    (warning,) = warnings
    assert name in warning and reason in warning and "\n" not in warning
    assert sorted(Path(p).name for p in report.added) == GOOD
    assert report.to_dict()["files"]["skipped"] == 1


def test_mostly_scanned_pdf_is_ingested_with_a_warning(corpus: Path) -> None:
    (corpus / "mixed.pdf").write_bytes(_pdf(["text", None, None, None]))
    report, warnings = _ingest(corpus)
    assert "mixed.pdf" in [Path(p).name for p in report.added] and not report.skipped
    (warning,) = report.warnings
    assert Path(warning.path).name == "mixed.pdf"
    assert warning.reason.startswith("probably scanned: 3 of 4 page(s) have almost no text")
    assert len(warnings) == 1 and "mixed.pdf" in warnings[0]
    assert report.to_dict()["files"]["warnings"] == 1


@pytest.mark.parametrize(
    ("name", "data", "phrase"),
    [
        ("latin1.txt", "Caf\u00e9 cr\u00e8me at the na\u00efve harbour.".encode("latin-1"),
         "Café crème"),
        ("windows.md", "\u201cQuoted\u201d text \u2013 dashes.".encode("cp1252"), "“Quoted”"),
        ("utf16.txt", "UTF-16 text with a BOM: \u00fcber.".encode("utf-16"), "über"),
    ],
)  # fmt: skip
def test_legacy_encodings_are_decoded(corpus: Path, name: str, data: bytes, phrase: str):
    (corpus / name).write_bytes(data)
    report, warnings = _ingest(corpus)
    assert not report.skipped and not warnings
    with FaissStore.open(load_settings().collection_dir) as store:
        texts = [r[0] for r in store.db.execute("SELECT text FROM chunks")]
    assert any(phrase in text for text in texts)


def test_five_megabyte_line_is_chunked(corpus: Path) -> None:
    line = "The harbour crane lifted crates all day long. " * 110_000  # 5.1 MB, no line break
    (corpus / "one-line.txt").write_text(line)
    report, warnings = _ingest(corpus)
    assert not warnings and len(report.added) == 4
    with FaissStore.open(load_settings().collection_dir) as store:
        longest, count = store.db.execute(
            "SELECT max(length(text)), count(*) FROM chunks"
        ).fetchone()
        assert store.chunk_count == count > 1000 and longest < 2000


def test_file_over_the_size_limit_is_skipped(corpus: Path) -> None:
    (corpus / "huge.txt").write_text("Big file. " * 200_000)  # 2 MB
    report, warnings = _ingest(corpus, max_file_mb=1)
    (skipped,) = report.skipped
    assert Path(skipped.path).name == "huge.txt"
    assert skipped.reason.startswith("file too large (1.9 MiB; the limit is 1.0 MiB")
    assert len(report.added) == 3 and "huge.txt" in warnings[0]


def test_broken_symbolic_link_and_link_loop_have_their_own_reasons(corpus: Path) -> None:
    (corpus / "dangling.txt").symlink_to(corpus / "gone.txt")
    (corpus / "loop-a.md").symlink_to(corpus / "loop-b.md")
    (corpus / "loop-b.md").symlink_to(corpus / "loop-a.md")
    report, warnings = _ingest(corpus)
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert reasons == {
        "dangling.txt": "broken symbolic link",
        "loop-a.md": "symbolic link loop",
        "loop-b.md": "symbolic link loop",
    }
    assert len(warnings) == 3 and len(report.added) == 3


not_root = pytest.mark.skipif(
    os.geteuid() == 0, reason="root reads files whatever their mode; chmod 000 blocks nothing"
)


@not_root
def test_unreadable_file_is_skipped(corpus: Path) -> None:
    locked = corpus / "locked.txt"
    locked.write_text("Private.\n")
    locked.chmod(0)
    try:
        report, warnings = _ingest(corpus)
    finally:
        locked.chmod(0o644)
    assert [(Path(s.path).name, s.reason) for s in report.skipped] == [
        ("locked.txt", "permission denied")
    ]
    assert len(report.added) == 3


@not_root
def test_unreadable_folder_is_reported_and_its_files_are_not_pruned(corpus: Path) -> None:
    pipeline.ingest(load_settings(), [str(corpus)])
    (corpus / "sub").chmod(0)
    try:
        report, warnings = _ingest(corpus)
    finally:
        (corpus / "sub").chmod(0o755)
    assert any("cannot list folder: permission denied" in w for w in warnings)
    assert not report.removed
