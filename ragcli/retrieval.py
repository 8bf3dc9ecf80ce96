"""question -> ranked Hits: dense (vectors), lexical (BM25), their fusion, optional reranking."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from ragcli.config import RETRIEVAL_MODES
from ragcli.errors import ModelError, UsageError
from ragcli.filters import Filters
from ragcli.models.embedding import Embedder
from ragcli.records import Hit
from ragcli.store import CollectionReader

MODES = RETRIEVAL_MODES
DEFAULT_MODE = "hybrid"
# Hybrid = the POOL best chunks of BM25 and of dense search, each list's scores min-max
# normalised and combined as ALPHA * dense + (1 - ALPHA) * lexical, with one round of dense
# pseudo-relevance feedback: the query vector moves towards the mean of the FEEDBACK_DEPTH best
# fused chunks (Rocchio, weight FEEDBACK_WEIGHT), the dense ranking is redone and fused again.
# Chosen over reciprocal rank fusion (the default before) across Cranfield, SciFact-train,
# SQuAD-tune and the sample corpus, with paired bootstrap intervals (README, "Retrieval
# quality"; benchmarks/retrieval.py). `ragcli tune` picks another setting per collection.
FUSION_METHOD = "convex"
ALPHA = 0.6
POOL = 100  # candidates per ranking (at least 5 * k)
RRF_K = 60
DENSE_WEIGHT = 1.0
LEXICAL_WEIGHT = 1.0
FEEDBACK_WEIGHT = 1.0
FEEDBACK_DEPTH = 3
NEAR_DUPLICATE = 0.9  # word-set Jaccard above which a passage repeats a better-ranked one

# Common English function words: they match nearly every chunk and only add noise to BM25.
_STOPWORD_TEXT = """
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most
my myself no nor not now of off on once only or other our ours ourselves out over own same she
should so some such than that the their theirs them themselves then there these they this those
through to too under until up very was we were what when where which while who whom why will with
would you your yours yourself yourselves
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD = re.compile(r"\w+", re.UNICODE)


def query_terms(question: str) -> list[str]:
    """Distinct lower-cased words of a question, without stopwords, for BM25."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(question.lower()):
        if word not in STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)


@dataclass
class Candidate:
    """A chunk with its place in each ranking that found it."""

    row_id: int
    score: float = 0.0
    dense_rank: int | None = None
    dense_score: float | None = None
    lexical_rank: int | None = None
    lexical_score: float | None = None
    rerank_score: float | None = None
    similarity: float | None = None  # cosine of the chunk and the question itself

    def explain(self) -> dict[str, Any]:
        return {
            "similarity": _round(self.similarity),
            "dense_rank": self.dense_rank,
            "dense_score": _round(self.dense_score),
            "lexical_rank": self.lexical_rank,
            "lexical_score": _round(self.lexical_score),
            "fused_score": _round(self.score),
            **(
                {"rerank_score": _round(self.rerank_score)} if self.rerank_score is not None else {}
            ),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


FUSION_METHODS = ("rrf", "convex")


@dataclass(frozen=True)
class Fusion:
    """Hybrid parameters: how two rankings are fused, and dense feedback.

    ``rrf`` adds ``weight / (k + rank)`` per ranking. ``convex`` min-max normalises each
    ranking's scores over its candidates and adds ``alpha * dense + (1 - alpha) * lexical``
    (a chunk missing from a ranking gets 0 there).
    """

    k: int = RRF_K
    dense_weight: float = DENSE_WEIGHT
    lexical_weight: float = LEXICAL_WEIGHT
    feedback_weight: float = FEEDBACK_WEIGHT  # 0 turns pseudo-relevance feedback off
    feedback_depth: int = FEEDBACK_DEPTH
    method: str = FUSION_METHOD
    alpha: float = ALPHA  # the dense share of a convex fusion
    pool: int | None = None  # candidates per ranking; None: max(POOL, 5 * k)

    def __post_init__(self) -> None:
        if self.method not in FUSION_METHODS:
            raise UsageError(
                f"unknown fusion method {self.method!r}",
                f"use one of: {', '.join(FUSION_METHODS)}",
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fusion:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


TUNED_KEY = "retrieval"  # the manifest entry where `ragcli tune` keeps its choice


def tuned(manifest: dict[str, Any]) -> tuple[str, Fusion] | None:
    """The mode and fusion ``ragcli tune`` chose for a collection, if it chose any."""
    entry = manifest.get(TUNED_KEY)
    if not isinstance(entry, dict) or entry.get("mode") not in MODES:
        return None
    try:
        fusion = Fusion.from_dict(dict(entry.get("fusion") or {}))
    except (TypeError, ValueError, UsageError):
        return None
    return str(entry["mode"]), fusion


def _normalised(ranking: Sequence[tuple[int, float]]) -> list[float]:
    if not ranking:
        return []
    scores = [s for _, s in ranking]
    low, high = min(scores), max(scores)
    if high - low <= 1e-12:
        return [1.0 for _ in scores]
    return [(s - low) / (high - low) for s in scores]


def fuse(
    dense: Sequence[tuple[int, float]],
    lexical: Sequence[tuple[int, float]],
    fusion: Fusion | None = None,
) -> list[Candidate]:
    """Merge two rankings into one (see ``Fusion``)."""
    fusion = fusion or Fusion()
    found: dict[int, Candidate] = {}
    convex = fusion.method == "convex"
    dense_norm = _normalised(dense) if convex else []
    lexical_norm = _normalised(lexical) if convex else []
    for rank, (chunk_id, score) in enumerate(dense, start=1):
        c = found.setdefault(chunk_id, Candidate(chunk_id))
        c.dense_rank, c.dense_score = rank, score
        if convex:
            c.score += fusion.alpha * dense_norm[rank - 1]
        else:
            c.score += fusion.dense_weight / (fusion.k + rank)
    for rank, (chunk_id, score) in enumerate(lexical, start=1):
        c = found.setdefault(chunk_id, Candidate(chunk_id))
        c.lexical_rank, c.lexical_score = rank, score
        if convex:
            c.score += (1.0 - fusion.alpha) * lexical_norm[rank - 1]
        else:
            c.score += fusion.lexical_weight / (fusion.k + rank)
    return sorted(found.values(), key=lambda c: (-c.score, c.row_id))


@dataclass
class Rankings:
    """A question's first rankings, before fusion: its vector, dense and lexical lists."""

    vector: np.ndarray | None
    dense: list[tuple[int, float]]
    lexical: list[tuple[int, float]]

    def cut(self, pool: int) -> Rankings:
        return Rankings(self.vector, self.dense[:pool], self.lexical[:pool])


