"""Settings in one place: flag > ``RAGCLI_*`` environment variable > config file > default."""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragcli.errors import UsageError

CONFIG_FILE_NAME = "config.toml"
RETRIEVAL_MODES = ("hybrid", "dense", "lexical")
BACKENDS = ("auto", "llama.cpp", "xllamacpp", "llama-cpp-python", "transformers")
EMBED_PRECISIONS = ("auto", "float32", "bfloat16")
CONTEXT_MODES = ("full", "focused")
ONNX_MODES = ("auto", "off")
# How a collection keeps its vectors (README "Compressed vectors"); fixed per collection.
VECTOR_KINDS = ("float32", "int8", "binary")
_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def default_home() -> Path:
    """The data directory: ``RAGCLI_HOME`` or the platform's user data dir."""
    env = os.environ.get("RAGCLI_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("ragcli", appauthor=False))


@dataclass
class Settings:
    """Everything a pipeline step may need to know, resolved once by ``load_settings``."""

    home: Path = field(default_factory=default_home)
    collection: str = "default"
    embed_model: str | None = None  # None: the collection's embedder, else the bundled one
    # Text put before each query/document when embedding; None: the collection's, else the
    # embedder's own (config_sentence_transformers.json); "": none.
    query_prompt: str | None = None
    document_prompt: str | None = None
    llm: str | None = None  # None: the bundled generator
    # Generation backend; "auto": GGUF models on the first llama.cpp engine that works on this
    # CPU, else transformers; "llama.cpp": the same without transformers; or one engine.
    backend: str = "auto"
    # Document embedding precision; "auto": bfloat16 where the CPU has native bf16.
    embed_precision: str = "auto"
    models_dir: Path | None = None  # None: <home>/models
    top_k: int = 4
    mode: str | None = None  # retrieval mode; None: the default (hybrid)
    max_per_doc: int | None = None  # passages per document in one result; None: no limit
    rerank: str | None = None  # cross-encoder to rerank with; None: no reranking
    chunk_size: int | None = None  # tokens of the embedder's tokenizer; None: collection's
    chunk_overlap: int | None = None
    vectors: str | None = None  # a VECTOR_KINDS entry; None: the collection's, else the default
    max_tokens: int = 256
    # What of the passages the generator reads: "focused" (the sentences that bear on the
    # question, README "Answers you can check") or "full".
    context: str = "focused"
    # ask withholds an answer whose confidence (ragcli/abstention.py) is below this; None: the
    # fitted default, 0: never on confidence
    abstain_threshold: float | None = None
    min_score: float | None = None  # ask also abstains below this retrieval evidence
    # ask also abstains below this verification (the generator's probability of "yes" that
    # the passages state the answer); None: only through the confidence.
    min_verified: float | None = None
    temperature: float = 0.0  # 0: greedy
    seed: int | None = None
    batch_size: int = 32
    commit_every: int = 60  # seconds between an ingest's commits; 0: after every file
    max_file_mb: int = 200  # bigger files are skipped by ingest
    # "auto": export the embedder to ONNX at ingest and embed questions with onnxruntime when
    # an export is there; "off": always sentence-transformers (torch).
    onnx: str = "auto"
    # Where collections live: None or "faiss" for folders under home, or a PostgreSQL URL
    # (postgresql://USER@HOST/DB); a collection ingested into a database remembers it.
    store: str | None = None

    @property
    def collection_dir(self) -> Path:
        return self.home / "collections" / self.collection

    @property
    def model_cache_dir(self) -> Path:
        return self.models_dir if self.models_dir is not None else self.home / "models"

    def validate(self) -> None:
        """Reject values no command could work with."""
        if not _COLLECTION_NAME.match(self.collection):
            raise UsageError(
                f"invalid collection name {self.collection!r}",
                "use letters, digits, '_', '-' or '.', at most 64 characters",
            )
        if self.mode is not None and self.mode not in RETRIEVAL_MODES:
            raise UsageError(
                f"unknown retrieval mode {self.mode!r}",
                f"use one of: {', '.join(RETRIEVAL_MODES)}",
            )
        for name, allowed in (
            ("backend", BACKENDS),
            ("embed_precision", EMBED_PRECISIONS),
            ("context", CONTEXT_MODES),
        ):
            if getattr(self, name) not in allowed:
                raise UsageError(
                    f"unknown {name.replace('_', '-')} {getattr(self, name)!r}",
                    f"use one of: {', '.join(allowed)}",
                )
        for name in (
            "top_k",
            "chunk_size",
            "max_tokens",
            "batch_size",
            "max_per_doc",
            "max_file_mb",
        ):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"{name.replace('_', '-')} must be at least 1")
        for name in ("abstain_threshold", "min_score", "min_verified"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise UsageError(f"{name.replace('_', '-')} must be between 0 and 1")
        if self.vectors is not None and self.vectors not in VECTOR_KINDS:
            raise UsageError(
                f"unknown vectors {self.vectors!r}", f"use one of: {', '.join(VECTOR_KINDS)}"
            )
        if self.onnx not in ONNX_MODES:
            raise UsageError(
                f"unknown onnx setting {self.onnx!r}", f"use one of: {', '.join(ONNX_MODES)}"
            )
        if self.store is not None and not (
            self.store == "faiss" or self.store.split("://", 1)[0] in ("postgresql", "postgres")
        ):
            raise UsageError(
                "--store must be 'faiss' or a PostgreSQL URL",
                "e.g. --store postgresql://USER@HOST/DB (password from PGPASSWORD or ~/.pgpass)",
            )
        if self.commit_every < 0:
            raise UsageError("commit-every must be at least 0 (seconds)")
        if self.chunk_overlap is not None and self.chunk_overlap < 0:
            raise UsageError("chunk-overlap must be at least 0")
        if (
            self.chunk_overlap is not None
            and self.chunk_size is not None
            and self.chunk_overlap >= self.chunk_size
        ):
            raise UsageError(
                f"chunk-overlap ({self.chunk_overlap}) must be below chunk-size ({self.chunk_size})"
            )


def _env_name(name: str) -> str:
    return "RAGCLI_" + name.upper()


def _read_config_file(home: Path) -> dict[str, Any]:
    path = home / CONFIG_FILE_NAME
    if not path.is_file():
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"cannot read config file {path}: {e}") from e
    return {k.replace("-", "_"): v for k, v in data.items()}


