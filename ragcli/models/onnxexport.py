"""The embedder exported to ONNX, once, where the sentence-transformers model is loaded anyway.

``export_embedder`` writes the model's whole pipeline (transformer, pooling, dense layers,
normalization) as one ONNX graph, with its fast tokenizer, into the model cache, and keeps it
only when it gives the model's own vectors (cosine within 1e-3) on sample texts, each as a
query and as a document. Nothing is left behind by an export that fails or disagrees.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.models import runtime
from ragcli.models.embedding import Embedder, declared_prompt
from ragcli.models.onnxcache import (
    EXPORT_FORMAT,
    META_FILE,
    MODEL_FILE,
    OUTPUT_NAME,
    TOKENIZER_FILE,
    export_dir,
    find_export,
    library_versions,
    model_fingerprint,
    model_folder,
    read_meta,
)
from ragcli.models.onnxembed import OnnxEmbedder, normalized, onnxruntime_available

if TYPE_CHECKING:
    import numpy as np

MIN_COSINE = 1 - 1e-3  # an export whose vectors differ more from the model's is not kept
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


# Texts the export is checked on besides the collection's own: questions and passages of
# several lengths, numbers, punctuation, accents, and one longer than any model's limit.
CHECK_TEXTS = (
    "Who founded the observatory, and in what year?",
    "what is the boundary layer thickness on a flat plate at mach 3",
    "The tram line was extended to the harbour in 1932; its cars were painted green.",
    "Résumé: naïve café owners in Zürich paid 12.50 CHF (about $14) per kilo.",
    "x",
    "HEAT TRANSFER -- laminar, turbulent & transitional flows [see ref. 4]!",
    " ".join(
        "Experiments on supersonic flow over a cone at zero incidence showed that the "
        "pressure distribution agrees with the Taylor-Maccoll solution within two percent."
        for _ in range(40)
    ),
)


class ExportError(Exception):
    """Why an embedder was not exported (the torch model is used instead)."""


@dataclass
class Export:
    """An export made (or found) for an embedder."""

    folder: Path
    min_cosine: float  # least cosine between its vectors and the model's, on the check texts
    seconds: float
    made: bool  # False: a matching export was already there


def _features(model: Any, texts: list[str]) -> dict[str, Any]:
    """What the model's first module makes of texts: token ids, masks, and so on."""
    preprocess = getattr(model, "preprocess", None) or model.tokenize
    return dict(preprocess(texts))


