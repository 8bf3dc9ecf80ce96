"""The only module that imports rich: stdout/stderr consoles, renderers and progress."""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from typing import Any

from rich.console import Console
from rich.markup import escape

from ragcli.manage import (
    CollectionStatus,
    CollectionSummary,
    DocumentList,
    DropReport,
    RemoveReport,
)
from ragcli.models.catalog import ModelInfo
from ragcli.models.preparing import PreparedModel
from ragcli.pipeline import EvalReport, Events
from ragcli.prompting import passage_label
from ragcli.records import Answer, Hit, IngestReport, SearchResult
from ragcli.vectors import Embeddings, Similarity

SNIPPET_CHARS = 220


@lru_cache(maxsize=1)
def out() -> Console:
    """Results: plain text when stdout is not a terminal."""
    return Console(highlight=False, soft_wrap=True)


@lru_cache(maxsize=1)
def err() -> Console:
    """Everything else: progress, warnings, errors."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_is_terminal() -> bool:
    return out().is_terminal


def write(text: str) -> None:
    """Raw text to stdout (streamed answers), flushed."""
    sys.stdout.write(text)
    sys.stdout.flush()


def print_json(data: Any, lines: bool = False) -> None:
    """One JSON document (or one JSON Lines record) on stdout."""
    text = json.dumps(data, ensure_ascii=False, indent=None if lines else 2)
    write(text + "\n")


def error(message: str, hint: str | None = None) -> None:
    err().print(f"[bold red]ragcli: error:[/] {escape(message)}")
    if hint:
        err().print(f"[dim]hint: {escape(hint)}[/]")


def warning(message: str) -> None:
    err().print(f"[yellow]ragcli: warning:[/] {escape(message)}")


def note(message: str) -> None:
    err().print(f"[dim]{escape(message)}[/]")


class ConsoleEvents(Events):
    """Pipeline events shown on stderr; a progress bar only when stderr is a terminal."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._progress: Any = None
        self._task: Any = None

    def status(self, message: str) -> None:
        if not self.quiet:
            if self._progress is not None:
                self._progress.console.print(f"[dim]{escape(message)}[/]")
            else:
                note(message)

    def warn(self, message: str) -> None:
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.console.print(f"[yellow]ragcli: warning:[/] {escape(message)}")
        else:
            warning(message)

    def start(self, total: int, description: str) -> None:
        if self.quiet or not err().is_terminal:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err(),
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, amount: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, amount)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


# -- renderers ---------------------------------------------------------------------------------


