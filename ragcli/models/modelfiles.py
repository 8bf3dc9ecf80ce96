"""What a model folder or GGUF file holds, read from its configs and weight headers.

Nothing here loads weights: parameter counts come from the safetensors headers (a JSON block
at the start of each file) or the GGUF tensor table, sizes and limits from ``config.json``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any

from ragcli.models.embedding import declared_prompt

_SAFETENSORS_BYTES = {
    "F64": 8,
    "I64": 8,
    "U64": 8,
    "F32": 4,
    "I32": 4,
    "U32": 4,
    "F16": 2,
    "BF16": 2,
    "I16": 2,
    "U16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}
# Hub model cards spell licences in lower case; show the usual SPDX spelling of common ones.
_SPDX = {
    "apache-2.0": "Apache-2.0",
    "mit": "MIT",
    "bsd-3-clause": "BSD-3-Clause",
    "cc-by-4.0": "CC-BY-4.0",
    "cc-by-sa-4.0": "CC-BY-SA-4.0",
    "cc-by-nc-4.0": "CC-BY-NC-4.0",
}
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length")
_BF16_BYTES = 2  # ragcli loads generators in bf16


@dataclass
class ModelFacts:
    """Size and shape of a model, as far as its files tell without loading it."""

    parameters: int | None = None
    weight_bytes: int | None = None  # the weights as stored
    dimension: int | None = None  # embedding dimension (embedder) or hidden size (generator)
    max_tokens: int | None = None  # longest input (embedder) or context window (generator)
    kv_bytes_per_token: int | None = None  # generator: bf16 key/value cache per token
    licence: str | None = None
    query_prompt: str = ""
    document_prompt: str = ""
    disk_bytes: int = 0


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; {} when it is missing or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def disk_size(paths: Iterable[Path]) -> int:
    """Bytes on disk of files and (recursively) folders."""
    total = 0
    for path in paths:
        if path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            total += path.stat().st_size
    return total


def safetensors_weights(files: Iterable[Path]) -> tuple[int, int]:
    """(parameters, bytes) of the tensors listed in the headers of safetensors files."""
    parameters = size = 0
    for file in files:
        with open(file, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
        for name, tensor in header.items():
            if name == "__metadata__":
                continue
            count = prod(tensor["shape"])
            size += count * _SAFETENSORS_BYTES.get(tensor["dtype"], 4)
            if tensor["dtype"].startswith(("F", "BF")):  # integer tensors are buffers, not weights
                parameters += count
    return parameters, size


def card_licence(folder: Path) -> str | None:
    """The ``license:`` of a hub model card's front matter (README.md), if any."""
    try:
        lines = (folder / "README.md").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if not lines or lines[0].strip() != "---":
        return None
    for line in lines[1:]:
        if line.strip() == "---":
            break
        key, _, value = line.partition(":")
        if key.strip() == "license" and value.strip():
            licence = value.strip().strip("'\"")
            return _SPDX.get(licence.lower(), licence)
    return None


def _weights_in(folder: Path) -> tuple[int | None, int | None]:
    files = sorted(folder.rglob("*.safetensors"))
    if files:
        return safetensors_weights(files)
    legacy = sorted(folder.rglob("pytorch_model*.bin"))
    return (None, disk_size(legacy)) if legacy else (None, None)


def _context_window(config: dict[str, Any]) -> int | None:
    for key in _CONTEXT_KEYS:
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


def sentence_transformer_facts(folder: Path) -> ModelFacts:
    """Facts of an embedder folder (sentence-transformers layout, or a bare transformers one)."""
    config = read_json(folder / "config.json")
    hidden = config.get("hidden_size") or config.get("d_model")
    dimension = hidden if isinstance(hidden, int) else None
    # The output dimension is the last Pooling/Dense module's, when the folder has them.
    for module in _read_list(folder / "modules.json"):
        module_config = read_json(folder / str(module.get("path", "")) / "config.json")
        kind = str(module.get("type", ""))
        if kind.endswith("Pooling"):
            value = module_config.get("embedding_dimension") or module_config.get(
                "word_embedding_dimension"
            )
            dimension = value if isinstance(value, int) else dimension
        elif kind.endswith("Dense") and isinstance(module_config.get("out_features"), int):
            dimension = module_config["out_features"]
    max_seq = read_json(folder / "sentence_bert_config.json").get("max_seq_length")
    prompts = read_json(folder / "config_sentence_transformers.json").get("prompts") or {}
    parameters, weight_bytes = _weights_in(folder)
    return ModelFacts(
        parameters=parameters,
        weight_bytes=weight_bytes,
        dimension=dimension,
        max_tokens=max_seq if isinstance(max_seq, int) else _context_window(config),
        licence=card_licence(folder),
        query_prompt=declared_prompt(prompts, "query"),
        document_prompt=declared_prompt(prompts, "document"),
        disk_bytes=disk_size([folder]),
    )


