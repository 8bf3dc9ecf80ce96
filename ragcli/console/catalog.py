"""Renderers for ``ragcli models``: the model catalogue and what ``models prepare`` did."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape

from ragcli.console import streams
from ragcli.console.formats import cell
from ragcli.console.streams import print_json, stdout_is_terminal, write
from ragcli.models.catalog import ModelInfo
from ragcli.models.preparing import PreparedModel

if TYPE_CHECKING:
    from rich.console import JustifyMethod

_READINESS = {"needs prepare": "prepare", "not downloaded": "no (hub)"}

_COLUMNS: tuple[tuple[str, JustifyMethod], ...] = (
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


def render_models(models: list[ModelInfo], as_json: bool) -> None:
    """The model catalogue: a table on a terminal, TSV when piped (README: Scripting)."""
    if as_json:
        print_json({"models": [m.to_dict() for m in models]})
        return
    if not stdout_is_terminal():
        for m in models:
            write("\t".join(cell(field) for field in _tsv_fields(m)) + "\n")
        return
    _print_models_table(models)
    out = streams.out()
    for number, m in enumerate(models, start=1):
        out.print(f"[dim]{number}. {escape(m.location)}[/]")
        if m.role == "generator" and m.backend:
            engine = f": {m.engine}" if m.engine else ""
            out.print(f"   runs on {escape(m.backend)}{escape(engine)}")
        if m.note:
            out.print(f"   [yellow]{escape(m.note)}[/]")
    out.print(
        "[dim]dim: embedding dimension (embedders) or hidden size (generators); max len: longest "
        "input or context window, in tokens; memory: the weights once loaded[/]"
    )


def _tsv_fields(m: ModelInfo) -> list[str]:
    f = m.facts
    return [
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


def _print_models_table(models: list[ModelInfo]) -> None:
    from rich.table import Table

    table = Table()
    for name, justify in _COLUMNS:
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
    streams.out().print(table)


def render_prepared(prepared: list[PreparedModel], as_json: bool) -> None:
    if as_json:
        print_json({"models": [p.to_dict() for p in prepared]})
        return
    for p in prepared:
        fields = [p.role, p.name, "; ".join(p.steps), f"{p.seconds:.1f} s", p.location]
        if stdout_is_terminal():
            streams.out().print(
                f"[bold]{p.role}[/] {escape(p.name)}: {escape(fields[2])} [dim]({fields[3]}, "
                f"{escape(p.location)})[/]"
            )
        else:
            write("\t".join(cell(f) for f in fields) + "\n")


def render_embedding_cache(info: dict[str, Any], freed: int | None, as_json: bool) -> None:
    """``models cache``: where the embedding cache is, how much it holds; what --clear freed."""
    if as_json:
        print_json({**info, **({"freed_bytes": freed} if freed is not None else {})})
        return
    from ragcli.console.formats import pairs, size_in_bytes

    rows: list[tuple[str, Any]] = [
        ("path", info["path"]),
        ("enabled", "yes" if info["enabled"] else "no (RAGCLI_EMBED_CACHE=off)"),
        ("embedders", info["files"]),
        ("vectors", info["vectors"]),
        ("size", size_in_bytes(info["bytes"]) if stdout_is_terminal() else info["bytes"]),
        ("limit per embedder", size_in_bytes(info["limit_bytes"])),
    ]
    if freed is not None:
        rows.append(("freed", size_in_bytes(freed) if stdout_is_terminal() else freed))
    pairs(rows)
