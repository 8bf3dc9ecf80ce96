"""The tune use case: choose a collection's retrieval settings on questions about it.

Questions are the user's (queries and qrels) or written by the local generator from chunks
spread over the collection, one question per chunk, that chunk its only relevant passage. The
synthetic ones are kept in ``<home>/tune/<collection>.jsonl`` as they are written, so a tune
stopped by ``--budget`` or Ctrl-C goes on where it stopped, and a second tune reuses them.

Every setting of ``SETTINGS`` is scored on the questions (``comparing``). The questions are
split in two halves (in an order fixed by a hash of their ids): the best setting on the first
half is chosen, and it is written to the manifest only if it also beats the default on the
second, held-out half beyond noise (the paired bootstrap interval of the difference excludes
0); the figures that chose it go with it.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragcli.config import Settings
from ragcli.errors import UsageError
from ragcli.evaluation import read_qrels, read_queries
from ragcli.models import generation
from ragcli.models.generation import ChatModel
from ragcli.pipeline import comparing
from ragcli.pipeline.comparing import Interval, JudgedQuestion, Setting
from ragcli.pipeline.events import Events
from ragcli.pipeline.searching import Searcher
from ragcli.records import Hit
from ragcli.retrieval import TUNED_KEY, Fusion
from ragcli.store.location import location_for, opened

QUESTIONS = 60  # synthetic questions by default
MAX_QUESTION_TOKENS = 48
COPIED_WORDS = 8  # a question with this many passage words in a row copies the passage

SYSTEM = (
    "You write search questions. Given a passage, write one question that the passage "
    "answers. The question must make sense on its own to someone who has not seen the passage, "
    "and should use your own words rather than copy the passage. Write only the question."
)

DEFAULT = Setting("default (convex a=0.6 + feedback)", "hybrid", Fusion())
SETTINGS: tuple[Setting, ...] = (
    DEFAULT,
    Setting("dense", "dense", Fusion()),
    Setting("lexical (BM25)", "lexical", Fusion()),
    *(
        Setting(
            f"convex a={alpha}{' + feedback' if feedback else ''}",
            "hybrid",
            Fusion(alpha=alpha, feedback_weight=1.0 if feedback else 0.0),
        )
        for alpha in (0.3, 0.45, 0.6, 0.75)
        for feedback in (False, True)
        if (alpha, feedback) != (0.6, True)
    ),
    Setting("RRF + feedback", "hybrid", Fusion(method="rrf")),
    Setting("RRF", "hybrid", Fusion(method="rrf", feedback_weight=0.0)),
)


@dataclass
class SyntheticQuestion:
    """A question the generator wrote from one chunk (or why it was not kept)."""

    chunk_id: str
    doc_id: str
    question: str
    rejected: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "question": self.question,
            "rejected": self.rejected,
        }


@dataclass
class Row:
    """One setting's figures: nDCG@10 on all questions and on each half, and its difference
    from the default on the held-out half (paired bootstrap interval)."""

    setting: Setting
    ndcg: float
    fit: float
    held_out: float
    against_default: Interval

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.setting.to_dict(),
            "ndcg@10": round(self.ndcg, 4),
            "fit_half": round(self.fit, 4),
            "held_out_half": round(self.held_out, 4),
            "against_default": self.against_default.to_dict(),
        }


@dataclass
class TuneReport:
    """What tune measured and what it chose."""

    collection: str
    source: str  # "synthetic" or "qrels"
    questions: int
    rows: list[Row] = field(default_factory=list)
    best: Row | None = None  # best on the fit half
    adopted: bool = False  # the best also beat the default on the held-out half, beyond noise
    written: bool = False  # the choice went into the manifest (not with --dry-run)
    generated: int = 0  # synthetic questions written by this run
    rejected: int = 0  # ... and rejected (copied the passage, not a question)
    questions_file: str | None = None
    seconds: float = 0.0

    @property
    def chosen(self) -> Row | None:
        """The row now in force: the best if adopted, else the default."""
        if self.adopted:
            return self.best
        return next((r for r in self.rows if r.setting == DEFAULT), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "source": self.source,
            "questions": self.questions,
            "settings": [r.to_dict() for r in self.rows],
            "best": self.best.to_dict() if self.best else None,
            "adopted": self.adopted,
            "written": self.written,
            "generated": self.generated,
            "rejected": self.rejected,
            "questions_file": self.questions_file,
            "seconds": round(self.seconds, 3),
        }


def questions_file(settings: Settings) -> Path:
    return settings.home / "tune" / f"{settings.collection}.jsonl"


def read_synthetic(path: Path) -> list[SyntheticQuestion]:
    if not path.is_file():
        return []
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            kept.append(
                SyntheticQuestion(
                    str(record["chunk_id"]),
                    str(record["doc_id"]),
                    str(record["question"]),
                    record.get("rejected"),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a kill: that chunk is asked again
    return kept


_WORD = re.compile(r"\w+")


def clean_question(text: str) -> str:
    """The question in a generator's reply: first line, without labels or quotes."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[0] if lines else ""
    line = re.sub(r"^(\*\*)?(question|q)\s*[:.]\s*(\*\*)?\s*", "", line, flags=re.I)
    return line.strip().strip("\"'`*").strip()


