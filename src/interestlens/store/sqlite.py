"""SQLite event store: the embedded default (WAL journal; events, items and feedback fsynced at commit)."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from interestlens.data.sqlite import connect_wal
from interestlens.store.base import ERASE_SLATES_SQL, SLATE_LOG_SQL, EventStore, slate_filter

#: Schema migrations; entry ``i`` takes a store from version ``i`` to ``i + 1``.
MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL UNIQUE,
            user_id TEXT NOT NULL,
            item_id TEXT,
            type TEXT NOT NULL,
            value REAL NOT NULL,
            ts INTEGER,
            text TEXT,
            context TEXT)""",
    ],
    [
        "CREATE INDEX events_user ON events (user_id)",
        """CREATE TABLE items (
            item_id TEXT PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            text TEXT NOT NULL DEFAULT '',
            categories TEXT NOT NULL DEFAULT '[]',
            tags TEXT NOT NULL DEFAULT '[]',
            attributes TEXT NOT NULL DEFAULT '{}',
            created_at INTEGER)""",
        "CREATE TABLE users (user_id TEXT PRIMARY KEY, attributes TEXT NOT NULL DEFAULT '{}')",
    ],
    [
        """CREATE TABLE slates (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            request_id TEXT NOT NULL UNIQUE,
            user_id TEXT NOT NULL,
            policy TEXT NOT NULL,
            params TEXT NOT NULL DEFAULT '{}',
            explore REAL NOT NULL,
            propensity_method TEXT NOT NULL,
            context TEXT NOT NULL DEFAULT '{}',
            ts INTEGER NOT NULL)""",
        "CREATE INDEX slates_user ON slates (user_id)",
        "CREATE INDEX slates_ts ON slates (ts)",
        """CREATE TABLE slate_items (
            request_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            item_id TEXT NOT NULL,
            score REAL,
            propensity REAL NOT NULL,
            explored INTEGER NOT NULL,
            PRIMARY KEY (request_id, position))""",
        "CREATE INDEX slate_items_item ON slate_items (request_id, item_id)",
        """CREATE TABLE feedback (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            feedback_id TEXT NOT NULL UNIQUE,
            request_id TEXT NOT NULL,
            item_id TEXT NOT NULL,
            reward REAL NOT NULL,
            ts INTEGER NOT NULL)""",
        "CREATE INDEX feedback_request ON feedback (request_id, item_id)",
    ],
    [  # items carry the revision of the write that last put them, so readers find the new ones
        "ALTER TABLE items ADD COLUMN rev INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX items_rev ON items (rev)",
    ],
    [  # a removed item keeps a row (its tombstone), so other processes learn of it
        "ALTER TABLE items ADD COLUMN removed INTEGER NOT NULL DEFAULT 0",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)

_EVENT_COLS = "event_id, user_id, item_id, type, value, ts, text, context"
_SLATE_COLS = "request_id, user_id, policy, params, explore, propensity_method, context, ts"


