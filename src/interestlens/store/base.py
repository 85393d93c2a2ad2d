"""The durable event log shared by every backend.

An :class:`EventStore` keeps events, items and users. Appends are idempotent on
``event_id`` (a re-sent event is counted as a duplicate, not stored twice) and each
batch is one transaction: once :meth:`EventStore.append` returns, its events survive
a crash of the process.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from interestlens.data.dataset import Dataset, items_frame, users_frame
from interestlens.data.readers import iter_event_chunks
from interestlens.data.schema import EVENT_COLUMNS, Event, Item, User
from interestlens.data.validation import (
    TIMESTAMP_DTYPE,
    EventValidator,
    LoadReport,
    ValidationOptions,
)

#: Rows per transaction when a large frame is appended.
BATCH = 50_000


@dataclass(frozen=True)
class AppendResult:
    """Outcome of one append: events newly stored, and events the store already held."""

    stored: int
    duplicates: int


def _ts_to_us(ts: pd.Series) -> list[int | None]:
    us = ts.to_numpy(dtype="datetime64[ns]").astype(np.int64) // 1000
    nat = ts.isna().to_numpy()
    return [None if n else int(v) for v, n in zip(us.tolist(), nat.tolist(), strict=True)]


def _us_to_ts(values: Sequence[int | None]) -> pd.Series:
    arr = pd.array(values, dtype="Int64")
    return (
        pd.to_datetime(arr, unit="us", utc=True)
        .astype(TIMESTAMP_DTYPE)
        .to_series()
        .reset_index(drop=True)
    )


def _json_or_none(v: Any) -> str | None:
    return (
        None
        if v is None or (isinstance(v, float) and np.isnan(v))
        else json.dumps(v, sort_keys=True)
    )


def event_rows(events: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Rows ``(event_id, user_id, item_id, type, value, ts_us, text, context_json)`` for SQL."""
    return list(
        zip(
            events["event_id"].tolist(),
            events["user_id"].tolist(),
            [v if isinstance(v, str) else None for v in events["item_id"].tolist()],
            events["type"].tolist(),
            events["value"].astype(float).tolist(),
            _ts_to_us(events["timestamp"]),
            [v if isinstance(v, str) else None for v in events["text"].tolist()],
            [_json_or_none(v) for v in events["context"].tolist()],
            strict=True,
        )
    )


