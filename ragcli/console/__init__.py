"""The only package that imports rich: stdout/stderr consoles, renderers and progress.

``streams`` holds the two consoles and the message lines, ``progress`` the pipeline events on
stderr; the renderers are grouped by what they show. Everything is importable from here.
"""

from __future__ import annotations

from ragcli.console.answers import (
    NOT_FOUND,
    render_answer,
    render_answer_eval,
    render_answer_events,
    render_eval,
    render_search,
    token_event,
)
from ragcli.console.catalog import render_embedding_cache, render_models, render_prepared
from ragcli.console.chat import render_chat_help, render_chat_start, render_passages
from ragcli.console.collections import (
    render_collections,
    render_compacted,
    render_documents,
    render_dropped,
    render_ingest,
    render_removed,
    render_status,
    write_file_reports,
)
from ragcli.console.embeddings import render_embeddings, render_similarity
from ragcli.console.formats import SNIPPET_CHARS
from ragcli.console.progress import ConsoleEvents
from ragcli.console.streams import (
    err,
    error,
    note,
    out,
    print_json,
    stdout_is_terminal,
    warning,
    write,
)
from ragcli.console.tuning import render_tune

__all__ = [
    "NOT_FOUND",
    "SNIPPET_CHARS",
    "ConsoleEvents",
    "err",
    "error",
    "note",
    "out",
    "print_json",
    "render_answer",
    "render_answer_eval",
    "render_answer_events",
    "render_chat_help",
    "render_chat_start",
    "render_collections",
    "render_documents",
    "render_dropped",
    "render_embeddings",
    "render_eval",
    "render_ingest",
    "write_file_reports",
    "render_embedding_cache",
    "render_models",
    "render_passages",
    "render_prepared",
    "render_compacted",
    "render_removed",
    "render_search",
    "render_similarity",
    "render_status",
    "render_tune",
    "stdout_is_terminal",
    "token_event",
    "warning",
    "write",
]
