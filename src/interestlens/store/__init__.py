"""Durable event log and entity tables: SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from pathlib import Path

from interestlens.store.base import AppendResult, EventStore
from interestlens.store.sqlite import SQLiteEventStore


def open_store(url: str | Path) -> EventStore:
    """Open (creating and migrating if needed) the store at ``url``.

    Parameters
    ----------
    url
        ``postgresql://user@host:port/db`` for PostgreSQL; ``sqlite://PATH`` (so
        ``sqlite:///abs/path.db`` for an absolute path), ``sqlite://:memory:``, or a
        plain file path for SQLite.

    Examples
    --------
    >>> store = open_store("sqlite://:memory:")
    >>> store.schema_version, store.count()
    (5, 0)
    >>> store.close()
    """
    text = str(url)
    if text.startswith(("postgresql://", "postgres://")):
        from interestlens.store.postgres import PostgresEventStore

        return PostgresEventStore(text)
    if "://" in text and not text.startswith("sqlite://"):
        raise ValueError(f"unsupported store URL {text!r}: use sqlite://PATH or postgresql://...")
    return SQLiteEventStore(text.removeprefix("sqlite://"))


__all__ = ["AppendResult", "EventStore", "SQLiteEventStore", "open_store"]
