"""Generator: chat messages -> streamed answer tokens; ``open_generator`` picks the backend.

Two backends share one interface (``ChatModel``): llama.cpp, which runs a GGUF file as it is
(the bundled model included, see ``bundled_generator.py``) on one of the engines in
``engines.py``, the first that works on this CPU; and transformers, the reference and the
backend of every other model (``transformers_generator.py``; a GGUF model is dequantized once
to bf16 safetensors in the model cache by ``gguf_conversion.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from ragcli.errors import ModelError
from ragcli.models.bundled_generator import BUNDLED_GENERATOR, bundled_gguf
from ragcli.models.engines import ENGINES, Engine, cpu_name, engine_named, select_engine
from ragcli.models.transformers_generator import Generator

StatusCallback = Callable[[str], None]


def _quiet(msg: str) -> None:
    pass


class ChatModel(Protocol):
    """What ask needs of a generator, whatever its backend."""

    name: str
    load_seconds: float
    last_prompt_tokens: int
    last_token_count: int

    def load(self) -> None: ...

    @property
    def context_window(self) -> int: ...

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int: ...

    def stream(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Iterator[str]: ...


def yes_share(logprobs: Iterable[tuple[str, float]]) -> float | None:
    """P(yes) / (P(yes) + P(no)) from (first token, log-probability) pairs ("Yes", " yes",
    "YES", ...; two tokens that read the same both count); None when neither is among them."""
    import math

    yes = no = 0.0
    for token, logprob in logprobs:
        word = token.strip().lower()
        if word == "yes":
            yes += math.exp(logprob)
        elif word == "no":
            no += math.exp(logprob)
    return yes / (yes + no) if yes + no > 0 else None


def is_gguf_spec(spec: str | None) -> bool:
    return not spec or spec == BUNDLED_GENERATOR or Path(spec).suffix.lower() == ".gguf"


def engines_for_backend(backend: str, engines: Sequence[Engine]) -> list[Engine]:
    """The installed llama.cpp engines ``backend`` allows, in order of preference."""
    allowed = [e for e in engines if backend in ("auto", "llama.cpp", e.key)]
    return [e for e in allowed if e.installed()]


def choose_backend(
    spec: str | None, backend: str = "auto", engines: Sequence[Engine] = ENGINES
) -> str:
    """The backend family that runs ``spec``: "transformers" or "llama.cpp".

    "auto" picks llama.cpp for a GGUF model (the bundled one or a .gguf file) when a llama.cpp
    engine is installed, and transformers otherwise; "llama.cpp" or an engine's name insist
    on llama.cpp. Which engine runs it is decided when the generator opens (``open_generator``).
    """
    if backend == "transformers":
        return backend
    if backend == "auto":
        return (
            "llama.cpp"
            if is_gguf_spec(spec) and engines_for_backend(backend, engines)
            else "transformers"
        )
    if not is_gguf_spec(spec):
        raise ModelError(
            f"the {backend} backend runs GGUF files; {spec!r} is not one",
            "pass a .gguf file with --llm, or use --backend transformers",
        )
    if not engines_for_backend(backend, engines):
        wanted = "a llama.cpp engine" if backend == "llama.cpp" else backend
        raise ModelError(
            f"the {backend} backend needs {wanted}, which is not installed",
            "reinstall ragcli (pip install -e .) for xllamacpp, or use --backend transformers",
        )
    return "llama.cpp"


def open_generator(
    spec: str | None,
    cache_dir: Path,
    status: StatusCallback = _quiet,
    backend: str = "auto",
    warn: StatusCallback = _quiet,
    engines: Sequence[Engine] = ENGINES,
    recheck: bool = False,
) -> ChatModel:
    """A generator for ``--llm spec`` on the backend ``backend`` resolves to (not loaded yet).

    A GGUF model runs on the first installed llama.cpp engine that passes its check on this
    CPU (``engines.select_engine``: once per CPU and library version, in a child process, so
    that a native crash never takes ragcli down); under "auto", when none does, on
    transformers. ``recheck`` checks again what was checked before.
    """
    if choose_backend(spec, backend, engines) == "transformers":
        return Generator(spec, cache_dir, status)
    gguf: Path | None = None
    if not spec or spec == BUNDLED_GENERATOR:
        name = BUNDLED_GENERATOR

        def prepare() -> Path:
            return bundled_gguf(cache_dir, status)
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ModelError(f"GGUF file not found: {path}")
        name, gguf = str(path.resolve()), path

        def prepare() -> Path:
            return path

    last_resort = (
        "answering with transformers instead (slower, more memory)"
        if backend == "auto"
        else "no llama.cpp engine is left to try"
    )
    selection = select_engine(
        prepare,
        cache_dir,
        status,
        warn,
        engines_for_backend(backend, engines),
        last_resort=last_resort,
        recheck=recheck,
    )
    if selection is None:
        if backend == "auto":
            return Generator(spec, cache_dir, status)
        raise ModelError(
            f"no llama.cpp engine runs on this CPU ({cpu_name()})",
            "see the warnings above; or use --backend transformers",
        )
    return selection.engine.make(
        name, gguf, None if gguf is not None else prepare, selection.variant
    )


def engine_label(generator: object) -> str | None:
    """What runs ``generator``, with its version: "xllamacpp 2026.10.11549", "transformers
    5.23.0", "llama-cpp-python 0.3.36 (safe settings)"; None when it does not say."""
    key = getattr(generator, "engine", None)
    if not isinstance(key, str):
        return None
    engine = engine_named(key)
    if engine is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"{key} {version(key)}"
        except PackageNotFoundError:
            return key
    safe = " (safe settings)" if getattr(generator, "safe", False) else ""
    return f"{engine.label()}{safe}"
