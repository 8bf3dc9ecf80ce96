"""The collection's embedder exported to ONNX for questions, once per embedder."""

from __future__ import annotations

from ragcli.config import Settings
from ragcli.models import runtime
from ragcli.models.embedding import embedder_for
from ragcli.models.onnxcache import failed_export, find_export, record_failed_export
from ragcli.models.onnxembed import onnx_enabled
from ragcli.models.onnxexport import ExportError, export_embedder
from ragcli.pipeline.events import Events
from ragcli.store.location import location_for, opened


def export_for_queries(settings: Settings, events: Events) -> None:
    """Export the collection's embedder to ONNX for questions, once per embedder.

    Runs after an ingest that embedded chunks, when torch is imported anyway. An export that
    fails, or whose vectors differ from the model's, is not kept and never fails the ingest:
    questions are then embedded with the model itself. A failure is remembered, and not
    tried again until the model's files or the libraries change (``models prepare`` always
    tries).
    """
    if not onnx_enabled(settings):
        return
    name = None
    try:
        location = location_for(settings)
        manifest = location.read_manifest()
        name = manifest["embedder"]["name"]
        if find_export(settings.model_cache_dir, name) is not None:
            return
        if failed_export(settings.model_cache_dir, name) is not None:
            return
        with opened(location, load_vectors=False) as store:
            texts = store.sample_texts(8)
        # Checked against the float32 model: the reference, whatever precision chunks used.
        embedder = embedder_for(manifest, settings, precision="float32")
        events.status(f"exporting the embedder to ONNX for fast questions ({name})")
        export = export_embedder(embedder, settings.model_cache_dir, texts)
        events.status(
            f"exported in {export.seconds:.1f} s (least cosine to the model "
            f"{export.min_cosine:.6f}): {export.folder}"
        )
    except Exception as e:
        reason = str(e) if isinstance(e, ExportError) else f"{type(e).__name__}: {e}"
        if name is not None and not isinstance(e, OSError):  # a full disk may not stay full
            record_failed_export(settings.model_cache_dir, name, reason)
        if runtime.debugging():
            events.status(f"embedder not exported to ONNX, questions use torch: {reason}")
