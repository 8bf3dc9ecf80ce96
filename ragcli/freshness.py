"""hits -> the sources among them whose file changed on disk since it was ingested, or is gone.

Cheap enough for every search: one query for the hits' files as ingested, then one stat per
distinct file. A record of a ``.jsonl`` corpus follows its file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Sequence

from ragcli.records import Hit, StaleSource
from ragcli.store import Store


def stale_sources(store: Store, hits: Sequence[Hit]) -> list[StaleSource]:
    """The sources of ``hits`` whose file's size or mtime is not what the collection recorded
    ("changed"), or whose file is gone ("missing"); in the order of the hits, each once."""
    recorded = store.files_of_chunks([hit.row_id for hit in hits])
    verdicts: dict[str, str | None] = {}  # by file
    stale: dict[str, StaleSource] = {}  # by source
    for hit in hits:
        if hit.row_id not in recorded or hit.source in stale:
            continue
        file, size, mtime = recorded[hit.row_id]
        if file not in verdicts:
            verdicts[file] = _verdict(file, size, mtime)
        reason = verdicts[file]
        if reason is not None:
            stale[hit.source] = StaleSource(hit.source, file, reason)
    return list(stale.values())


def of_sources(stale: Sequence[StaleSource], sources: Collection[str]) -> list[StaleSource]:
    """Those of ``stale`` whose source is one of ``sources``."""
    return [s for s in stale if s.source in sources]


def _verdict(file: str, size: int, mtime: float) -> str | None:
    try:
        now = os.stat(file)
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError:
        return None  # cannot look (permissions): not known to be stale
    if not stat.S_ISREG(now.st_mode):
        return "missing"  # a folder or something else stands where the file was
    return "changed" if (now.st_size, now.st_mtime) != (size, mtime) else None
