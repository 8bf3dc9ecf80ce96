"""OCR: image files and PDF pages without a text layer, read by a deterministic fake engine
(paragraphs, the page cache, bad input, no engine) and by the real RapidOCR when installed."""

from __future__ import annotations

import importlib.util
import io
import os
import random
import struct
import sys
import zlib
from pathlib import Path

import pytest

from ragcli.errors import LoaderError
from ragcli.loaders import load_documents, ocr
from ragcli.loaders.ocr import Line

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
NO_ENGINE = "no OCR engine: install the ocr extra (pip install 'ragcli[ocr]')"
PARAGRAPHS = [
    ["The lighthouse keeper rang the bell", "at midnight during the storm."],
    ["Fishermen returned to Carrick harbour", "before the tide turned."],
]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HAVE_RAPIDOCR = importlib.util.find_spec("rapidocr_onnxruntime") is not None


def _font(size: int):  # -> ImageFont
    from PIL import ImageFont

    if FONT.exists():
        return ImageFont.truetype(str(FONT), size)
    return ImageFont.load_default(size=size)


def _text_image(paragraphs: list[list[str]], width: int = 1300):  # -> Image.Image
    """Black text on white: 40 px type, 60 px line pitch, 130 px between paragraphs."""
    from PIL import Image, ImageDraw

    rows = sum(len(p) for p in paragraphs)
    image = Image.new("RGB", (width, 120 + 60 * rows + 70 * len(paragraphs)), "white")
    draw = ImageDraw.Draw(image)
    y = 60
    for paragraph in paragraphs:
        for line in paragraph:
            draw.text((60, y), line, fill="black", font=_font(40))
            y += 60
        y += 70
    return image


def _png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class FakeEngine:
    """Reads fixed lines from any image with dark pixels (none from a blank one), one line
    more, "frame W", naming the image's width; counts its calls."""

    name = "fake-engine 1"

    def __init__(self, lines: list[Line] | None = None, fail_on: int | None = None) -> None:
        self.lines = lines if lines is not None else _lines_of(PARAGRAPHS)
        self.calls = 0
        self.sizes: list[tuple[int, int]] = []
        self.fail_on = fail_on

    def read(self, image) -> list[Line]:
        self.calls += 1
        self.sizes.append(image.size)
        if self.calls == self.fail_on:
            raise KeyboardInterrupt  # as a kill in the middle of a scan
        assert image.mode == "RGB"
        if image.convert("L").getextrema()[0] > 200:
            return []
        frame = Line(f"frame {image.width}", 10, 2000, 200, 2040, 0.9)
        return [*self.lines, frame]


