"""The eval use case: retrieval quality on judged queries (BEIR folders or a collection)."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ragcli.config import Settings
from ragcli.errors import UsageError
from ragcli.evaluation import (
    Dataset,
    Run,
    documents_from_chunks,
    load_dataset,
    read_qrels,
    read_queries,
    score_run,
    write_trec_run,
)
from ragcli.models.embedding import embedder_name
from ragcli.pipeline.events import Events
from ragcli.pipeline.ingesting import ingest
from ragcli.pipeline.searching import Searcher
from ragcli.records import IngestReport
from ragcli.retrieval import Fusion

EVAL_POOL = 300  # chunks fetched per query, enough for 100 distinct documents


@dataclass
class EvalReport:
    """Retrieval quality of one mode on one set of judged queries."""

    collection: str
    mode: str
    queries: int
    metrics: dict[str, float]
    seconds: float
    dataset: str | None = None
    run_file: str | None = None
    ingest: IngestReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "collection": self.collection,
            "mode": self.mode,
            "queries": self.queries,
            "metrics": {name: round(value, 4) for name, value in self.metrics.items()},
            "run_file": self.run_file,
            "seconds": round(self.seconds, 3),
        }


def dataset_collection(settings: Settings, dataset: Dataset) -> str:
    """A collection name bound to the corpus content and the settings that shape the index."""
    digest = hashlib.sha256()
    with open(dataset.corpus, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    digest.update(
        f"{embedder_name(settings.embed_model)}:{settings.chunk_size}:{settings.chunk_overlap}".encode()
    )
    if settings.vectors is not None:  # another codec, another collection
        digest.update(f":{settings.vectors}".encode())
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset.root.resolve().name).strip("-.") or "dataset"
    return f"eval-{slug[:40]}-{digest.hexdigest()[:10]}"


def judged_id(doc_id: str, judged_ids: set[str]) -> str:
    """Match a collection's document id to the ids the qrels use (path, name or stem)."""
    if doc_id in judged_ids:
        return doc_id
    path = PurePosixPath(doc_id)
    for candidate in (path.name, path.stem):
        if candidate in judged_ids:
            return candidate
    return path.stem


def evaluate(
    settings: Settings,
    dataset_dir: Path | None = None,
    queries_file: Path | None = None,
    qrels_file: Path | None = None,
    save_run: Path | None = None,
    events: Events | None = None,
    fusion: Fusion | None = None,
) -> EvalReport:
    """Score retrieval on judged queries: a BEIR folder, or a collection plus queries and qrels."""
    events = events or Events()
    started = time.perf_counter()
    ingest_report = None
    if dataset_dir is not None:
        dataset = load_dataset(dataset_dir)
        settings = dataclasses.replace(settings, collection=dataset_collection(settings, dataset))
        events.status(f"indexing {dataset.corpus} into collection '{settings.collection}'")
        ingest_report = ingest(settings, [str(dataset.corpus)], events)
        queries, qrels = dataset.queries, dataset.qrels
    else:
        if queries_file is None or qrels_file is None:
            raise UsageError(
                "eval needs DATASET_DIR, or --queries and --qrels for an existing collection"
            )
        queries, qrels = read_queries(queries_file), read_qrels(qrels_file)
    judged = {qid: q for qid, q in queries.items() if qid in qrels}
    if not judged:
        raise UsageError("no query has relevance judgments", "check that the query ids match")
    judged_ids = {doc for docs in qrels.values() for doc in docs}
    run: Run = {}
    with Searcher(settings, fusion=fusion) as searcher:
        events.start(len(judged), f"evaluating {searcher.mode}")
        try:
            for qid, question in judged.items():
                hits = searcher.rank(question, EVAL_POOL)
                run[qid] = documents_from_chunks(
                    ((judged_id(h.doc_id, judged_ids), h.score) for h in hits), 100
                )
                events.advance()
        finally:
            events.finish()
        mode = searcher.mode
    if save_run is not None:
        write_trec_run(run, save_run, f"ragcli-{mode}")
    scores = score_run(run, qrels)
    return EvalReport(
        collection=settings.collection,
        mode=mode,
        queries=len(judged),
        metrics=scores.means,
        seconds=time.perf_counter() - started,
        dataset=str(dataset_dir) if dataset_dir else None,
        run_file=str(save_run) if save_run else None,
        ingest=ingest_report,
    )
