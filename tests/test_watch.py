"""``ragcli ingest --watch`` on real processes (``python -m tests.fakecli``, the fake embedder):
every change is synced within a bound, temporary and ignored files never enter, a signal stops
it cleanly, and a kill in the middle of a sync loses and duplicates nothing.

No test sleeps to let the watcher catch up: each waits, with a deadline, for the line the watch
writes on stderr once a change is committed, or for the collection to reach a state.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import load_settings

from .conftest import REPO, check_consistent, stored_files

# How long a change may take to be synced: about a quarter of a second here; the bound is
# for a slow, shared CI machine.
WITHIN_S = 15.0


class Watch:
    """``ingest --watch`` in a process of its own, its stderr read line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakecli", "ingest", "--watch", *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "RAGCLI_COMMIT_EVERY": "0", **(env or {})},
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.expect(r"watching for changes")

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, pattern: str, within: float = WITHIN_S) -> str:
        """The next line matching ``pattern`` (the lines before it are kept in ``seen``)."""
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"the watch ended ({self.process.wait()}): {self.seen}")
            self.seen.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r} within {within} s: {self.seen}")

    def stop(self, signum: int = signal.SIGINT) -> tuple[int, str]:
        """Send the signal; the exit status and stdout (the rest of stderr goes to ``seen``)."""
        self.process.send_signal(signum)
        status = self.process.wait(timeout=WITHIN_S)
        assert self.process.stdout is not None  # little, and only at the end: no deadlock
        stdout = self.process.stdout.read()
        while (line := self.lines.get(timeout=WITHIN_S)) is not None:
            self.seen.append(line)
        return status, stdout

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def watches() -> Iterator[Callable[..., Watch]]:
    """Start watches; whatever a failed test left running is killed."""
    started: list[Watch] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Watch:
        started.append(Watch(*args, env=env))
        return started[-1]

    yield start
    for watch in started:
        watch.kill()


def _files(collection: str) -> list[str]:
    return stored_files(load_settings(collection=collection))


def _wait_for(condition: Callable[[], bool], within: float = WITHIN_S) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the collection did not get there in time"
        time.sleep(0.02)


@pytest.mark.usefixtures("fake_models")
def test_added_changed_deleted_and_renamed_files_are_synced(
    corpus: Path, watches: Callable[..., Watch]
) -> None:
    assert CliRunner().invoke(app, ["ingest", str(corpus), "-c", "notes"]).exit_code == 0
    watch = watches(str(corpus), "-c", "notes")
    assert re.search(r"'notes': 0 added, 0 updated, 0 removed, 3 unchanged", watch.seen[-1])
    (corpus / "new.md").write_text("# New\n\nThe ferry runs again since 2020.\n")
    watch.expect(r"^added \S*new\.md \(1 chunk\)$")
    with (corpus / "alpha.txt").open("a") as alpha:
        alpha.write("\nThe bridge was painted red in 1990.\n")
    watch.expect(r"^updated \S*alpha\.txt \(\d+ chunks?\)$")
    (corpus / "beta.md").unlink()
    watch.expect(r"^removed \S*beta\.md$")
    (corpus / "sub" / "gamma.rst").rename(corpus / "sub" / "delta.rst")
    watch.expect(r"^removed \S*gamma\.rst$")
    watch.expect(r"^added \S*delta\.rst \(\d+ chunks?\)$")
    (corpus / "more" / "deeper").mkdir(parents=True)  # a new folder, then a file in it
    (corpus / "more" / "deeper" / "tide.txt").write_text("High tide comes at noon.\n")
    watch.expect(r"^added \S*tide\.txt")

    status, stdout = watch.stop()
    assert status == 0
    # The whole watch on stdout, as an ingest's summary: what changed from start to end.
    assert re.match(r"collection 'notes': 3 added, 1 updated, 2 removed, 0 unchanged", stdout)
    assert _files("notes") == ["alpha.txt", "delta.rst", "new.md", "tide.txt"]
    check_consistent(load_settings(collection="notes"))


def test_file_and_glob_arguments_are_watched(tmp_path: Path, watches: Callable[..., Watch]) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "one.md").write_text("The first note, on lanterns.\n")
    (folder / "loose.txt").write_text("A loose note on cranes.\n")
    (folder / "other.txt").write_text("Not watched: neither named nor matched.\n")
    watch = watches(str(folder / "loose.txt"), str(folder / "*.md"), "-c", "some")
    assert _files("some") == ["loose.txt", "one.md"]
    (folder / "two.md").write_text("The second note, on gulls.\n")
    watch.expect(r"^added \S*two\.md")
    (folder / "one.md").rename(folder / "uno.md")
    watch.expect(r"^removed \S*one\.md$")
    watch.expect(r"^added \S*uno\.md")
    (folder / "loose.txt").unlink()
    watch.expect(r"^removed \S*loose\.txt$")
    (folder / "other.txt").write_text("Still not watched.\n")
    (folder / "three.md").write_text("The third note, on quays.\n")
    watch.expect(r"^added \S*three\.md")
    assert watch.stop()[0] == 0
    assert not [line for line in watch.seen if "other.txt" in line]
    assert _files("some") == ["three.md", "two.md", "uno.md"]