def rejection(question: str, passage: str) -> str | None:
    """Why a synthetic question is not kept, or None."""
    words = _WORD.findall(question.lower())
    if not question.endswith("?") or len(words) < 4:
        return "not a question"
    passage_text = " " + " ".join(_WORD.findall(passage.lower())) + " "
    for start in range(len(words) - COPIED_WORDS + 1):
        if " " + " ".join(words[start : start + COPIED_WORDS]) + " " in passage_text:
            return "copies the passage"
    return None


def write_question(generator: ChatModel, hit: Hit) -> str:
    heading = f"(from a section titled: {hit.heading})\n" if hit.heading else ""
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Passage:\n{heading}{hit.text}\n\nQuestion:"},
    ]
    return clean_question("".join(generator.stream(messages, MAX_QUESTION_TOKENS)))


def synthetic_questions(
    settings: Settings,
    searcher: Searcher,
    count: int,
    deadline: float | None,
    events: Events,
    generator: ChatModel | None = None,
) -> tuple[list[SyntheticQuestion], int, int]:
    """The kept synthetic questions (``count`` at most), writing more as needed and allowed.

    Returns them with how many this call wrote and how many of those it rejected.
    """
    path = questions_file(settings)
    known = read_synthetic(path)
    kept = [q for q in known if q.rejected is None]
    if len(kept) >= count:
        return kept[:count], 0, 0
    asked = {q.chunk_id for q in known}
    wanted = count - len(kept)
    chunks = [
        h
        for h in searcher.store.sample_chunks(count * 3 + len(asked))
        if h.chunk_key not in asked and len(_WORD.findall(h.text)) >= 12
    ]
    if not chunks:
        return kept, 0, 0
    if generator is None:
        generator = generation.open_generator(
            settings.llm, settings.model_cache_dir, events.status, settings.backend, events.warn
        )
    generator.load()
    path.parent.mkdir(parents=True, exist_ok=True)
    written = rejected = 0
    events.start(wanted, "writing questions")
    try:
        with open(path, "a", encoding="utf-8") as out:
            if out.tell() and not path.read_bytes().endswith(b"\n"):
                out.write("\n")  # after a line cut short by a kill
            for hit in chunks:
                if wanted <= 0 or (deadline is not None and time.monotonic() > deadline):
                    break
                question = write_question(generator, hit)
                why = rejection(question, hit.text)
                record = SyntheticQuestion(hit.chunk_key, hit.doc_id, question, why)
                out.write(json.dumps(record.to_dict()) + "\n")
                out.flush()
                written += 1
                if why is None:
                    kept.append(record)
                    wanted -= 1
                    events.advance()
                else:
                    rejected += 1
    finally:
        events.finish()
    return kept, written, rejected


