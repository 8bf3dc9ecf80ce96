"""Mail: one message (``.eml``) or a mailbox of them (``.mbox``), read with the standard
``email`` package. A message is its subject (title and heading), a From/To/Date line and its
body (the text/plain part, else the text/html part as HTML); its Date header is the document's
date, and its attachments are handed back to be read as documents of their own. An mbox's
messages are records, each cited as ``box.mbox#<Message-ID>``."""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import re
from collections.abc import Callable
from datetime import timezone
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message
from pathlib import PurePosixPath

from ragcli.errors import LoaderError
from ragcli.loaders.html import parse_html
from ragcli.loaders.parsed import Attachment, Parsed
from ragcli.loaders.text import decode_text, paragraphs
from ragcli.records import Block

# Headers of which at least one makes bytes a mail message rather than text or garbage.
_MAIL_HEADERS = frozenset(
    "from to cc subject date message-id received mime-version content-type return-path "
    "sender reply-to delivered-to".split()
)
# An mbox message starts at a "From " line opening the file or following a blank line.
_SEPARATOR = re.compile(rb"(?:\A|\n[ \t]*\r?\n)From [^\n]*(?:\n|\Z)")
_ESCAPED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)  # mboxrd quoting of body lines
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._@+=-]+")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f#]+")
_MAX_ID = 64
_MAX_NOTED = 3  # messages named in the note about those an mbox could not give


class _Headers(HeaderRegistry):
    """The standard header registry, making each header class once: the stock one makes a new
    class for every header it reads, which slows reading more with each message of an mbox
    (5,000 messages: 4 s; 20,000: 50 s)."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[type, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        kind = self.registry.get(name.lower(), self.default_class)
        made = self._made.get(kind)
        if made is None:
            made = self._made[kind] = super().__getitem__(name)
        return made


_POLICY = email.policy.default.clone(header_factory=_Headers())


def parse_eml(data: bytes) -> Parsed:
    """One message: subject, header line and body as blocks; attachments; the Date header."""
    message = email.message_from_bytes(data, policy=_POLICY)
    if not any(key.lower() in _MAIL_HEADERS for key in message):
        raise LoaderError("not a mail message (no mail headers found)")
    parsed = _message(message)
    if not parsed.blocks:
        if not parsed.attachments:
            raise LoaderError("the mail has no body text")
        parsed.notes.append("the mail has no body text")  # said if no attachment is read
    return parsed


def parse_mbox(data: bytes) -> Parsed:
    """An mbox mailbox: each message a record (its own document), the others read when one
    fails; ``pages`` counts the messages."""
    data = data.lstrip(b"\r\n\t ")
    if not data.startswith(b"From "):
        raise LoaderError("not an mbox file (it does not open with a 'From ' line)")
    starts = list(_SEPARATOR.finditer(data))
    records: list[tuple[str, Parsed]] = []
    seen: dict[str, int] = {}
    failed: list[str] = []
    empty = 0
    for n, match in enumerate(starts, 1):
        end = starts[n].start() if n < len(starts) else len(data)
        raw = _ESCAPED_FROM.sub(rb"\1", data[match.end() : end])
        if not raw.strip():
            continue
        try:
            message = email.message_from_bytes(raw, policy=_POLICY)
            parsed = _message(message)
            record_id = _record_id(_raw_header(message, "Message-ID"), n, seen)
        except Exception as e:  # one bad message costs itself, not the mailbox
            reason = str(e) if isinstance(e, LoaderError) else f"{type(e).__name__}: {e}"
            failed.append(f"message {n} ({reason})")
            continue
        if not parsed.blocks and not parsed.attachments:
            empty += 1
            continue
        records.append((record_id, parsed))
    if not records:
        raise LoaderError("no messages with text in this mbox" if starts else "empty mbox")
    notes = []
    if failed:
        named = "; ".join(failed[:_MAX_NOTED]) + ("; ..." if len(failed) > _MAX_NOTED else "")
        notes.append(f"{len(failed)} of {len(starts)} message(s) not read: {named}")
    if empty:
        notes.append(f"{empty} of {len(starts)} message(s) have no body text")
    # The mailbox has no document of its own to carry them: its first message with text does.
    carrier = next((p for _, p in records if p.blocks), records[0][1])
    carrier.notes[:0] = notes
    return Parsed([], None, pages=len(starts), records=records)


def _message(message: Message) -> Parsed:
    subject = " ".join(_header(message, "Subject").split()) or None
    part = (
        message.get_body(preferencelist=("plain", "html"))
        if isinstance(message, EmailMessage)
        else None
    )
    body = _body(part, subject) if part is not None else []
    date = _header(message, "Date")
    blocks: list[Block] = []
    if body:
        if subject:
            blocks.append(Block(subject, heading=subject, is_heading=True))
        fields = [(name, _header(message, name)) for name in ("From", "To", "Cc")]
        fields.append(("Date", date))
        line = "; ".join(f"{name}: {' '.join(value.split())}" for name, value in fields if value)
        if line:
            blocks.append(Block(line, heading=subject))
        blocks += body
    return Parsed(blocks, subject, date=_date(date), attachments=_attachments(message, part))


def _header(message: Message, name: str) -> str:
    """A header's decoded value, or its raw text where the header cannot be decoded."""
    try:
        return str(message.get(name) or "")
    except Exception:  # a malformed header the policy cannot fold into an object
        return _raw_header(message, name)


