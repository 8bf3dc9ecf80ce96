"""Image files (PNG, JPEG, TIFF) read by OCR (``ocr``): one page per image, a multi-frame
TIFF one page per frame; refused with a reason when no OCR engine is installed, or when the
image is corrupt, truncated, too large, or not an image at all."""

from __future__ import annotations

from ragcli.errors import LoaderError
from ragcli.loaders import ocr
from ragcli.loaders.parsed import Parsed
from ragcli.records import Block


def parse_image(data: bytes) -> Parsed:
    """An image file's text by OCR: paragraph blocks with ``page`` (the frame) and ``ocr``."""
    reader = ocr.engine()
    if reader is None:
        raise LoaderError(ocr.why_none())
    image = ocr.open_image(data)
    try:
        total = ocr.frame_count(image)
        blocks: list[Block] = []
        blank = read = 0
        for number, frame in ocr.frames(image):
            found = ocr.read_page(frame, number, reader)
            read += 1
            blank += not found
            blocks += found
    finally:
        image.close()
    if not blocks:
        raise LoaderError("no text found by OCR")
    notes = []
    if total > read:
        notes.append(f"only the first {read} of {total} frames read by OCR")
    if blank:
        notes.append(f"OCR found no text on {blank} of {read} frames")
    return Parsed(blocks, None, pages=total, notes=notes)
