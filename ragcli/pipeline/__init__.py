"""Use cases that wire the steps together, one module each.

``inputs`` (arguments -> files), ``ingesting`` (``ingest``: update, rebuild, dry run) with
``syncing`` (one pass over the files, committing whole files) and ``batching`` (chunks
embedded a batch at a time), ``exporting`` (the embedder's ONNX export for questions),
``searching`` (``Searcher``, ``search``), ``answering`` (``ask``), ``conversing``
(``Conversation``, ``ask_in_session``: follow-ups in a session file), ``evaluating``
(``evaluate``), ``answer_eval`` (``evaluate_answers``), ``comparing`` and ``tuning``
(``tune``), ``serving`` (``Service``, behind ``serve`` and ``mcp``), ``watching``
(``watch``: ``ingest --watch``); ``checks`` refuses a
collection the settings do not fit, ``events`` is how each reports while it works.
"""

from ragcli.pipeline.answer_eval import AnswerEvalReport, evaluate_answers
from ragcli.pipeline.answering import ask, ask_batch
from ragcli.pipeline.conversing import Conversation, Session, ask_in_session
from ragcli.pipeline.evaluating import EvalReport, evaluate
from ragcli.pipeline.events import Events
from ragcli.pipeline.ingesting import IngestInterrupted, ingest
from ragcli.pipeline.inputs import collect_inputs, shard_of
from ragcli.pipeline.searching import Searcher, search, search_batch
from ragcli.pipeline.watching import watch

__all__ = [
    "AnswerEvalReport",
    "Conversation",
    "EvalReport",
    "Events",
    "IngestInterrupted",
    "Searcher",
    "Session",
    "ask",
    "ask_batch",
    "ask_in_session",
    "collect_inputs",
    "evaluate",
    "evaluate_answers",
    "ingest",
    "search",
    "search_batch",
    "shard_of",
    "watch",
]
