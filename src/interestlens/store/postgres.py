"""PostgreSQL event store (psycopg 3), chosen by a ``postgresql://`` URL.

Batches go in with ``COPY`` into a temporary table and one
``INSERT ... ON CONFLICT (event_id) DO NOTHING``, so an append is one round of
streaming plus one statement, and idempotent like the SQLite store.
"""

from __future__ import annotations

import threading
from typing import Any

from interestlens.store.base import ERASE_SLATES_SQL, SLATE_LOG_SQL, EventStore, slate_filter

try:  # optional dependency: the `postgres` extra
    import psycopg
except ImportError:  # pragma: no cover - exercised only without the extra
    psycopg = None

MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE events (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE,
            user_id TEXT NOT NULL,
            item_id TEXT,
            type TEXT NOT NULL,
            value DOUBLE PRECISION NOT NULL,
            ts BIGINT,
            text TEXT,
            context JSONB)""",
    ],
    [
        "CREATE INDEX events_user ON events (user_id)",
        """CREATE TABLE items (
            item_id TEXT PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            text TEXT NOT NULL DEFAULT '',
            categories JSONB NOT NULL DEFAULT '[]',
            tags JSONB NOT NULL DEFAULT '[]',
            attributes JSONB NOT NULL DEFAULT '{}',
            created_at BIGINT,
            pos BIGINT GENERATED ALWAYS AS IDENTITY)""",
        """CREATE TABLE users (
            user_id TEXT PRIMARY KEY,
            attributes JSONB NOT NULL DEFAULT '{}',
            pos BIGINT GENERATED ALWAYS AS IDENTITY)""",
    ],
    [
        """CREATE TABLE slates (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            request_id TEXT NOT NULL UNIQUE,
            user_id TEXT NOT NULL,
            policy TEXT NOT NULL,
            params JSONB NOT NULL DEFAULT '{}',
            explore DOUBLE PRECISION NOT NULL,
            propensity_method TEXT NOT NULL,
            context JSONB NOT NULL DEFAULT '{}',
            ts BIGINT NOT NULL)""",
        "CREATE INDEX slates_user ON slates (user_id)",
        "CREATE INDEX slates_ts ON slates (ts)",
        """CREATE TABLE slate_items (
            request_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            item_id TEXT NOT NULL,
            score DOUBLE PRECISION,
            propensity DOUBLE PRECISION NOT NULL,
            explored BOOLEAN NOT NULL,
            PRIMARY KEY (request_id, position))""",
        "CREATE INDEX slate_items_item ON slate_items (request_id, item_id)",
        """CREATE TABLE feedback (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            feedback_id TEXT NOT NULL UNIQUE,
            request_id TEXT NOT NULL,
            item_id TEXT NOT NULL,
            reward DOUBLE PRECISION NOT NULL,
            ts BIGINT NOT NULL)""",
        "CREATE INDEX feedback_request ON feedback (request_id, item_id)",
    ],
    [  # items carry the revision of the write that last put them, so readers find the new ones
        "ALTER TABLE items ADD COLUMN rev BIGINT NOT NULL DEFAULT 0",
        "CREATE INDEX items_rev ON items (rev)",
    ],
    [  # a removed item keeps a row (its tombstone), so other processes learn of it
        "ALTER TABLE items ADD COLUMN removed BOOLEAN NOT NULL DEFAULT FALSE",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
#: The advisory lock key that serialises event writers (any constant unique to this store).
_EVENTS_WRITE_LOCK = 0x696C_6576  # "ilev"
_ITEMS_WRITE_LOCK = 0x696C_6974  # "ilit"
_EVENT_COLS = "event_id, user_id, item_id, type, value, ts, text, context"
_SLATE_COLS = "request_id, user_id, policy, params, explore, propensity_method, context, ts"


def migrate(conn: Any, target: int = SCHEMA_VERSION) -> int:
    """Bring a database to schema version ``target``, one transaction per step."""
    with conn.transaction():
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        # Serialise concurrent openers of a fresh database.
        conn.execute("LOCK TABLE meta IN EXCLUSIVE MODE")
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"store schema version {version} is newer than this interestlens ({SCHEMA_VERSION}); upgrade interestlens"
            )
        for v in range(version, target):
            for stmt in MIGRATIONS[v]:
                conn.execute(stmt)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(v + 1),),
            )
    return max(version, target)


class PostgresEventStore(EventStore):
    """Event store in a PostgreSQL database.

    Parameters
    ----------
    url
        A libpq connection URL, ``postgresql://user@host:port/dbname``.
    """

    def __init__(self, url: str) -> None:
        if psycopg is None:
            raise ImportError(
                "the PostgreSQL store needs psycopg: pip install 'interestlens[postgres]'"
            )
        self.url = url
        self._conn = psycopg.connect(url, autocommit=True)
        self._lock = threading.RLock()
        self._version = migrate(self._conn)

    @property
    def schema_version(self) -> int:
        """Version of the store's schema."""
        return self._version

    def _insert_events(self, rows: list[tuple[Any, ...]]) -> int:
        with self._lock, self._conn.transaction():
            cur = self._conn.cursor()
            # Writers take turns until they commit, so sequence numbers become visible in
            # order: a reader that has seen seq n has seen every event before it, and
            # folding in "every event after my watermark" never skips one that another
            # connection (a worker, another host) numbered earlier but committed later.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_EVENTS_WRITE_LOCK,))
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS incoming (seq BIGSERIAL, event_id TEXT, user_id TEXT,"
                " item_id TEXT, type TEXT, value DOUBLE PRECISION, ts BIGINT, text TEXT, context JSONB)"
                " ON COMMIT DELETE ROWS"
            )
            with cur.copy(f"COPY incoming ({_EVENT_COLS}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r)
            cur.execute(
                f"INSERT INTO events ({_EVENT_COLS}) SELECT {_EVENT_COLS} FROM "
                f"(SELECT DISTINCT ON (event_id) seq, {_EVENT_COLS} FROM incoming ORDER BY event_id, seq) d "
                "ORDER BY seq ON CONFLICT (event_id) DO NOTHING"
            )
            return int(cur.rowcount)

    def _upsert_items(self, rows: list[tuple[Any, ...]]) -> None:
        with self._lock, self._conn.transaction():
            cur = self._conn.cursor()
            # one writer at a time, so revisions become visible in order (as for events)
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_ITEMS_WRITE_LOCK,))
            (rev,) = cur.execute("SELECT COALESCE(MAX(rev), 0) + 1 FROM items").fetchone()
            cur.executemany(
                "INSERT INTO items (item_id, title, text, categories, tags, attributes, created_at, rev) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (item_id) DO UPDATE SET "
                "title = excluded.title, text = excluded.text, categories = excluded.categories, "
                "tags = excluded.tags, attributes = excluded.attributes, "
                "created_at = excluded.created_at, rev = excluded.rev, removed = FALSE",
                [(*r, rev) for r in rows],
            )

    def _upsert_users(self, rows: list[tuple[str, str]]) -> None:
        with self._lock, self._conn.transaction():
            self._conn.cursor().executemany(
                "INSERT INTO users (user_id, attributes) VALUES (%s, %s) "
                "ON CONFLICT (user_id) DO UPDATE SET attributes = excluded.attributes",
                rows,
            )

    def _fetch_events(self, user_id: str | None) -> list[tuple[Any, ...]]:
        with self._lock:
            if user_id is None:
                return self._conn.execute(
                    f"SELECT {_EVENT_COLS} FROM events ORDER BY seq"
                ).fetchall()
            return self._conn.execute(
                f"SELECT {_EVENT_COLS} FROM events WHERE user_id = %s ORDER BY seq", (user_id,)
            ).fetchall()

    def _fetch_events_since(self, seq: int) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(
                f"SELECT seq, {_EVENT_COLS} FROM events WHERE seq > %s ORDER BY seq", (seq,)
            ).fetchall()

    def has_user(self, user_id: str) -> bool:
        """Whether any event of the user is stored."""
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM events WHERE user_id = %s LIMIT 1", (user_id,)
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
            " WHERE NOT removed"
        )
        with self._lock:
            if item_id is not None:
                return self._conn.execute(f"{columns} AND item_id = %s", (item_id,)).fetchall()
            return self._conn.execute(f"{columns} ORDER BY pos").fetchall()

    def remove_item(self, item_id: str) -> bool:
        """Mark an item removed (a tombstone row at the next revision); whether a live row was stored."""
        with self._lock, self._conn.transaction():
            cur = self._conn.cursor()
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_ITEMS_WRITE_LOCK,))
            live = cur.execute(
                "SELECT 1 FROM items WHERE item_id = %s AND NOT removed", (item_id,)
            ).fetchone()
            (rev,) = cur.execute("SELECT COALESCE(MAX(rev), 0) + 1 FROM items").fetchone()
            cur.execute(
                "INSERT INTO items (item_id, removed, rev) VALUES (%s, TRUE, %s) "
                "ON CONFLICT (item_id) DO UPDATE SET removed = TRUE, rev = excluded.rev",
                (item_id, rev),
            )
            return live is not None

    def removed_items(self) -> list[str]:
        """The ids of every removed item."""
        with self._lock:
            rows = self._conn.execute("SELECT item_id FROM items WHERE removed").fetchall()
            return [r[0] for r in rows]

    def _fetch_items_since(self, rev: int) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(
                "SELECT rev, removed, item_id, title, text, categories, tags, attributes,"
                " created_at FROM items WHERE rev > %s ORDER BY rev, pos",
                (rev,),
            ).fetchall()

    def watermarks(self) -> tuple[int, int, int]:
        """The newest event's sequence number, the newest item revision, the erasures made (0 when none)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT (SELECT COALESCE(MAX(seq), 0) FROM events),"
                " (SELECT COALESCE(MAX(rev), 0) FROM items),"
                " (SELECT COALESCE(MAX(value::bigint), 0) FROM meta WHERE key = 'erasures')"
            ).fetchone()
            return int(row[0]), int(row[1]), int(row[2])

    def _fetch_users(self) -> list[tuple[str, str]]:
        with self._lock:
            return self._conn.execute(
                "SELECT user_id, attributes FROM users ORDER BY pos"
            ).fetchall()

    def _insert_slate(self, slate: tuple[Any, ...], items: list[tuple[Any, ...]]) -> bool:
        with self._lock, self._conn.transaction():
            # as the SQLite store: a slate commits without waiting for its WAL flush (the
            # server flushes it within wal_writer_delay); a server crash may lose the last
            # slates, never an event or a reward
            self._conn.execute("SET LOCAL synchronous_commit = off")
            cur = self._conn.execute(
                f"INSERT INTO slates ({_SLATE_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (request_id) DO NOTHING",
                slate,
            )
            if cur.rowcount == 0:
                return False
            self._conn.cursor().executemany(
                "INSERT INTO slate_items (request_id, position, item_id, score, propensity, explored)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                items,
            )
            return True

    def _insert_feedback(self, row: tuple[Any, ...]) -> bool:
        with self._lock, self._conn.transaction():
            shown = self._conn.execute(
                "SELECT 1 FROM slate_items WHERE request_id = %s AND item_id = %s", (row[1], row[2])
            ).fetchone()
            if shown is None:
                raise KeyError(f"no logged slate {row[1]!r} showed item {row[2]!r}")
            cur = self._conn.execute(
                "INSERT INTO feedback (feedback_id, request_id, item_id, reward, ts)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (feedback_id) DO NOTHING",
                row,
            )
            return cur.rowcount == 1

    def _fetch_slate_rows(
        self, policy: str | None, since_us: int | None, until_us: int | None
    ) -> list[tuple[Any, ...]]:
        where, args = slate_filter(policy, since_us, until_us, "%s")
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
        with self._lock, self._conn.transaction():
            n = self._conn.execute("DELETE FROM events WHERE user_id = %s", (user_id,)).rowcount
            self._conn.execute("DELETE FROM users WHERE user_id = %s", (user_id,))
            for stmt in ERASE_SLATES_SQL:
                self._conn.execute(stmt.format(p="%s"), (user_id,))
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES ('erasures', '1') ON CONFLICT (key) "
                "DO UPDATE SET value = (meta.value::bigint + 1)::text"
            )
            return int(n)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
