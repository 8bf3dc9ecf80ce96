"""question -> ranked Hits."""

from __future__ import annotations

from ragcli.embedding import Embedder
from ragcli.models import Hit
from ragcli.store import Store


def retrieve(store: Store, embedder: Embedder, question: str, k: int) -> list[Hit]:
    """The ``k`` chunks closest in meaning to the question (cosine similarity)."""
    vector = embedder.embed([question])[0]
    return store.search(vector, k)
