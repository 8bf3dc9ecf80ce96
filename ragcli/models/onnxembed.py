"""Queries embedded without torch: the embedder's ONNX export run with onnxruntime.

Importing torch, transformers and sentence-transformers takes seconds, far longer than
embedding one question. So ``search``, ``ask`` and ``eval`` embed questions with onnxruntime
and the ``tokenizers`` library through the export ``onnxexport.py`` made at ingest, and use the
torch model whenever there is no export for the embedder, the model's files changed since the
export (``onnxcache.py``), onnxruntime is not installed, or ``RAGCLI_ONNX=off``. Nothing here
imports torch on the query path.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.models.embedding import Embedder
from ragcli.models.onnxcache import MODEL_FILE, OUTPUT_NAME, TOKENIZER_FILE, find_export

if TYPE_CHECKING:
    import numpy as np

    from ragcli.config import Settings

_log = logging.getLogger(__name__)


def onnx_enabled(settings: Settings) -> bool:
    """Whether the settings allow exporting and using the ONNX query encoder."""
    return settings.onnx != "off"


def onnxruntime_available() -> bool:
    """Whether onnxruntime can be imported (without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def _threads() -> int:
    """Threads for one query: the cores this process may use, at most four.

    A ten-word question keeps few threads busy: on the shared 2-core machine one and two
    threads both took 12-14 ms per question with the bundled model.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


class OnnxEncoder:
    """An exported embedder: texts -> the model's sentence embeddings, with onnxruntime."""

    def __init__(self, folder: Path, meta: dict[str, Any]) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.meta = meta
        self.inputs: list[str] = list(meta["inputs"])
        settings = meta["tokenizer"]
        tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        tokenizer.enable_truncation(
            int(meta["max_length"]),
            strategy="longest_first",
            direction=settings.get("truncation_side", "right"),
        )
        tokenizer.enable_padding(
            direction=settings.get("padding_side", "right"),
            pad_id=int(settings["pad_id"]),
            pad_type_id=int(settings.get("pad_type_id", 0)),
            pad_token=str(settings["pad_token"]),
        )
        self.tokenizer = tokenizer
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = _threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        # The "all" level adds layout changes for convolutions only; for a transformer it gave
        # the same speed here and took 65 ms longer to open the session.
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        # Threads that spin waiting for work slow down a machine shared with other processes,
        # and one short question does not keep them busy.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Float32 embeddings as the model outputs them (normalized only if it normalizes)."""
        import numpy as np

        if not texts:
            return np.zeros((0, int(self.meta["dimension"])), dtype=np.float32)
        # Longest first, as sentence-transformers does, so a batch pads to similar lengths.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        rows = []
        for start in range(0, len(texts), batch_size):
            batch = [texts[i] for i in order[start : start + batch_size]]
            encodings = self.tokenizer.encode_batch(batch)
            columns = {
                "input_ids": [e.ids for e in encodings],
                "attention_mask": [e.attention_mask for e in encodings],
                "token_type_ids": [e.type_ids for e in encodings],
            }
            feed = {name: np.asarray(columns[name], dtype=np.int64) for name in self.inputs}
            rows.append(self.session.run([OUTPUT_NAME], feed)[0])
        vectors = np.empty((len(texts), rows[0].shape[1]), dtype=np.float32)
        vectors[order] = np.concatenate(rows)
        return vectors


def normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as ``torch.nn.functional.normalize`` does."""
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class OnnxEmbedder(Embedder):
    """An ``Embedder`` whose queries go through the ONNX export; the rest through the model.

    Documents, token counts and anything else still load the sentence-transformers model when
    asked. If the export cannot be opened, queries use the model too.
    """

    def __init__(
        self,
        export: Path,
        meta: dict[str, Any],
        spec: str | None = None,
        batch_size: int = 32,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
    ) -> None:
        super().__init__(spec, batch_size, query_prompt, document_prompt)
        self.export = export
        self.meta = meta

    @cached_property
    def encoder(self) -> OnnxEncoder | None:
        """The onnxruntime session and tokenizer; None when the export will not open."""
        try:
            return OnnxEncoder(self.export, self.meta)
        except Exception as e:
            _log.debug("ONNX export %s not usable (%s); using torch", self.export, e)
            return None

    @property
    def backend(self) -> str:
        return "onnx" if self.encoder is not None else "torch"

    def load(self) -> None:
        if self.encoder is None:
            super().load()

    @property
    def dimension(self) -> int:
        return int(self.meta["dimension"])

    def _prompt(self, role: str) -> str:
        given = self._prompts[role]
        if given is not None:
            return given
        return str(self.meta.get("prompts", {}).get(role, ""))

    def embed_queries(self, texts: Sequence[str], normalize: bool = True) -> np.ndarray:
        encoder = self.encoder
        if encoder is None:
            return super().embed_queries(texts, normalize)
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = encoder.encode([self.query_prompt + t for t in texts], self.batch_size)
        return normalized(vectors) if normalize else vectors


def onnx_query_embedder(
    settings: Settings,
    name: str,
    query_prompt: str | None = None,
    document_prompt: str | None = None,
) -> OnnxEmbedder | None:
    """An embedder for a collection's questions through its ONNX export; None when there is
    none to use (no export matching the model, onnxruntime missing, or ``RAGCLI_ONNX=off``)."""
    if not onnx_enabled(settings):
        return None
    if not onnxruntime_available():
        _log.debug("onnxruntime is not installed; questions are embedded with torch")
        return None
    found = find_export(settings.model_cache_dir, name)
    if found is None:
        _log.debug("no ONNX export of %s in %s; using torch", name, settings.model_cache_dir)
        return None
    _log.debug("questions embedded with the ONNX export in %s", found[0])
    return OnnxEmbedder(
        found[0], found[1], name, settings.batch_size, query_prompt, document_prompt
    )
