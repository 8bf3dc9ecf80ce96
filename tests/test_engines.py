"""Engines checked in a child process before they answer: crashes become a fallback and a line.

The fake engines (``tests/fake_engines.py``) run in real child processes; the crashing ones
execute an undefined instruction, so the kernel ends the child with SIGILL exactly as it does
when a native library uses an instruction the CPU lacks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.errors import ModelError
from ragcli.models import engines
from ragcli.models.engines import SAFE, Engine, probe, recorded_verdict, select_engine
from ragcli.models.generation import open_generator
from ragcli.models.transformers_generator import Generator

from .conftest import REPO


def fake(key: str, cls: str) -> Engine:
    return Engine(
        key=key,
        module="tests.fake_engines",
        package="ragcli",
        factory=f"tests.fake_engines:{cls}",
        hint=f"reinstall {key}",
    )


SIGILL = fake("fake-sigill", "IllegalInstructionEngine")
UNSAFE = fake("fake-unsafe", "CrashesUnlessSafeEngine")
BROKEN = fake("fake-broken", "BrokenLibraryEngine")
REFUSING = fake("fake-refusing", "RefusesTheModelEngine")
WORKING = fake("fake-working", "WorkingEngine")


@pytest.fixture(autouse=True)
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the child imports tests.fake_engines from here


class Lines:
    def __init__(self) -> None:
        self.status: list[str] = []
        self.warnings: list[str] = []


def select(cache: Path, candidates: tuple[Engine, ...], lines: Lines, **kwargs):
    model = cache / "model.gguf"
    return select_engine(
        lambda: model,
        cache,
        lines.status.append,
        lines.warnings.append,
        candidates,
        **kwargs,
    )


def test_an_engine_killed_by_sigill_falls_back_to_the_next_one(tmp_path: Path) -> None:
    lines = Lines()
    chosen = select(tmp_path, (SIGILL, WORKING), lines)
    assert chosen is not None and chosen.engine is WORKING and chosen.variant == "default"
    assert [v.outcome for v in chosen.failures] == ["crashed", "crashed"]  # default, then safe
    assert "SIGILL" in chosen.failures[0].detail
    assert len(lines.status) == 3  # each variant checked once
    assert len(lines.warnings) == 2
    first, second = lines.warnings
    assert "fake-sigill" in first and "crashed: SIGILL, illegal instruction" in first
    assert "trying fake-sigill" in first and "with safe settings" in first
    assert "(safe settings) crashed" in second and "trying fake-working" in second
    assert "To fix: reinstall fake-sigill" in second
    recorded = recorded_verdict(SIGILL, "default", tmp_path)
    assert recorded is not None and not recorded.ok and recorded.outcome == "crashed"

    # The verdicts are kept: the next run checks nothing and says nothing.
    again = Lines()
    chosen = select(tmp_path, (SIGILL, WORKING), again)
    assert chosen is not None and chosen.engine is WORKING
    assert again.status == [] and again.warnings == []


def test_safe_settings_are_tried_before_another_engine(tmp_path: Path) -> None:
    lines = Lines()
    chosen = select(tmp_path, (UNSAFE, WORKING), lines)
    assert chosen is not None and chosen.engine is UNSAFE and chosen.variant == SAFE
    assert "with safe settings" in lines.warnings[0]
    assert "default settings" not in chosen.describe() and "safe settings" in chosen.describe()


def test_an_engine_whose_library_does_not_load_is_passed_over(tmp_path: Path) -> None:
    lines = Lines()
    chosen = select(tmp_path, (BROKEN, WORKING), lines)
    assert chosen is not None and chosen.engine is WORKING
    failed = chosen.failures[0]
    assert failed.outcome == "failed"
    assert failed.detail == (
        "ImportError: libfake.so.1: cannot open shared object file: No such file or directory"
    )
    assert "fake-broken" in lines.warnings[0] and "libfake.so.1" in lines.warnings[0]


def test_a_model_the_engine_refuses_is_the_models_error_not_the_engines(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown model architecture"):
        select(tmp_path, (REFUSING, WORKING), Lines())
    assert recorded_verdict(REFUSING, "default", tmp_path) is None  # asked again next time


def test_a_check_that_hangs_is_a_failed_check(tmp_path: Path) -> None:
    hanging = fake("fake-hanging", "HangingEngine")
    verdict = probe(hanging, "default", tmp_path / "model.gguf", timeout=3)
    assert not verdict.ok and verdict.outcome == "timed out"


def test_a_working_engine_is_measured_once(tmp_path: Path) -> None:
    lines = Lines()
    chosen = select(tmp_path, (WORKING,), lines)
    assert chosen is not None and chosen.verdict.ok and chosen.failures == []
    assert chosen.verdict.measured["new_tokens"] == 1
    assert lines.warnings == []


def test_a_new_cpu_is_checked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    select(tmp_path, (WORKING,), Lines())
    assert recorded_verdict(WORKING, "default", tmp_path) is not None
    monkeypatch.setattr(engines, "cpu_flags", lambda: "x86_64|Another CPU|avx avx2 amx_tile")
    assert recorded_verdict(WORKING, "default", tmp_path) is None
    lines = Lines()
    select(tmp_path, (WORKING,), lines)
    assert len(lines.status) == 1


def test_a_rebuilt_library_is_checked_again(tmp_path: Path) -> None:
    library = tmp_path / "engine" / "libengine.so"
    library.parent.mkdir()
    (library.parent / "__init__.py").write_text("")
    library.write_bytes(b"built for one CPU")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        engine = Engine("fake-built", "engine", "ragcli", "tests.fake_engines:WorkingEngine", "")
        first = engine.build()
        library.write_bytes(b"built again, for another CPU")
        assert engine.build() != first
    finally:
        sys.path.remove(str(tmp_path))


def test_when_every_engine_crashes_auto_answers_with_transformers(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    warnings: list[str] = []
    generator = open_generator(
        str(gguf), tmp_path, backend="auto", warn=warnings.append, engines=(SIGILL,)
    )
    assert isinstance(generator, Generator)  # not loaded: nothing converted by this test
    assert "answering with transformers instead" in warnings[-1]
    # Asking for llama.cpp itself is an error that says why, not a silent switch.
    with pytest.raises(ModelError, match="no llama.cpp engine runs on this CPU"):
        open_generator(str(gguf), tmp_path, backend="llama.cpp", engines=(SIGILL,))


def test_the_chosen_engine_builds_the_generator(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    generator = open_generator(str(gguf), tmp_path, engines=(UNSAFE, WORKING))
    assert type(generator).__name__ == "CrashesUnlessSafeEngine" and generator.safe  # type: ignore[attr-defined]
    assert "".join(generator.stream([{"role": "user", "content": "hi"}], 4)) == "ok"


def test_describe_choice_reads_the_verdicts_without_checking(tmp_path: Path) -> None:
    assert "not checked on this CPU yet" in engines.describe_choice(tmp_path, (SIGILL, WORKING))
    select(tmp_path, (SIGILL, WORKING), Lines())
    described = engines.describe_choice(tmp_path, (SIGILL, WORKING))
    assert described.startswith("fake-working")
    assert "fake-sigill" in described and "crashed: SIGILL" in described
    assert "every llama.cpp engine failed" in engines.describe_choice(tmp_path, (SIGILL,))


def test_models_shows_the_generation_path(ragcli_home: Path) -> None:
    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    generator = next(m for m in json.loads(result.output)["models"] if m["role"] == "generator")
    if generator["backend"] == "llama.cpp":
        assert "not checked on this CPU yet" in generator["engine"]
    else:
        assert generator["engine"] is None or "no llama.cpp engine" in generator["engine"]
