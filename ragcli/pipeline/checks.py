"""Refusing a collection the settings do not fit: another embedder, prompts or chunking."""

from __future__ import annotations

from ragcli.config import Settings
from ragcli.errors import IncompatibleCollectionError
from ragcli.models.embedding import collection_prompts, embedder_name
from ragcli.store.common import vector_kind


def check_embedder(manifest: dict, settings: Settings) -> None:
    name = manifest["embedder"]["name"]
    if settings.embed_model and embedder_name(settings.embed_model) != name:
        raise IncompatibleCollectionError(
            f"collection {settings.collection!r} was built with embedder {name!r}, "
            f"not {embedder_name(settings.embed_model)!r}",
            "drop --embed-model to use the collection's embedder, pick another "
            "collection with -c, or re-embed everything with ingest --rebuild",
        )
    collection_prompts(manifest, settings)  # refuses prompts other than the recorded ones


def check_compatible(manifest: dict, settings: Settings) -> None:
    check_embedder(manifest, settings)
    chunking = manifest.get("chunking", {})
    for key, value in (
        ("chunk_size", settings.chunk_size),
        ("chunk_overlap", settings.chunk_overlap),
    ):
        if value is not None and chunking.get(key) != value:
            raise IncompatibleCollectionError(
                f"collection {settings.collection!r} uses {key.replace('_', '-')} "
                f"{chunking.get(key)}, not {value}",
                "leave the option out to keep the collection's setting, ingest into "
                "another collection with -c, or re-chunk everything with ingest --rebuild",
            )
    kept = vector_kind(manifest)
    if settings.vectors is not None and settings.vectors != kept:
        raise IncompatibleCollectionError(
            f"collection {settings.collection!r} keeps {kept} vectors, not {settings.vectors}",
            "leave --vectors out to keep the collection's, ingest into another collection "
            "with -c, or convert it with ingest --rebuild --vectors " + settings.vectors,
        )