def rankings(
    store: CollectionReader,
    embedder: Embedder,
    question: str,
    mode: str,
    pool: int,
    filters: Filters | None = None,
) -> Rankings:
    """The ``pool`` best chunks of each ranking that ``mode`` uses (of the documents
    ``filters`` allow: each ranking is searched among them, not cut afterwards)."""
    if mode not in MODES:
        raise UsageError(f"unknown retrieval mode {mode!r}", f"use one of: {', '.join(MODES)}")
    vector = None
    dense: list[tuple[int, float]] = []
    lexical: list[tuple[int, float]] = []
    if mode in ("dense", "hybrid"):
        vector = embedder.embed_queries([question])[0]
        dense = list(store.dense(vector, pool, filters))
    if mode in ("lexical", "hybrid"):
        lexical = list(store.lexical(query_terms(question), pool, filters))
    return Rankings(vector, dense, lexical)


def combine(
    store: CollectionReader,
    first: Rankings,
    mode: str,
    fusion: Fusion,
    filters: Filters | None = None,
) -> list[Candidate]:
    """Ranked candidates from a question's first rankings (fused, with feedback, in hybrid)."""
    if mode == "dense":
        return [
            Candidate(i, s, dense_rank=r, dense_score=s) for r, (i, s) in enumerate(first.dense, 1)
        ]
    if mode == "lexical":
        return [
            Candidate(i, s, lexical_rank=r, lexical_score=s)
            for r, (i, s) in enumerate(first.lexical, 1)
        ]
    fused = fuse(first.dense, first.lexical, fusion)
    if first.vector is None or fusion.feedback_weight <= 0 or not fused:
        return fused
    feedback = store.vectors([c.row_id for c in fused[: fusion.feedback_depth]])
    moved = first.vector + fusion.feedback_weight * feedback.mean(axis=0)
    moved = moved / max(float((moved**2).sum()) ** 0.5, 1e-12)
    pool = max(len(first.dense), len(first.lexical))
    return fuse(store.dense(moved, pool, filters), first.lexical, fusion)


def candidates(
    store: CollectionReader,
    embedder: Embedder,
    question: str,
    mode: str,
    pool: int,
    filters: Filters | None = None,
    fusion: Fusion | None = None,
) -> list[Candidate]:
    """Ranked chunk candidates for a question in one retrieval mode."""
    first = rankings(store, embedder, question, mode, pool, filters)
    return combine(store, first, mode, fusion or Fusion(), filters)


