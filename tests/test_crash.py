"""Crash safety, proven on real processes: ``python -m ragcli ingest`` with the bundled embedder
is killed with SIGKILL at several points; each time the collection must open, agree with
itself (vectors = chunks = lexical rows, no duplicates, only whole files), and the next ingest
must finish with exactly what one clean ingest gives.

The kill-and-resume test commits after every file (``RAGCLI_COMMIT_EVERY=0``), so its kills
land between many commits and in the middle of files.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ragcli.store import FaissStore

from .conftest import REPO

pytestmark = pytest.mark.integration

FILES = 36
WORDS = (
    "harbour ferry lighthouse keeper tram copper kettle bridge river island tide storm "
    "festival lantern market quay crane gull cliff school archive ledger mill orchard"
).split()


def _corpus(root: Path) -> Path:
    rng = random.Random(7)
    for number in range(FILES):
        folder = root / f"part{number % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        paragraphs = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 160))).capitalize() + "."
            for _ in range(rng.randint(1, 4))
        ]
        (folder / f"note{number:02d}.txt").write_text(
            f"Note {number}\n\n" + "\n\n".join(paragraphs) + "\n"
        )
    return root


def _env(home: Path, commit_every: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")}
    return {**env, "RAGCLI_HOME": str(home), "RAGCLI_COMMIT_EVERY": commit_every,
            "HF_HUB_OFFLINE": "1"}  # fmt: skip


def _ragcli(home: Path, *args: str, commit_every: str = "60") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ragcli", *args],
        cwd=REPO,
        env=_env(home, commit_every),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _start(home: Path, *args: str, commit_every: str = "60") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ragcli", *args],
        cwd=REPO,
        env=_env(home, commit_every),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _committed(directory: Path) -> int:
    """Documents in the last commit, as a reader sees them (0 before the first)."""
    if not (directory / "meta.sqlite").exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{directory / 'meta.sqlite'}?mode=ro", uri=True, timeout=5)
        try:
            return int(db.execute("SELECT count(*) FROM documents").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def _kill_when(process: subprocess.Popen, ready, timeout: float = 300) -> bool:
    """SIGKILL the process once ``ready()`` holds; False if it ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if ready():
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.005)
    process.kill()
    raise AssertionError("the ingest did not get there in time")


def _contents(directory: Path) -> dict[str, tuple[list[str], np.ndarray]]:
    """Check the collection agrees with itself; return each document's chunks and vectors."""
    with FaissStore.open(directory) as store:
        db = store.db
        chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        assert (
            store.chunk_count
            == chunks
            == db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
        )
        assert not db.execute(
            "SELECT 1 FROM chunks GROUP BY document_id, ordinal HAVING count(*) > 1"
        ).fetchall()
        found: dict[str, tuple[list[str], np.ndarray]] = {}
        for document_id, file, stored_chunks in db.execute(
            "SELECT id, file, chunks FROM documents ORDER BY file"
        ).fetchall():
            rows = db.execute(
                "SELECT id, text FROM chunks WHERE document_id = ? ORDER BY ordinal",
                (document_id,),
            ).fetchall()
            assert len(rows) == stored_chunks  # a document is never half there
            name = str(Path(file).relative_to(Path(file).parents[1]))
            found[name] = ([text for _, text in rows], store.vectors([i for i, _ in rows]))
        assert len(found) == store.counts()["documents"]
        return found


def _same(actual: dict, expected: dict, partial: bool = False) -> None:
    if partial:
        assert set(actual) <= set(expected)
    else:
        assert set(actual) == set(expected)
    for name, (texts, vectors) in actual.items():
        assert texts == expected[name][0]
        # The same chunks, in another batch: bfloat16 embedding (the default where the CPU
        # has it) moves vectors by a few 1e-4 with the padding of the batch.
        cosines = (vectors * expected[name][1]).sum(axis=1)
        assert cosines.min() > 0.9999, cosines.min()


def test_sigkill_anywhere_leaves_a_whole_collection_and_the_next_ingest_resumes(
    tmp_path: Path,
) -> None:
    corpus = _corpus(tmp_path / "corpus")
    clean = tmp_path / "clean"
    done = _ragcli(clean, "ingest", str(corpus), "--json", "-q")
    assert done.returncode == 0, done.stderr
    reference = _contents(clean / "collections" / "default")
    assert len(reference) == FILES

    home = tmp_path / "home"
    directory = home / "collections" / "default"
    # Killed before the first commit (the embedder is still loading): no collection at all.
    process = _start(home, "ingest", str(corpus), commit_every="0")
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not directory.exists()
    assert json.loads(_ragcli(home, "collections", "--json").stdout) == {"collections": []}

    # Killed once k files are committed; each run resumes where the last one stopped.
    for k in (1, 12, 24):
        process = _start(home, "ingest", str(corpus), commit_every="0")
        assert _kill_when(process, lambda k=k: _committed(directory) >= k)
        state = _contents(directory)
        assert k <= len(state) < FILES
        _same(state, reference, partial=True)

    finished = _ragcli(home, "ingest", str(corpus), "--json", "-q", commit_every="0")
    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout)
    assert report["files"]["added"] + report["files"]["unchanged"] == FILES
    assert report["files"]["updated"] == report["files"]["removed"] == 0
    _same(_contents(directory), reference)