def _chunk_unit(chunk_id: str) -> Any:
    return lambda hit: "gold" if hit.chunk_key == chunk_id else f"#{hit.row_id}"


def held_out_half(qids: Iterable[str]) -> set[str]:
    """Every second question in an order fixed by a hash of its id: two halves, both filled."""
    ordered = sorted(qids, key=lambda q: hashlib.sha256(q.encode()).hexdigest())
    return set(ordered[1::2])


def choose(comparison: comparing.Comparison, settings: tuple[Setting, ...]) -> list[Row]:
    """Every setting's figures on the questions of ``comparison``, the default first."""
    per_question = {s: comparison.scores(s) for s in settings}
    default = per_question[DEFAULT]
    held_out = held_out_half(default)
    rows = []
    for setting, scores in per_question.items():
        fit = {k: v for k, v in scores.items() if k not in held_out}
        held = {k: v for k, v in scores.items() if k in held_out}
        held_default = {k: v for k, v in default.items() if k in held_out}
        rows.append(
            Row(
                setting,
                comparing.mean(scores),
                comparing.mean(fit),
                comparing.mean(held),
                comparing.bootstrap(held, held_default),
            )
        )
    return rows


def tune(
    settings: Settings,
    queries_file: Path | None = None,
    qrels_file: Path | None = None,
    count: int = QUESTIONS,
    budget: float | None = None,
    dry_run: bool = False,
    events: Events | None = None,
    generator: ChatModel | None = None,
) -> TuneReport:
    """Score the candidate settings on the collection and keep the one that carries over."""
    events = events or Events()
    started = time.monotonic()
    deadline = started + budget if budget is not None else None
    if (queries_file is None) != (qrels_file is None):
        raise UsageError("--queries and --qrels go together")
    if count < 2:
        raise UsageError("tune needs at least 2 questions")
    with Searcher(settings) as searcher:
        report = TuneReport(settings.collection, "qrels" if queries_file else "synthetic", 0)
        if queries_file is not None and qrels_file is not None:
            queries, qrels = read_queries(queries_file), read_qrels(qrels_file)
            judged_ids = {d for docs in qrels.values() for d in docs}
            unit = comparing.document_unit(judged_ids)
            questions = [
                JudgedQuestion(qid, text, qrels[qid], unit)
                for qid, text in queries.items()
                if qid in qrels
            ]
        else:
            found, report.generated, report.rejected = synthetic_questions(
                settings, searcher, count, deadline, events, generator
            )
            report.questions_file = str(questions_file(settings))
            questions = [
                JudgedQuestion(q.chunk_id, q.question, {"gold": 1}, _chunk_unit(q.chunk_id))
                for q in found
            ]
        if len(questions) < 2:
            raise UsageError(
                f"only {len(questions)} usable question(s) to tune on",
                "give a larger --budget, or your own --queries and --qrels",
            )
        report.questions = len(questions)
        events.status(f"scoring {len(SETTINGS)} settings on {len(questions)} questions")
        report.rows = choose(comparing.Comparison(searcher, questions), SETTINGS)
    default = report.rows[0]
    report.best = max(report.rows, key=lambda r: (r.fit, r.setting == DEFAULT))
    # kept only when it beats the default on the held-out half beyond noise: questions written
    # from passages share their words more than real ones do, and favour BM25 (README)
    report.adopted = report.best.setting != DEFAULT and report.best.against_default.low > 0
    if not dry_run:
        chosen = report.chosen
        entry = None
        if report.adopted and chosen is not None:
            entry = {
                **chosen.to_dict(),
                "questions": report.questions,
                "source": report.source,
                "default_ndcg@10": round(default.ndcg, 4),
                "tuned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        with opened(location_for(settings), writable=True, load_vectors=False) as store:
            store.set_manifest_entry(TUNED_KEY, entry)
        report.written = True
    report.seconds = time.monotonic() - started
    return report