def test_editor_files_and_ignored_patterns_never_enter(
    corpus: Path, watches: Callable[..., Watch]
) -> None:
    watch = watches(str(corpus), "-c", "notes", "--ignore", "drafts", "--ignore", "*.bak.md")
    alpha = corpus / "alpha.txt"
    # vim's save: probe file, backup by rename, new file written, backup removed
    (corpus / "4913").write_text("")
    (corpus / "4913").unlink()
    alpha.rename(corpus / "alpha.txt~")
    alpha.write_text("The Brindle bridge opened in 1933.\n")
    (corpus / "alpha.txt~").unlink()
    # other editors' swap, lock and temporary files, version control, ignored patterns
    for relative in [
        ".alpha.txt.swp", "alpha.txt.swx", ".#beta.md", "~$beta.md", "beta.md.tmp",
        ".git/HEAD.md", "CVS/Entries.md", "drafts/later.md", "sub/old.bak.md", "kept.txt~",
    ]:  # fmt: skip
        path = corpus / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("Words about the harbour.\n")
    watch.expect(r"^updated \S*alpha\.txt")
    (corpus / "last.md").write_text("A real note about the quay.\n")
    watch.expect(r"^added \S*last\.md")
    assert watch.stop()[0] == 0
    changes = [line for line in watch.seen if re.match(r"(added|updated|removed) ", line)]
    assert [line.split()[0] + " " + Path(line.split()[1]).name for line in changes] == [
        "updated alpha.txt", "added last.md"
    ]  # fmt: skip
    assert _files("notes") == ["alpha.txt", "beta.md", "gamma.rst", "last.md"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_watch_with_the_last_change_committed(
    corpus: Path, watches: Callable[..., Watch], signum: int
) -> None:
    watch = watches(str(corpus), "-c", "notes", "--json")
    (corpus / "new.md").write_text("The ferry runs again.\n")
    watch.expect(r"^added \S*new\.md")
    started = time.monotonic()
    status, stdout = watch.stop(signum)
    assert status == 0 and time.monotonic() - started < 5
    assert '"added": [' in stdout and "new.md" in stdout  # the summary, as --json asks
    assert watch.seen[-1] == "stopped"
    assert _files("notes") == ["alpha.txt", "beta.md", "gamma.rst", "new.md"]
    check_consistent(load_settings(collection="notes"))


def test_a_signal_during_a_sync_commits_the_files_done_and_stops(
    corpus: Path, watches: Callable[..., Watch]
) -> None:
    watch = watches(str(corpus), "-c", "notes", env={"RAGCLI_TEST_EMBED_DELAY": "0.3"})
    for number in range(20):
        (corpus / f"note{number:02d}.txt").write_text(f"Note {number} on tides and gulls.\n")
    _wait_for(lambda: len(_files("notes")) > 3)  # the sync has committed a file or more
    status, _ = watch.stop()
    assert status == 0
    assert watch.seen[-1].startswith("stopped during a sync: the files it had done are committed")
    done = _files("notes")
    assert 3 < len(done) < 23  # stopped after a commit, long before the last file
    check_consistent(load_settings(collection="notes"))


def test_kill_9_during_a_watched_sync_then_ingest_again(
    corpus: Path, watches: Callable[..., Watch]
) -> None:
    watch = watches(str(corpus), "-c", "notes", env={"RAGCLI_TEST_EMBED_DELAY": "0.2"})
    for number in range(12):
        (corpus / f"note{number:02d}.txt").write_text(f"Note {number} on tides and gulls.\n")
    (corpus / "beta.md").unlink()
    _wait_for(lambda: "note00.txt" in _files("notes"))
    watch.process.send_signal(signal.SIGKILL)
    watch.process.wait()
    settings = load_settings(collection="notes")
    check_consistent(settings)
    partial = _files("notes")
    assert "beta.md" not in partial and len(partial) < 14

    again = subprocess.run(
        [sys.executable, "-m", "tests.fakecli", "ingest", str(corpus), "-c", "notes"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr
    expected = sorted(["alpha.txt", "gamma.rst", *(f"note{n:02d}.txt" for n in range(12))])
    assert _files("notes") == expected  # nothing lost, nothing twice (check() counts too)
    check_consistent(settings)


@pytest.mark.parametrize(
    ("flag", "hint"),
    [
        (["--dry-run"], "--dry-run PATH"),
        (["--rebuild"], "rebuild first"),
        (["--shard", "1/2"], "one ingester"),
    ],
)
def test_watch_refuses_what_cannot_be_watched(corpus: Path, flag: list[str], hint: str) -> None:
    result = CliRunner().invoke(app, ["ingest", str(corpus), "--watch", *flag])
    assert result.exit_code == 2
    assert f"--watch cannot be combined with {flag[0]}" in result.stderr
    assert hint in result.stderr


def test_watching_a_folder_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["ingest", "--watch", str(tmp_path / "nowhere" / "*.md")])
    assert result.exit_code == 2 and "cannot watch" in result.stderr