def _holds_lock(process: subprocess.Popen, directory: Path) -> bool:
    """Whether the process holds the collection's writer lock (read from /proc/locks)."""
    try:
        inode = (directory / "write.lock").stat().st_ino
    except FileNotFoundError:
        return False
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        mine = "FLOCK" in fields and str(process.pid) in fields
        if mine and any(f.endswith(f":{inode}") for f in fields):
            return True
    return False


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="reads /proc/locks (Linux)")
def test_second_ingest_is_refused_at_once_while_readers_work(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    home = tmp_path / "home"
    directory = home / "collections" / "default"
    first = _ragcli(home, "ingest", str(corpus / "part0"), "-q")
    assert first.returncode == 0, first.stderr
    process = _start(home, "ingest", str(corpus))
    try:
        deadline = time.monotonic() + 60
        while not _holds_lock(process, directory):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        second = _ragcli(home, "ingest", str(corpus))
        status = _ragcli(home, "status", "--json")
        listing = _ragcli(home, "list")
        still_running = process.poll() is None
    finally:
        assert process.wait() == 0
    assert still_running, "the first ingest ended before the checks"
    assert second.returncode == 8
    assert "is being written by another ragcli process" in second.stderr
    assert status.returncode == 0 and json.loads(status.stdout)["documents"] == FILES // 3
    assert listing.returncode == 0 and len(listing.stdout.splitlines()) == FILES // 3
    assert len(_contents(directory)) == FILES


def test_sigkill_during_a_rebuild_keeps_the_old_collection(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    home = tmp_path / "home"
    directory = home / "collections" / "default"
    assert _ragcli(home, "ingest", str(corpus), "-q").returncode == 0
    before = _contents(directory)
    staging = directory.with_name(".default.rebuild")
    for delay in (0.0, 1.0):
        process = _start(home, "ingest", "--rebuild", "--chunk-size", "64")
        started = time.monotonic()

        def ready(delay: float = delay, started: float = started) -> bool:
            return (staging / "meta.sqlite").exists() and time.monotonic() - started > delay

        assert _kill_when(process, ready)
        _same(_contents(directory), before)  # the old collection, untouched
    rebuilt = _ragcli(home, "ingest", "--rebuild", "--chunk-size", "64", "--json", "-q")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["files"]["added"] == FILES
    assert not staging.exists()
    after = _contents(directory)
    assert set(after) == set(before)
    assert sum(len(t) for t, _ in after.values()) > sum(len(t) for t, _ in before.values())


def _segment_files(directory: Path) -> set[str]:
    return {p.name for p in directory.glob("seg-*.faiss*")}


def test_sigkill_during_compact_keeps_a_whole_collection(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    home = tmp_path / "home"
    directory = home / "collections" / "default"
    # One commit a file: many segments, merged as they go; then a third of the files removed.
    done = _ragcli(home, "ingest", str(corpus), "-q", commit_every="0")
    assert done.returncode == 0, done.stderr
    removed = _ragcli(home, "remove", str(corpus / "part1"))
    assert removed.returncode == 0, removed.stderr
    expected = _contents(directory)
    assert len(expected) == FILES - FILES // 3
    with FaissStore.open(directory) as reader:
        assert len(reader.segments) > 1 and any(len(s.deleted) for s in reader.segments)
    started = time.monotonic()
    timing = _ragcli(tmp_path / "unused", "compact", "-c", "nothing")  # start-up cost alone
    startup = time.monotonic() - started
    assert timing.returncode != 0

    # Killed as soon as the merged segment's file appears (written, maybe not committed), and
    # at points around the end of start-up.
    for delay in (None, None, 0.8, 0.95, 1.05, 1.2):
        before = _segment_files(directory)
        process = _start(home, "compact")
        if delay is None:
            _kill_when(process, lambda before=before: bool(_segment_files(directory) - before))
        else:
            time.sleep(startup * delay)
            process.send_signal(signal.SIGKILL)
            process.wait()
        _same(_contents(directory), expected)
        if process.returncode != -signal.SIGKILL:
            break  # it finished first: the collection is compacted already
    finished = _ragcli(home, "compact", "--json")
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["segments_after"] == 1
    _same(_contents(directory), expected)
    with FaissStore.open(directory) as reader:
        (segment,) = reader.segments
        assert not len(segment.deleted)
    assert _segment_files(directory) == {segment.file}  # no file left behind by a kill
