"""The command line: parses flags, calls one pipeline function, renders, picks the exit code.

``root`` holds the Typer app, the error boundary and ``main()``; the command groups live in
their own modules and are put on the app here, in the order ``ragcli --help`` lists them.
"""

from __future__ import annotations

from ragcli.cli import chat, ingest, manage, models, query, serve, tune, vectors
from ragcli.cli.root import app, main

app.command()(ingest.ingest)
app.command()(query.search)
app.command()(query.ask)
app.command()(chat.chat)
app.command(name="eval")(query.eval_)
app.command()(tune.tune)
app.command()(vectors.similarity)
app.command()(vectors.embed)
app.command()(manage.status)
app.command(name="list")(manage.list_)
app.command()(manage.remove)
app.command()(manage.compact)
app.command()(serve.serve)
app.command()(serve.mcp)
app.add_typer(models.models_app, name="models")
app.add_typer(manage.collections_app, name="collections")

__all__ = ["app", "main"]