def events_from_rows(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Canonical events frame from rows in :func:`event_rows` order."""
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in range(8)]
    return pd.DataFrame(
        {
            "event_id": pd.Series(cols[0], dtype=object),
            "user_id": pd.Series(cols[1], dtype=object),
            "item_id": pd.Series(cols[2], dtype=object),
            "type": pd.Series(cols[3], dtype=object),
            "value": pd.Series(cols[4], dtype="float64"),
            "timestamp": _us_to_ts(cols[5]),
            "text": pd.Series(cols[6], dtype=object),
            "context": pd.Series([_loads(c) for c in cols[7]], dtype=object),
        }
    )[list(EVENT_COLUMNS)]


def _loads(v: Any) -> Any:
    if v is None or isinstance(v, dict | list):
        return v
    return json.loads(v)


def item_rows(items: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Rows ``(item_id, title, text, categories, tags, attributes, created_us)`` for SQL."""
    return list(
        zip(
            items["item_id"].tolist(),
            items["title"].tolist(),
            items["text"].tolist(),
            [json.dumps(list(v)) for v in items["categories"]],
            [json.dumps(list(v)) for v in items["tags"]],
            [json.dumps(v, sort_keys=True) for v in items["attributes"]],
            _ts_to_us(items["created_at"]),
            strict=True,
        )
    )


def items_from_rows(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Canonical items frame from rows in :func:`item_rows` order."""
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in range(7)]
    return items_frame(
        pd.DataFrame(
            {
                "item_id": pd.Series(cols[0], dtype=object),
                "title": pd.Series(cols[1], dtype=object),
                "text": pd.Series(cols[2], dtype=object),
                "categories": pd.Series([_loads(c) for c in cols[3]], dtype=object),
                "tags": pd.Series([_loads(c) for c in cols[4]], dtype=object),
                "attributes": pd.Series([_loads(c) for c in cols[5]], dtype=object),
                "created_at": _us_to_ts(cols[6]),
            }
        )
    )


class EventStore(abc.ABC):
    """Durable store of events, items and users.

    Open one with :func:`interestlens.store.open_store`; use it as a context manager
    so the connection closes.

    Examples
    --------
    >>> from interestlens.store import open_store
    >>> from interestlens.data import Event
    >>> with open_store("sqlite://:memory:") as store:
    ...     first = store.append([Event("u1", "i1", "click", event_id="e1")])
    ...     again = store.append([Event("u1", "i1", "click", event_id="e1")])
    ...     (first.stored, again.stored, again.duplicates, store.count())
    (1, 0, 1, 1)
    """

    url: str

    # ----- backend primitives ------------------------------------------------
    @abc.abstractmethod
    def _insert_events(self, rows: list[tuple[Any, ...]]) -> int:
        """Insert rows in one transaction, skipping known event ids; return rows stored."""

    @abc.abstractmethod
    def _upsert_items(self, rows: list[tuple[Any, ...]]) -> None: ...

    @abc.abstractmethod
    def _upsert_users(self, rows: list[tuple[str, str]]) -> None: ...

    @abc.abstractmethod
    def _fetch_events(self, user_id: str | None) -> list[tuple[Any, ...]]: ...

    @abc.abstractmethod
    def _fetch_items(self) -> list[tuple[Any, ...]]: ...

    @abc.abstractmethod
    def _fetch_users(self) -> list[tuple[str, str]]: ...

    @abc.abstractmethod
    def count(self) -> int:
        """Number of stored events."""

    @abc.abstractmethod
    def erase_user(self, user_id: str) -> int:
        """Delete every event and the profile row of one user; returns events deleted."""

    @property
    @abc.abstractmethod
    def schema_version(self) -> int:
        """Version of the store's schema (migrations run on open)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection."""

    # ----- shared behaviour --------------------------------------------------
    def append(
        self, events: Dataset | pd.DataFrame | Iterable[Event | Mapping[str, Any]]
    ) -> AppendResult:
        """Store events, each batch of up to :data:`BATCH` in one durable transaction.

        Parameters
        ----------
        events
            A :class:`~interestlens.data.Dataset` or its validated events frame (taken
            as is), or :class:`~interestlens.data.Event` objects / dicts, which are
            validated first; an invalid one raises ``ValueError`` naming it.

        Returns
        -------
        AppendResult
            Newly stored events, and those whose ``event_id`` was already stored.
        """
        if isinstance(events, Dataset):
            frame = events.events
        elif isinstance(events, pd.DataFrame):
            frame = events
        else:
            ds = Dataset.from_records(events, name="append")
            if ds.report is not None and ds.report.rejections:
                r = ds.report.rejections[0]
                raise ValueError(f"event {r.row} rejected: {r.reason}")
            frame = ds.events
        stored = 0
        for start in range(0, len(frame), BATCH):
            stored += self._insert_events(event_rows(frame.iloc[start : start + BATCH]))
        return AppendResult(stored=stored, duplicates=len(frame) - stored)

    def upsert_items(self, items: Iterable[Item] | pd.DataFrame) -> int:
        """Insert or replace items; returns how many were written."""
        frame = items_frame(items)
        for start in range(0, len(frame), BATCH):
            self._upsert_items(item_rows(frame.iloc[start : start + BATCH]))
        return len(frame)

    def upsert_users(self, users: Iterable[User] | pd.DataFrame) -> int:
        """Insert or replace users; returns how many were written."""
        frame = users_frame(users)
        rows = [
            (u, json.dumps(a, sort_keys=True))
            for u, a in zip(frame["user_id"], frame["attributes"], strict=True)
        ]
        self._upsert_users(rows)
        return len(rows)

    def append_dataset(self, ds: Dataset) -> AppendResult:
        """Store a whole dataset: its items and users (upserted) and its events."""
        if len(ds.items):
            self.upsert_items(ds.items)
        if len(ds.users):
            self.upsert_users(ds.users)
        return self.append(ds.events)

    def items(self) -> pd.DataFrame:
        """The stored items as a canonical items frame."""
        return items_from_rows(self._fetch_items())

    def events(self, user_id: str | None = None) -> pd.DataFrame:
        """Stored events in arrival order, of one user or of all."""
        return events_from_rows(self._fetch_events(user_id))

    def to_dataset(self, name: str = "") -> Dataset:
        """Everything stored, as a :class:`~interestlens.data.Dataset` (events in arrival order)."""
        users = self._fetch_users()
        users_df = users_frame(
            pd.DataFrame(
                {"user_id": [u for u, _ in users], "attributes": [_loads(a) for _, a in users]}
            )
        )
        return Dataset(self.events(), self.items(), users_df, name=name or self.url)

    def ingest(
        self,
        path: str | Path,
        *,
        mapping: Mapping[str, str] | None = None,
        options: ValidationOptions | None = None,
        fmt: str | None = None,
        chunk_size: int = BATCH,
        progress: bool | None = None,
    ) -> LoadReport:
        """Validate a generic event file and append it chunk by chunk.

        When the store holds items, events naming other items are rejected or create
        bare items (``options.unknown_items``). Rows already stored count as
        ``duplicates`` in the returned report; rejected rows are listed with their
        row numbers.
        """
        items = self._fetch_items()
        known = [r[0] for r in items] if items else None
        validator = EventValidator(options, known_items=known, source=str(path))
        for chunk in iter_event_chunks(
            path, validator, mapping=mapping, fmt=fmt, chunk_size=chunk_size, progress=progress
        ):
            if validator.created_items:
                self.upsert_items([Item(i) for i in validator.created_items])
                validator.created_items.clear()
            result = self.append(chunk)
            validator.report.duplicates += result.duplicates
        report = validator.report
        report.loaded -= report.duplicates
        report.rejections.sort(key=lambda r: r.row)
        return report

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
