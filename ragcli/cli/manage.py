"""Collections as a whole: ``status``, ``list``, ``remove``, ``compact``, ``collections`` and
its ``drop``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from ragcli.cli import inputs
from ragcli.cli.options import Collection, Debug, Json
from ragcli.cli.root import HELP_OPTIONS, boundary
from ragcli.errors import RagcliError, UsageError

if TYPE_CHECKING:
    from ragcli.manage import DropReport


def status(collection: Collection = None, json_: Json = False, debug: Debug = False) -> None:
    """Show a collection: embedder, chunking, documents, chunks, index, size, last update."""
    from ragcli import console, manage

    with boundary(debug):
        settings = inputs.settings(collection=collection)
        console.render_status(manage.collection_status(settings), json_)


def list_(collection: Collection = None, json_: Json = False, debug: Debug = False) -> None:
    """List the collection's documents with their chunk counts."""
    from ragcli import console, manage

    with boundary(debug):
        settings = inputs.settings(collection=collection)
        console.render_documents(manage.list_documents(settings), json_)


def remove(
    paths: Annotated[
        list[str],
        typer.Argument(help="Documents by source as listed, or files or folders as ingested."),
    ],
    collection: Collection = None,
    json_: Json = False,
    debug: Debug = False,
) -> None:
    """Remove documents from the collection (the files themselves stay)."""
    from ragcli import console, manage

    with boundary(debug):
        report = manage.remove_documents(inputs.settings(collection=collection), paths)
        console.render_removed(report, json_)
        if report.not_found:
            raise UsageError(
                f"not in collection {report.collection!r}: {', '.join(report.not_found)}",
                "`ragcli list` shows what it holds",
            )


def compact(collection: Collection = None, json_: Json = False, debug: Debug = False) -> None:
    """Merge the collection's vector segments into one and give back the space removed
    chunks take; searches go on meanwhile."""
    from ragcli import console, manage

    with boundary(debug):
        console.render_compacted(manage.compact(inputs.settings(collection=collection)), json_)


collections_app = typer.Typer(
    help="List the collections, or drop one.",
    context_settings=HELP_OPTIONS,
)


@collections_app.callback(invoke_without_command=True)
def collections(context: typer.Context, json_: Json = False, debug: Debug = False) -> None:
    """List every collection with its documents, chunks, embedder, size and last update."""
    if context.invoked_subcommand is not None:
        return
    from ragcli import console, manage

    with boundary(debug):
        console.render_collections(manage.list_collections(inputs.settings()), json_)


def _interactive() -> bool:
    """Whether a question can be asked: stdin is a terminal."""
    return sys.stdin.isatty()


@collections_app.command("drop")
def collections_drop(
    name: Annotated[str, typer.Argument(help="The collection to delete.")],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask (needed when stdin is no terminal).")
    ] = False,
    json_: Json = False,
    debug: Debug = False,
) -> None:
    """Delete a collection and everything in it (never the files it was made from)."""
    from ragcli import console, manage

    with boundary(debug):
        settings = inputs.settings(collection=name)
        if not yes:
            _confirm_drop(name, manage.describe_for_drop(settings))
        console.render_dropped(manage.drop(settings), json_)


def _confirm_drop(name: str, planned: DropReport) -> None:
    """Ask before dropping; refuse when no one can be asked."""
    if not _interactive():
        raise UsageError(
            f"dropping collection {name!r} needs confirmation",
            "pass --yes to drop it without a question",
        )
    question = f"Drop collection {name!r} ({planned.documents} documents, {planned.chunks} chunks)?"
    if not typer.confirm(question, default=False, err=True):
        raise RagcliError(f"collection {name!r} kept")
