"""A corpus in BEIR shape (``.jsonl``): one document per ``{"_id", "title", "text"}`` record."""

from __future__ import annotations

import json
import re

from ragcli.errors import LoaderError
from ragcli.loaders.text import decode_text
from ragcli.records import Block


def parse_jsonl(data: bytes) -> list[tuple[str, str | None, list[Block]]]:
    """A corpus in BEIR shape: one ``{"_id", "title", "text"}`` object per line."""
    records: list[tuple[str, str | None, list[Block]]] = []
    seen: set[str] = set()
    for number, line in enumerate(decode_text(data).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            raise LoaderError(f"line {number}: invalid JSON ({e})") from e
        except RecursionError as e:
            raise LoaderError(f"line {number}: JSON nested too deeply") from e
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise LoaderError(f'line {number}: not a corpus record (no "text" field)')
        record_id = str(record.get("_id", record.get("id", number)))
        if record_id in seen:
            raise LoaderError(f"line {number}: duplicate id {record_id!r}")
        seen.add(record_id)
        title = str(record.get("title") or "").strip() or None
        blocks = [Block(title, heading=title, is_heading=True)] if title else []
        for paragraph in re.split(r"\n\s*\n", record["text"]):
            if paragraph.strip():
                blocks.append(Block(paragraph.strip(), heading=title))
        if any(not b.is_heading for b in blocks):
            records.append((record_id, title, blocks))
    if not records:
        raise LoaderError("no record with text")
    return records
