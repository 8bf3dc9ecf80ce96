"""OCR: text read from images (image files, PDF pages without a text layer).

The engine is looked up by ``engine()`` (tests replace it with a fake): RapidOCR
(``rapidocr-onnxruntime``, the ``ocr`` extra; its ONNX models ship in its wheel, nothing is
downloaded) unless ``RAGCLI_OCR=off``. ``RAGCLI_OCR_THREADS`` sets onnxruntime's intra-op
threads (default: every CPU). The engine returns boxed lines; ``paragraph_blocks`` drops those
read with confidence below ``MIN_CONFIDENCE``, joins boxes into rows and rows into paragraphs
by their vertical gaps, each a ``Block(page=N, ocr=True)``.

Each page's lines are cached in ``$RAGCLI_HOME/cache/ocr/<xx>/<sha256>.json``, keyed by the
engine and the exact pixels it was given, written atomically: an ingest killed in the middle
of a long scan reads again only the pages not yet done. The cache keeps at most
``CACHE_MAX_FILES`` pages (a few KB each); the least recently used go first.

PDF pages are rendered with pypdfium2 (imported when a page needs OCR) at ``PDF_DPI``.
Progress: one INFO line per page on the ``ragcli.loaders.ocr`` logger (shown by ``--debug``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import statistics
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ragcli.errors import LoaderError
from ragcli.records import Block

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

INSTALL_HINT = "install the ocr extra (pip install 'ragcli[ocr]')"
NO_ENGINE = f"no OCR engine: {INSTALL_HINT}"
MIN_CONFIDENCE = 0.5  # lines the engine is less sure of are dropped
PDF_DPI = 200
MAX_PIXELS = 80_000_000  # an image (or TIFF frame) larger than this is refused, not decoded
MAX_SIDE = 4000  # larger images are scaled down to this before OCR (RapidOCR works at 2000)
MAX_FRAMES = 1000  # frames of a multi-frame TIFF, or pages of a scanned PDF, read at most
CACHE_MAX_FILES = 20_000
_PARAGRAPH_PITCH = 1.5  # a row this many line heights below the last starts a paragraph


@dataclass(frozen=True)
class Line:
    """A run of text the engine found, its box in pixels, and how sure the engine is."""

    text: str
    left: float
    top: float
    right: float
    bottom: float
    confidence: float = 1.0


class Engine(Protocol):
    """An OCR engine: ``name`` says which and how configured (it keys the cache)."""

    name: str

    def read(self, image: Image.Image) -> list[Line]:
        """The lines found in an RGB image, in any order."""
        ...


class RapidOcr:
    """RapidOCR on onnxruntime: PP-OCRv4 detection and recognition (Latin and Chinese
    scripts); the angle classifier is off (it flips upright lines of ordinary documents)."""

    def __init__(self, threads: int | None = None) -> None:
        from importlib.metadata import version

        from rapidocr_onnxruntime import RapidOCR

        threads = threads or _threads()
        self._ocr = RapidOCR(use_cls=False, intra_op_num_threads=threads, inter_op_num_threads=1)
        self.name = f"rapidocr-onnxruntime {version('rapidocr-onnxruntime')} cls=off"

    def read(self, image: Image.Image) -> list[Line]:
        result, _ = self._ocr(image)
        lines = []
        for box, text, score in result or []:
            xs, ys = [float(p[0]) for p in box], [float(p[1]) for p in box]
            lines.append(Line(str(text), min(xs), min(ys), max(xs), max(ys), float(score)))
        return lines


def _threads() -> int:
    cpus = os.cpu_count() or 1
    try:
        wanted = int(os.environ.get("RAGCLI_OCR_THREADS") or cpus)
    except ValueError:
        wanted = cpus
    return max(1, min(wanted, cpus))


_lock = threading.RLock()  # one page at a time: the engine and pdfium are not thread-safe
_engines: dict[str, Engine | None] = {}
_unavailable: dict[str, str] = {}


def engine() -> Engine | None:
    """The OCR engine ``RAGCLI_OCR`` asks for (``rapidocr`` by default; ``off``: none), loaded
    once per process; None when it is off, not installed, or fails to load (``why_none``)."""
    choice = _choice()
    with _lock:
        if choice not in _engines:
            _engines[choice] = _load(choice)
        return _engines[choice]


def _choice() -> str:
    return (os.environ.get("RAGCLI_OCR") or "rapidocr").strip().lower()


def _load(choice: str) -> Engine | None:
    if choice == "off":
        _unavailable[choice] = "OCR is off (RAGCLI_OCR=off)"
        return None
    if choice not in ("rapidocr", "auto"):
        _unavailable[choice] = f"unknown OCR engine RAGCLI_OCR={choice!r} (use rapidocr or off)"
        return None
    try:
        return RapidOcr()
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] in ("rapidocr_onnxruntime", "onnxruntime", "cv2"):
            _unavailable[choice] = NO_ENGINE
        else:
            _unavailable[choice] = f"OCR engine failed to load ({type(e).__name__}: {e})"
    except Exception as e:  # a broken install (libGL missing for cv2, a bad model file)
        reason = f"OCR engine failed to load ({type(e).__name__}: {e})"
        if "libGL" in str(e):
            reason += "; install libgl1, or replace opencv-python with opencv-python-headless"
        _unavailable[choice] = reason
    log.info("%s", _unavailable[choice])
    return None


def why_none() -> str:
    """Why ``engine()`` gives no engine, as a reason to show."""
    return _unavailable.get(_choice(), NO_ENGINE)


# --- one image -> paragraph blocks -------------------------------------------------------


def paragraph_blocks(lines: list[Line], page: int) -> list[Block]:
    """The engine's lines as paragraphs: boxes on one row joined left to right, rows top to
    bottom, a new paragraph where a row starts more than 1.5 line heights (or 1.3 times the
    page's usual line pitch, if that is larger) below the previous one."""
    rows = _rows([x for x in lines if x.confidence >= MIN_CONFIDENCE and x.text.strip()])
    if not rows:
        return []
    height = statistics.median(r.bottom - r.top for r in rows)
    pitches = [b.top - a.top for a, b in zip(rows, rows[1:]) if b.top > a.top]
    usual = statistics.median(pitches) if len(pitches) >= 3 else 0.0
    limit = max(_PARAGRAPH_PITCH * height, 1.3 * usual)
    blocks: list[Block] = []
    current = [rows[0].text]
    for previous, row in zip(rows, rows[1:]):
        if row.top - previous.top > limit:
            blocks.append(Block(_join(current), page=page, ocr=True))
            current = []
        current.append(row.text)
    blocks.append(Block(_join(current), page=page, ocr=True))
    return blocks


@dataclass
class _Row:
    top: float
    bottom: float
    boxes: list[Line]

    @property
    def text(self) -> str:
        return " ".join(b.text.strip() for b in sorted(self.boxes, key=lambda b: b.left))


def _rows(lines: list[Line]) -> list[_Row]:
    """Boxes grouped into rows: a box joins the row it overlaps by half its height or more."""
    rows: list[_Row] = []
    for line in sorted(lines, key=lambda x: ((x.top + x.bottom) / 2, x.left)):
        if rows:
            row = rows[-1]
            overlap = min(row.bottom, line.bottom) - max(row.top, line.top)
            smaller = min(row.bottom - row.top, line.bottom - line.top)
            if overlap >= 0.5 * smaller:
                row.boxes.append(line)
                row.top, row.bottom = min(row.top, line.top), max(row.bottom, line.bottom)
                continue
        rows.append(_Row(line.top, line.bottom, [line]))
    return rows


def _join(rows: list[str]) -> str:
    """Rows of one paragraph, a word hyphenated across a line break joined again."""
    out = rows[0]
    for row in rows[1:]:
        if out.endswith("-") and out[-2:-1].isalpha() and row[:1].islower():
            out = out[:-1] + row
        else:
            out += "\n" + row
    return out


def read_page(image: Image.Image, page: int, reader: Engine) -> list[Block]:
    """OCR one page (an image in any mode) into paragraph blocks; the lines come from the
    cache when these exact pixels were read by this engine before."""
    prepared = _prepare(image)
    key = hashlib.sha256(
        f"{reader.name}\0{prepared.mode}\0{prepared.size}\0".encode() + prepared.tobytes()
    ).hexdigest()
    lines = _cache_get(key)
    if lines is None:
        started = time.monotonic()
        with _lock:
            lines = reader.read(prepared)
        _cache_put(key, lines)
        log.info("OCR page %d: %d lines in %.1f s", page, len(lines), time.monotonic() - started)
    return paragraph_blocks(lines, page)


def _prepare(image: Image.Image) -> Image.Image:
    """An 8-bit RGB image no larger than MAX_SIDE, transparency laid on white, upright as its
    EXIF orientation says."""
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = _to_8bit(image)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(background, image.convert("RGBA"))
    if image.mode != "RGB":
        image = image.convert("RGB")
    if max(image.size) > MAX_SIDE:
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return image


def _to_8bit(image: Image.Image) -> Image.Image:
    """A 16-bit or float greyscale image stretched to 8 bits."""
    import numpy as np
    from PIL import Image

    array = np.asarray(image, dtype=np.float64)
    low, high = float(array.min()), float(array.max())
    scaled = (array - low) * (255.0 / (high - low)) if high > low else np.zeros_like(array)
    return Image.fromarray(scaled.astype(np.uint8), mode="L")


# --- the page cache ----------------------------------------------------------------------


def cache_dir() -> Path:
    """Where OCR'd pages are kept: ``$RAGCLI_HOME/cache/ocr``."""
    from ragcli.config import default_home

    return default_home() / "cache" / "ocr"


_writes = 0


def _cache_path(key: str) -> Path:
    return cache_dir() / key[:2] / f"{key}.json"


def _cache_get(key: str) -> list[Line] | None:
    path = _cache_path(key)
    try:
        entries = json.loads(path.read_text("utf-8"))["lines"]
        lines = [Line(str(t), float(x0), float(y0), float(x1), float(y1), float(c))
                 for t, x0, y0, x1, y1, c in entries]  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: pruned last
    return lines


def _cache_put(key: str, lines: list[Line]) -> None:
    """Write one page's lines atomically (temporary file, then rename); a failure to write
    the cache costs only the caching."""
    global _writes
    path = _cache_path(key)
    entries = [[x.text, x.left, x.top, x.right, x.bottom, x.confidence] for x in lines]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"lines": entries}, f, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        log.info("OCR cache not written (%s)", e)
        return
    with _lock:
        _writes += 1
        prune = _writes % 200 == 1
    if prune:
        prune_cache()


