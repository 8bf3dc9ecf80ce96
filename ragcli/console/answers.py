"""Renderers for questions: search hits, answers with their sources and warnings, eval scores."""

from __future__ import annotations

from rich.markup import escape

from ragcli.console import streams
from ragcli.console.formats import one_line
from ragcli.console.streams import note, print_json, stdout_is_terminal, warning, write
from ragcli.pipeline import AnswerEvalReport, EvalReport
from ragcli.prompting import passage_label
from ragcli.records import Answer, Hit, SearchResult

NOT_FOUND = "The collection does not seem to contain the answer."


def render_search(result: SearchResult, as_json: bool) -> None:
    if as_json:
        print_json(result.to_dict())
        return
    if not stdout_is_terminal():
        for hit in result.hits:
            fields = [str(hit.rank), f"{hit.score:.4f}", hit.source, hit.location]
            if hit.explain is not None:
                fields.append(_explain_line(hit))
            write("\t".join([*fields, one_line(hit.text)]) + "\n")
        return
    out = streams.out()
    for hit in result.hits:
        where = f"  [cyan]{escape(hit.location)}[/]" if hit.location else ""
        heading = f"  [dim]{escape(hit.heading)}[/]" if hit.heading else ""
        score = f"[green]{hit.score:.3f}[/]"
        out.print(f"[bold]{hit.rank}.[/] {score}  [bold]{escape(hit.source)}[/]{where}{heading}")
        if hit.explain is not None:
            out.print(f"   [dim]{escape(_explain_line(hit))}[/]")
        out.print(f"   {escape(one_line(hit.text))}")


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
    _render_sources(answer, show_passages)


def _render_sources(answer: Answer, show_passages: bool) -> None:
    """The cited passages, or those the model was given, or the nearest ones when withheld."""
    if answer.abstain_reason == "weak retrieval":
        title = "Nearest passages:"
        numbered = list(enumerate(answer.passages, start=1))
    elif answer.citations:
        title = "Sources:"
        numbered = [(c.marker, c.hit) for c in answer.citations]
    else:
        title = "Passages given to the model (none cited):"
        numbered = list(enumerate(answer.passages, start=1))
    target = streams.out() if stdout_is_terminal() else streams.err()
    target.print("")
    for line in [title, *_source_lines(numbered, show_passages)]:
        target.print(line, markup=False, style="dim" if target is streams.err() else None)


def _source_lines(hits: list[tuple[int, Hit]], show_text: bool) -> list[str]:
    lines = []
    for number, hit in hits:
        lines.append(f"[{number}] {passage_label(hit)}")
        if show_text:
            lines += ["    " + line for line in hit.text.strip().splitlines()]
    return lines


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
    elif answer.abstain_reason in ("low confidence", "not verified"):
        measured = (
            f"confidence {answer.confidence:.2f}"
            if answer.abstain_reason == "low confidence" and answer.confidence is not None
            else f"verification {answer.verified or 0.0:.2f}"
        )
        warning(
            f"this answer is likely wrong ({measured}, under the threshold); treat it as not "
            "answered (--abstain-threshold moves the threshold)"
        )
    elif unsupported and answer.abstain_reason is None:
        for sentence in unsupported:
            text = one_line(sentence["text"], 120)
            if sentence["backed_by"]:
                backed = ", ".join(f"[{n}]" for n in sentence["backed_by"])
                warning(f"cites the wrong passage, support is in {backed}: {text}")
            else:
                warning(f"not supported by the passages it cites: {text}")
    cited = {c.hit.source for c in answer.citations}
    for stale in answer.stale_sources:
        if stale.source in cited:
            what = "changed" if stale.reason == "changed" else "is gone"
            warning(
                f"cited source {what} since it was ingested: {stale.source} "
                "(run ragcli ingest again)"
            )


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
        streams.out().print(table)
    else:
        write("metric\tvalue\n")
        for name, value in report.metrics.items():
            write(f"{name}\t{value:.4f}\n")
    if report.run_file:
        note(f"run written to {report.run_file}")


_ANSWER_FIGURES = (
    ("contains", "gold answer in the answer (answerable)"),
    ("exact_match", "exact match (answerable)"),
    ("f1", "token F1 (answerable)"),
    ("cited_gold", "cites a gold document (answered)"),
    ("wrongly_abstained", "withheld, answerable"),
    ("abstained_unanswerable", "withheld, unanswerable"),
    ("abstention_precision", "abstention precision"),
    ("abstention_recall", "abstention recall"),
)


def render_answer_eval(report: AnswerEvalReport, as_json: bool) -> None:
    """The figures of ``eval --answers``: a table on a terminal, TSV otherwise."""
    if as_json:
        print_json(report.to_dict())
        return
    summary = report.summary.to_dict()
    rows = [(label, summary[name]) for name, label in _ANSWER_FIGURES]
    for name in ("latency_s", "first_token_s"):
        for q, value in summary[name].items():
            rows.append((f"{name.replace('_s', '')} {q} (s)", value))
    cells = [(label, "-" if v is None else f"{v:.3f}") for label, v in rows]
    title = (
        f"collection '{report.collection}': {report.summary.answerable} answerable, "
        f"{report.summary.unanswerable} unanswerable, abstention threshold {report.threshold:g}"
    )
    if stdout_is_terminal():
        from rich.table import Table

        table = Table(title=title)
        table.add_column("figure")
        table.add_column("value", justify="right")
        for label, value in cells:
            table.add_row(label, value)
        streams.out().print(table)
    else:
        write("figure\tvalue\n")
        for label, value in cells:
            write(f"{label}\t{value}\n")
    if report.saved:
        note(f"answers written to {report.saved}")
    if report.plot:
        note(f"trade-off drawn to {report.plot}")
