"""Which native engine runs a GGUF generator on this machine: each checked once, in a child.

A native library that executes an instruction this CPU lacks (or one that a build gets wrong,
such as ggml's AMX path with ``-march=native`` on some Intel Xeons) kills the process with a
signal that no Python code can catch. So before an engine answers its first question on a
machine, ``select_engine`` runs it in a child process: it loads the model, fills a prompt of
over a hundred tokens (the prefill is where a batched matrix path runs) and decodes a few
tokens. The verdict is kept in the model cache, keyed by the engine, its version and build
(its compiled files), the settings variant and the CPU's flags, so a new CPU or a new or
rebuilt library is checked again and nothing else is.

Engines run without llama.cpp's extra buffer types (no weight repacking, no AMX path). One
that crashes, fails or hangs is tried again with safe settings (one thread: no OpenMP worker
threads, where per-thread CPU state broke ggml's AMX path), then the next engine is tried;
when none works, the caller falls back to transformers. Each new failure becomes one line
that says what happened and what to do.

Run as ``python -m ragcli.models.engines FACTORY VARIANT MODEL`` it is that child.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragcli.errors import ModelError

VERDICTS_FILE = "engine-checks.json"
# A check that takes longer than this hangs: two minutes, and one more per GB of model.
PROBE_TIMEOUT = 120.0
PROBE_SECONDS_PER_GB = 60.0
PROBE_NEW_TOKENS = 4
MODEL_FAILED = 3  # the child's exit status when the engine works but refuses the model
DEFAULT = "default"
SAFE = "safe"  # one thread: no OpenMP worker threads

# About 130 tokens of ordinary prose: enough for the prefill to run the batched matrix paths.
_PROBE_TEXT = (
    "The harbour tram ran along the sea wall from the ferry pier to the old customs house. "
    "Its cars were painted green and cream, and each carried forty passengers on wooden "
    "benches. In winter the line closed at six, when the lamps along the wall were lit. "
) * 2
PROBE_MESSAGES = [
    {"role": "system", "content": "Answer in one short sentence from the passage."},
    {"role": "user", "content": f"Passage:\n{_PROBE_TEXT}\nQuestion: What colour were the cars?"},
]

StatusCallback = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


@dataclass(frozen=True)
class Engine:
    """One way of running GGUF models natively: a Python binding of llama.cpp."""

    key: str  # what --backend names it, and how ragcli shows it
    module: str  # import name, checked without importing
    package: str  # distribution name, for its version
    # "module:Class" of the generator: Class(name, gguf, prepare, safe=...), and
    # Class.import_library() imports the native library (an ImportError: not usable here)
    factory: str
    hint: str  # what to install or set when it is missing or crashes
    variants: tuple[str, ...] = (DEFAULT, SAFE)

    def installed(self) -> bool:
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            return False

    def version(self) -> str:
        try:
            return importlib.metadata.version(self.package)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    def build(self) -> str:
        """A digest of the names, sizes and times of the engine's compiled libraries: the same
        version rebuilt (for another CPU, with other flags) is checked again."""
        try:
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            return ""
        folders = list(spec.submodule_search_locations or [])
        if not folders and spec.origin:
            folders = [str(Path(spec.origin).parent)]
        digest = hashlib.sha256()
        for folder in folders:
            for path in sorted(Path(folder).rglob("*.so*")):
                with contextlib.suppress(OSError):
                    stat = path.stat()
                    digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:12]

    def label(self) -> str:
        return f"{self.key} {self.version()}"

    def make(self, name: str, gguf: Path | None, prepare: Any, variant: str, **options: Any) -> Any:
        """A generator on this engine (not loaded yet)."""
        module, _, attribute = self.factory.partition(":")
        cls = getattr(importlib.import_module(module), attribute)
        return cls(name, gguf, prepare, safe=variant == SAFE, **options)


XLLAMACPP = Engine(
    key="xllamacpp",
    module="xllamacpp",
    package="xllamacpp",
    factory="ragcli.models.xllama:XLlamaGenerator",
    hint="reinstall it (pip install --force-reinstall xllamacpp); it needs a CPU with AVX2",
)
LLAMA_CPP_PYTHON = Engine(
    key="llama-cpp-python",
    module="llama_cpp",
    package="llama-cpp-python",
    factory="ragcli.models.llamacpp:LlamaCppGenerator",
    hint="rebuild it for this CPU (make install-native, which never compiles the AMX path), "
    "or remove it (pip uninstall llama-cpp-python) to use xllamacpp",
)
# Preferred first: llama-cpp-python is only there when built for this machine on purpose.
ENGINES: tuple[Engine, ...] = (LLAMA_CPP_PYTHON, XLLAMACPP)


def engine_named(key: str, engines: Sequence[Engine] = ENGINES) -> Engine | None:
    return next((e for e in engines if e.key == key), None)


# -- verdicts -----------------------------------------------------------------------------------


def cpu_flags() -> str:
    """The CPU's model name and feature flags, as the kernel reports them (or the platform)."""
    name = flags = ""
    with (
        contextlib.suppress(OSError),
        open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info,
    ):
        for line in info:
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and not name:
                name = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = " ".join(sorted(value.split()))
            if name and flags:
                break
    return f"{platform.machine()}|{name or platform.processor()}|{flags}"