def prune_cache(max_files: int = CACHE_MAX_FILES) -> int:
    """Delete the least recently used pages beyond ``max_files`` (down to 80% of it); the
    number deleted."""
    try:
        files = [(p.stat().st_mtime, p) for p in cache_dir().glob("*/*.json")]
    except OSError:
        return 0
    if len(files) <= max_files:
        return 0
    files.sort()
    doomed = files[: len(files) - int(max_files * 0.8)]
    for _, path in doomed:
        path.unlink(missing_ok=True)
    return len(doomed)


# --- image files and PDF pages -----------------------------------------------------------


_SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\0", "TIFF"),
    (b"MM\0*", "TIFF"),
]


def open_image(data: bytes) -> Image.Image:
    """A PNG, JPEG or TIFF opened (header only), its size checked against MAX_PIXELS."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Corrupt EXIF data" and such
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=["PNG", "JPEG", "TIFF"])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise LoaderError(f"image too large ({e})") from e
    except UnidentifiedImageError as e:
        kind = next((k for sig, k in _SIGNATURES if data.startswith(sig)), None)
        if kind:
            raise LoaderError(f"corrupt {kind} image (its header cannot be read)") from e
        raise LoaderError("not a PNG, JPEG or TIFF image (unrecognised content)") from e
    except Exception as e:
        raise LoaderError(f"corrupt image ({type(e).__name__}: {e})") from e
    _check_size(image)
    return image


def _check_size(image: Image.Image) -> None:
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise LoaderError(
            f"image too large ({width}x{height} pixels; the limit is "
            f"{MAX_PIXELS // 1_000_000} million)"
        )
    if width < 1 or height < 1:
        raise LoaderError("corrupt image (no pixels)")


def frames(image: Image.Image) -> Iterator[tuple[int, Image.Image]]:
    """(1-based frame number, decoded frame) for each frame (a TIFF's pages), at most
    MAX_FRAMES; a truncated or corrupt frame raises LoaderError."""
    from PIL import Image

    for index in range(min(frame_count(image), MAX_FRAMES)):
        try:
            if index:
                image.seek(index)
            _check_size(image)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image.load()
        except LoaderError:
            raise
        except Exception as e:
            raise LoaderError(f"truncated or corrupt image ({type(e).__name__}: {e})") from e
        yield index + 1, image


def frame_count(image: Image.Image) -> int:
    """How many frames (pages) an image file holds."""
    return int(getattr(image, "n_frames", 1) or 1)


def read_pdf_pages(data: bytes, numbers: list[int], reader: Engine) -> tuple[
    dict[int, list[Block]], list[str]
]:  # fmt: skip
    """OCR the given 1-based pages of a PDF rendered at PDF_DPI: the blocks found on each,
    and notes on pages that could not be rendered or read."""
    try:
        import pypdfium2 as pdfium
    except ImportError:
        return {}, [f"pages without a text layer not read: OCR needs pypdfium2, {INSTALL_HINT}"]
    found: dict[int, list[Block]] = {}
    failed: list[int] = []
    with _lock:
        try:
            document = pdfium.PdfDocument(data)
        except Exception as e:
            return {}, [f"pages without a text layer not read: pdfium cannot open the PDF ({e})"]
        try:
            total = len(document)
            for number in numbers:
                if number > total:
                    failed.append(number)
                    continue
                try:
                    image = _render(document[number - 1], pdfium)
                    found[number] = read_page(image, number, reader)
                except Exception as e:  # one bad page must not lose the others
                    log.info("OCR of page %d failed: %s: %s", number, type(e).__name__, e)
                    failed.append(number)
        finally:
            document.close()
    notes = []
    if failed:
        shown = ", ".join(str(n) for n in failed[:10]) + (", ..." if len(failed) > 10 else "")
        notes.append(f"OCR failed on {len(failed)} page(s): {shown}")
    return found, notes


def _render(page: Any, pdfium: Any) -> Image.Image:
    """A page as a PIL image at PDF_DPI, scaled down so neither side exceeds MAX_SIDE and the
    pixels stay under MAX_PIXELS (a poster-sized page must not take gigabytes)."""
    width, height = page.get_size()  # points
    scale = PDF_DPI / 72
    scale = min(scale, MAX_SIDE / max(width, height, 1.0))
    scale = min(scale, (MAX_PIXELS / max(width * height, 1.0)) ** 0.5)
    try:
        image: Image.Image = page.render(scale=scale).to_pil()
    finally:
        page.close()
    return image


def sparse_pages(blocks: list[Block], pages: int, min_chars: int) -> list[int]:
    """The 1-based pages whose blocks hold fewer than ``min_chars`` visible characters."""
    visible: dict[int, int] = {}
    for b in blocks:
        if b.page is not None:
            visible[b.page] = visible.get(b.page, 0) + sum(not c.isspace() for c in b.text)
    return [n for n in range(1, pages + 1) if visible.get(n, 0) < min_chars]


def read_sparse_pdf_pages(
    data: bytes, blocks: list[Block], pages: int, min_chars: int
) -> tuple[list[Block], list[str]]:
    """``blocks`` (a PDF's text layer) with each page of fewer than ``min_chars`` visible
    characters replaced by what OCR reads on it (kept as it is where OCR reads nothing), and
    notes on pages OCR could not read. Unchanged, without notes, when there is no engine."""
    numbers = sparse_pages(blocks, pages, min_chars)
    reader = engine() if numbers else None
    if reader is None:
        return blocks, []
    skipped = numbers[MAX_FRAMES:]
    found, notes = read_pdf_pages(data, numbers[:MAX_FRAMES], reader)
    if skipped:
        notes.append(
            f"only the first {MAX_FRAMES} pages without a text layer read by OCR; "
            f"{len(skipped)} more left unread"
        )
    read = {n for n, found_blocks in found.items() if found_blocks}
    out = [b for b in blocks if b.page not in read]
    for number in sorted(read):
        out += found[number]
    out.sort(key=lambda b: b.page or 0)  # stable: each page's blocks keep their order
    return out, notes


def unread_reason() -> str:
    """Why pages without a text layer were not read: no engine (and how to get one), or the
    engine read nothing there."""
    return why_none() if engine() is None else "OCR found no text on them"
