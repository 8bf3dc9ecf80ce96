"""Renderers for embeddings as tools: a similarity matrix or column, vectors as JSON Lines."""

from __future__ import annotations

from ragcli.console import streams
from ragcli.console.formats import cell, one_line
from ragcli.console.streams import print_json, stdout_is_terminal, write
from ragcli.vectors import Embeddings, Similarity


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
    cells = [cell(t) for t in result.texts]
    if not stdout_is_terminal():
        if result.to is None:
            write("\t" + "\t".join(cells) + "\n")
            for text, row in zip(cells, result.matrix):
                write(text + "\t" + "\t".join(f"{s:.4f}" for s in row) + "\n")
        else:
            for text, score in zip(cells, result.scores):
                write(f"{score:.4f}\t{text}\n")
        return
    _print_similarity_table(result, cells)


def _print_similarity_table(result: Similarity, cells: list[str]) -> None:
    from rich.table import Table
    from rich.text import Text

    title = f"cosine similarity, {result.embedder}"
    if result.to is not None:
        title += f"\nto: {one_line(result.to, 80)}"
    table = Table(title=title, title_style="dim", title_justify="left")
    table.add_column("#", justify="right", style="dim")
    if result.to is None:
        table.add_column("text", max_width=40, no_wrap=True, overflow="ellipsis")
        for number in range(1, len(cells) + 1):
            table.add_column(str(number), justify="right")
        for number, (text, row) in enumerate(zip(cells, result.matrix), start=1):
            scores = [
                Text(f"{s:.3f}", style="dim" if i == number else _score_style(s))
                for i, s in enumerate(row, start=1)
            ]
            table.add_row(str(number), text, *scores)
    else:
        table.add_column("score", justify="right")
        table.add_column("text", overflow="fold")
        for number, (text, score) in enumerate(zip(cells, result.scores), start=1):
            table.add_row(str(number), Text(f"{score:.3f}", style=_score_style(score)), text)
    streams.out().print(table)


def render_embeddings(result: Embeddings) -> None:
    """JSON Lines on stdout: ``{"text": ..., "vector": [...]}`` per text."""
    for record in result.records():
        print_json(record, lines=True)
