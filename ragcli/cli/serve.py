"""Serving collections to other programs: ``ragcli serve`` (HTTP) and ``ragcli mcp`` (MCP)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ragcli.cli import inputs
from ragcli.cli.options import Backend, Collection, Debug, Llm, Quiet, Store, TopK
from ragcli.cli.root import boundary
from ragcli.errors import UsageError

Host = Annotated[
    str,
    typer.Option(
        "--host", help="Address to listen on; anything but loopback needs --token [default: "
        "127.0.0.1]."
    ),
]  # fmt: skip
Port = Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="Require 'Authorization: Bearer TOKEN' on every API request [env: RAGCLI_TOKEN].",
    ),
]
Queue = Annotated[
    int,
    typer.Option(
        "--queue",
        min=0,
        help="Answers that may wait while one is written; one more gets 503 [default: 4].",
    ),
]
Cors = Annotated[
    list[str] | None,
    typer.Option(
        "--cors-origin",
        help="Let pages from this origin call the API (repeatable) [default: none].",
    ),
]

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def serve(
    host: Host = "127.0.0.1",
    port: Port = 8765,
    token: Token = None,
    collection: Collection = None,
    top_k: TopK = None,
    llm: Llm = None,
    backend: Backend = None,
    store: Store = None,
    queue: Queue = 4,
    cors_origin: Cors = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Serve collections over HTTP: a JSON API, streamed answers, OpenAI-compatible chat, a page.

    The page for people is at /; models load once and stay loaded.
    """
    from ragcli import console
    from ragcli.pipeline.serving import Service
    from ragcli.server import http

    with boundary(debug):
        token = token or os.environ.get("RAGCLI_TOKEN") or None
        if host not in LOOPBACK and not token:
            raise UsageError(
                f"serving on {host} lets other machines in",
                "pass --token (or set RAGCLI_TOKEN), or serve on 127.0.0.1",
            )
        settings = inputs.settings(
            collection=collection, top_k=top_k, llm=llm, backend=backend, store=store
        )
        service = Service(settings, queue=queue, events=console.ConsoleEvents(quiet))
        try:
            http.run(service, host, port, token, cors_origin or [], console.note)
        finally:
            service.close()


def mcp(
    collection: Collection = None,
    top_k: TopK = None,
    llm: Llm = None,
    backend: Backend = None,
    store: Store = None,
    debug: Debug = False,
) -> None:
    """Serve collections to an agent over the Model Context Protocol (stdio).

    Tools to search, ask, list collections and read passages and documents.
    """
    from ragcli import console
    from ragcli.pipeline.serving import Service
    from ragcli.server import mcp as mcp_server

    with boundary(debug):
        settings = inputs.settings(
            collection=collection, top_k=top_k, llm=llm, backend=backend, store=store
        )
        # stdout carries the protocol: everything else goes to stderr, quietly
        service = Service(settings, events=console.ConsoleEvents(quiet=True))
        try:
            mcp_server.run(service)
        finally:
            service.close()
