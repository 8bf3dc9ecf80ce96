"""Embeddings as tools: the vectors of given texts, and how similar the texts are."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ragcli.config import Settings
from ragcli.errors import RagcliError, UsageError
from ragcli.models import embedding
from ragcli.models.embedding import Embedder, embedder_for, embedder_name

if TYPE_CHECKING:
    import numpy as np

Role = Literal["query", "document"]


def choose_embedder(settings: Settings) -> Embedder:
    """The collection's embedder (and prompts) when the collection exists and no other one is
    asked for; else ``--embed-model``; else the bundled one."""
    from ragcli.store.location import location_for

    location = location_for(settings)
    if location.exists():
        manifest = location.read_manifest()
        recorded = manifest["embedder"]["name"]
        if not settings.embed_model or embedder_name(settings.embed_model) == recorded:
            return embedder_for(manifest, settings)
    return embedding.open_embedder(
        settings.embed_model,
        settings.batch_size,
        settings.query_prompt,
        settings.document_prompt,
        precision=settings.embed_precision,
    )


def encode(
    embedder: Embedder, texts: Sequence[str], role: Role, normalize: bool = True
) -> np.ndarray:
    """Vectors of ``texts`` encoded as queries or as documents (each with its prompt)."""
    if role == "query":
        return embedder.embed_queries(texts, normalize)
    return embedder.embed_documents(texts, normalize)


@dataclass
class Similarity:
    """Cosine similarities: every text against every other, or each against one (``to``)."""

    embedder: str
    role: Role
    prompts: dict[str, str]
    texts: list[str]
    matrix: list[list[float]] = field(default_factory=list)  # every pair, without ``to``
    scores: list[float] = field(default_factory=list)  # each text against ``to``
    to: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.to is None:
            scores: list[Any] = [[round(s, 6) for s in row] for row in self.matrix]
        else:
            scores = [round(s, 6) for s in self.scores]
        return {
            "embedder": self.embedder,
            "encoded_as": self.role,
            "prompts": self.prompts,
            "texts": self.texts,
            "to": self.to,
            "scores": scores,
        }


def similarity(
    settings: Settings, texts: Sequence[str], to: str | None = None, role: Role = "document"
) -> Similarity:
    """Pairwise cosine similarity of ``texts``, or of each text to ``to`` (encoded as a query)."""
    import numpy as np

    if not texts:
        raise UsageError("no texts to compare")
    if to is None and len(texts) < 2:
        raise UsageError("give at least two texts to compare", "or compare one text with --to")
    embedder = choose_embedder(settings)
    vectors = encode(embedder, texts, role)
    result = Similarity(
        embedder=embedder.name,
        role=role,
        prompts={"query": embedder.query_prompt, "document": embedder.document_prompt},
        texts=list(texts),
        to=to,
    )
    if to is None:
        result.matrix = np.clip(vectors @ vectors.T, -1.0, 1.0).tolist()
    else:
        target = embedder.embed_queries([to])[0]
        result.scores = np.clip(vectors @ target, -1.0, 1.0).tolist()
    return result


@dataclass
class Embeddings:
    """Texts and their vectors (one float32 row per text)."""

    embedder: str
    role: Role
    normalized: bool
    texts: list[str]
    vectors: np.ndarray

    def records(self) -> Iterator[dict[str, Any]]:
        """One JSON Lines record per text."""
        for text, vector in zip(self.texts, self.vectors):
            yield {"text": text, "vector": vector.tolist()}


def embed(
    settings: Settings, texts: Sequence[str], role: Role = "document", normalize: bool = True
) -> Embeddings:
    """The vectors of ``texts``, encoded as documents (default) or queries."""
    if not texts:
        raise UsageError("no texts to embed")
    embedder = choose_embedder(settings)
    vectors = encode(embedder, texts, role, normalize)
    return Embeddings(embedder.name, role, normalize, list(texts), vectors)


def save_jsonl(embeddings: Embeddings, path: Path) -> None:
    """Write one ``{"text": ..., "vector": [...]}`` JSON line per text."""
    try:
        with open(path, "w", encoding="utf-8") as f:
            for record in embeddings.records():
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    except OSError as e:
        raise RagcliError(f"cannot write {path}: {e.strerror or e}") from e


def save_npy(embeddings: Embeddings, path: Path) -> None:
    """Write the vectors as one float32 ``(texts, dimension)`` array in NumPy's .npy format."""
    import numpy as np

    try:
        with open(path, "wb") as f:  # a file object: np.save would append ".npy" to a name
            np.save(f, embeddings.vectors, allow_pickle=False)
    except OSError as e:
        raise RagcliError(f"cannot write {path}: {e.strerror or e}") from e
