"""The default engine runs on an x86-64 CPU without AVX-512 (or AMX).

The distribution's qemu-user emulates a chosen CPU: Haswell has AVX2 but no AVX-512, and qemu
raises SIGILL on any instruction the model lacks, as the real CPU would. The engine check
(``python -m ragcli.models.engines``) then runs under it on the tiny test model: it imports
xllamacpp, loads the model, fills a prompt and decodes, all on the emulated CPU. Skipped
where qemu-x86_64 is not installed (``.ci/run`` installs it) or the machine is not x86-64.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ragcli.models.engines import XLLAMACPP

from .conftest import REPO
from .tiny_llm import tiny_chat_gguf

QEMU = shutil.which("qemu-x86_64")
pytestmark = pytest.mark.skipif(
    QEMU is None or platform.machine() != "x86_64",
    reason="needs qemu-x86_64 (Debian: qemu-user) on an x86-64 machine",
)
AVX2_ONLY = "Haswell"

# vpxord zmm0, zmm0, zmm0 (AVX-512F), then ret.
_AVX512 = "62f17d48efc0c3"
_RUN_BYTES = (
    "import ctypes, mmap, sys\n"
    "page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
    "page.write(bytes.fromhex(sys.argv[1]))\n"
    "ctypes.CFUNCTYPE(None)(ctypes.addressof(ctypes.c_char.from_buffer(page)))()\n"
    "print('ran')\n"
)


def emulated(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    assert QEMU is not None
    return subprocess.run(
        [QEMU, "-cpu", AVX2_ONLY, sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def test_the_emulated_cpu_refuses_avx512() -> None:
    """The harness can tell: an AVX-512 instruction dies there (and runs where it exists)."""
    refused = emulated("-c", _RUN_BYTES, _AVX512, timeout=120)
    assert refused.returncode != 0 and "ran" not in refused.stdout
    if "avx512f" in Path("/proc/cpuinfo").read_text():
        native = subprocess.run(
            [sys.executable, "-c", _RUN_BYTES, _AVX512], capture_output=True, text=True
        )
        assert native.stdout.strip() == "ran"


@pytest.mark.skipif(not XLLAMACPP.installed(), reason="xllamacpp is not installed")
def test_xllamacpp_answers_on_a_cpu_without_avx512(tmp_path: Path) -> None:
    model = tiny_chat_gguf(tmp_path / "tiny-chat.gguf")
    done = emulated("-m", "ragcli.models.engines", XLLAMACPP.factory, "default", str(model))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["prompt_tokens"] > 100 and result["new_tokens"] > 0
