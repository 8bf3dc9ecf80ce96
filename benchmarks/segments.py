"""What a small commit costs: one changed file in a 16,000-chunk collection, one changed
document in a 1M-chunk collection; segments against rewriting every vector.

    python benchmarks/segments.py [--real] [--synthetic] [--size 1000000] [--old REV]

``--real``: Cranfield's documents (one file each) plus SciFact-train's corpus (one JSON Lines
file), about 16,000 chunks, ingested with the bundled embedder by this tree and by ``--old``
(a git revision from before segments, checked out into a temporary worktree; its ingest reuses
this one's vectors from the embedding cache; with RAGCLI_HOME set, that home's cache serves
both). Both re-ingest the folder unchanged once, then one small file is changed and both
re-ingest it as ``python -m ragcli ingest``; printed for each: the bytes the kernel counted
as written (``ru_oublock`` of the finished child, 512 bytes a block) and the wall time.

``--synthetic``: a collection of ``--size`` chunks (10 per document, synthetic unit vectors
shaped like MiniLM's) built through the store, for each codec given; then 12 commits that each
replace one document (10 chunks out, 10 in), timed, with the bytes written
(``/proc/self/io`` write_bytes) and the merges they set off; next to it, what a commit cost
before segments: writing the whole index (``faiss.write_index`` + fsync), timed in the same run.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared/data"


def _ingest(tree: Path, home: Path, folder: Path, collection: str) -> tuple[float, int]:
    """(seconds, bytes written by the kernel for it) of ``ragcli ingest`` run from ``tree``."""
    env = {**os.environ, "RAGCLI_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_oublock
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ragcli", "ingest", str(folder), "-c", collection, "-q"],
        cwd=tree,
        env=env,
        check=True,
    )
    seconds = time.perf_counter() - started
    return seconds, 512 * (resource.getrusage(resource.RUSAGE_CHILDREN).ru_oublock - before)


def real(old: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="ragcli-segments-"))
    try:
        folder = work / "docs"
        shutil.copytree(DATA / "cranfield/docs", folder)
        shutil.copy(DATA / "scifact-train/corpus.jsonl", folder / "scifact.jsonl")
        # RAGCLI_HOME, if set, lends its embedding cache (its collections are left alone).
        home = Path(os.environ.get("RAGCLI_HOME") or work / "home")
        worktree = work / "old"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(worktree), old],
            cwd=REPO, check=True, capture_output=True,
        )  # fmt: skip
        trees = {"segments (this tree)": REPO, f"one vectors file ({old})": worktree}
        for label, tree in trees.items():
            seconds, _ = _ingest(tree, home, folder, _name(label))
            print(f"{label}: first ingest {seconds:.0f} s", flush=True)
        unchanged = {
            label: _ingest(tree, home, folder, _name(label)) for label, tree in trees.items()
        }
        texts = [p for p in folder.glob("*.txt") if p.stat().st_size]
        small = min(texts, key=lambda p: p.stat().st_size)
        small.write_text(small.read_text() + "\nA sentence added to one small file.\n")
        print(f"\nchanged {small.name}; re-ingest of the collection (Cranfield + SciFact-train):")
        print(f"{'':<32}{'chunks':>8}{'written MB':>12}{'seconds':>9}{'unchanged: MB':>15}{'s':>6}")
        for label, tree in trees.items():
            seconds, written = _ingest(tree, home, folder, _name(label))
            chunks = _chunks(home, _name(label))
            same_seconds, same_written = unchanged[label]
            print(
                f"{label:<32}{chunks:>8}{written / 1e6:>12.2f}{seconds:>9.1f}"
                f"{same_written / 1e6:>15.2f}{same_seconds:>6.1f}",
                flush=True,
            )
        for label in trees:
            shutil.rmtree(home / "collections" / _name(label), ignore_errors=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(work / "old")], cwd=REPO)
        shutil.rmtree(work, ignore_errors=True)


def _name(label: str) -> str:
    return "bench-segments" if label.startswith("segments") else "bench-single-file"


def _chunks(home: Path, collection: str) -> int:
    import sqlite3

    db = sqlite3.connect(home / "collections" / collection / "meta.sqlite")
    try:
        return int(db.execute("SELECT count(*) FROM chunks").fetchone()[0])
    finally:
        db.close()


def _written() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def synthetic(size: int, kinds: list[str]) -> None:
    import faiss
    import numpy as np

    from benchmarks.search_scale import synthetic as shaped
    from ragcli.records import Block, Chunk, Document
    from ragcli.store import FaissStore, make_manifest
    from ragcli.store.faiss_index import vector_batches

    per_document = 10
    documents = size // per_document
    vectors = shaped(size + 20 * per_document, seed=3)
    work = Path(tempfile.mkdtemp(prefix="ragcli-segments-"))
    print(f"\n{size:,} chunks, 12 commits each replacing one document of {per_document} chunks")
    print(
        f"{'vectors':<9}{'build s':>9}{'commit p50 s':>14}{'commit max s':>14}"
        f"{'written MB p50':>16}{'merges':>8}{'segments':>10}{'full rewrite s':>16}"
    )
    try:
        for kind in kinds:
            manifest = make_manifest("s", "synthetic", 384, 256, {"chunk_size": 200})
            manifest["vectors"] = kind
            directory = work / kind

            def document(number: int) -> Document:
                name = f"d{number}.txt"
                return Document(Path("/docs") / name, name, "text", [Block("x")], "a" * 64, 1, 1.0)

            def chunks(number: int) -> list[Chunk]:
                return [
                    Chunk(f"d{number}-{i}", i, f"chunk {i} of document {number}", 8)
                    for i in range(per_document)
                ]

            started = time.perf_counter()
            with FaissStore.create(directory, manifest) as store:
                for number in range(documents):
                    rows = vectors[number * per_document : (number + 1) * per_document]
                    store.add(document(number), chunks(number), rows)
                store.save()
            build = time.perf_counter() - started
            times, written, merges = [], [], 0
            for step in range(12):
                with FaissStore.open(directory, writable=True) as writer:
                    writer.delete_file(f"/docs/d{step}.txt")
                    start = (documents + step) * per_document
                    replacement = vectors[start : start + per_document]
                    writer.add(document(step), chunks(step), replacement)
                    before_bytes, before_segments = _written(), writer.generation
                    started = time.perf_counter()
                    writer.save()
                    times.append(time.perf_counter() - started)
                    written.append(_written() - before_bytes)
                    merges += writer.generation - before_segments - 1
            with FaissStore.open(directory) as reader:
                segments = len(reader.segments)
                biggest = max(reader.segments, key=lambda s: s.vectors)
                # What every commit cost before segments: the whole index written again.
                index = faiss.IndexIDMap2(faiss.IndexFlatIP(384))
                for ids, block in vector_batches(biggest.index):
                    index.add_with_ids(block, ids)
                path = work / "rewrite.faiss"
                started = time.perf_counter()
                faiss.write_index(index, str(path))
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
                rewrite = time.perf_counter() - started
                path.unlink()
                del index
            print(
                f"{kind:<9}{build:>9.0f}{statistics.median(times):>14.3f}{max(times):>14.3f}"
                f"{statistics.median(written) / 1e6:>16.2f}{merges:>8}{segments:>10}"
                f"{rewrite:>16.2f}",
                flush=True,
            )
            shutil.rmtree(directory)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    del np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true")
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--kinds", default="float32,int8")
    parser.add_argument("--old", default="6aee890")
    args = parser.parse_args()
    print(f"CPU: {_cpu()}")
    if args.real or not args.synthetic:
        real(args.old)
    if args.synthetic or not args.real:
        synthetic(args.size, args.kinds.split(","))


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
