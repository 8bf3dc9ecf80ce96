"""``ragcli tune``: choose a collection's retrieval settings on questions about it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from ragcli.cli import inputs
from ragcli.cli.options import Backend, Collection, Debug, Json, Llm, Quiet, Store
from ragcli.cli.root import boundary
from ragcli.errors import UsageError

TuneQueries = Annotated[
    Path | None,
    typer.Option(
        "--queries",
        help="Your own questions (JSON Lines with _id and text, or one per line), with --qrels; "
        "default: questions the local LLM writes from the collection.",
    ),
]
TuneQrels = Annotated[
    Path | None,
    typer.Option("--qrels", help="Judgments for --queries: TSV query-id, corpus-id, score."),
]
Count = Annotated[
    int,
    typer.Option("--questions", "-n", min=2, help="How many synthetic questions to tune on."),
]
Budget = Annotated[
    str | None,
    typer.Option(
        "--budget",
        help="Stop writing questions after this long (e.g. 90s, 10m, 1h) and tune on those "
        "written; a later tune goes on from there.",
    ),
]
DryRun = Annotated[
    bool,
    typer.Option("--dry-run", help="Show the figures without changing the collection."),
]


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``10m`` or ``1h``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text.lower())
    if not match:
        raise UsageError(f"invalid duration {text!r}", "use e.g. 90s, 10m or 1h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def tune(
    collection: Collection = None,
    queries: TuneQueries = None,
    qrels: TuneQrels = None,
    count: Count = 60,
    budget: Budget = None,
    dry_run: DryRun = False,
    llm: Llm = None,
    backend: Backend = None,
    store: Store = None,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Choose the collection's retrieval settings (fusion, feedback, mode) by measuring them.

    Each candidate setting is scored (nDCG@10) on questions about the collection: yours
    (--queries with --qrels) or ones the local LLM writes from chunks spread over it. The best
    on half of the questions is kept only if it also beats the default on the other half beyond
    noise; search, ask and eval then use it unless --mode is given.
    """
    from ragcli import console
    from ragcli.pipeline.tuning import tune as run_tune

    with boundary(debug):
        seconds = parse_duration(budget) if budget is not None else None
        settings = inputs.settings(collection=collection, llm=llm, backend=backend, store=store)
        events = console.ConsoleEvents(quiet)
        report = run_tune(settings, queries, qrels, count, seconds, dry_run, events)
        console.render_tune(report, json_)