@contextmanager
def _transaction(
    conn: sqlite3.Connection, writer_lock: int | None = None
) -> Iterator[sqlite3.Connection]:
    """One explicit transaction (the connection runs in autocommit mode otherwise).

    With ``writer_lock`` (a file descriptor), the transaction first takes an exclusive
    ``flock`` on it: writers of several processes then queue in the kernel, each woken
    the moment the one before commits, where SQLite's own busy handler would sleep and
    retry with growing pauses (up to 100 ms each) and could pass one writer over again
    and again (seconds of wait between two server workers).
    """
    if writer_lock is not None:
        fcntl.flock(writer_lock, fcntl.LOCK_EX)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        if writer_lock is not None:
            fcntl.flock(writer_lock, fcntl.LOCK_UN)


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring a database to schema version ``target``, one transaction per step."""
    conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"store schema version {version} is newer than this interestlens ({SCHEMA_VERSION}); upgrade interestlens"
        )
    for v in range(version, target):
        with _transaction(conn):
            for stmt in MIGRATIONS[v]:
                conn.execute(stmt)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(v + 1),),
            )
    return max(version, target)


class SQLiteEventStore(EventStore):
    """Event store in one SQLite file.

    WAL journal with ``synchronous=FULL``: a committed batch of events, items, users or
    feedback survives a crash of the process and of the machine. A served slate is
    committed with ``synchronous=NORMAL``: it is in the WAL file (the operating
    system's page cache) when :meth:`log_slate` returns, so it survives a crash or kill
    of the process and an orderly exit, and it reaches the disk with the next synced
    commit (an event, feedback for it) or checkpoint; a crash of the machine before
    that loses it. The fsync it skips is most of a slate's cost (about 4 ms against
    0.1 ms here), paid on every recommendation. One connection, guarded by a lock, so
    the store can be shared by the threads of a server.

    Parameters
    ----------
    path
        Database file (created with its folder if missing), or ``":memory:"``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.url = f"sqlite://{self.path}"
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = connect_wal(self.path, synchronous="FULL")
        self._lock = threading.RLock()
        # writers of every process queue on this file (see _transaction)
        self._writer_lock = (
            None
            if self.path == ":memory:"
            else os.open(f"{self.path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
        )
        self._version = migrate(self._conn)

    @property
    def schema_version(self) -> int:
        """Version of the store's schema."""
        return self._version

    def _insert_events(self, rows: list[tuple[Any, ...]]) -> int:
        with self._lock, _transaction(self._conn, self._writer_lock):
            before = self._conn.total_changes
            self._conn.executemany(
                f"INSERT OR IGNORE INTO events ({_EVENT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return self._conn.total_changes - before

    def _upsert_items(self, rows: list[tuple[Any, ...]]) -> None:
        with self._lock, _transaction(self._conn, self._writer_lock):
            (rev,) = self._conn.execute("SELECT COALESCE(MAX(rev), 0) + 1 FROM items").fetchone()
            self._conn.executemany(
                "INSERT OR REPLACE INTO items (item_id, title, text, categories, tags, attributes,"
                " created_at, rev) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(*r, rev) for r in rows],
            )

    def _upsert_users(self, rows: list[tuple[str, str]]) -> None:
        with self._lock, _transaction(self._conn, self._writer_lock):
            self._conn.executemany(
                "INSERT OR REPLACE INTO users (user_id, attributes) VALUES (?, ?)", rows
            )

    def _fetch_events(self, user_id: str | None) -> list[tuple[Any, ...]]:
        with self._lock:
            if user_id is None:
                return self._conn.execute(
                    f"SELECT {_EVENT_COLS} FROM events ORDER BY seq"
                ).fetchall()
            return self._conn.execute(
                f"SELECT {_EVENT_COLS} FROM events WHERE user_id = ? ORDER BY seq", (user_id,)
            ).fetchall()

    def _fetch_events_since(self, seq: int) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(
                f"SELECT seq, {_EVENT_COLS} FROM events WHERE seq > ? ORDER BY seq", (seq,)
            ).fetchall()

    def has_user(self, user_id: str) -> bool:
        """Whether any event of the user is stored."""
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM events WHERE user_id = ? LIMIT 1", (user_id,)
            ).fetchone()
            return row is not None

    def watermark(self) -> int:
        """Sequence number of the newest stored event (0 when none)."""
        with self._lock:
            row = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
            return int(row[0])

    def _fetch_items(self, item_id: str | None = None) -> list[tuple[Any, ...]]:
        columns = (
            "SELECT item_id, title, text, categories, tags, attributes, created_at FROM items"
            " WHERE removed = 0"
        )
        with self._lock:
            if item_id is not None:
                return self._conn.execute(f"{columns} AND item_id = ?", (item_id,)).fetchall()
            return self._conn.execute(f"{columns} ORDER BY rowid").fetchall()

    def remove_item(self, item_id: str) -> bool:
        """Mark an item removed (a tombstone row at the next revision); whether a live row was stored."""
        with self._lock, _transaction(self._conn, self._writer_lock):
            live = self._conn.execute(
                "SELECT 1 FROM items WHERE item_id = ? AND removed = 0", (item_id,)
            ).fetchone()
            (rev,) = self._conn.execute("SELECT COALESCE(MAX(rev), 0) + 1 FROM items").fetchone()
            self._conn.execute(
                "INSERT INTO items (item_id, removed, rev) VALUES (?, 1, ?) ON CONFLICT (item_id) "
                "DO UPDATE SET removed = 1, rev = excluded.rev",
                (item_id, rev),
            )
            return live is not None

    def removed_items(self) -> list[str]:
        """The ids of every removed item."""
        with self._lock:
            rows = self._conn.execute("SELECT item_id FROM items WHERE removed = 1").fetchall()
            return [r[0] for r in rows]

    def _fetch_items_since(self, rev: int) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(
                "SELECT rev, removed, item_id, title, text, categories, tags, attributes,"
                " created_at FROM items WHERE rev > ? ORDER BY rev, rowid",
                (rev,),
            ).fetchall()

    def watermarks(self) -> tuple[int, int, int]:
        """The newest event's sequence number, the newest item revision, the erasures made (0 when none)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT (SELECT COALESCE(MAX(seq), 0) FROM events),"
                " (SELECT COALESCE(MAX(rev), 0) FROM items),"
                " (SELECT COALESCE(MAX(CAST(value AS INTEGER)), 0) FROM meta WHERE key = 'erasures')"
            ).fetchone()
            return int(row[0]), int(row[1]), int(row[2])

    def _fetch_users(self) -> list[tuple[str, str]]:
        with self._lock:
            return self._conn.execute(
                "SELECT user_id, attributes FROM users ORDER BY rowid"
            ).fetchall()

    def _insert_slate(self, slate: tuple[Any, ...], items: list[tuple[Any, ...]]) -> bool:
        with self._lock:
            self._conn.execute("PRAGMA synchronous=NORMAL")
            try:
                with _transaction(self._conn, self._writer_lock):
                    cur = self._conn.execute(
                        f"INSERT OR IGNORE INTO slates ({_SLATE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        slate,
                    )
                    if cur.rowcount == 0:
                        return False
                    self._conn.executemany(
                        "INSERT INTO slate_items (request_id, position, item_id, score, propensity, explored)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        items,
                    )
                    return True
            finally:
                self._conn.execute("PRAGMA synchronous=FULL")

    def _insert_feedback(self, row: tuple[Any, ...]) -> bool:
        with self._lock, _transaction(self._conn, self._writer_lock):
            shown = self._conn.execute(
                "SELECT 1 FROM slate_items WHERE request_id = ? AND item_id = ?", (row[1], row[2])
            ).fetchone()
            if shown is None:
                raise KeyError(f"no logged slate {row[1]!r} showed item {row[2]!r}")
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO feedback (feedback_id, request_id, item_id, reward, ts)"
                " VALUES (?, ?, ?, ?, ?)",
                row,
            )
            return cur.rowcount == 1

    def _fetch_slate_rows(
        self, policy: str | None, since_us: int | None, until_us: int | None
    ) -> list[tuple[Any, ...]]:
        where, args = slate_filter(policy, since_us, until_us, "?")
        with self._lock:
            return self._conn.execute(SLATE_LOG_SQL.format(where=where), args).fetchall()

    def count_slates(self) -> int:
        """Number of stored slates."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM slates").fetchone()[0])

    def count(self) -> int:
        """Number of stored events."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def forget_user(self, user_id: str) -> int:
        """Delete every event, slate, feedback and the profile row of one user; returns events deleted."""
        with self._lock, _transaction(self._conn, self._writer_lock):
            n = self._conn.execute("DELETE FROM events WHERE user_id = ?", (user_id,)).rowcount
            self._conn.execute("DELETE FROM users WHERE user_id = ?", (user_id,))
            for stmt in ERASE_SLATES_SQL:
                self._conn.execute(stmt.format(p="?"), (user_id,))
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES ('erasures', '1') ON CONFLICT (key) "
                "DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)"
            )
            return int(n)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
            if self._writer_lock is not None:
                os.close(self._writer_lock)
                self._writer_lock = None
