"""`EmbeddingCache`: sentence vectors on disk, keyed by (model id, text hash).

A refit of a catalogue re-encodes only the texts that changed: every other vector is
read back from here. The cache is one SQLite file in write-ahead-log mode, so several
processes may read and write the same directory at once.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np

from interestlens.data.sqlite import connect_wal

#: SQLite's historical limit on host parameters in one statement is 999; one goes to the model id.
_CHUNK = 900


def text_hash(text: str) -> bytes:
    """The cache key of a text: the 16-byte BLAKE2b digest of its UTF-8 encoding.

    Examples
    --------
    >>> text_hash("Toy Story (1995)").hex()[:8]
    'dcec5c40'
    >>> len(text_hash(""))
    16
    """
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class EmbeddingCache:
    """Float32 vectors stored in ``directory/embeddings.sqlite``.

    Parameters
    ----------
    directory
        Folder of the cache file; created when missing.

    Notes
    -----
    Rows are never updated: a (model id, text hash) pair names one vector for good, so a
    writer that loses a race to another process simply keeps the row already there
    (``INSERT OR IGNORE``). Nothing is evicted but by :meth:`forget_texts` (a user's own
    words, on request); delete the file to reclaim space (about 1.6 kB per 384-d vector).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as d, EmbeddingCache(d) as cache:
    ...     h = text_hash("hello")
    ...     cache.put_many("m", {h: np.ones(3, dtype=np.float32)})
    ...     cache.get_many("m", [h, text_hash("absent")])[h].tolist()
    [1.0, 1.0, 1.0]
    """

    FILENAME = "embeddings.sqlite"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / self.FILENAME
        self._lock = threading.Lock()
        self._conn = connect_wal(self.path, synchronous="NORMAL")
        # reading vectors through a memory map saves a fifth of a warm lookup
        self._conn.execute("PRAGMA mmap_size=268435456")
        # deleted rows are overwritten with zeros, not left in free space (forget_texts)
        self._conn.execute("PRAGMA secure_delete=ON")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS embeddings ("
            " model_id TEXT NOT NULL,"
            " text_hash BLOB NOT NULL,"
            " vector BLOB NOT NULL,"
            " PRIMARY KEY (model_id, text_hash))"
        )

    def get_many(self, model_id: str, hashes: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """The cached vectors among ``hashes``; absent hashes are left out.

        The arrays are read-only float32 views into one buffer per call.
        """
        hashes = list(hashes)
        found, matrix = self.lookup(model_id, hashes)
        return {hashes[k]: row for k, row in zip(found.tolist(), matrix, strict=True)}

    def lookup(self, model_id: str, hashes: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Positions in ``hashes`` that are cached, and their vectors as one matrix.

        Returns
        -------
        found : numpy.ndarray
            int64 positions into ``hashes``, in no particular order; a hash given twice
            is reported at its last position only.
        vectors : numpy.ndarray
            Read-only float32 matrix, row ``j`` for ``hashes[found[j]]``; shape ``(0, 0)``
            when nothing is cached.
        """
        position = {h: k for k, h in enumerate(hashes)}
        keys: list[bytes] = []
        blobs: list[bytes] = []
        unique = list(position)
        with self._lock:
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                rows = self._conn.execute(
                    "SELECT text_hash, vector FROM embeddings WHERE model_id = ?"
                    f" AND text_hash IN ({','.join('?' * len(chunk))})",
                    (model_id, *chunk),
                ).fetchall()
                for key, blob in rows:
                    keys.append(key)
                    blobs.append(blob)
        if not keys:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        width = len(blobs[0])
        if any(len(b) != width for b in blobs):
            raise ValueError(f"cached vectors of model {model_id!r} differ in length")
        found = np.fromiter((position[k] for k in keys), dtype=np.int64, count=len(keys))
        return found, np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(keys), -1)

    def put_many(self, model_id: str, vectors: Mapping[bytes, np.ndarray]) -> None:
        """Store vectors (cast to float32); pairs already present are kept as they are."""
        rows = [
            (model_id, key, np.ascontiguousarray(vec, dtype=np.float32).tobytes())
            for key, vec in vectors.items()
        ]
        if not rows:
            return
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT OR IGNORE INTO embeddings (model_id, text_hash, vector) VALUES (?, ?, ?)",
                    rows,
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def forget_texts(self, texts: Iterable[str]) -> int:
        """Delete the vectors of ``texts`` under every model; returns how many were stored.

        For erasing a user's own words (reviews, searches): afterwards neither their
        vectors nor their hashes are in the cache's files. The deleted rows are
        overwritten with zeros where they lay (SQLite's ``secure_delete``), and the
        write-ahead log, which still holds the pages as they were before, is checkpointed
        into the database and truncated. Where another connection is reading at that
        moment the log cannot be truncated yet: the old page images then stay in it until
        a later :meth:`forget_texts` finds no reader, or the last connection to the file
        closes (SQLite then checkpoints the log and removes it).

        Examples
        --------
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d, EmbeddingCache(d) as cache:
        ...     cache.put_many("m", {text_hash("my review"): np.ones(3, dtype=np.float32)})
        ...     cache.forget_texts(["my review", "never cached"]), cache.count()
        (1, 0)
        """
        hashes = list({text_hash(t) for t in texts})
        removed = 0
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                # by model, so that each lookup uses the (model_id, text_hash) key
                models = [
                    m for (m,) in self._conn.execute("SELECT DISTINCT model_id FROM embeddings")
                ]
                for model_id in models:
                    for start in range(0, len(hashes), _CHUNK):
                        chunk = hashes[start : start + _CHUNK]
                        removed += self._conn.execute(
                            "DELETE FROM embeddings WHERE model_id = ?"
                            f" AND text_hash IN ({','.join('?' * len(chunk))})",
                            (model_id, *chunk),
                        ).rowcount
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            if removed:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return removed

    def count(self, model_id: str | None = None) -> int:
        """Number of stored vectors, of one model or of all."""
        with self._lock:
            if model_id is None:
                row = self._conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()
            else:
                row = self._conn.execute(
                    "SELECT COUNT(*) FROM embeddings WHERE model_id = ?", (model_id,)
                ).fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
