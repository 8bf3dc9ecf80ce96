"""The command line: parses flags, calls one pipeline function, renders, picks the exit code."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from ragcli import __version__
from ragcli.errors import EXIT_ERROR, EXIT_INTERRUPTED, RagcliError, UsageError

app = typer.Typer(
    name="ragcli",
    help="Ask questions of your documents from the terminal, with local models and no cloud.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Collection = Annotated[
    str | None,
    typer.Option(
        "--collection", "-c", help="Collection name [env: RAGCLI_COLLECTION; default: default]."
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress, notes or warnings on stderr.")
]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks and library logs.")]
TopK = Annotated[
    int | None,
    typer.Option(
        "--top-k", "-k", min=1, help="Passages to retrieve [env: RAGCLI_TOP_K; default: 4]."
    ),
]
EmbedModel = Annotated[
    str | None,
    typer.Option(
        "--embed-model",
        help="Embedder: hub id or local folder; a collection keeps the one it was built with "
        "[env: RAGCLI_EMBED_MODEL; default: bundled all-MiniLM-L6-v2].",
    ),
]
Question = Annotated[
    str | None,
    typer.Argument(help="The question; '-' or omitted reads it from standard input."),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ragcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Ask questions of your documents from the terminal, with local models and no cloud."""


@contextlib.contextmanager
def _boundary(debug: bool) -> Iterator[None]:
    """The one place where errors become a stderr line and an exit code."""
    from ragcli import console

    if debug:
        os.environ["RAGCLI_DEBUG"] = "1"
    try:
        yield
    except RagcliError as e:
        if debug:
            import traceback

            traceback.print_exc()
        console.error(e.message, e.hint)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        console.error("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        _silence_stdout()
        raise typer.Exit(0) from None
    except Exception as e:
        if debug:
            raise
        console.error(f"unexpected {type(e).__name__}: {e}", "run again with --debug for details")
        raise typer.Exit(EXIT_ERROR) from None


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the exit flush stays quiet."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _settings(**overrides: Any) -> Any:
    from ragcli.config import load_settings

    return load_settings(**overrides)


def _read_question(question: str | None) -> str:
    if question is None or question == "-":
        if question is None and sys.stdin.isatty():
            raise UsageError("missing QUESTION", "pass it as an argument or pipe it on stdin")
        question = sys.stdin.read()
    question = question.strip()
    if not question:
        raise UsageError("the question is empty")
    return question


@app.command()
def ingest(
    paths: Annotated[
        list[str], typer.Argument(help="Files, folders (recursive) or glob patterns.")
    ],
    collection: Collection = None,
    embed_model: EmbedModel = None,
    chunk_size: Annotated[
        int | None,
        typer.Option(
            min=16,
            help="Chunk size in embedder tokens; fixed per collection "
            "[env: RAGCLI_CHUNK_SIZE; default: 200].",
        ),
    ] = None,
    chunk_overlap: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Tokens repeated between chunks cut inside a paragraph "
            "[env: RAGCLI_CHUNK_OVERLAP; default: 32].",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be read; change nothing.")
    ] = False,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Read files into a collection: split, embed and index what is new or changed."""
    from ragcli import console, pipeline

    with _boundary(debug):
        settings = _settings(
            collection=collection,
            embed_model=embed_model,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
        )
        report = pipeline.ingest(settings, paths, console.ConsoleEvents(quiet), dry_run=dry_run)
        console.render_ingest(report, json_)


@app.command()
def search(
    question: Question = None,
    top_k: TopK = None,
    collection: Collection = None,
    embed_model: EmbedModel = None,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Show the passages closest in meaning to QUESTION (no generation)."""
    from ragcli import console, pipeline

    with _boundary(debug):
        settings = _settings(collection=collection, embed_model=embed_model, top_k=top_k)
        result = pipeline.search(settings, _read_question(question))
        console.render_search(result, json_)


@app.command()
def ask(
    question: Question = None,
    top_k: TopK = None,
    collection: Collection = None,
    llm: Annotated[
        str | None,
        typer.Option(
            "--llm",
            help="Generator: hub id, local folder or .gguf file "
            "[env: RAGCLI_LLM; default: bundled Qwen2.5-Coder-1.5B-Instruct].",
        ),
    ] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-tokens",
            min=1,
            help="Most tokens to generate [env: RAGCLI_MAX_TOKENS; default: 256].",
        ),
    ] = None,
    embed_model: EmbedModel = None,
    show_passages: Annotated[
        bool,
        typer.Option("--show-passages", help="Print the text of each source after the answer."),
    ] = False,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Answer QUESTION from the collection with the local LLM, citing the passages used."""
    from ragcli import console, pipeline

    with _boundary(debug):
        settings = _settings(
            collection=collection,
            embed_model=embed_model,
            llm=llm,
            top_k=top_k,
            max_tokens=max_tokens,
        )
        text = _read_question(question)
        events = console.ConsoleEvents(quiet)
        stream = None if json_ else console.write
        answer = pipeline.ask(settings, text, events=events, on_token=stream)
        if json_:
            console.print_json(answer.to_dict())
            return
        console.write("\n")
        if not quiet or console.stdout_is_terminal():
            console.render_answer_sources(answer, show_passages)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:
        _silence_stdout()
        sys.exit(0)
    except KeyboardInterrupt:
        sys.stderr.write("ragcli: error: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
