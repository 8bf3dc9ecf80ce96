"""What the PDF text clean-up changes on real PDFs, and what it costs.

    python benchmarks/pdf_quality.py FILE.pdf [FILE.pdf ...] [--samples 5] [--diff-lines 30]

For each file: pages; blocks and characters before (pypdf's plain text split at blank lines,
as ragcli did) and after (``ragcli.loaders.pdf_text``: headers/footers and page numbers
dropped, cut words joined, table rows, paragraph breaks from the page geometry); what was
dropped, joined and kept as rows, with samples; the CPU time of each, and of reading every page
in layout mode too (the alternative to reading it only where a table is hinted); and a diff of
a few pages. Nothing is written; the PDFs stay where they are.
"""

from __future__ import annotations

import argparse
import difflib
import io
import logging
import re
import time
from collections import Counter
from pathlib import Path
from typing import Literal

from pypdf import PdfReader

from ragcli.loaders.pdf_text import CleanStats, clean_pages, read_pages
from ragcli.loaders.text import paragraphs
from ragcli.records import Block


def before(data: bytes) -> tuple[list[list[str]], float]:
    """The old way: plain text per page, split at blank lines only; and its CPU seconds."""
    started = time.process_time()
    pages = []
    for number, page in enumerate(PdfReader(io.BytesIO(data)).pages, start=1):
        text = (page.extract_text() or "").replace("\r\n", "\n").replace("\r", "\n")
        pages.append([b.text for b in paragraphs(text.split("\n"), 1, None, page=number)])
    return pages, time.process_time() - started


def after(
    data: bytes, layout: Literal["auto", "all"]
) -> tuple[list[list[Block]], CleanStats, float, int]:
    """The clean-up; its CPU seconds and the pages read in layout mode too."""
    started = time.process_time()
    pages = read_pages(PdfReader(io.BytesIO(data)).pages, layout=layout)
    blocks, stats = clean_pages(pages)
    return blocks, stats, time.process_time() - started, sum(p.layout is not None for p in pages)


def report(path: Path, samples: int, diff_lines: int) -> None:
    data = path.read_bytes()
    old, t_old = before(data)
    new, stats, t_new, laid_out = after(data, "auto")
    every, _, t_all, _ = after(data, "all")
    n_pages = len(new)
    old_texts = [t for page in old for t in page]
    new_texts = [b.text for page in new for b in page]
    print(f"== {path.name}: {n_pages} pages, {len(data) / 2**20:.1f} MiB")
    print(
        f"  blocks {len(old_texts)} -> {len(new_texts)}, "
        f"chars {sum(map(len, old_texts))} -> {sum(map(len, new_texts))}; "
        f"block chars median/max {_median_max(old_texts)} -> {_median_max(new_texts)}"
    )
    print(f"  header/footer/page-number lines removed: {stats.margin_lines}")
    for text, n in Counter(re.sub(r"\d+", "#", t) for t in stats.removed).most_common(samples):
        print(f"    {n:4d} x {text!r}")
    print(f"  hyphen joins: {stats.hyphen_joins} ({stats.kept_hyphens} kept the hyphen)")
    if stats.joins:
        step = max(1, len(stats.joins) // samples)
        print("    e.g. " + ", ".join(stats.joins[::step][:samples]))
        kept = [w for w in stats.joins if "-" in w]
        if kept:
            print("    hyphen kept: " + ", ".join(kept[: samples * 2]))
    rows = [[b.text for b in page if b.whole] for page in new]
    rows_all = [[b.text for b in page if b.whole] for page in every]
    print(
        f"  table rows: {stats.table_rows} on {sum(1 for r in rows if r)} pages "
        f"(layout mode read on {laid_out} of {n_pages} pages); layout mode on every page: "
        f"{sum(map(len, rows_all))} rows on {sum(1 for r in rows_all if r)} pages"
    )
    for page_rows in [r for r in rows if r][:2]:
        for row in page_rows[:samples]:
            print(f"    | {row[:110]}")
    print(f"  paragraph breaks from the page geometry: {stats.paragraph_splits}")
    print(
        f"  CPU time: before {t_old:.2f} s, after {t_new:.2f} s ({t_new / t_old:.2f}x); "
        f"with layout mode on every page {t_all:.2f} s ({t_all / t_old:.2f}x)"
    )
    for number in _diff_pages(old, new, rows):
        print(f"  --- diff of page {number} (before -> after, blocks separated by blank lines)")
        diff = difflib.unified_diff(
            "\n\n".join(old[number - 1]).split("\n"),
            "\n\n".join(b.text for b in new[number - 1]).split("\n"),
            lineterm="",
            n=0,
        )
        for i, line in enumerate(list(diff)[2:]):
            if i >= diff_lines:
                print("    ...")
                break
            print(f"    {line[:120]}")


def _median_max(texts: list[str]) -> str:
    sizes = sorted(map(len, texts)) or [0]
    return f"{sizes[len(sizes) // 2]}/{sizes[-1]}"


def _diff_pages(old: list[list[str]], new: list[list[Block]], rows: list[list[str]]) -> list[int]:
    """A page in the middle, and the first page with table rows if any."""
    pages = [len(new) // 2 + 1] if new else []
    tables = [n for n, r in enumerate(rows, start=1) if r]
    return sorted(set(pages + tables[:1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("pdfs", nargs="+", type=Path)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--diff-lines", type=int, default=30)
    args = parser.parse_args()
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    for path in args.pdfs:
        report(path, args.samples, args.diff_lines)


if __name__ == "__main__":
    main()
