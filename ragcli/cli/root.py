"""The Typer app and its root options, the one error boundary, and the console-script entry."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Annotated

import typer

from ragcli import __version__
from ragcli.errors import EXIT_ERROR, EXIT_INTERRUPTED, RagcliError

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="ragcli",
    help="Ask questions of your documents from the terminal, with local models and no cloud.",
    no_args_is_help=True,
    add_completion=False,
    context_settings=HELP_OPTIONS,
)


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


def _enable_debug_logging() -> None:
    """Library logs on, and ragcli's own debug notes (which query encoder and why) on stderr."""
    import logging

    from ragcli.models import runtime

    runtime.set_debug()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ragcli: debug: %(message)s"))
    logging.getLogger("ragcli").addHandler(handler)
    logging.getLogger("ragcli").setLevel(logging.DEBUG)


@contextlib.contextmanager
def boundary(debug: bool) -> Iterator[None]:
    """The one place where errors become a stderr line and an exit code."""
    from ragcli import console

    if debug:
        _enable_debug_logging()
    try:
        yield
    except RagcliError as e:
        if debug:
            import traceback

            traceback.print_exc()
        console.error(e.message, e.hint)
        raise typer.Exit(e.exit_code) from None
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt:
        console.error("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        silence_stdout()
        raise typer.Exit(0) from None
    except Exception as e:
        if debug:
            raise
        console.error(f"unexpected {type(e).__name__}: {e}", "run again with --debug for details")
        raise typer.Exit(EXIT_ERROR) from None


def silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the exit flush stays quiet."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:
        silence_stdout()
        sys.exit(0)
    except KeyboardInterrupt:
        sys.stderr.write("ragcli: error: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
