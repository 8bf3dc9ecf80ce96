"""What a format's parser returns: ``Parsed`` (blocks, title, page count, notes, and the files
or records inside it), and ``open_zip``, the bounded reader of ZIP-based formats."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field

from ragcli.errors import LoaderError
from ragcli.records import Block

# A ZIP-based document (docx, xlsx, pptx, odt, epub) is refused when its members would unpack
# to more than this, or when one member would grow more than MAX_ZIP_RATIO times: a zip bomb
# is refused from its directory, never unpacked.
MAX_ZIP_BYTES = 512 * 1024 * 1024
MAX_ZIP_RATIO = 200
MAX_ZIP_MEMBERS = 20_000


@dataclass
class Attachment:
    """A file inside another (a mail's attachment): read as a document of its own."""

    name: str  # its file name; the extension chooses its loader
    data: bytes


@dataclass
class Parsed:
    """One file's text as its format's parser read it."""

    blocks: list[Block]
    title: str | None = None
    pages: int | None = None  # pages, slides or sheets the file has (the ingest report's count)
    notes: list[str] = field(default_factory=list)  # doubts about what was read, said once
    date: float | None = None  # epoch seconds: a front matter's date, a mail's Date header
    tags: list[str] = field(default_factory=list)
    # Files inside this one, each ingested as its own document cited through this one
    # ("mail.eml#report.pdf").
    attachments: list[Attachment] = field(default_factory=list)
    # A container's documents (an mbox's messages), each its own document "box.mbox#ID";
    # the container's own ``blocks`` are then usually empty.
    records: list[tuple[str, Parsed]] = field(default_factory=list)


def open_zip(data: bytes, kind: str) -> zipfile.ZipFile:
    """The ZIP container of an Office document or e-book, checked before anything is unpacked.

    LoaderError for what is not a ZIP file (``kind`` names what was expected), an encrypted
    member, or a directory that promises more than the bounds above. Python's zipfile never
    inflates a member past the size its directory declares, so checking the directory bounds
    what reading can unpack.
    """
    if data.startswith(b"\xd0\xcf\x11\xe0"):  # an OLE compound file: what Office encrypts to
        raise LoaderError(
            f"encrypted {kind} file, or an older binary Office file saved under this name "
            "(a password is needed, or save it again in the current format)"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        ValueError,
        OSError,
    ) as e:
        raise LoaderError(f"not a valid {kind} file (corrupt or not a ZIP container: {e})") from e
    if len(members) > MAX_ZIP_MEMBERS:
        raise LoaderError(f"refused: {len(members)} members in the {kind} container")
    total = 0
    for member in members:
        if member.flag_bits & 0x1:
            raise LoaderError(f"encrypted {kind} file (a password is needed)")
        total += member.file_size
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > 1024 * 1024 and ratio > MAX_ZIP_RATIO:
            raise LoaderError(
                f"refused: {member.filename!r} would unpack {ratio:.0f} times its size "
                "(a zip bomb?)"
            )
    if total > MAX_ZIP_BYTES:
        raise LoaderError(
            f"refused: the {kind} container would unpack to {total / 2**20:.0f} MiB "
            f"(the limit is {MAX_ZIP_BYTES // 2**20} MiB)"
        )
    return archive