def _raw_header(message: Message, name: str) -> str:
    """A header as written (the policy's parse of a malformed Message-ID drops parts)."""
    raw = (v for k, v in message.raw_items() if k.lower() == name.lower())
    return " ".join(str(next(raw, "")).split())


def _date(value: str) -> float | None:
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return moment.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def _body(part: Message, subject: str | None) -> list[Block]:
    """The text/plain body (else the text/html one) as paragraphs under the subject."""
    text = _text(part)
    if not text.strip():
        return []
    if part.get_content_subtype() == "html":
        blocks, _ = parse_html(text.encode("utf-8"))
        out = []
        for b in blocks:
            heading = f"{subject} > {b.heading}" if subject and b.heading else subject or b.heading
            out.append(Block(b.text, heading=heading, is_heading=b.is_heading))
        return out
    return [Block(b.text, heading=subject) for b in paragraphs(text.split("\n"), 1, subject)]


def _text(part: Message) -> str:
    """A text part's content decoded (transfer encoding and charset), binary refused."""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    except Exception:  # an unknown charset, a broken encoding: the bytes as they are
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
    return decode_text(data) if data.strip() else ""


def _attachments(message: Message, body: Message | None) -> list[Attachment]:
    """The files in a message (parts with a file name, and attached messages as ``.eml``),
    named safely (no folders, no ``#``) and each name once."""
    found: list[Attachment] = []
    names: dict[str, int] = {}

    def visit(part: Message) -> None:
        if part is body:
            return
        if part.get_content_maintype() == "multipart":
            for sub in part.get_payload() or []:
                if isinstance(sub, Message):
                    visit(sub)
            return
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                name = _safe_name(part.get_filename(), len(found), ".eml")
                if not name.lower().endswith(".eml"):
                    name += ".eml"
                try:
                    data = inner[0].as_bytes()
                except Exception:  # headers the policy cannot write back: not read
                    return
                found.append(Attachment(_unique(name, names, _numbered_file(name)), data))
            return
        filename = part.get_filename()
        if not filename:
            return
        if (
            part.get_content_maintype() == "image"
            and part.get_content_disposition() != "attachment"
        ):
            return  # a picture shown in the mail (a logo, a signature), not a file sent
        name = _safe_name(filename, len(found))
        found.append(Attachment(_unique(name, names, _numbered_file(name)), _data(part)))

    visit(message)
    return found


def _data(part: Message) -> bytes:
    """An attached file's bytes; a text file's re-encoded as UTF-8 from its declared charset."""
    if part.get_content_maintype() == "text":
        try:
            content = part.get_content()  # type: ignore[attr-defined]
            if isinstance(content, str):
                return content.encode("utf-8")
        except Exception:  # an unknown charset: the bytes as sent
            pass
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _safe_name(filename: str | None, index: int, default_suffix: str = "") -> str:
    """An attachment's file name without folders (``../x`` or ``C:\\x``), controls or ``#``."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    name = _UNSAFE_NAME.sub("_", name).strip(" .") if name not in (".", "..") else ""
    return name or f"attachment-{index + 1}{default_suffix}"


def _numbered_file(name: str) -> Callable[[int], str]:
    path = PurePosixPath(name)
    return lambda k: f"{path.stem}-{k}{path.suffix}"


def _record_id(message_id: str, n: int, seen: dict[str, int]) -> str:
    """A short id that cites the message: its Message-ID made safe, else ``message-N``."""
    record_id = _UNSAFE_ID.sub("_", message_id.strip().strip("<>")).strip("_.")
    if len(record_id) > _MAX_ID:
        digest = hashlib.sha256(record_id.encode("utf-8")).hexdigest()[:8]
        record_id = f"{record_id[: _MAX_ID - 9]}-{digest}"
    base = record_id or f"message-{n}"
    return _unique(base, seen, lambda k: f"{base}-{k}")


def _unique(name: str, seen: dict[str, int], numbered: Callable[[int], str]) -> str:
    """``name``, or ``numbered(k)`` for the first k from 2 not taken; ``seen`` holds the
    names taken (lower case), each with the last k tried for it, so a thousand messages with
    one Message-ID cost no more than a thousand with their own."""
    if name.lower() not in seen:
        seen[name.lower()] = 1
        return name
    k = seen[name.lower()]
    while True:
        k += 1
        unique = numbered(k)
        if unique.lower() not in seen:
            break
    seen[name.lower()] = k
    seen[unique.lower()] = 1
    return unique
