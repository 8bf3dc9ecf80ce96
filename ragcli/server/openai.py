"""OpenAI's chat completions over ragcli answers: a ``messages`` list read as a question and
the conversation before it, and an answer written back as a completion (whole, or as the
chunks of a stream), its sources or the reason it was withheld in the text."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from ragcli.errors import UsageError
from ragcli.records import Answer

NOT_FOUND = "The collection does not seem to contain the answer."
CHAT_ROLES = ("user", "assistant")
_WITHHELD = {
    "weak retrieval": "no passage of the collection is close to the question",
    "model declined": "the model said the passages do not answer it",
    "unsupported": "no sentence of it is supported by the passages it cites",
    "not verified": "the model could not confirm it from the passages",
    "low confidence": "it is likely wrong: the evidence and the model's check are too weak",
}


def _message_text(message: Mapping[str, Any]) -> str:
    """A chat message's text (of content parts, the text ones)."""
    content = message.get("content")
    if isinstance(content, list):
        content = " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return content.strip() if isinstance(content, str) else ""


def chat_turns(messages: Any) -> tuple[str, list[tuple[str, str]]]:
    """The question of an OpenAI-style ``messages`` list (the last user message's text) and
    the conversation before it as (question, answer) pairs, sources left out of the answers."""
    if not isinstance(messages, list) or not messages:
        raise UsageError("messages must be a non-empty list of {role, content} objects")
    turns = [m for m in messages if isinstance(m, Mapping) and m.get("role") in CHAT_ROLES]
    last = max((i for i, m in enumerate(turns) if m["role"] == "user"), default=None)
    if last is None:
        raise UsageError("messages hold no user message", 'add {"role": "user", "content": "..."}')
    question = _message_text(turns[last])
    if not question:
        raise UsageError("the last user message has no text")
    earlier: list[tuple[str, str]] = []
    for message in turns[:last]:
        text = _message_text(message)
        if message["role"] == "user":
            earlier.append((text, ""))
        elif earlier and not earlier[-1][1]:
            earlier[-1] = (earlier[-1][0], text.split("\n\nSources:", 1)[0])
    return question, [(q, a) for q, a in earlier if q]


def chat_text(answer: Answer, streamed: str | None = None) -> str:
    """An answer as a chat reply: its text, then its sources or why it was withheld.

    With ``streamed`` (the text already sent as it was written), only what follows it.
    """
    from ragcli.prompting import passage_label

    if answer.abstained and answer.abstain_reason == "weak retrieval":
        return NOT_FOUND if not streamed else ""
    body = answer.text if streamed is None else ""
    if answer.abstained:
        reason = _WITHHELD.get(answer.abstain_reason or "", answer.abstain_reason or "")
        return f"{body}\n\n(ragcli withheld this answer: {reason}.)".lstrip()
    sources = [f"[{c.marker}] {passage_label(c.hit)}" for c in answer.citations]
    return body + ("\n\nSources:\n" + "\n".join(sources) if sources else "")


class ChatReply:
    """An answer in the shape of OpenAI's chat completions (whole, or as chunks)."""

    def __init__(self, collection: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = collection

    def _frame(self, **fields: Any) -> dict[str, Any]:
        return {"id": self.id, "created": self.created, "model": self.model, **fields}

    def whole(self, answer: Answer) -> dict[str, Any]:
        prompt = int(answer.timings.get("prompt_tokens", 0))
        return self._frame(
            object="chat.completion",
            choices=[
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": chat_text(answer)},
                    "finish_reason": "stop",
                }
            ],
            usage={
                "prompt_tokens": prompt,
                "completion_tokens": answer.tokens,
                "total_tokens": prompt + answer.tokens,
            },
            ragcli=answer.to_dict(),
        )

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        frame = self._frame(object="chat.completion.chunk", choices=[choice])
        return f"data: {json.dumps(frame)}\n\n"

    async def chunks(
        self, events: AsyncIterator[dict[str, Any]], answer: Callable[[], Answer | None]
    ) -> AsyncIterator[str]:
        """The stream's ``events`` as server-sent chunks: tokens as content deltas; then what
        follows the ``answer()`` (its sources, or why it was withheld) as one more delta;
        then ``[DONE]``."""
        yield self._chunk({"role": "assistant", "content": ""})
        streamed: list[str] = []
        async for event in events:
            if event["event"] == "token":
                streamed.append(event["text"])
                yield self._chunk({"content": event["text"]})
            elif event["event"] == "error":
                yield f"data: {json.dumps({'error': event['error']})}\n\n"
        done = answer()
        if done is not None:
            rest = chat_text(done, streamed="".join(streamed))
            if rest:
                yield self._chunk({"content": rest})
        yield self._chunk({}, "stop")
        yield "data: [DONE]\n\n"
