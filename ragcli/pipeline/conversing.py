"""Follow-up questions: a conversation kept in a session file, each follow-up rewritten by the
generator into a standalone question for retrieval.

A session file is JSON Lines, one turn a line, each naming its collection (``Turn``).
``Session`` reads and checks it and appends a turn with fsync, so a crash loses at most the
turn being written; ``Conversation`` holds the collection and the models open for a session's
questions (``ask --session`` asks one, ``chat`` many).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragcli.config import Settings
from ragcli.errors import RagcliError, UsageError
from ragcli.filters import Filters
from ragcli.grounding import declines
from ragcli.models.generation import ChatModel
from ragcli.pipeline.answering import ask, generator_for
from ragcli.pipeline.events import Events
from ragcli.pipeline.searching import Searcher
from ragcli.prompting import rewrite_messages
from ragcli.records import Answer, utc_time

# A rewrite is one question: greedy, and cut off here (a rewrite that runs into the limit is
# the model rambling, and the question as asked is searched for instead).
REWRITE_MAX_TOKENS = 48
REWRITE_MAX_WORDS = 40
# Whether the generator also reads the earlier turns when it answers a follow-up (it always
# reads the question as asked, and retrieval searches for the rewrite). Off: on
# sample_corpus/conversations.jsonl the bundled model put the gold answer in 17 of 20 follow-up
# answers without them and in 11 with them, often answering an earlier question again
# (benchmarks/conversations.py, README "Conversations").
ANSWER_SEES_EARLIER = False

_HINT_NEW = "start a new conversation with another FILE"


@dataclass
class Turn:
    """One question of a conversation and what came of it: one line of a session file."""

    question: str
    collection: str
    answer: str = ""
    rewritten_query: str | None = None  # what retrieval searched for instead of the question
    sources: list[dict[str, Any]] = field(default_factory=list)  # marker, source, location, id
    abstained: bool = False
    abstain_reason: str | None = None
    timestamp: str = ""  # ISO 8601, UTC
    new_conversation: bool = False  # the turns before this one are not its conversation

    @classmethod
    def from_answer(cls, answer: Answer) -> Turn:
        return cls(
            question=answer.question,
            collection=answer.collection,
            answer=answer.text,
            rewritten_query=answer.rewritten_query,
            sources=[
                {
                    "marker": c.marker,
                    "source": c.hit.source,
                    "location": c.hit.location,
                    "chunk_id": c.hit.chunk_key,
                }
                for c in answer.citations
            ],
            abstained=answer.abstained,
            abstain_reason=answer.abstain_reason,
            timestamp=utc_time(time.time()) or "",
        )

    def to_dict(self) -> dict[str, Any]:
        # "question" first: a line cut short by a crash is recognised by how it starts.
        return {
            "question": self.question,
            "rewritten_query": self.rewritten_query,
            "answer": self.answer,
            "sources": self.sources,
            "abstained": self.abstained,
            "abstain_reason": self.abstain_reason,
            "collection": self.collection,
            "timestamp": self.timestamp,
            "new_conversation": self.new_conversation,
        }

    @classmethod
    def from_dict(cls, record: Any) -> Turn | None:
        """The turn a session line holds; None when it holds none."""
        if not isinstance(record, dict):
            return None
        question, collection = record.get("question"), record.get("collection")
        rewritten, answer = record.get("rewritten_query"), record.get("answer", "")
        sources = record.get("sources", [])
        if not (isinstance(question, str) and question.strip() and isinstance(collection, str)):
            return None
        if not (isinstance(answer, str) and isinstance(rewritten, (str, type(None)))):
            return None
        if not (isinstance(sources, list) and all(isinstance(s, dict) for s in sources)):
            return None
        reason = record.get("abstain_reason")
        return cls(
            question=question,
            collection=collection,
            answer=answer,
            rewritten_query=rewritten,
            sources=sources,
            abstained=record.get("abstained") is True,
            abstain_reason=reason if isinstance(reason, str) else None,
            timestamp=str(record.get("timestamp") or ""),
            new_conversation=record.get("new_conversation") is True,
        )


# How every line ragcli writes begins (json.dumps of Turn.to_dict()).
_LINE_START = b'{"question": '


class Session:
    """A conversation's turns on one collection, and the file that keeps them (None: memory)."""

    def __init__(self, collection: str, path: Path | None = None) -> None:
        self.collection = collection
        self.path = path
        self.turns: list[Turn] = []
        self._start = 0  # where the current conversation starts in ``turns``
        self._new = True  # the next turn starts a conversation
        self._keep_bytes: int | None = None  # the file's length without a line cut short
        self._needs_newline = False  # the file's last line has no line break after it

    @classmethod
    def open(cls, path: Path | None, collection: str, events: Events | None = None) -> Session:
        """The session kept in ``path`` (a new one when the file does not exist yet).

        Refuses (UsageError) a folder, a file that cannot be read or written, a file that holds
        something other than turns, and a session of another collection. A last line cut short
        by a crash while it was written is skipped with a warning and removed at the next write.
        """
        session = cls(collection, path)
        if path is not None:
            session._read(events or Events())
        return session

    @property
    def context(self) -> list[Turn]:
        """The turns of the current conversation, oldest first."""
        return [] if self._new else self.turns[self._start :]

    def forget(self) -> None:
        """Start a new conversation: the next question is asked without the turns before it
        (they stay in the file; the next turn is recorded as starting a new conversation)."""
        self._new = True

    def record(self, turn: Turn) -> None:
        """Add a turn to the conversation, and to the file (appended, fsynced) if there is one."""
        turn.new_conversation = self._new
        if self.path is not None:
            self._append(turn)
        self._add(turn)

    def save_as(self, path: Path) -> int:
        """Write every turn to ``path`` (replaced whole, atomically) and record later turns
        there; returns how many were written. Refuses a folder and another existing file."""
        if path.is_dir():
            raise UsageError(f"{path} is a folder", "give a file name, e.g. session.jsonl")
        same = (
            self.path is not None
            and self.path.exists()
            and path.exists()
            and path.samefile(self.path)
        )
        if not same and path.exists() and path.stat().st_size > 0:
            raise UsageError(f"{path} already exists", "choose another name, or remove it first")
        text = "".join(json.dumps(t.to_dict(), ensure_ascii=False) + "\n" for t in self.turns)
        staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(staging, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(staging, path)
            _fsync_folder(path.parent)
        except OSError as e:
            staging.unlink(missing_ok=True)
            raise UsageError(f"cannot write {path}: {e.strerror or e}") from e
        self.path, self._keep_bytes, self._needs_newline = path, None, False
        return len(self.turns)

    def _add(self, turn: Turn) -> None:
        self.turns.append(turn)
        if turn.new_conversation or self._new:
            self._start = len(self.turns) - 1
        self._new = False

    def _read(self, events: Events) -> None:
        path = self.path
        assert path is not None
        if path.is_dir():
            raise UsageError(
                f"session {path} is a folder, not a file",
                f"give --session a file name, e.g. {path / 'session.jsonl'}",
            )
        if not path.exists():
            if not path.parent.is_dir():
                raise UsageError(f"cannot create session {path}: no folder {path.parent}")
            if not os.access(path.parent, os.W_OK):
                raise UsageError(f"cannot create session {path}: its folder is not writable")
            return
        try:
            data = path.read_bytes()
        except OSError as e:
            raise UsageError(f"cannot read session {path}: {e.strerror or e}") from e
        if not os.access(path, os.W_OK):
            raise UsageError(f"cannot write session {path}: permission denied")
        lines = data.split(b"\n")
        offset = 0
        for number, raw in enumerate(lines, start=1):
            unterminated = number == len(lines)  # b"" when the file ends with a line break
            if raw.strip():
                turn = _parse_turn(raw)
                if turn is None:
                    if unterminated and raw.startswith(_LINE_START):
                        events.warn(
                            f"session {path}: line {number} was cut short (a crash while it "
                            "was written?); skipped, the turns before it are kept"
                        )
                        self._keep_bytes = offset
                        break
                    raise UsageError(
                        f"session {path} is damaged or not a ragcli session: line {number} "
                        "is not a turn",
                        f"repair or remove that line, or {_HINT_NEW}",
                    )
                if turn.collection != self.collection:
                    raise UsageError(
                        f"session {path} was recorded on collection {turn.collection!r}, "
                        f"not {self.collection!r}",
                        f"continue it with -c {turn.collection}, or {_HINT_NEW}",
                    )
                self._add(turn)
                self._needs_newline = unterminated
            offset += len(raw) + 1

    def _append(self, turn: Turn) -> None:
        assert self.path is not None
        line = json.dumps(turn.to_dict(), ensure_ascii=False).encode("utf-8") + b"\n"
        if self._needs_newline:
            line = b"\n" + line
        created = not self.path.exists()
        try:
            if self._keep_bytes is not None:
                os.truncate(self.path, self._keep_bytes)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_folder(self.path.parent)
        except OSError as e:
            raise RagcliError(
                f"cannot write session {self.path}: {e.strerror or e}",
                "the answer above was not recorded",
            ) from e
        self._keep_bytes, self._needs_newline = None, False


def _parse_turn(raw: bytes) -> Turn | None:
    try:
        return Turn.from_dict(json.loads(raw.decode("utf-8")))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def _fsync_folder(folder: Path) -> None:
    """Make a new or renamed file's name durable."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_LABEL = re.compile(
    r"^(?:(?:rewritten|standalone|follow-up|search)\s+)?(?:question|query|q)\s*:\s*", re.I
)


def clean_rewrite(text: str) -> str | None:
    """The question in what the generator wrote for a rewrite: the first line, without a
    label ("Question:") or quotes; None when that is empty, too long or a refusal."""
    for line in text.strip().splitlines():
        line = _LABEL.sub("", line.strip()).strip().strip("\"'`“”").strip()
        if line:
            words = line.split()
            return None if len(words) > REWRITE_MAX_WORDS or declines(line) else " ".join(words)
    return None


def rewrite_query(
    generator: ChatModel, earlier: Sequence[tuple[str, str]], question: str
) -> str | None:
    """``question`` rewritten by the generator to stand alone, from the conversation's
    (question, answer) pairs; None when what it wrote cannot be used."""
    generator.load()
    stream = generator.stream(rewrite_messages(earlier, question), REWRITE_MAX_TOKENS, 0.0)
    try:
        text = "".join(stream)
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # stops the engine now (Ctrl-C), not when the stream is collected
    if generator.last_token_count >= REWRITE_MAX_TOKENS:
        return None  # cut off: not one short question
    return clean_rewrite(text)


def timed_rewrite(
    generator: ChatModel, earlier: Sequence[tuple[str, str]], question: str
) -> tuple[str | None, float]:
    """``rewrite_query`` and the seconds it took (an answer's ``rewrite_s``)."""
    started = time.perf_counter()
    return rewrite_query(generator, earlier, question), time.perf_counter() - started


class Conversation:
    """A session's conversation with a collection, the collection and models held open."""

    def __init__(
        self,
        settings: Settings,
        session: Session,
        events: Events | None = None,
        filters: Filters | None = None,
        abstain: bool = True,
        earlier_in_prompt: bool = ANSWER_SEES_EARLIER,
    ) -> None:
        self.settings = settings
        self.session = session
        self.events = events or Events()
        self.filters = filters
        self.abstain = abstain
        self.earlier_in_prompt = earlier_in_prompt
        self.searcher = Searcher(settings, filters)
        self._generator: ChatModel | None = None

    @property
    def generator(self) -> ChatModel:
        """The one generator of this conversation: rewrites and answers (opened once)."""
        if self._generator is None:
            self._generator = generator_for(self.settings, self.events)
        return self._generator

    def load(self) -> None:
        """Load the generator now rather than at the first question."""
        self.generator.load()

    def ask(
        self,
        question: str,
        query: str | None = None,
        top_k: int | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> Answer:
        """Answer ``question`` in the conversation so far, and record the turn.

        Retrieval searches for ``query`` when given; else a follow-up is rewritten by the
        generator from the earlier turns (reported as a status line, timed as ``rewrite_s``)
        and the first question of a conversation is searched for as asked.
        """
        earlier = [(t.question, t.answer) for t in self.session.context]
        rewrite_s: float | None = None
        if query is None and earlier:
            query, rewrite_s = timed_rewrite(self.generator, earlier, question)
            self.events.status(
                f"rewritten: {query}"
                if query
                else "rewritten: (unusable; searching for the question as asked)"
            )
        answer = ask(
            self.settings,
            question,
            top_k,
            self.events,
            on_token,
            filters=self.filters,
            abstain=self.abstain,
            generator=self.generator,
            searcher=self.searcher,
            query=query,
            earlier=earlier if self.earlier_in_prompt else (),
        )
        if rewrite_s is not None:
            answer.timings["rewrite_s"] = rewrite_s
        self.session.record(Turn.from_answer(answer))
        return answer

    def close(self) -> None:
        self.searcher.close()

    def __enter__(self) -> Conversation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ask_in_session(
    settings: Settings,
    question: str,
    session_path: Path | None,
    query: str | None = None,
    top_k: int | None = None,
    events: Events | None = None,
    on_token: Callable[[str], None] | None = None,
    filters: Filters | None = None,
    abstain: bool = True,
) -> Answer:
    """One question of ``ask --session FILE`` (or ``--query``): the file's conversation read and
    checked, the question asked in it (a follow-up rewritten unless ``query`` is given), the
    turn appended to the file."""
    events = events or Events()
    session = Session.open(session_path, settings.collection, events)
    with Conversation(settings, session, events, filters, abstain) as conversation:
        return conversation.ask(question, query, top_k, on_token)
