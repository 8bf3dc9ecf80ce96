"""Many questions at once: the input forms ``--batch`` accepts."""

from __future__ import annotations

import json

from ragcli.errors import UsageError


def parse_questions(text: str, origin: str) -> list[tuple[str, str]]:
    """(id, question) pairs from plain lines (id = line number) or JSON Lines.

    A JSON line needs ``question`` (or ``query``/``text``) and may give ``id`` (or ``_id``).
    """
    questions: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if not line.lstrip().startswith("{"):
            questions.append((str(number), line.strip()))
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            raise UsageError(f"{origin}:{number}: invalid JSON ({e})") from e
        question = next(
            (record[k] for k in ("question", "query", "text") if isinstance(record.get(k), str)),
            "",
        )
        if not question.strip():
            raise UsageError(f"{origin}:{number}: no question, query or text field")
        questions.append((str(record.get("id", record.get("_id", number))), question.strip()))
    if not questions:
        raise UsageError(f"{origin}: no questions")
    return questions
