"""Generation engines for the engine checks: one that works, and ones that die natively.

The checks import these in a child process (``python -m ragcli.models.engines
tests.fake_engines:...``), so the tests run with the repository as the working directory.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import platform
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragcli.errors import ModelError

# An instruction that is undefined on purpose: ud2 on x86-64, udf #0 on AArch64.
_UNDEFINED = {"x86_64": b"\x0f\x0b", "AMD64": b"\x0f\x0b", "aarch64": b"\x00\x00\x00\x00"}


def execute_an_illegal_instruction() -> None:
    """Run a machine instruction the CPU refuses: the kernel ends the process with SIGILL,
    as it does when a library uses an instruction set the CPU lacks."""
    code = _UNDEFINED.get(platform.machine())
    if code is not None:
        try:
            page = mmap.mmap(
                -1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
            )
        except (OSError, ValueError, AttributeError):
            page = None  # writable code pages refused here: send the signal instead
        if page is not None:
            page.write(code)
            address = ctypes.addressof(ctypes.c_char.from_buffer(page))
            ctypes.CFUNCTYPE(None)(address)()
    os.kill(os.getpid(), signal.SIGILL)


class WorkingEngine:
    """Answers "ok" to everything."""

    engine = "fake-working"

    def __init__(
        self, name: str, gguf: Path | None, prepare: Any, safe: bool = False, lookup: bool = False
    ) -> None:
        self.name = name
        self.safe = safe
        self.load_seconds = 0.0
        self.last_prompt_tokens = 0
        self.last_token_count = 0
        self.context_window = 4096

    @staticmethod
    def import_library() -> None:
        pass

    def load(self) -> None:
        pass

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        return sum(len(m["content"].split()) for m in messages)

    def stream(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Iterator[str]:
        self.last_prompt_tokens = self.prompt_tokens(messages)
        self.last_token_count = 1
        yield "ok"


class IllegalInstructionEngine(WorkingEngine):
    """Dies of SIGILL at its first prefill, whatever its settings."""

    engine = "fake-sigill"

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        execute_an_illegal_instruction()
        yield ""


class CrashesUnlessSafeEngine(WorkingEngine):
    """Dies of SIGILL with its default settings, works with the safe ones."""

    engine = "fake-unsafe"

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        if not self.safe:
            execute_an_illegal_instruction()
        yield from super().stream(*args, **kwargs)


class BrokenLibraryEngine(WorkingEngine):
    """Its native library does not load here (as xllamacpp without the system's libgomp)."""

    engine = "fake-broken"

    @staticmethod
    def import_library() -> None:
        import tests.fake_broken_library  # noqa: F401


class RefusesTheModelEngine(WorkingEngine):
    """Works, but cannot load this model file, and says why."""

    engine = "fake-refusing"

    def load(self) -> None:
        raise ModelError("cannot load generator 'model.gguf': unknown model architecture")


class HangingEngine(WorkingEngine):
    """Never finishes loading."""

    engine = "fake-hanging"

    def load(self) -> None:
        time.sleep(3600)