def _coerce(name: str, value: Any, kind: Any) -> Any:
    if value is None:
        return None
    try:
        if kind in ("float", float, "float | None"):
            return float(value)
        if kind in ("int", int, "int | None"):
            return int(value)
        if kind in ("Path | None", "Path"):
            return Path(str(value)).expanduser()
        return str(value)
    except (TypeError, ValueError) as e:
        raise UsageError(f"invalid value for {name}: {value!r}") from e


def load_settings(**overrides: Any) -> Settings:
    """Resolve settings from flags (``overrides``; None means not given), env, config file."""
    home = overrides.get("home") or default_home()
    home = Path(home).expanduser()
    from_file = _read_config_file(home)
    values: dict[str, Any] = {"home": home}
    for f in dataclasses.fields(Settings):
        if f.name == "home":
            continue
        given = overrides.get(f.name)
        if given is None:
            given = os.environ.get(_env_name(f.name)) or None
        if given is None:
            given = from_file.get(f.name)
        if given is not None:
            values[f.name] = _coerce(f.name, given, f.type)
    unknown = set(from_file) - {f.name for f in dataclasses.fields(Settings)}
    if unknown:
        raise UsageError(
            f"unknown setting(s) in {home / CONFIG_FILE_NAME}: {', '.join(sorted(unknown))}"
        )
    settings = Settings(**values)
    settings.validate()
    return settings