def cpu_name() -> str:
    return cpu_flags().split("|")[1] or platform.machine()


@dataclass
class Verdict:
    """How one engine, in one variant, fared when checked on this CPU."""

    engine: str
    version: str
    variant: str
    ok: bool
    outcome: str  # "ok", "crashed", "failed" or "timed out"
    detail: str = ""
    cpu: str = ""
    checked_at: str = ""
    seconds: float = 0.0
    measured: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        """``xllamacpp 2026.10.11549 (safe settings) crashed: SIGILL, illegal instruction``."""
        settings = " (safe settings)" if self.variant == SAFE else ""
        text = f"{self.engine} {self.version}{settings} {self.outcome}"
        return f"{text}: {self.detail}" if self.detail and not self.ok else text


def _key(engine: Engine, variant: str) -> str:
    cpu = hashlib.sha256(cpu_flags().encode()).hexdigest()[:16]
    return f"{engine.key}|{engine.version()}|{engine.build()}|{variant}|{cpu}"


def _read_verdicts(cache_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((cache_dir / VERDICTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def recorded_verdict(engine: Engine, variant: str, cache_dir: Path) -> Verdict | None:
    """The verdict of an earlier check of ``engine`` on this CPU, if there is one."""
    found = _read_verdicts(cache_dir).get(_key(engine, variant))
    if not isinstance(found, dict):
        return None
    try:
        return Verdict(**found)
    except TypeError:
        return None


def _record(engine: Engine, variant: str, verdict: Verdict, cache_dir: Path) -> None:
    verdicts = _read_verdicts(cache_dir)
    verdicts[_key(engine, variant)] = asdict(verdict)
    with contextlib.suppress(OSError):  # unrecorded, the check simply runs again next time
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / f".{VERDICTS_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(verdicts, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, cache_dir / VERDICTS_FILE)


def forget_verdicts(cache_dir: Path) -> None:
    """Drop every recorded check, so that each engine is checked again."""
    with contextlib.suppress(OSError):
        (cache_dir / VERDICTS_FILE).unlink()


# -- checking -----------------------------------------------------------------------------------


def _signal_text(number: int) -> str:
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    description = signal.strsignal(number) or ""
    return f"{name}, {description.lower()}" if description else name


def probe(engine: Engine, variant: str, gguf: Path, timeout: float | None = None) -> Verdict:
    """Run ``engine`` on ``gguf`` in a child process and say how it went.

    A crash, a hang or an engine that cannot be imported is the engine's verdict on this CPU;
    a model the engine loads and refuses is the model's fault: ModelError, and no verdict.
    """
    if timeout is None:
        try:
            gigabytes = gguf.stat().st_size / 1e9
        except OSError:
            gigabytes = 0.0
        timeout = PROBE_TIMEOUT + PROBE_SECONDS_PER_GB * gigabytes
    started = time.perf_counter()
    verdict = Verdict(
        engine.key,
        engine.version(),
        variant,
        ok=False,
        outcome="failed",
        cpu=cpu_name(),
        checked_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    command = [sys.executable, "-m", "ragcli.models.engines", engine.factory, variant, str(gguf)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        verdict.outcome, verdict.detail = "timed out", f"no answer within {timeout:.0f} s"
    except OSError as e:
        verdict.detail = f"cannot start a check: {e}"
    else:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        if done.returncode < 0:
            verdict.outcome, verdict.detail = "crashed", _signal_text(-done.returncode)
        elif done.returncode == MODEL_FAILED:
            raise ModelError(
                lines[-1] if lines else f"cannot load {gguf}",
                "check that the file is a complete GGUF chat model",
            )
        elif done.returncode != 0:
            verdict.detail = lines[-1] if lines else f"exit status {done.returncode}"
        else:
            try:
                verdict.measured = json.loads(done.stdout.strip().splitlines()[-1])
                verdict.ok, verdict.outcome = True, "ok"
            except (ValueError, IndexError):
                verdict.detail = "the check printed no result"
    verdict.seconds = round(time.perf_counter() - started, 2)
    return verdict


@dataclass
class Selection:
    """The engine and settings chosen for this CPU, and what was tried before them."""

    engine: Engine
    variant: str
    verdict: Verdict
    failures: list[Verdict]

    def describe(self) -> str:
        settings = "safe settings" if self.variant == SAFE else "default settings"
        text = f"{self.engine.label()} ({settings})"
        if self.failures:
            text += "; " + "; ".join(v.describe() for v in self.failures)
        return text


def _failure_line(failed: Verdict, engine: Engine, next_step: str) -> str:
    return (
        f"{failed.describe()} when checked on this CPU ({failed.cpu or 'unknown'}); "
        f"{next_step}. To fix: {engine.hint}; `ragcli models prepare` checks again"
    )


def select_engine(
    gguf: Callable[[], Path],
    cache_dir: Path,
    status: StatusCallback = _quiet,
    warn: StatusCallback = _quiet,
    engines: Sequence[Engine] = ENGINES,
    last_resort: str = "answering with transformers instead (slower, more memory)",
    recheck: bool = False,
) -> Selection | None:
    """The first engine, in its first variant, that works on this CPU; None when none does.

    ``gguf`` gives the model file to check with (only called when a check must run). Each
    check runs once per CPU and library version (``recheck``: again); a failed one is
    reported through ``warn`` once, when it happens, with what is tried next (``last_resort``
    after the last one).
    """
    failures: list[Verdict] = []
    candidates = [(e, v) for e in engines if e.installed() for v in e.variants]
    for number, (engine, variant) in enumerate(candidates):
        verdict = None if recheck else recorded_verdict(engine, variant, cache_dir)
        if verdict is None:
            model = gguf()  # first, so that preparing the model is not part of the check
            settings = " with safe settings" if variant == SAFE else ""
            status(f"checking {engine.label()}{settings} on this CPU (once)")
            verdict = probe(engine, variant, model)
            _record(engine, variant, verdict, cache_dir)
            if not verdict.ok:
                later = candidates[number + 1 :]
                if later:
                    following, following_variant = later[0]
                    with_safe = " with safe settings" if following_variant == SAFE else ""
                    step = f"trying {following.label()}{with_safe} instead"
                else:
                    step = last_resort
                warn(_failure_line(verdict, engine, step))
        if verdict.ok:
            return Selection(engine, variant, verdict, failures)
        failures.append(verdict)
    return None


def describe_choice(cache_dir: Path, engines: Sequence[Engine] = ENGINES) -> str:
    """What ``select_engine`` would pick from what is recorded, without checking anything."""
    installed = [e for e in engines if e.installed()]
    if not installed:
        return "no llama.cpp engine installed"
    failures: list[str] = []
    for engine in installed:
        for variant in engine.variants:
            verdict = recorded_verdict(engine, variant, cache_dir)
            if verdict is None:
                note = f"{engine.label()}: not checked on this CPU yet (the first ask checks it)"
                return "; ".join([note, *failures])
            if verdict.ok:
                settings = "safe settings" if variant == SAFE else "default settings"
                note = f"{engine.label()} ({settings}): checked on this CPU {verdict.checked_at}"
                return "; ".join([note, *failures])
            failures.append(verdict.describe())
    failed = "every llama.cpp engine failed on this CPU (`ragcli models prepare` checks again)"
    return "; ".join([failed, *failures])


# -- the child ------------------------------------------------------------------------------------


def _child(factory: str, variant: str, model: str) -> int:
    """Import the engine, load the model with it, fill a real prompt and decode a few tokens."""
    package, _, attribute = factory.partition(":")
    cls = getattr(importlib.import_module(package), attribute)
    cls.import_library()  # a library that does not load is the engine's failure
    generator = cls(Path(model).name, Path(model), None, safe=variant == SAFE)
    started = time.perf_counter()
    try:
        generator.load()
        loaded = time.perf_counter()
        text = "".join(generator.stream(PROBE_MESSAGES, PROBE_NEW_TOKENS))
    except ModelError as e:
        print(e.message.replace("\n", " "), file=sys.stderr)
        return MODEL_FAILED
    done = time.perf_counter()
    result = {
        "load_s": round(loaded - started, 3),
        "prompt_tokens": generator.last_prompt_tokens,
        "new_tokens": generator.last_token_count,
        "generate_s": round(done - loaded, 3),
        "text_chars": len(text),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(_child(*sys.argv[1:4]))
    except Exception as e:  # the parent reads the last line of stderr
        print(f"{type(e).__name__}: {e}".replace("\n", " "), file=sys.stderr)
        sys.exit(1)