def _check_exportable(model: Any) -> tuple[Any, list[str]]:
    """The model's fast tokenizer and the inputs its first module takes, or ExportError."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        raise ExportError("the tokenizer is not a fast (tokenizers) one")
    if tokenizer.pad_token_id is None or tokenizer.pad_token is None:
        raise ExportError("the tokenizer has no padding token")
    for module in model:
        if getattr(module, "include_prompt", True) is False:
            raise ExportError("pooling leaves the prompt out, which the export does not")
        for setting in ("query_length", "document_length", "query_expansion"):
            if getattr(module, setting, None) is not None:
                raise ExportError(f"{type(module).__name__} sets {setting}")
    features = _features(model, ["a text"])
    unknown = set(features) - set(_INPUTS) - {"modality"}
    if unknown or features.get("modality", "text") != "text":
        raise ExportError(f"the model takes inputs the export does not: {sorted(unknown)}")
    max_length = model.max_seq_length
    if not isinstance(max_length, int) or not 0 < max_length <= 100_000:
        raise ExportError(f"no usable maximum sequence length ({max_length!r})")
    return tokenizer, [name for name in _INPUTS if name in features]


def _write_export(model: Any, folder: Path, name: str, source: Path) -> None:
    """Write the graph, the tokenizer and their description into ``folder``."""
    import torch
    from tokenizers import Tokenizer

    tokenizer, inputs = _check_exportable(model)

    class SentencePipeline(torch.nn.Module):
        """The sentence-transformers modules from token ids to the sentence embedding."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(dict(zip(inputs, tensors)))[OUTPUT_NAME]

    sample = _features(model, ["a short text", "and a somewhat longer text to pad the first one"])
    args = tuple(sample[name] for name in inputs)
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "sequence"} for name in inputs}
    axes[OUTPUT_NAME] = {0: "batch"}
    with torch.inference_mode(), warnings.catch_warnings():
        if not runtime.debugging():
            # Tracer warnings about shape checks that hold for every input of this model.
            warnings.simplefilter("ignore")
        # The TorchScript exporter: about ten times faster here than the dynamo one for the
        # bundled model (3 s against 30 s), and it needs onnx but not onnxscript.
        torch.onnx.export(
            SentencePipeline().eval(),
            args,
            str(folder / MODEL_FILE),
            input_names=inputs,
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_truncation()
    backend.no_padding()
    backend.save(str(folder / TOKENIZER_FILE))
    meta = {
        "format": EXPORT_FORMAT,
        "embedder": name,
        "source": str(source),
        "fingerprint": model_fingerprint(source),
        "dimension": int(model.get_embedding_dimension()),
        "max_length": int(model.max_seq_length),
        "inputs": inputs,
        "tokenizer": {
            "pad_id": int(tokenizer.pad_token_id),
            "pad_token": str(tokenizer.pad_token),
            "pad_type_id": int(getattr(tokenizer, "pad_token_type_id", 0) or 0),
            "padding_side": str(getattr(tokenizer, "padding_side", "right")),
            "truncation_side": str(getattr(tokenizer, "truncation_side", "right")),
        },
        "prompts": {
            role: declared_prompt(getattr(model, "prompts", None) or {}, role)
            for role in ("query", "document")
        },
        "created_at": time.time(),
        "versions": library_versions(),
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")


def _least_cosine(a: np.ndarray, b: np.ndarray) -> float:
    import numpy as np

    if a.shape != b.shape:
        return -1.0
    dots = (normalized(a) * normalized(b)).sum(axis=1)
    return float(np.min(dots)) if len(dots) else 1.0


def _verify(folder: Path, embedder: Embedder, texts: Sequence[str]) -> float:
    """Least cosine between the export's and the model's vectors, queries and documents."""
    meta = read_meta(folder)
    if meta is None:
        raise ExportError("the export has no description")
    exported = OnnxEmbedder(
        folder,
        meta,
        embedder.name,
        embedder.batch_size,
        embedder.query_prompt,
        embedder.document_prompt,
    )
    encoder = exported.encoder
    if encoder is None:
        raise ExportError("onnxruntime cannot open the exported graph")
    document_prompt = embedder.document_prompt
    least = min(
        _least_cosine(exported.embed_queries(texts), embedder.embed_queries(texts)),
        _least_cosine(
            encoder.encode([document_prompt + t for t in texts]),
            embedder.embed_documents(texts, normalize=False),
        ),
    )
    return least


def _remove_leftovers(folder: Path) -> None:
    """Delete what exports killed before they finished left next to ``folder`` (an hour on)."""
    limit = time.time() - 3600
    for path in folder.parent.glob(f".*-{folder.name}-*"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < limit:
                shutil.rmtree(path, ignore_errors=True)


def _publish(staging: Path, folder: Path) -> None:
    """Put ``staging`` in place of ``folder`` (whatever was there goes)."""
    old = None
    if folder.exists():
        old = folder.with_name(f".old-{folder.name}-{os.getpid()}")
        os.replace(folder, old)
    os.replace(staging, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_embedder(embedder: Embedder, cache_dir: Path, texts: Sequence[str] = ()) -> Export:
    """Export ``embedder`` for queries into ``cache_dir``, unless a matching export is there.

    The export is kept only when its vectors agree with the model's (cosine >= 1 - 1e-3) on
    ``texts`` and a built-in set, each as a query and as a document; otherwise, or when the
    model cannot be exported, ExportError says why and nothing is left behind.
    """
    started = time.perf_counter()
    found = find_export(cache_dir, embedder.name)
    if found is not None:
        return Export(found[0], float("nan"), time.perf_counter() - started, made=False)
    if not onnxruntime_available():
        raise ExportError("onnxruntime is not installed")
    source = model_folder(embedder.name)
    if source is None:
        raise ExportError(f"cannot tell which files embedder {embedder.name!r} loads from")
    folder = export_dir(cache_dir, embedder.name)
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(folder)
    staging = Path(tempfile.mkdtemp(prefix=f".new-{folder.name}-", dir=folder.parent))
    try:
        try:
            _write_export(embedder.model, staging, embedder.name, source)
        except (ExportError, KeyboardInterrupt):
            raise
        except Exception as e:
            raise ExportError(f"export failed: {type(e).__name__}: {e}") from e
        least = _verify(staging, embedder, [*CHECK_TEXTS, *texts])
        if not least >= MIN_COSINE:
            raise ExportError(f"its vectors differ from the model's (least cosine {least:.6f})")
        _publish(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Export(folder, least, time.perf_counter() - started, made=True)
