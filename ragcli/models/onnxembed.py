"""Queries embedded without torch: the embedder exported to ONNX and run with onnxruntime.

Importing torch, transformers and sentence-transformers takes seconds, far longer than
embedding one question. So where the sentence-transformers model is loaded anyway (an ingest
that embeds something, ``models prepare``), ``export_embedder`` writes its whole pipeline
(transformer, pooling, dense layers, normalization) as one ONNX graph, with its fast tokenizer,
into the model cache, and keeps it only when it gives the model's own vectors (cosine within
1e-3) on sample texts. ``search``, ``ask`` and ``eval`` then embed questions with onnxruntime
and the ``tokenizers`` library, and use the torch model whenever there is no export for the
embedder, the model's files changed since the export, onnxruntime is not installed, or
``RAGCLI_ONNX=off``. Nothing here imports torch on the query path.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.models import runtime
from ragcli.models.embedding import (
    BUNDLED_EMBEDDER,
    Embedder,
    bundled_embedder_path,
    declared_prompt,
)

if TYPE_CHECKING:
    import numpy as np

    from ragcli.config import Settings

EXPORT_FORMAT = 1
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "export.json"
FAILED_FILE = "failed.json"  # an export that failed, so that ingest does not retry it each time
OUTPUT_NAME = "sentence_embedding"
MIN_COSINE = 1 - 1e-3  # an export whose vectors differ more from the model's is not kept
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_log = logging.getLogger(__name__)

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


def onnx_enabled(settings: Settings) -> bool:
    """Whether the settings allow exporting and using the ONNX query encoder."""
    return settings.onnx != "off"


def onnxruntime_available() -> bool:
    """Whether onnxruntime can be imported (without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


# -- which model, and which export ---------------------------------------------------------


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


def _read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def find_export(cache_dir: Path, name: str) -> tuple[Path, dict[str, Any]] | None:
    """The export of embedder ``name`` and its description, if one matches the model's files."""
    folder = export_dir(cache_dir, name)
    meta = _read_meta(folder)
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
    return {"embedder": name, "fingerprint": model_fingerprint(source), "versions": _versions()}


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


# -- running an export ---------------------------------------------------------------------


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


def _normalized(vectors: np.ndarray) -> np.ndarray:
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)  # as torch.nn.functional.normalize


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
        return _normalized(vectors) if normalize else vectors


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


# -- exporting -----------------------------------------------------------------------------


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
        "versions": _versions(),
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("torch", "sentence-transformers", "onnx", "onnxruntime", "tokenizers"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def _least_cosine(a: np.ndarray, b: np.ndarray) -> float:
    import numpy as np

    if a.shape != b.shape:
        return -1.0
    dots = (_normalized(a) * _normalized(b)).sum(axis=1)
    return float(np.min(dots)) if len(dots) else 1.0


def _verify(folder: Path, embedder: Embedder, texts: Sequence[str]) -> float:
    """Least cosine between the export's and the model's vectors, queries and documents."""
    meta = _read_meta(folder)
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
