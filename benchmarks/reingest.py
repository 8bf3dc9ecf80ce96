"""Re-ingest cost: a folder ingested once, then again unchanged, touched, and with one file changed.

    python benchmarks/reingest.py [FOLDER]     (default: ../shared/data/cranfield/docs)

Copies the folder to a temporary place (so that files can be touched and changed), ingests it
into a fresh collection with the bundled embedder, then prints:

- the unchanged re-ingest, in process and as ``python -m ragcli ingest`` (interpreter start
  included), as a fraction of the first ingest;
- a re-ingest after every file was touched (new mtime, same content: each file is hashed),
  in process and as a command (which must not import torch: there is nothing to embed);
- a re-ingest after one file changed, with the number of chunks embedded (only that file's);
- the folder renamed, then the same files into another collection: the embedding cache's
  reuse (nothing should be embedded), then a collection with the cache off against one with
  an emptied cache (every vector embedded and written): what keeping the vectors costs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else REPO.parent / "shared/data/cranfield/docs")
    work = Path(tempfile.mkdtemp(prefix="ragcli-reingest-"))
    folder = work / "docs"
    shutil.copytree(source, folder)
    os.environ["RAGCLI_HOME"] = str(work / "home")

    from ragcli import pipeline
    from ragcli.config import load_settings
    from ragcli.models import embedding
    from ragcli.models.embedding import Embedder

    embedded: list[int] = []

    class Counting(Embedder):
        def embed_documents(self, texts, normalize=True):  # type: ignore[no-untyped-def]
            embedded.append(len(texts))
            return super().embed_documents(texts, normalize)

    embedding.open_embedder = Counting  # type: ignore[assignment]
    settings = load_settings(collection="bench")

    def ingest(label: str):
        embedded.clear()
        started = time.perf_counter()
        report = pipeline.ingest(settings, [str(folder)])
        seconds = time.perf_counter() - started
        print(
            f"{label}: {seconds:.3f} s; {len(report.added)} added, {len(report.updated)} "
            f"updated, {len(report.unchanged)} unchanged; {sum(embedded)} chunks embedded"
        )
        return seconds, report

    files = sum(1 for _ in folder.rglob("*.txt"))
    print(f"{source}: {files} files, copied to {folder}")
    first, report = ingest("first ingest (embedder load included)")
    unchanged, _ = ingest("unchanged re-ingest, in process")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ragcli", "ingest", str(folder), "-c", "bench", "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    command = time.perf_counter() - started
    print(f"unchanged re-ingest, python -m ragcli ingest: {command:.3f} s ({done.stdout.strip()})")
    ratios = f"{unchanged / first:.2%} in process, {command / first:.2%} as a command"
    print(f"  ratio to the first ingest: {ratios}")

    for path in folder.rglob("*.txt"):
        os.utime(path, (1e9, 1e9))
    ingest("every file touched (same content, hashed)")
    for path in folder.rglob("*.txt"):
        os.utime(path, (2e9, 2e9))
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ragcli", "ingest", str(folder), "-c", "bench"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    command = time.perf_counter() - started
    torch = any(line.rstrip().endswith("| torch") for line in done.stderr.splitlines())
    print(
        f"every file touched again, python -m ragcli ingest: {command:.3f} s "
        f"({command / first:.2%} of the first ingest; torch imported: {'yes' if torch else 'no'})"
    )

    changed = sorted(folder.rglob("*.txt"))[0]
    changed.write_text(changed.read_text() + "\nOne more sentence about supersonic flutter.\n")
    _, report = ingest(f"one file changed ({changed.name})")
    from ragcli.store import FaissStore

    with FaissStore.open(settings.collection_dir, load_vectors=False) as store:
        (document,) = store.documents_of_file(str(changed.resolve()))
    print(f"  chunks of that file: {document.chunks}; chunks embedded: {sum(embedded)}")

    # The embedding cache: the same passages under other names, or in another collection.
    renamed = work / "renamed"
    shutil.move(str(folder), renamed)
    folder = renamed
    seconds, report = ingest("the folder renamed (every file new to the collection)")
    print(f"  chunks added: {report.chunks_added}, reused from the embedding cache: "
          f"{report.chunks_reused}; {seconds / first:.2%} of the first ingest")  # fmt: skip
    settings = load_settings(collection="bench-copy")
    seconds, report = ingest("the same files into another collection")
    print(f"  reused: {report.chunks_reused} of {report.chunks_added}; "
          f"{seconds / first:.2%} of the first ingest")  # fmt: skip
    # What keeping the vectors costs: the same files with the cache off, then with an empty
    # cache (every vector embedded and written), each into a new collection.
    os.environ["RAGCLI_EMBED_CACHE"] = "off"
    settings = load_settings(collection="bench-no-cache")
    off, _ = ingest("the same files into a third collection, cache off")
    del os.environ["RAGCLI_EMBED_CACHE"]
    from ragcli.models import embedding_cache

    embedding_cache.clear(settings.home)
    settings = load_settings(collection="bench-empty-cache")
    on, _ = ingest("the same files into a fourth collection, cache emptied first")
    print(f"  writing the cache costs: {on / off:.2f} of the ingest without it")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