def _read_list(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []


def _kv_bytes(layers: Any, kv_heads: Any, head_dim: Any) -> int | None:
    if all(isinstance(v, int) and v > 0 for v in (layers, kv_heads, head_dim)):
        return 2 * layers * kv_heads * head_dim * _BF16_BYTES
    return None


def transformers_facts(folder: Path) -> ModelFacts:
    """Facts of a causal-LM folder (``config.json`` plus safetensors)."""
    config = read_json(folder / "config.json")
    config = config.get("text_config") or config
    hidden = config.get("hidden_size")
    heads = config.get("num_attention_heads")
    head_dim = config.get("head_dim") or (
        hidden // heads if isinstance(hidden, int) and isinstance(heads, int) and heads else None
    )
    parameters, weight_bytes = _weights_in(folder)
    return ModelFacts(
        parameters=parameters,
        weight_bytes=weight_bytes,
        dimension=hidden if isinstance(hidden, int) else None,
        max_tokens=_context_window(config),
        kv_bytes_per_token=_kv_bytes(
            config.get("num_hidden_layers"), config.get("num_key_value_heads") or heads, head_dim
        ),
        licence=card_licence(folder),
        disk_bytes=disk_size([folder]),
    )


def weights_memory(facts: ModelFacts, role: str) -> int | None:
    """Memory the weights take once loaded: bf16 for generators, as stored for embedders."""
    if role == "generator" and facts.parameters:
        return facts.parameters * _BF16_BYTES
    return facts.weight_bytes


# -- GGUF --------------------------------------------------------------------------------------

# Sizes of GGUF's fixed-width value types, by type id (8 is a string, 9 an array).
_GGUF_SCALARS = {
    0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"
}  # fmt: skip
_GGUF_STRING, _GGUF_ARRAY = 8, 9


class _Header:
    """Reads the start of a GGUF file that may be split across several files."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = files
        self.data = b""
        self.pos = 0
        self._grow(1 << 22)

    def _grow(self, want: int) -> None:
        chunks, remaining = [], want
        for file in self.files:
            if remaining <= 0:
                break
            with open(file, "rb") as f:
                chunk = f.read(remaining)
            chunks.append(chunk)
            remaining -= len(chunk)
        self.data = b"".join(chunks)

    def take(self, size: int) -> bytes:
        while self.pos + size > len(self.data):
            before = len(self.data)
            self._grow(max(2 * before, self.pos + size))
            if len(self.data) == before:
                raise ValueError("truncated GGUF header")
        piece = self.data[self.pos : self.pos + size]
        self.pos += size
        return piece

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, self.take(size))[0]

    def string(self) -> str:
        return self.take(self.unpack("Q")).decode("utf-8", errors="replace")

    def value(self, kind: int) -> Any:
        if kind == _GGUF_STRING:
            return self.string()
        if kind == _GGUF_ARRAY:
            item_kind, count = self.unpack("I"), self.unpack("Q")
            if item_kind in _GGUF_SCALARS:  # skipped: only vocabularies are this long
                self.take(count * struct.calcsize("<" + _GGUF_SCALARS[item_kind]))
            else:
                for _ in range(count):
                    self.value(item_kind)
            return None
        return self.unpack(_GGUF_SCALARS[kind])


def gguf_facts(files: Sequence[Path]) -> ModelFacts:
    """Facts of a GGUF checkpoint (``files`` concatenated in order make the file)."""
    header = _Header(files)
    if header.take(4) != b"GGUF":
        raise ValueError("not a GGUF file")
    version = header.unpack("I")
    if version < 2:
        raise ValueError(f"GGUF version {version} is not supported")
    tensors, entries = header.unpack("Q"), header.unpack("Q")
    meta: dict[str, Any] = {}
    for _ in range(entries):
        key = header.string()
        meta[key] = header.value(header.unpack("I"))
    parameters = 0
    for _ in range(tensors):
        header.string()
        dims = [header.unpack("Q") for _ in range(header.unpack("I"))]
        header.unpack("I")  # quantization type
        header.unpack("Q")  # data offset
        parameters += prod(dims)
    arch = meta.get("general.architecture", "")
    hidden = meta.get(f"{arch}.embedding_length")
    heads = meta.get(f"{arch}.attention.head_count")
    head_dim = meta.get(f"{arch}.attention.key_length") or (
        hidden // heads if isinstance(hidden, int) and isinstance(heads, int) and heads else None
    )
    return ModelFacts(
        parameters=parameters,
        weight_bytes=disk_size(files),
        dimension=hidden,
        max_tokens=meta.get(f"{arch}.context_length"),
        kv_bytes_per_token=_kv_bytes(
            meta.get(f"{arch}.block_count"),
            meta.get(f"{arch}.attention.head_count_kv") or heads,
            head_dim,
        ),
        licence=meta.get("general.license"),
        disk_bytes=disk_size(files),
    )
