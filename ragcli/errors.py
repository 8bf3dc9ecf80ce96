"""Typed errors raised by the core; ``cli.py`` maps each to one stderr line and an exit code."""

from __future__ import annotations

# Exit codes, documented in README "Exit codes".
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NO_COLLECTION = 3
EXIT_MODEL = 4
EXIT_INCOMPATIBLE = 5
EXIT_NOTHING_INGESTED = 6
EXIT_NOT_ANSWERED = 7  # ask abstained: weak retrieval, the model declined, or no support
EXIT_BUSY = 8  # another process is writing the collection; worth trying again later
EXIT_STORE = 9  # the PostgreSQL store cannot be reached, refuses the login, or lacks pgvector
EXIT_INTERRUPTED = 130


class RagcliError(Exception):
    """An error a user can act on: a message plus an optional hint."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(RagcliError):
    """The command line asked for something that cannot work."""

    exit_code = EXIT_USAGE


class CollectionNotFoundError(RagcliError):
    """The collection does not exist or holds nothing to search."""

    exit_code = EXIT_NO_COLLECTION


class NoMatchError(CollectionNotFoundError):
    """Filters that no document of the collection matches: nothing to search."""


class ModelError(RagcliError):
    """A model could not be found, verified or loaded."""

    exit_code = EXIT_MODEL


class IncompatibleCollectionError(RagcliError):
    """The collection was built with other settings, by another version, or is damaged."""

    exit_code = EXIT_INCOMPATIBLE


class CollectionBusyError(RagcliError):
    """Another process is writing to the collection."""

    exit_code = EXIT_BUSY


class ServiceBusyError(RagcliError):
    """A server's queue of answers is full; worth trying again shortly."""

    exit_code = EXIT_BUSY


class StoreUnavailableError(RagcliError):
    """The database server behind a PostgreSQL store cannot be used."""

    exit_code = EXIT_STORE


class NothingIngestedError(RagcliError):
    """None of the given inputs could be read."""

    exit_code = EXIT_NOTHING_INGESTED


class LoaderError(RagcliError):
    """One file could not be read; ingest reports it and goes on with the others."""