class Reranker:
    """A sentence-transformers cross-encoder that rescores (question, passage) pairs."""

    def __init__(self, spec: str) -> None:
        self.name = spec

    def depth(self, k: int) -> int:
        """How many of the best fused passages it rescores for ``k`` results."""
        return max(3 * k, 20)

    @cached_property
    def model(self) -> Any:
        from ragcli.models.runtime import prepare_model_runtime

        prepare_model_runtime()
        from sentence_transformers import CrossEncoder

        try:
            return CrossEncoder(self.name, device="cpu")
        except Exception as e:
            raise ModelError(
                f"cannot load reranker {self.name!r}: {type(e).__name__}: {e}",
                "pass a local cross-encoder folder, or a hub id on a machine with internet access",
            ) from e

    def scores(self, question: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        values = self.model.predict([(question, p) for p in passages], show_progress_bar=False)
        return [float(v) for v in values]


LLM_RERANK_DEPTH = 10  # passages the generator reads per question (about 2 s each here)
RELEVANCE_SYSTEM = "You judge whether a passage answers a question. Reply with yes or no."


def relevance_messages(question: str, passage: str) -> list[dict[str, str]]:
    """The question first, so a prompt cache keeps it across the passages."""
    return [
        {"role": "system", "content": RELEVANCE_SYSTEM},
        {
            "role": "user",
            "content": f"Question: {question}\n\nPassage:\n{passage.strip()}\n\n"
            "Does the passage answer the question? Reply yes or no.",
        },
    ]


class LlmReranker:
    """``--rerank llm``: the generator scores each passage by its probability of answering
    "yes" to whether the passage answers the question (one token scored, nothing sampled)."""

    name = "llm"

    def __init__(self, open_model: Callable[[], Any]) -> None:
        self._open = open_model

    def depth(self, k: int) -> int:
        return max(k, min(LLM_RERANK_DEPTH, 3 * k))

    @cached_property
    def model(self) -> Any:
        model = self._open()
        if not hasattr(model, "yes_probability"):
            raise ModelError(
                f"the generator {model.name!r} cannot score a reply on this backend",
                "use --backend llama.cpp or transformers for --rerank llm",
            )
        model.load()
        return model

    def scores(self, question: str, passages: Sequence[str]) -> list[float]:
        values = [self.model.yes_probability(relevance_messages(question, p)) for p in passages]
        return [0.5 if v is None else float(v) for v in values]


@dataclass
class Retrieval:
    """How to retrieve: mode, filters, limits, reranking."""

    mode: str = DEFAULT_MODE
    filters: Filters | None = None  # which documents: searched among them, not cut afterwards
    max_per_doc: int | None = None
    explain: bool = False
    reranker: Reranker | LlmReranker | None = None
    fusion: Fusion = field(default_factory=Fusion)


def retrieve(
    store: CollectionReader,
    embedder: Embedder,
    question: str,
    k: int,
    how: Retrieval | None = None,
) -> list[Hit]:
    """The ``k`` best passages for a question, without near-duplicates.

    Each hit's ``score`` is one a reader can compare across questions and collections: the
    cosine similarity of the passage and the question in dense and hybrid modes (whatever
    fused them), the BM25 score in lexical mode, the reranker's score when reranked. The
    fused value stays in ``explain``.
    """
    how = how or Retrieval()
    pool = how.fusion.pool or max(POOL, 5 * k)
    first = rankings(store, embedder, question, how.mode, pool, how.filters)
    ranked = combine(store, first, how.mode, how.fusion, how.filters)
    by_id = {c.row_id: c for c in ranked}
    wanted = how.reranker.depth(k) if how.reranker is not None else k
    hits = _distinct(store.hits([(c.row_id, c.score) for c in ranked]), how.max_per_doc, wanted)
    if how.reranker is not None:
        for hit, score in zip(hits, how.reranker.scores(question, [h.text for h in hits])):
            by_id[hit.row_id].rerank_score = score
            hit.score = score
        hits.sort(key=lambda h: -h.score)
    hits = hits[:k]
    if first.vector is not None and hits:
        similarities = store.vectors([h.row_id for h in hits]) @ first.vector
        for hit, similarity in zip(hits, similarities):
            hit.similarity = by_id[hit.row_id].similarity = float(similarity)
            if how.reranker is None:
                hit.score = hit.similarity
    for rank, hit in enumerate(hits, start=1):
        hit.rank = rank
        if how.explain:
            hit.explain = by_id[hit.row_id].explain()
    return hits


def _words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def _distinct(hits: list[Hit], max_per_doc: int | None, limit: int | None = None) -> list[Hit]:
    """The first ``limit`` hits that repeat no better-ranked one, at most N per document."""
    kept: list[Hit] = []
    kept_words: list[frozenset[str]] = []
    per_doc: dict[str, int] = {}
    for hit in hits:
        if limit is not None and len(kept) >= limit:
            break
        if max_per_doc is not None and per_doc.get(hit.source, 0) >= max_per_doc:
            continue
        words = _words(hit.text)
        if any(_jaccard(words, other) >= NEAR_DUPLICATE for other in kept_words):
            continue
        kept.append(hit)
        kept_words.append(words)
        per_doc[hit.source] = per_doc.get(hit.source, 0) + 1
    return kept


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 1.0 if a == b else 0.0
    return len(a & b) / len(a | b)