def _lines_of(paragraphs: list[list[str]]) -> list[Line]:
    """Boxes as ``_text_image`` draws the lines (pitch 60, height 45, paragraphs 130 apart)."""
    out, y = [], 60.0
    for paragraph in paragraphs:
        for text in paragraph:
            out.append(Line(text, 60, y, 60 + 20 * len(text), y + 45, 0.95))
            y += 60
        y += 70
    return out


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    engine = FakeEngine()
    monkeypatch.setattr(ocr, "engine", lambda: engine)
    return engine


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if rapidocr-onnxruntime were not installed: its import fails."""
    monkeypatch.setattr(ocr, "_engines", {})
    monkeypatch.setattr(ocr, "_unavailable", {})
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _load(path: Path):
    (document,) = load_documents(path, path.name)
    return document


# --- lines -> paragraphs -----------------------------------------------------------------


def test_rows_join_left_to_right_and_paragraphs_split_on_gaps() -> None:
    lines = [
        Line("world", 300, 100, 420, 140, 0.9),  # same row as "Hello", found first
        Line("Hello", 50, 102, 250, 141, 0.99),
        Line("second line of the para-", 50, 150, 600, 190, 0.9),
        Line("graph ends here", 50, 200, 400, 240, 0.9),
        Line("smudge", 50, 250, 200, 290, 0.3),  # below MIN_CONFIDENCE: dropped
        Line("A new paragraph", 50, 330, 400, 370, 0.8),  # 130 px below: > 1.5 x 40
    ]
    blocks = ocr.paragraph_blocks(lines, page=3)
    assert [b.text for b in blocks] == [
        "Hello world\nsecond line of the paragraph ends here",
        "A new paragraph",
    ]
    assert all(b.page == 3 and b.ocr for b in blocks)


def test_double_spaced_lines_stay_one_paragraph() -> None:
    # Line pitch 80 for 40 px high lines (2 line heights): the page's usual pitch, so only
    # the 200 px gap starts a paragraph.
    tops = [0, 80, 160, 240, 440, 520]
    lines = [Line(f"line {i}", 0, t, 300, t + 40, 0.9) for i, t in enumerate(tops)]
    blocks = ocr.paragraph_blocks(lines, page=1)
    assert [b.text for b in blocks] == ["line 0\nline 1\nline 2\nline 3", "line 4\nline 5"]


def test_nothing_confident_gives_no_blocks() -> None:
    assert ocr.paragraph_blocks([Line("?", 0, 0, 9, 9, 0.2), Line("  ", 0, 20, 9, 29)], 1) == []


# --- image files -------------------------------------------------------------------------


def test_png_is_read_as_paragraphs_on_page_1(tmp_path: Path, fake: FakeEngine) -> None:
    doc = _load(_write(tmp_path, "note.png", _png(_text_image(PARAGRAPHS))))
    assert doc.format == "image" and doc.pages == 1 and doc.notes == []
    assert [b.text for b in doc.blocks] == [
        "The lighthouse keeper rang the bell\nat midnight during the storm.",
        "Fishermen returned to Carrick harbour\nbefore the tide turned.",
        "frame 1300",
    ]
    assert all(b.page == 1 and b.ocr for b in doc.blocks)


@pytest.mark.parametrize(
    ("name", "fmt"), [("a.jpg", "JPEG"), ("b.jpeg", "JPEG"), ("c.tif", "TIFF")]
)
def test_jpeg_and_tiff_are_read(tmp_path: Path, fake: FakeEngine, name: str, fmt: str) -> None:
    out = io.BytesIO()
    _text_image(PARAGRAPHS).save(out, format=fmt)
    doc = _load(_write(tmp_path, name, out.getvalue()))
    assert doc.format == "image" and "lighthouse keeper" in doc.text and fake.calls == 1


def test_multi_frame_tiff_pages_are_its_frames(tmp_path: Path, fake: FakeEngine) -> None:
    from PIL import Image

    first = _text_image(PARAGRAPHS, 900)
    blank = Image.new("L", (901, 600), 255)
    third = _text_image(PARAGRAPHS, 902).convert("1")  # a fax: 1-bit
    out = io.BytesIO()
    first.save(out, format="TIFF", save_all=True, append_images=[blank, third])
    doc = _load(_write(tmp_path, "fax.tiff", out.getvalue()))
    assert doc.pages == 3
    assert doc.notes == ["OCR found no text on 1 of 3 frames"]
    assert [(b.page, b.text) for b in doc.blocks if b.text.startswith("frame")] == [
        (1, "frame 900"), (3, "frame 902"),
    ]  # fmt: skip


def test_rgba_and_16_bit_images_reach_the_engine_as_rgb(tmp_path: Path, fake: FakeEngine) -> None:
    from PIL import Image

    rgba = _text_image(PARAGRAPHS).convert("RGBA")
    _load(_write(tmp_path, "alpha.png", _png(rgba)))
    grey16 = Image.new("I;16", (400, 300), 60000)
    grey16.paste(1000, (50, 50, 350, 100))  # dark text-like bar
    _load(_write(tmp_path, "deep.png", _png(grey16)))
    assert fake.calls == 2  # FakeEngine asserts RGB and finds the dark pixels


def test_large_image_is_scaled_down_before_ocr(tmp_path: Path, fake: FakeEngine) -> None:
    from PIL import Image

    image = Image.new("L", (9000, 1000), 255)
    image.paste(0, (100, 100, 8000, 300))
    _load(_write(tmp_path, "banner.png", _png(image)))
    assert fake.sizes == [(ocr.MAX_SIDE, 444)]


# --- PDF pages without a text layer ------------------------------------------------------


def _scanned_pdf(pages: list[str | None]) -> bytes:
    """A PDF of text pages (a string: a real text layer) and scans (None: only a picture of
    two paragraphs of text, no text layer)."""
    from fpdf import FPDF

    picture = io.BytesIO(_png(_text_image(PARAGRAPHS)))
    pdf = FPDF(unit="pt", format=(468, 180))  # the picture's size at 200 dpi
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text is None:
            pdf.image(picture, x=0, y=0, w=pdf.w, h=pdf.h)
        else:
            pdf.multi_cell(0, 14, text)
    return bytes(pdf.output())


TEXT_PAGE = "The harbour master's report for March lists every vessel that docked in Carrick."


def test_pdf_page_without_text_layer_is_read_by_ocr(tmp_path: Path, fake: FakeEngine) -> None:
    doc = _load(_write(tmp_path, "mixed.pdf", _scanned_pdf([TEXT_PAGE, None])))
    assert doc.pages == 2 and doc.notes == ["read by OCR: 1 of 2 page(s)"]
    page1 = [b for b in doc.blocks if b.page == 1]
    page2 = [b for b in doc.blocks if b.page == 2]
    assert page1 and not any(b.ocr for b in page1) and "harbour master" in page1[0].text
    assert page2 and all(b.ocr for b in page2) and "lighthouse keeper" in page2[0].text
    assert fake.calls == 1  # the text page was not OCR'd


def test_pdf_pages_are_rendered_at_200_dpi(fake: FakeEngine) -> None:
    ocr.read_pdf_pages(_scanned_pdf([None]), [1], fake)
    assert fake.sizes == [(1300, 500)]  # 468 x 180 pt at 200/72


def test_poster_sized_pdf_page_is_rendered_within_bounds(fake: FakeEngine) -> None:
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format=(14000, 9000))  # 5 x 3 metres
    pdf.add_page()
    pdf.set_font("helvetica", size=400)
    pdf.text(100, 1000, "POSTER")
    found, notes = ocr.read_pdf_pages(bytes(pdf.output()), [1], fake)
    assert notes == [] and found[1]
    (size,) = fake.sizes
    assert max(size) == ocr.MAX_SIDE and size[0] * size[1] <= ocr.MAX_PIXELS


def test_blank_scanned_pages_keep_the_scanned_note(tmp_path: Path, fake: FakeEngine) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, TEXT_PAGE)
    pdf.add_page()
    pdf.add_page()
    doc = _load(_write(tmp_path, "blank.pdf", bytes(pdf.output())))
    assert doc.notes == [
        "probably scanned: 2 of 3 page(s) have almost no text layer; only the text found "
        "was indexed (OCR found no text on them)"
    ]
    assert fake.calls == 1  # two identical blank pages: the second comes from the cache


def test_pdf_without_engine_says_which_extra_to_install(tmp_path: Path, no_engine: None) -> None:
    path = _write(tmp_path, "scan.pdf", _scanned_pdf([None, None]))
    with pytest.raises(LoaderError) as raised:
        _load(path)
    assert str(raised.value) == f"probably scanned: no text layer ({NO_ENGINE})"
    doc = _load(_write(tmp_path, "mostly.pdf", _scanned_pdf([TEXT_PAGE, None, None])))
    assert doc.notes == [
        "probably scanned: 2 of 3 page(s) have almost no text layer; only the text found "
        f"was indexed ({NO_ENGINE})"
    ]
    assert not any(b.ocr for b in doc.blocks)


def test_image_without_engine_says_which_extra_to_install(tmp_path: Path, no_engine: None) -> None:
    with pytest.raises(LoaderError) as raised:
        _load(_write(tmp_path, "note.png", _png(_text_image(PARAGRAPHS))))
    assert str(raised.value) == NO_ENGINE


def test_ocr_off_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr, "_engines", {})
    monkeypatch.setenv("RAGCLI_OCR", "off")
    with pytest.raises(LoaderError, match=r"OCR is off \(RAGCLI_OCR=off\)"):
        _load(_write(tmp_path, "note.png", _png(_text_image(PARAGRAPHS))))


def test_engine_that_fails_to_load_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(threads: int | None = None) -> None:
        raise ImportError("libGL.so.1: cannot open shared object file: No such file")

    monkeypatch.setattr(ocr, "_engines", {})
    monkeypatch.setattr(ocr, "RapidOcr", broken)
    with pytest.raises(LoaderError) as raised:
        _load(_write(tmp_path, "note.png", _png(_text_image(PARAGRAPHS))))
    assert str(raised.value) == (
        "OCR engine failed to load (ImportError: libGL.so.1: cannot open shared object file: "
        "No such file); install libgl1, or replace opencv-python with opencv-python-headless"
    )


@pytest.mark.parametrize(
    ("value", "threads"), [("1", 1), ("", None), ("many", None), ("999", None)]
)
def test_engine_threads_default_to_every_cpu(
    monkeypatch: pytest.MonkeyPatch, value: str, threads: int | None
) -> None:
    monkeypatch.setenv("RAGCLI_OCR_THREADS", value)
    assert ocr._threads() == (threads or os.cpu_count())


# --- the page cache ----------------------------------------------------------------------


def test_second_load_reads_the_cache_not_the_engine(
    tmp_path: Path, fake: FakeEngine, ragcli_home: Path
) -> None:
    image = _write(tmp_path, "note.png", _png(_text_image(PARAGRAPHS, 1000)))
    scan = _write(tmp_path, "scan.pdf", _scanned_pdf([TEXT_PAGE, None]))
    first = [_load(image).blocks, _load(scan).blocks]
    assert fake.calls == 2
    assert [_load(image).blocks, _load(scan).blocks] == first
    assert fake.calls == 2
    assert len(list((ragcli_home / "cache" / "ocr").glob("*/*.json"))) == 2


def test_killed_scan_resumes_with_the_pages_not_yet_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    frames = [_text_image(PARAGRAPHS, 900 + i) for i in range(4)]
    out = io.BytesIO()
    frames[0].save(out, format="TIFF", save_all=True, append_images=frames[1:])
    path = _write(tmp_path, "scan.tif", out.getvalue())
    killed = FakeEngine(fail_on=3)
    monkeypatch.setattr(ocr, "engine", lambda: killed)
    with pytest.raises(KeyboardInterrupt):
        _load(path)
    resumed = FakeEngine()
    monkeypatch.setattr(ocr, "engine", lambda: resumed)
    doc = _load(path)
    assert resumed.sizes == [(902, 500), (903, 500)]  # frames 3 and 4 only
    assert doc.pages == 4 and {b.page for b in doc.blocks} == {1, 2, 3, 4}
    assert Image.open(path).n_frames == 4


def test_a_corrupt_cache_entry_is_read_again(tmp_path: Path, fake: FakeEngine) -> None:
    path = _write(tmp_path, "note.png", _png(_text_image(PARAGRAPHS)))
    _load(path)
    (entry,) = ocr.cache_dir().glob("*/*.json")
    entry.write_text("{not json")
    assert "lighthouse" in _load(path).text and fake.calls == 2


def test_cache_is_pruned_least_recently_used_first() -> None:
    folder = ocr.cache_dir() / "ab"
    folder.mkdir(parents=True)
    for i in range(30):
        entry = folder / f"ab{i:062d}.json"
        entry.write_text('{"lines": []}')
        os.utime(entry, (1_000_000 + i, 1_000_000 + i))
    assert ocr.prune_cache(max_files=10) == 22
    left = sorted(p.name for p in folder.glob("*.json"))
    assert left == [f"ab{i:062d}.json" for i in range(22, 30)]
    assert ocr.prune_cache(max_files=10) == 0


# --- bad input ---------------------------------------------------------------------------


def _huge_png(width: int, height: int) -> bytes:
    """A PNG header declaring ``width`` x ``height`` pixels, with almost no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    )  # fmt: skip


