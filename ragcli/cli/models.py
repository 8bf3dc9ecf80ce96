"""``ragcli models``: the models ragcli knows, and ``models prepare`` to ready them offline."""

from __future__ import annotations

import typer

from ragcli.cli import inputs
from ragcli.cli.options import Backend, Debug, EmbedModel, Json, Llm, Quiet
from ragcli.cli.root import HELP_OPTIONS, boundary

models_app = typer.Typer(
    help="List the models ragcli knows, or prepare them ahead of time.",
    context_settings=HELP_OPTIONS,
)


@models_app.callback(invoke_without_command=True)
def models(
    context: typer.Context,
    embed_model: EmbedModel = None,
    llm: Llm = None,
    backend: Backend = None,
    json_: Json = False,
    debug: Debug = False,
) -> None:
    """List the bundled, configured and cached models: size, limits, memory, readiness."""
    if context.invoked_subcommand is not None:
        return
    from ragcli import console
    from ragcli.models import catalog

    with boundary(debug):
        settings = inputs.settings(embed_model=embed_model, llm=llm, backend=backend)
        console.render_models(catalog.list_models(settings), json_)


@models_app.command("prepare")
def models_prepare(
    embed_model: EmbedModel = None,
    llm: Llm = None,
    backend: Backend = None,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Assemble, verify and convert the generator, and check the embedder loads (offline)."""
    from ragcli import console
    from ragcli.models import preparing

    with boundary(debug):
        settings = inputs.settings(embed_model=embed_model, llm=llm, backend=backend)
        events = console.ConsoleEvents(quiet)
        prepared = preparing.prepare_models(settings, events.status, events.warn)
        console.render_prepared(prepared, json_)


@models_app.command("cache")
def models_cache(
    clear: bool = typer.Option(
        False, "--clear", help="Delete the cached vectors (they are made again when needed)."
    ),
    json_: Json = False,
    debug: Debug = False,
) -> None:
    """Show the embedding cache (passages embedded once, reused by re-ingests), or clear it."""
    from ragcli import console
    from ragcli.models import embedding_cache

    with boundary(debug):
        settings = inputs.settings()
        freed = embedding_cache.clear(settings.home) if clear else None
        console.render_embedding_cache(embedding_cache.describe(settings.home), freed, json_)
