"""GGUF models made loadable by transformers: dequantized once to bf16 safetensors.

The bundled generator (assembled from its parts first) and any local ``.gguf`` file are
converted into a folder of the model cache, marked finished by ``CACHE_MARKER``; an ``--llm``
value is resolved to what ``from_pretrained`` loads.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ragcli.errors import ModelError
from ragcli.models import bundled_generator
from ragcli.models.bundled_generator import BUNDLED_GENERATOR, assemble_bundled_gguf
from ragcli.models.runtime import disable_transformers_progress_bars, prepare_model_runtime

BUNDLED_CACHE_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m-bf16"
CACHE_MARKER = "ragcli-conversion.json"  # written last into a finished conversion folder

StatusCallback = Callable[[str], None]


def _quiet(msg: str) -> None:
    pass


def _gguf_cache_name(gguf: Path) -> str:
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return f"{gguf.stem}-{key.hexdigest()[:12]}-bf16"


def convert_gguf(gguf: Path, destination: Path, source: dict[str, Any]) -> Path:
    """Dequantize a GGUF checkpoint once into bf16 safetensors at ``destination``."""
    prepare_model_runtime()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    disable_transformers_progress_bars()
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
                convert_gguf(
                    gguf, target, {"source": "bundled", "sha256": bundled_generator.BUNDLED_SHA256}
                )
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
