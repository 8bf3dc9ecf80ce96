"""Retrieval evaluation: BEIR-layout datasets, TREC runs, and trec_eval's ranking metrics."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragcli.errors import UsageError

Qrels = dict[str, dict[str, int]]  # query id -> document id -> graded relevance
Run = dict[str, list[tuple[str, float]]]  # query id -> [(document id, score)], best first

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


@dataclass
class Dataset:
    """A BEIR-layout folder: corpus.jsonl, queries.jsonl, qrels/test.tsv."""

    root: Path
    queries: dict[str, str]
    qrels: Qrels

    @property
    def corpus(self) -> Path:
        return self.root / "corpus.jsonl"


def read_queries(path: Path) -> dict[str, str]:
    """``{"_id", "text"}`` per line, or one plain-text query per line (numbered from 1)."""
    queries: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise UsageError(f"cannot read queries {path}: {e.strerror or e}") from e
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                record = json.loads(line)
                queries[str(record["_id"])] = str(record["text"])
            except (ValueError, KeyError, TypeError) as e:
                raise UsageError(f'{path}:{number}: expected {{"_id", "text"}} ({e})') from e
        else:
            queries[str(number)] = line.strip()
    return queries


def read_qrels(path: Path) -> Qrels:
    """TSV with a ``query-id corpus-id score`` header (BEIR), or TREC ``qid 0 docid rel`` lines."""
    qrels: Qrels = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read qrels {path}: {e.strerror or e}") from e
    rows = list(csv.reader(text.splitlines(), delimiter="\t"))
    if rows and rows[0] and rows[0][0] == "query-id":
        rows = rows[1:]
    for number, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip():
            continue
        fields = row if len(row) > 1 else row[0].split()
        try:
            if len(fields) == 3:
                qid, docid, rel = fields
            elif len(fields) == 4:
                qid, _, docid, rel = fields
            else:
                raise ValueError(f"{len(fields)} fields")
            qrels.setdefault(qid, {})[docid] = int(rel)
        except ValueError as e:
            raise UsageError(f"{path}:{number}: expected query-id, corpus-id, score ({e})") from e
    return qrels


def load_dataset(root: Path) -> Dataset:
    """Read a BEIR folder; a missing part is a usage error naming it."""
    for part in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        if not (root / part).is_file():
            raise UsageError(
                f"{root} is not a BEIR dataset: {part} is missing",
                "expected corpus.jsonl, queries.jsonl and qrels/test.tsv",
            )
    return Dataset(root, read_queries(root / "queries.jsonl"), read_qrels(root / "qrels/test.tsv"))


def ndcg(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    """nDCG@k with linear gains, as trec_eval's ``ndcg_cut``."""
    dcg = sum(max(judged.get(doc, 0), 0) / math.log2(i + 2) for i, doc in enumerate(ranking[:k]))
    ideal_gains = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(ideal_gains))
    return dcg / ideal if ideal > 0 else 0.0


def recall(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    relevant = {d for d, g in judged.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant & set(ranking[:k])) / len(relevant)


def reciprocal_rank(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    for i, doc in enumerate(ranking[:k], start=1):
        if judged.get(doc, 0) > 0:
            return 1.0 / i
    return 0.0


@dataclass
class Scores:
    """Mean metrics over the judged queries, plus each query's values."""

    means: dict[str, float]
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {name: round(value, 4) for name, value in self.means.items()}


def score_run(run: Run, qrels: Qrels) -> Scores:
    """nDCG@10, Recall@10, Recall@100 and MRR@10 averaged over every query with judgments."""
    per_query: dict[str, dict[str, float]] = {}
    for qid, judged in qrels.items():
        ranking = [doc for doc, _ in run.get(qid, [])]
        per_query[qid] = {
            "ndcg@10": ndcg(ranking, judged, 10),
            "recall@10": recall(ranking, judged, 10),
            "recall@100": recall(ranking, judged, 100),
            "mrr@10": reciprocal_rank(ranking, judged, 10),
        }
    n = max(len(per_query), 1)
    means = {m: sum(q[m] for q in per_query.values()) / n for m in METRICS}
    return Scores(means, per_query)


def documents_from_chunks(
    ranked: Iterable[tuple[str, float]], depth: int
) -> list[tuple[str, float]]:
    """Chunk hits (doc id, score), best first -> documents ranked by their best chunk."""
    seen: dict[str, float] = {}
    for doc_id, score in ranked:
        if doc_id not in seen:
            seen[doc_id] = score
            if len(seen) == depth:
                break
    return list(seen.items())


def write_trec_run(run: Run, path: Path, tag: str) -> None:
    """``qid Q0 docid rank score tag`` lines, as trec_eval and pytrec_eval read them."""
    with open(path, "w", encoding="utf-8") as f:
        for qid, ranking in run.items():
            previous = math.inf
            for rank, (doc, score) in enumerate(ranking, start=1):
                # trec_eval orders by score, not by the rank column: keep scores strictly
                # decreasing so ties cannot reorder the ranking when the file is rescored.
                value = min(round(score, 6), round(previous - 1e-6, 6))
                previous = value
                f.write(f"{qid} Q0 {doc} {rank} {value:.6f} {tag}\n")


def read_trec_run(path: Path) -> Run:
    run: Run = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            qid, _, doc, _, score, _ = line.split()
            run.setdefault(qid, []).append((doc, float(score)))
    return run