def _noise() -> bytes:
    return random.Random(7).randbytes(3000)


def _jpeg() -> bytes:
    out = io.BytesIO()
    _text_image(PARAGRAPHS).save(out, format="JPEG")
    return out.getvalue()


BAD = {
    "corrupt PNG": ("bad.png", lambda: PNG_SIGNATURE + _noise(), "corrupt PNG image"),
    "corrupt TIFF": ("bad.tif", lambda: b"II*\0" + _noise(), "corrupt TIFF image"),
    "truncated JPEG": ("cut.jpg", lambda: _jpeg()[: len(_jpeg()) // 2], "truncated or corrupt"),
    "text named .png": (
        "notes.png", lambda: b"Just some notes, not a picture.\n" * 20,
        "not a PNG, JPEG or TIFF image (unrecognised content)",
    ),
    "blank image": (
        "white.png", lambda: _png(_text_image([])), "no text found by OCR",
    ),
    "huge declared size": ("huge.png", lambda: _huge_png(30000, 30000), "image too large"),
    "just over the pixel limit": (
        "big.png", lambda: _huge_png(10000, 8001), "image too large (10000x8001 pixels",
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_image_is_refused_with_a_reason(tmp_path: Path, fake: FakeEngine, kind: str) -> None:
    name, make, reason = BAD[kind]
    with pytest.raises(LoaderError) as raised:
        load_documents(_write(tmp_path, name, make()), name)
    assert reason in str(raised.value)
    assert "\n" not in str(raised.value)


def test_bad_image_never_reaches_the_engine(tmp_path: Path, fake: FakeEngine) -> None:
    for name, make, _ in BAD.values():
        with pytest.raises(LoaderError):
            load_documents(_write(tmp_path, name, make()), name)
    assert fake.calls == 1  # the blank image only


# --- the real engine ---------------------------------------------------------------------

needs_rapidocr = pytest.mark.skipif(
    not HAVE_RAPIDOCR, reason="rapidocr-onnxruntime not installed (the ocr extra)"
)


@needs_rapidocr
def test_real_engine_reads_an_image_into_two_paragraphs(tmp_path: Path) -> None:
    doc = _load(_write(tmp_path, "note.png", _png(_text_image(PARAGRAPHS))))
    assert len(doc.blocks) == 2 and all(b.ocr and b.page == 1 for b in doc.blocks)
    first, second = (b.text.lower() for b in doc.blocks)
    for word in ("lighthouse", "keeper", "bell", "midnight", "storm"):
        assert word in first
    for word in ("fishermen", "carrick", "harbour", "tide"):
        assert word in second


@needs_rapidocr
def test_real_engine_reads_the_scanned_page_of_a_pdf(tmp_path: Path) -> None:
    doc = _load(_write(tmp_path, "mixed.pdf", _scanned_pdf([TEXT_PAGE, None])))
    assert doc.notes == ["read by OCR: 1 of 2 page(s)"]
    assert [(b.page, b.ocr) for b in doc.blocks] == [(1, False), (2, True), (2, True)]
    scanned = " ".join(b.text for b in doc.blocks if b.page == 2).lower()
    for word in ("lighthouse", "midnight", "carrick", "tide"):
        assert word in scanned


@needs_rapidocr
def test_real_engine_finds_nothing_on_a_blank_page(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match="no text found by OCR"):
        _load(_write(tmp_path, "white.png", _png(_text_image([]))))
