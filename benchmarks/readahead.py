"""Reading ahead while embedding: a PDF-heavy ingest with and without the read-ahead thread.

    python benchmarks/readahead.py [--files 60] [--pages 12]

Writes a corpus of generated PDFs (fpdf2, dev extra), then ingests it twice in this process
into fresh collections, with the bundled embedder: once as ragcli does (files loaded and
chunked in a thread while batches are embedded) and once with the reading done in line, and
prints both times, the time reading and chunking takes alone, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from big_pdf import make_pdf  # noqa: E402


def in_line(items: Iterable, work: Callable, depth: int = 8) -> Iterator[tuple[object, Future]]:
    """The read-ahead's interface, with no thread: each item is read when it is asked for."""
    for item in items:
        future: Future = Future()
        try:
            future.set_result(work(item))
        except Exception as e:
            future.set_exception(e)
        yield item, future


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=60)
    parser.add_argument("--pages", type=int, default=12)
    args = parser.parse_args()
    corpus = Path(tempfile.mkdtemp(prefix="ragcli-pdfs-"))
    for n in range(args.files):
        make_pdf(corpus / f"report-{n:03d}.pdf", args.pages)
    os.environ["RAGCLI_HOME"] = tempfile.mkdtemp(prefix="ragcli-bench-")
    os.environ["RAGCLI_ONNX"] = "off"  # the one-time export is not what is measured here

    from ragcli import pipeline, prefetch
    from ragcli.chunking import split_document
    from ragcli.config import load_settings
    from ragcli.loaders import load_documents
    from ragcli.models.embedding import Embedder

    warm = Embedder(None)
    warm.embed_documents(["warm-up text"] * 32)
    started = time.perf_counter()
    chunks = 0
    for path in sorted(corpus.iterdir()):
        for document in load_documents(path, path.name, path.name, 2**30):
            chunks += len(split_document(document, warm.count_tokens, 200, 32, warm.max_tokens))
    read_s = time.perf_counter() - started

    times = {}
    for label, reader in (("in line", in_line), ("read ahead", prefetch.read_ahead)):
        prefetch.read_ahead = reader  # type: ignore[assignment]
        started = time.perf_counter()
        pipeline.ingest(load_settings(collection=label.replace(" ", "-")), [str(corpus)])
        times[label] = time.perf_counter() - started

    print(f"corpus: {args.files} PDFs of {args.pages} pages, {chunks} chunks")
    print(f"reading and chunking alone: {read_s:.2f} s")
    for label, seconds in times.items():
        print(f"ingest, {label}: {seconds:.2f} s ({chunks / seconds:.1f} chunks/s)")
    print(f"ratio in line / read ahead: {times['in line'] / times['read ahead']:.2f}")


if __name__ == "__main__":
    main()
