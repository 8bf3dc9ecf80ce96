"""Peak memory while ingesting one big PDF (a generated report of 2,000+ pages).

    python benchmarks/big_pdf.py [--pages 2100]

Writes the PDF with fpdf2 (dev extra), then runs ``python -m ragcli ingest`` on it in a child
process with the bundled embedder and prints the child's wall time, chunks and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

WORDS = (
    "harbour ferry lighthouse keeper tram copper kettle bridge river island tide storm "
    "festival lantern market quay crane gull cliff school archive ledger mill orchard survey "
    "trust accounts committee repairs dredging channel pier warehouse customs timber"
).split()


def make_pdf(path: Path, pages: int) -> None:
    from fpdf import FPDF

    rng = random.Random(3)
    pdf = FPDF()
    pdf.set_auto_page_break(auto=False)
    pdf.set_font("Helvetica", size=10)
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.set_xy(15, 15)
        pdf.multi_cell(180, 6, f"Section {number}: report of the harbour trust, page {number}")
        for _ in range(3):
            sentence = " ".join(rng.choice(WORDS) for _ in range(90)).capitalize() + "."
            pdf.multi_cell(180, 5, sentence)
            pdf.ln(2)
    pdf.output(str(path))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=2100)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ragcli-bigpdf-"))
    pdf = work / "report.pdf"
    started = time.perf_counter()
    make_pdf(pdf, args.pages)
    size = pdf.stat().st_size / 2**20
    print(
        f"wrote {pdf}: {args.pages} pages, {size:.1f} MiB in {time.perf_counter() - started:.0f} s"
    )
    env = {**os.environ, "RAGCLI_HOME": str(work / "home"), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ragcli", "ingest", str(pdf), "--json", "-q"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    report = json.loads(done.stdout)
    chunks = report["chunks"]["added"]
    print(f"ingest: {seconds:.0f} s, {chunks} chunks, warnings {report['warnings']}")
    print(f"peak RSS of the ingest process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