def render_ingest(report: IngestReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
        return
    if report.dry_run:
        for action, paths in (
            ("add", report.added),
            ("update", report.updated),
            ("remove", report.removed),
            ("unchanged", report.unchanged),
        ):
            for path in paths:
                write(f"{action}\t{path}\n")
        for skipped in report.skipped:
            write(f"skip\t{skipped.path}\t{skipped.reason}\n")
        what = "rebuilding collection" if report.rebuilt else "collection"
        write(
            f"dry run for {what} '{report.collection}': {len(report.added)} to add, "
            f"{len(report.updated)} to update, {len(report.removed)} to remove, "
            f"{len(report.unchanged)} unchanged, {len(report.skipped)} skipped\n"
        )
        return
    warned = f", {len(report.warnings)} with warnings" if report.warnings else ""
    write(
        f"collection '{report.collection}'{' rebuilt' if report.rebuilt else ''}: "
        f"{len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.removed)} removed, {len(report.unchanged)} unchanged, "
        f"{len(report.skipped)} skipped{warned}; {report.chunks_added} chunks added"
        + (f", {report.chunks_removed} removed" if report.chunks_removed else "")
        + f" ({report.seconds:.1f} s)\n"
    )


# -- collections -------------------------------------------------------------------------------


def _bytes(value: int | None) -> str:
    if value is None:
        return "?"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


def _pairs(rows: list[tuple[str, Any]]) -> None:
    """Label and value per line: aligned on a terminal, tab-separated when piped."""
    if not stdout_is_terminal():
        for label, value in rows:
            write(f"{label}\t{'' if value is None else value}\n")
        return
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        shown = "-" if value is None or value == "" else escape(str(value))
        out().print(f"[dim]{label:<{width}}[/]  {shown}")


def render_status(status: CollectionStatus, as_json: bool) -> None:
    if as_json:
        print_json(status.to_dict())
        return
    data = status.to_dict()
    kind = status.index.summary
    terminal = stdout_is_terminal()
    _pairs(
        [
            ("collection", status.collection),
            ("path", status.path),
            ("format version", status.format_version),
            ("embedder", status.embedder.get("name")),
            ("dimension", status.embedder.get("dimension")),
            ("query prompt", repr(status.embedder.get("query_prompt", ""))),
            ("document prompt", repr(status.embedder.get("document_prompt", ""))),
            ("chunk size", status.chunking.get("chunk_size")),
            ("chunk overlap", status.chunking.get("chunk_overlap")),
            ("documents", status.documents),
            ("files", status.files),
            ("chunks", status.chunks),
            ("index", kind),
            ("size on disk", _bytes(status.disk_bytes) if terminal else status.disk_bytes),
            ("last update", data["updated_at"]),
            ("created", status.created_at),
        ]
    )


def render_documents(listing: DocumentList, as_json: bool) -> None:
    if as_json:
        print_json(listing.to_dict())
        return
    documents = listing.to_dict()["documents"]
    if not stdout_is_terminal():
        for d in documents:
            fields = [d["source"], d["chunks"], d["size"], d["format"], d["ingested_at"]]
            write("\t".join(str(f) for f in fields) + "\n")
        return
    table = _table("source", "format", "chunks>", "size>", "ingested")
    table.title = f"collection '{listing.collection}': {len(documents)} documents"
    for d in documents:
        size, ingested = _bytes(d["size"]), d["ingested_at"] or ""
        table.add_row(escape(d["source"]), d["format"], str(d["chunks"]), size, ingested)
    out().print(table)


def _table(*columns: str) -> Any:
    """A rich table; a column named ``x>`` is right-aligned."""
    from rich.table import Table

    table = Table()
    for column in columns:
        right = column.endswith(">")
        table.add_column(column.rstrip(">"), justify="right" if right else "left", overflow="fold")
    return table


def render_removed(report: RemoveReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
        return
    for source in report.removed:
        write(f"removed\t{source}\n")
    write(
        f"collection '{report.collection}': {len(report.removed)} document(s) removed, "
        f"{report.chunks_removed} chunks\n"
    )


def render_collections(collections: list[CollectionSummary], as_json: bool) -> None:
    if as_json:
        print_json({"collections": [c.to_dict() for c in collections]})
        return
    rows = [c.to_dict() for c in collections]
    if not stdout_is_terminal():
        keys = ("name", "documents", "chunks", "disk_bytes", "updated_at", "embedder")
        for r in rows:
            fields = [r[key] for key in (*keys, "problem")]
            write("\t".join("" if f is None else _cell(str(f)) for f in fields) + "\n")
        return
    if not rows:
        note("no collections yet: `ragcli ingest PATH` makes one")
        return
    table = _table("collection", "documents>", "chunks>", "size>", "updated", "embedder")
    for c, r in zip(collections, rows):
        name = f"[bold]{escape(c.name)}[/]"
        if c.problem:
            table.add_row(name, "", "", "", "", f"[red]{escape(c.problem)}[/]")
            continue
        counts = (str(c.documents), str(c.chunks), _bytes(c.disk_bytes))
        table.add_row(name, *counts, r["updated_at"] or "", escape(c.embedder or ""))
    out().print(table)


def render_dropped(report: DropReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
        return
    write(
        f"dropped collection '{report.collection}' ({report.documents} documents, "
        f"{report.chunks} chunks, {_bytes(report.disk_bytes)})\n"
    )


def _one_line(text: str, limit: int = SNIPPET_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def render_search(result: SearchResult, as_json: bool) -> None:
    if as_json:
        print_json(result.to_dict())
        return
    if not stdout_is_terminal():
        for hit in result.hits:
            fields = [str(hit.rank), f"{hit.score:.4f}", hit.source, hit.location]
            if hit.explain is not None:
                fields.append(_explain_line(hit))
            write("\t".join([*fields, _one_line(hit.text)]) + "\n")
        return
    for hit in result.hits:
        where = f"  [cyan]{escape(hit.location)}[/]" if hit.location else ""
        heading = f"  [dim]{escape(hit.heading)}[/]" if hit.heading else ""
        score = f"[green]{hit.score:.3f}[/]"
        out().print(f"[bold]{hit.rank}.[/] {score}  [bold]{escape(hit.source)}[/]{where}{heading}")
        if hit.explain is not None:
            out().print(f"   [dim]{escape(_explain_line(hit))}[/]")
        out().print(f"   {escape(_one_line(hit.text))}")


def _source_lines(hits: list[tuple[int, Hit]], show_text: bool) -> list[str]:
    lines = []
    for number, hit in hits:
        lines.append(f"[{number}] {passage_label(hit)}")
        if show_text:
            lines += ["    " + line for line in hit.text.strip().splitlines()]
    return lines


NOT_FOUND = "The collection does not seem to contain the answer."


def render_answer(answer: Answer, show_passages: bool, quiet: bool) -> None:
    """After a streamed answer: warnings, then the sources (stdout on a terminal, else stderr).

    An answer withheld for weak retrieval prints a one-line notice and the nearest passages.
    """
    if answer.abstain_reason == "weak retrieval":
        write(NOT_FOUND + "\n")
        if not quiet:
            warning(
                f"no passage is close to the question (best similarity {answer.evidence:.2f}); "
                "the model was not asked (--no-abstain asks it anyway)"
            )
    else:
        write("\n")
        if not quiet:
            _answer_warnings(answer)
    if quiet and not stdout_is_terminal():
        return
    if answer.abstain_reason == "weak retrieval":
        title = "Nearest passages:"
        numbered = list(enumerate(answer.passages, start=1))
    elif answer.citations:
        title = "Sources:"
        numbered = [(c.marker, c.hit) for c in answer.citations]
    else:
        title = "Passages given to the model (none cited):"
        numbered = list(enumerate(answer.passages, start=1))
    target = out() if stdout_is_terminal() else err()
    target.print("")
    for line in [title, *_source_lines(numbered, show_passages)]:
        target.print(line, markup=False, style="dim" if target is err() else None)


def _answer_warnings(answer: Answer) -> None:
    if answer.unknown_markers:
        warning(
            "removed citation markers that point to no passage: "
            + ", ".join(f"[{n}]" for n in answer.unknown_markers)
        )
    unsupported = [s for s in answer.sentences if not s["supported"]]
    if answer.abstain_reason == "unsupported":
        warning(
            "no sentence of this answer is supported by the passages it cites; "
            "treat it as not answered"
        )
    elif unsupported and answer.abstain_reason is None:
        for sentence in unsupported:
            text = _one_line(sentence["text"], 120)
            if sentence["backed_by"]:
                backed = ", ".join(f"[{n}]" for n in sentence["backed_by"])
                warning(f"cites the wrong passage, support is in {backed}: {text}")
            else:
                warning(f"not supported by the passages it cites: {text}")


def token_event(text: str) -> None:
    print_json({"event": "token", "text": text}, lines=True)


def render_answer_events(answer: Answer) -> None:
    """The closing events of ``--stream-json``: one per citation, then the whole answer."""
    for citation in answer.citations:
        print_json({"event": "citation", **citation.to_dict()}, lines=True)
    print_json({"event": "done", **answer.to_dict()}, lines=True)


def render_eval(report: EvalReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
        return
    where = report.dataset or f"collection '{report.collection}'"
    if stdout_is_terminal():
        from rich.table import Table

        table = Table(title=f"{where}: {report.queries} queries, mode {report.mode}")
        for name in report.metrics:
            table.add_column(name, justify="right")
        table.add_row(*(f"{value:.4f}" for value in report.metrics.values()))
        out().print(table)
    else:
        write("metric\tvalue\n")
        for name, value in report.metrics.items():
            write(f"{name}\t{value:.4f}\n")
    if report.run_file:
        note(f"run written to {report.run_file}")


def _explain_line(hit: Hit) -> str:
    e = hit.explain or {}
    parts = []
    for label, rank, score in (
        ("dense", e.get("dense_rank"), e.get("dense_score")),
        ("lexical", e.get("lexical_rank"), e.get("lexical_score")),
    ):
        parts.append(f"{label} #{rank} {score:.4f}" if rank is not None else f"{label} -")
    parts.append(f"fused {e.get('fused_score', 0):.4f}")
    if e.get("rerank_score") is not None:
        parts.append(f"rerank {e['rerank_score']:.4f}")
    return ", ".join(parts)


# -- embeddings and models ---------------------------------------------------------------------


def _cell(text: str) -> str:
    """A text as one TSV cell: no tabs or line breaks."""
    return " ".join(text.split())


def _score_style(score: float) -> str:
    if score >= 0.8:
        return "bold green"
    if score >= 0.5:
        return "green"
    return "yellow" if score >= 0.2 else "dim"


def render_similarity(result: Similarity, as_json: bool) -> None:
    """A matrix (or one column with ``--to``): a table on a terminal, TSV when piped."""
    if as_json:
        print_json(result.to_dict())
        return
    cells = [_cell(t) for t in result.texts]
    if not stdout_is_terminal():
        if result.to is None:
            write("\t" + "\t".join(cells) + "\n")
            for cell, row in zip(cells, result.matrix):
                write(cell + "\t" + "\t".join(f"{s:.4f}" for s in row) + "\n")
        else:
            for cell, score in zip(cells, result.scores):
                write(f"{score:.4f}\t{cell}\n")
        return
    from rich.table import Table
    from rich.text import Text

    title = f"cosine similarity, {result.embedder}"
    if result.to is not None:
        title += f"\nto: {_one_line(result.to, 80)}"
    table = Table(title=title, title_style="dim", title_justify="left")
    table.add_column("#", justify="right", style="dim")
    if result.to is None:
        table.add_column("text", max_width=40, no_wrap=True, overflow="ellipsis")
        for number in range(1, len(cells) + 1):
            table.add_column(str(number), justify="right")
        for number, (cell, row) in enumerate(zip(cells, result.matrix), start=1):
            scores = [
                Text(f"{s:.3f}", style="dim" if i == number else _score_style(s))
                for i, s in enumerate(row, start=1)
            ]
            table.add_row(str(number), cell, *scores)
    else:
        table.add_column("score", justify="right")
        table.add_column("text", overflow="fold")
        for number, (cell, score) in enumerate(zip(cells, result.scores), start=1):
            table.add_row(str(number), Text(f"{score:.3f}", style=_score_style(score)), cell)
    out().print(table)


def render_embeddings(result: Embeddings) -> None:
    """JSON Lines on stdout: ``{"text": ..., "vector": [...]}`` per text."""
    for record in result.records():
        print_json(record, lines=True)


def _count(value: int | None) -> str:
    if value is None:
        return "?"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.2f}{unit}" if unit == "B" else f"{value / size:.1f}{unit}"
    return str(value)


def _size(value: int | None) -> str:
    if not value:
        return "?"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.2f} {unit}" if unit == "GB" else f"{value / size:.0f} {unit}"
    return f"{value} B"


_READINESS = {"needs prepare": "prepare", "not downloaded": "no (hub)"}


def render_models(models: list[ModelInfo], as_json: bool) -> None:
    """The model catalogue: a table on a terminal, TSV when piped (README: Scripting)."""
    if as_json:
        print_json({"models": [m.to_dict() for m in models]})
        return
    if not stdout_is_terminal():
        for m in models:
            f = m.facts
            fields = [
                m.role,
                m.name,
                m.origin,
                m.state,
                "yes" if m.ready_offline else "no",
                *(str(v) if v is not None else "" for v in (f.parameters, f.dimension)),
                str(f.max_tokens or ""),
                str(f.disk_bytes or ""),
                str(m.memory_bytes or ""),
                f.licence or "",
                m.location,
            ]
            write("\t".join(_cell(field) for field in fields) + "\n")
        return
    from rich.console import JustifyMethod
    from rich.table import Table

    table = Table()
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("#", "right"),
        ("role", "left"),
        ("model", "left"),  # folds rather than truncates: names are what users copy
        ("params", "right"),
        ("dim", "right"),
        ("max len", "right"),
        ("disk", "right"),
        ("memory", "right"),
        ("licence", "left"),
        ("offline", "left"),
    )
    for name, justify in columns:
        table.add_column(
            name, justify=justify, overflow="fold", min_width=16 if name == "model" else None
        )
    for number, m in enumerate(models, start=1):
        f = m.facts
        table.add_row(
            str(number),
            m.role,
            f"[bold]{escape(m.name)}[/] [dim]({m.origin})[/]",
            _count(f.parameters),
            str(f.dimension or "?"),
            str(f.max_tokens or "?"),
            _size(f.disk_bytes),
            _size(m.memory_bytes),
            escape(f.licence or "?"),
            "[green]yes[/]"
            if m.ready_offline
            else f"[yellow]{_READINESS.get(m.state, m.state)}[/]",
        )
    out().print(table)
    for number, m in enumerate(models, start=1):
        out().print(f"[dim]{number}. {escape(m.location)}[/]")
        if m.role == "generator" and m.backend:
            engine = f": {m.engine}" if m.engine else ""
            out().print(f"   runs on {escape(m.backend)}{escape(engine)}")
        if m.note:
            out().print(f"   [yellow]{escape(m.note)}[/]")
    out().print(
        "[dim]dim: embedding dimension (embedders) or hidden size (generators); max len: longest "
        "input or context window, in tokens; memory: the weights once loaded[/]"
    )


def render_prepared(prepared: list[PreparedModel], as_json: bool) -> None:
    if as_json:
        print_json({"models": [p.to_dict() for p in prepared]})
        return
    for p in prepared:
        fields = [p.role, p.name, "; ".join(p.steps), f"{p.seconds:.1f} s", p.location]
        if stdout_is_terminal():
            out().print(
                f"[bold]{p.role}[/] {escape(p.name)}: {escape(fields[2])} [dim]({fields[3]}, "
                f"{escape(p.location)})[/]"
            )
        else:
            write("\t".join(_cell(f) for f in fields) + "\n")
