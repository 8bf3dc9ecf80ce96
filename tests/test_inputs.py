"""Arguments -> files: what ``--ignore`` and the built-in patterns leave out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.pipeline import Events, collect_inputs
from ragcli.pipeline.inputs import Ignore
from ragcli.records import SkippedFile

runner = CliRunner()

EDITOR_LEFTOVERS = [
    "alpha.txt.swp", "alpha.txt.swx", "alpha.txt~", ".#alpha.txt", "~$report.md", "4913",
    "notes.tmp", "sub/4913", ".git/notes.md", "CVS/notes.md", "_darcs/notes.md", ".hidden.md",
]  # fmt: skip


@pytest.mark.parametrize(
    ("relative", "pattern"),
    [
        ("a.md", None),
        ("a.md.swp", "*.swp"),
        ("~$a.md", "~$*"),
        ("deep/er/4913", "4913"),
        ("drafts/a.md", "drafts"),
        ("notes/drafts/a.md", "drafts"),
        ("notes/a.bak.md", "*.bak.md"),
        ("archive/2019/a.md", "archive/2019"),
        ("archive/2020/a.md", None),
        ("other/archive/2019/a.md", None),
    ],
)
def test_a_pattern_matches_a_name_or_with_a_slash_a_path(relative: str, pattern: str) -> None:
    ignore = Ignore(["drafts/", "*.bak.md", "archive/2019"])
    assert ignore.match(relative) == pattern


def _write(root: Path, relative: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("Some words about harbours and ferries.\n")


def test_folders_and_globs_leave_out_editor_files_and_ignored_ones(corpus: Path) -> None:
    for relative in [*EDITOR_LEFTOVERS, "drafts/todo.md", "sub/old.bak.md"]:
        _write(corpus, relative)
    skipped: list[SkippedFile] = []
    ignore = Ignore(["drafts", "*.bak.md"])
    found = collect_inputs([str(corpus)], skipped, Events(), ignore)
    names = sorted(item.path.relative_to(corpus).as_posix() for item in found.inputs)
    assert names == ["alpha.txt", "beta.md", "sub/gamma.rst"]
    assert skipped == []  # left out quietly, not "unsupported file type"
    globbed = collect_inputs([str(corpus / "**" / "*")], skipped, Events(), ignore)
    assert sorted(item.path.name for item in globbed.inputs) == [
        "alpha.txt", "beta.md", "gamma.rst"
    ]  # fmt: skip


def test_an_ignored_file_argument_is_skipped_with_its_reason(corpus: Path) -> None:
    _write(corpus, "~$report.md")
    skipped: list[SkippedFile] = []
    found = collect_inputs([str(corpus / "~$report.md")], skipped, Events())
    assert found.inputs == []
    assert [s.reason for s in skipped] == ["ignored (matches '~$*')"]


@pytest.mark.usefixtures("fake_models")
def test_ingest_ignore_option(corpus: Path) -> None:
    _write(corpus, "drafts/todo.md")
    _write(corpus, "4913")
    result = runner.invoke(
        app, ["ingest", str(corpus), "--ignore", "drafts", "--ignore", "*.rst", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sorted(Path(p).name for p in report["added"]) == ["alpha.txt", "beta.md"]
    assert report["skipped"] == [] and "4913" not in result.stderr
