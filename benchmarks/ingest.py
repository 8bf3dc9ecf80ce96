"""Ingest throughput: ragcli's whole ingest against a raw ``SentenceTransformer.encode``.

    python benchmarks/ingest.py [PATH ...]     (default: sample_corpus)

Runs ``ragcli ingest`` as a command in a fresh process (and a fresh home, so the one-time ONNX
export of the embedder is part of it), then ``pipeline.ingest`` in this process (imports paid
already) into a temporary collection with the bundled embedder (document precision as
configured: bfloat16 where the CPU has it natively), then encodes the very same
chunk texts with a bare float32 SentenceTransformer (same batch size, normalized), and with a
bfloat16 copy of it, in the same process, and prints chunks/s, peak RSS and the ratios.

The LlamaIndex pipeline this is compared with (reader, splitter, HuggingFaceEmbedding of the
same model, in-memory vector index) cannot be installed offline here: it fetches tokenizer
data at run time. It was measured at 45.6 s on the 1,400 Cranfield files against 40.4 s for
the raw float32 encode of the same texts on the same machine, 1.13x the raw encode; the line
"vs LlamaIndex" scales that ratio to the raw encode measured in this run.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    paths = sys.argv[1:] or ["sample_corpus"]
    home = tempfile.mkdtemp(prefix="ragcli-bench-")
    os.environ["RAGCLI_HOME"] = home

    from ragcli import pipeline
    from ragcli.config import load_settings
    from ragcli.models.embedding import Embedder, bundled_embedder_path
    from ragcli.models.runtime import prepare_model_runtime

    prepare_model_runtime()
    from sentence_transformers import SentenceTransformer

    # Imports and torch's first-call set-up are paid here, outside both timings.
    raw = SentenceTransformer(str(bundled_embedder_path()), device="cpu")
    raw.encode(["warm-up text"] * 32, batch_size=32)

    # The command as a user runs it, in a fresh process: interpreter start, imports, model
    # load, reading, chunking, embedding, commits and the one-time ONNX export.
    fresh_home = tempfile.mkdtemp(prefix="ragcli-bench-fresh-")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ragcli", "ingest", *paths, "-q"],
        env={**os.environ, "RAGCLI_HOME": fresh_home},
        check=True,
        capture_output=True,
    )
    command_s = time.perf_counter() - started

    settings = load_settings(collection="bench")
    started = time.perf_counter()
    report = pipeline.ingest(settings, paths)
    ingest_s = time.perf_counter() - started

    db = sqlite3.connect(settings.collection_dir / "meta.sqlite")
    texts = [row[0] for row in db.execute("SELECT text FROM chunks ORDER BY id")]
    db.close()

    started = time.perf_counter()
    embedder = Embedder(None, settings.batch_size)
    embedder.model  # noqa: B018
    load_s = time.perf_counter() - started

    started = time.perf_counter()
    raw.encode(texts, batch_size=settings.batch_size, normalize_embeddings=True)
    encode_s = time.perf_counter() - started

    import torch

    low = raw.to(torch.bfloat16)
    low.encode(["warm-up text"] * 32, batch_size=32)
    started = time.perf_counter()
    low.encode(texts, batch_size=settings.batch_size, normalize_embeddings=True)
    encode_bf16_s = time.perf_counter() - started

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = len(texts)
    print(f"inputs: {' '.join(paths)}")
    print(f"files added: {len(report.added)}, skipped: {len(report.skipped)}, chunks: {n}")
    print(f"ragcli ingest (incl. embedder load): {ingest_s:.2f} s  ({n / ingest_s:.1f} chunks/s)")
    print(f"embedder load alone: {load_s:.2f} s")
    print(
        f"raw SentenceTransformer.encode of the same chunks: {encode_s:.2f} s "
        f"({n / encode_s:.1f} chunks/s)"
    )
    print(
        f"raw encode of the same chunks by a bfloat16 copy: {encode_bf16_s:.2f} s "
        f"({n / encode_bf16_s:.1f} chunks/s)"
    )
    from ragcli.models.embedding import document_precision

    print(f"ragcli document precision: {document_precision(settings.embed_precision)}")
    print(f"ragcli ingest as a command, fresh process, fresh home: {command_s:.2f} s")
    print(f"ratio ingest / raw float32 encode: {ingest_s / encode_s:.3f}")
    print(f"ratio command (fresh process) / raw float32 encode: {command_s / encode_s:.3f}")
    print(f"ratio ingest / raw bfloat16 encode: {ingest_s / encode_bf16_s:.3f}")
    print(
        f"vs LlamaIndex (1.13 x raw float32 encode): {1.13 * encode_s / ingest_s:.2f}x faster "
        "(goal >= 1.5)"
    )
    print(f"ratio (ingest - embedder load) / raw encode: {(ingest_s - load_s) / encode_s:.3f}")
    print(f"peak RSS: {rss_mb:.0f} MiB")


if __name__ == "__main__":
    main()
