"""An embedder's ONNX export in the model cache: where it lives, what describes it, whether it
still matches the model's files, and exports that failed (remembered, so that ingest does not
try again until the model's files or the libraries change)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from ragcli.models.embedding import BUNDLED_EMBEDDER, bundled_embedder_path

EXPORT_FORMAT = 1
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "export.json"
FAILED_FILE = "failed.json"  # an export that failed, so that ingest does not retry it each time
OUTPUT_NAME = "sentence_embedding"


def model_folder(name: str) -> Path | None:
    """The folder an embedder's files are loaded from, when it can be told without loading it.

    The bundled model's folder, a local folder, or a hub id's snapshot in the Hugging Face
    cache (the revision ``main`` points at); None when none of these is found.
    """
    if name == BUNDLED_EMBEDDER:
        try:
            return bundled_embedder_path()
        except Exception:
            return None
    path = Path(name)
    if path.is_dir():
        return path
    if path.is_absolute() or name.count("/") != 1:
        return None
    hub = os.environ.get("HF_HUB_CACHE")
    if not hub:
        home = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
        hub = str(Path(home) / "hub")
    repo = Path(hub) / ("models--" + name.replace("/", "--"))
    try:
        revision = (repo / "refs" / "main").read_text().strip()
    except OSError:
        return None
    snapshot = repo / "snapshots" / revision
    return snapshot if snapshot.is_dir() else None


def model_fingerprint(folder: Path) -> str:
    """A digest of the names, sizes and modification times of a model folder's files."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        try:
            stat = path.stat()
        except OSError:
            continue
        if path.is_file():
            relative = path.relative_to(folder).as_posix()
            digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def export_dir(cache_dir: Path, name: str) -> Path:
    """Where the export of embedder ``name`` lives in the model cache."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(name).name).strip("-.")[:40] or "embedder"
    return cache_dir / "onnx" / f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"


def read_meta(folder: Path) -> dict[str, Any] | None:
    """The description (``export.json``) of the export in ``folder``; None when unreadable."""
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def find_export(cache_dir: Path, name: str) -> tuple[Path, dict[str, Any]] | None:
    """The export of embedder ``name`` and its description, if one matches the model's files."""
    folder = export_dir(cache_dir, name)
    meta = read_meta(folder)
    if meta is None or meta.get("format") != EXPORT_FORMAT or meta.get("embedder") != name:
        return None
    source = model_folder(name)
    if source is None or meta.get("fingerprint") != model_fingerprint(source):
        return None
    if not (folder / MODEL_FILE).is_file() or not (folder / TOKENIZER_FILE).is_file():
        return None
    return folder, meta


def _failure_key(name: str) -> dict[str, Any] | None:
    source = model_folder(name)
    if source is None:
        return None
    return {
        "embedder": name,
        "fingerprint": model_fingerprint(source),
        "versions": library_versions(),
    }


def failed_export(cache_dir: Path, name: str) -> str | None:
    """Why exporting embedder ``name`` failed, when it failed with the same model files and
    library versions as now (so trying again would fail again); else None."""
    try:
        recorded = json.loads((export_dir(cache_dir, name) / FAILED_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(recorded, dict):
        return None
    reason = recorded.pop("reason", None)
    return str(reason) if reason and recorded == _failure_key(name) else None


def record_failed_export(cache_dir: Path, name: str, reason: str) -> None:
    """Remember that exporting ``name`` failed (``export_embedder`` clears it on success)."""
    key = _failure_key(name)
    if key is None:
        return
    folder = export_dir(cache_dir, name)
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / FAILED_FILE).write_text(json.dumps({**key, "reason": reason}), "utf-8")


def library_versions() -> dict[str, str]:
    """The versions of the libraries an export is made and run with."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("torch", "sentence-transformers", "onnx", "onnxruntime", "tokenizers"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found
