"""The durable event log shared by every backend.

An :class:`EventStore` keeps events, items and users. Appends are idempotent on
``event_id`` (a re-sent event is counted as a duplicate, not stored twice) and each
batch is one transaction: once :meth:`EventStore.append` returns, its events survive
a crash of the process.

It also keeps the slate log: every slate an exploration policy served (request id,
user, items by position with their propensities and explored flags, policy and
parameters, a context summary, time) and every reward fed back for it, durably and
idempotently in the same way, so that off-policy evaluation runs on the product's own
logs (:meth:`EventStore.slate_frame`, :meth:`EventStore.slate_log`).
"""

from __future__ import annotations

import abc
import json
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from interestlens.data.bandit import BanditLog
from interestlens.data.dataset import Dataset, items_frame, users_frame
from interestlens.data.readers import iter_event_chunks
from interestlens.data.schema import EVENT_COLUMNS, Event, Item, User, check_reward
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


#: Columns of the joined slate log, in :meth:`EventStore._fetch_slate_rows` order.
SLATE_LOG_COLUMNS = (
    "request_id",
    "user_id",
    "ts",
    "policy",
    "explore",
    "propensity_method",
    "context",
    "position",
    "item_id",
    "score",
    "propensity",
    "explored",
    "reward",
)


#: The slate log joined with the latest reward of each shown item (``{where}`` filters slates).
SLATE_LOG_SQL = """
SELECT s.request_id, s.user_id, s.ts, s.policy, s.explore, s.propensity_method, s.context,
       i.position, i.item_id, i.score, i.propensity, i.explored,
       (SELECT f.reward FROM feedback f WHERE f.request_id = i.request_id AND f.item_id = i.item_id
        ORDER BY f.seq DESC LIMIT 1) AS reward
FROM slates s JOIN slate_items i ON i.request_id = s.request_id
{where}
ORDER BY s.seq, i.position"""
#: Deleting a user's slates and their feedback (one parameter: the user id).
ERASE_SLATES_SQL = [
    "DELETE FROM feedback WHERE request_id IN (SELECT request_id FROM slates WHERE user_id = {p})",
    "DELETE FROM slate_items WHERE request_id IN (SELECT request_id FROM slates WHERE user_id = {p})",
    "DELETE FROM slates WHERE user_id = {p}",
]


def slate_filter(
    policy: str | None, since_us: int | None, until_us: int | None, mark: str
) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause of :data:`SLATE_LOG_SQL` and its parameters (``mark``: ``?`` or ``%s``)."""
    terms, args = [], []
    for sql, value in (("s.policy = ", policy), ("s.ts >= ", since_us), ("s.ts < ", until_us)):
        if value is not None:
            terms.append(sql + mark)
            args.append(value)
    return ("WHERE " + " AND ".join(terms) if terms else ""), args


def _now_us(timestamp: Any) -> int:
    ts = pd.Timestamp.now(tz="UTC") if timestamp is None else pd.Timestamp(timestamp)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1000)


def _json_safe(value: Any) -> Any:
    """Plain JSON values for a parameters or context mapping (numpy scalars included)."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


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
    def _fetch_items(self, item_id: str | None = None) -> list[tuple[Any, ...]]:
        """Rows of every stored item, or of the one ``item_id`` (none when it is not stored)."""

    @abc.abstractmethod
    def _fetch_users(self) -> list[tuple[str, str]]: ...

    @abc.abstractmethod
    def count(self) -> int:
        """Number of stored events."""

    @abc.abstractmethod
    def forget_user(self, user_id: str) -> int:
        """Delete every event, slate, feedback and the profile row of one user; returns events deleted."""

    @abc.abstractmethod
    def _fetch_events_since(self, seq: int) -> list[tuple[Any, ...]]:
        """``(seq, *event columns)`` of every event stored after ``seq``, in arrival order."""

    @abc.abstractmethod
    def _fetch_items_since(self, rev: int) -> list[tuple[Any, ...]]:
        """``(rev, removed, *item columns)`` of every item put or removed after revision ``rev``, oldest first."""

    @abc.abstractmethod
    def remove_item(self, item_id: str) -> bool:
        """Mark an item removed (a tombstone at the next revision); whether a live row was stored.

        A removed item is left out of :meth:`items` and :meth:`to_dataset`'s items (its
        past events stay); putting it again brings it back.
        """

    @abc.abstractmethod
    def removed_items(self) -> list[str]:
        """The ids of every removed item."""

    @abc.abstractmethod
    def watermarks(self) -> tuple[int, int, int]:
        """The newest event's sequence number, the newest item revision, the erasures made (0 when none).

        A reader that remembers them knows from one query whether another process
        stored events (:meth:`events_since`), put items (:meth:`items_since`) or erased
        a user (:meth:`forget_user` counts each erasure) since it last looked.
        """

    @abc.abstractmethod
    def has_user(self, user_id: str) -> bool:
        """Whether any event of the user is stored."""

    @abc.abstractmethod
    def watermark(self) -> int:
        """Sequence number of the newest stored event (0 when none); it only grows."""

    @abc.abstractmethod
    def _insert_slate(self, slate: tuple[Any, ...], items: list[tuple[Any, ...]]) -> bool:
        """Store one slate and its positions in one transaction unless its request id is known."""

    @abc.abstractmethod
    def _insert_feedback(self, row: tuple[Any, ...]) -> bool:
        """Store ``(feedback_id, request_id, item_id, reward, ts_us)`` in one transaction.

        Returns ``False`` for a known feedback id; raises ``KeyError`` when the item was not
        in that request's slate.
        """

    @abc.abstractmethod
    def _fetch_slate_rows(
        self, policy: str | None, since_us: int | None, until_us: int | None
    ) -> list[tuple[Any, ...]]:
        """Every shown position joined with its latest reward (NULL when none).

        Columns in :data:`SLATE_LOG_COLUMNS` order, slates in arrival order.
        """

    @abc.abstractmethod
    def count_slates(self) -> int:
        """Number of stored slates."""

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

    def items(self, item_id: str | None = None) -> pd.DataFrame:
        """The stored items as a canonical items frame; with ``item_id``, that item's row (or none)."""
        return items_from_rows(self._fetch_items(None if item_id is None else str(item_id)))

    def events(self, user_id: str | None = None) -> pd.DataFrame:
        """Stored events in arrival order, of one user or of all."""
        return events_from_rows(self._fetch_events(user_id))

    def events_since(self, watermark: int) -> tuple[pd.DataFrame, int]:
        """Events stored after ``watermark`` (a :meth:`watermark` read earlier), and the new watermark.

        Examples
        --------
        >>> from interestlens.store import open_store
        >>> from interestlens.data import Event
        >>> with open_store("sqlite://:memory:") as store:
        ...     _ = store.append([Event("u1", "i1", "click", event_id="e1")])
        ...     mark = store.watermark()
        ...     _ = store.append([Event("u2", "i2", "click", event_id="e2")])
        ...     later, new_mark = store.events_since(mark)
        ...     (later["user_id"].tolist(), new_mark > mark)
        (['u2'], True)
        """
        rows = self._fetch_events_since(int(watermark))
        if not rows:
            return events_from_rows([]), int(watermark)
        return events_from_rows([r[1:] for r in rows]), int(rows[-1][0])

    def items_since(self, rev: int) -> tuple[pd.DataFrame, list[str], int]:
        """Items put (added or replaced) and ids removed after item revision ``rev``; the newest revision.

        Every write of items (:meth:`upsert_items`, :meth:`remove_item`) takes the next
        revision, so a reader that remembers the second :meth:`watermarks` value finds
        what others put and removed since.

        Examples
        --------
        >>> from interestlens.store import open_store
        >>> from interestlens.data import Item
        >>> with open_store("sqlite://:memory:") as store:
        ...     _ = store.upsert_items([Item("i1", title="Alien")])
        ...     _, rev, _ = store.watermarks()
        ...     _ = store.upsert_items([Item("i2", title="Heat")])
        ...     _ = store.remove_item("i1")
        ...     later, removed, new_rev = store.items_since(rev)
        ...     (later["item_id"].tolist(), removed, new_rev)
        (['i2'], ['i1'], 3)
        """
        rows = self._fetch_items_since(int(rev))
        if not rows:
            return items_from_rows([]), [], int(rev)
        live = [r[2:] for r in rows if not r[1]]
        removed = [str(r[2]) for r in rows if r[1]]
        return items_from_rows(live), removed, int(rows[-1][0])

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

    # ----- slate log ---------------------------------------------------------------
    def log_slate(
        self,
        *,
        request_id: str,
        user_id: str,
        item_ids: Sequence[str],
        propensities: Sequence[float],
        explored: Sequence[bool],
        policy: str,
        explore: float,
        scores: Sequence[float] | None = None,
        params: Mapping[str, Any] | None = None,
        propensity_method: str = "exact",
        context: Mapping[str, Any] | None = None,
        timestamp: Any = None,
    ) -> bool:
        """Store one served slate (position ``j`` is ``item_ids[j]``).

        Once this returns, the slate survives a crash of the process. SQLite does not
        fsync it on its own (it is on the request path of every recommendation): it
        reaches the disk with the next synced commit, so a crash of the machine can lose
        the slates logged since (see :class:`~interestlens.store.SQLiteEventStore`).
        Idempotent on ``request_id``: a slate logged twice is stored once. The keyword
        arguments are those of :meth:`interestlens.explore.Slate.record`.

        Returns
        -------
        bool
            Whether the slate was new.

        Raises
        ------
        ValueError
            Lengths disagree, a propensity is outside (0, 1], ``explore`` is outside
            [0, 1], or an id is empty; the message names the field.

        Examples
        --------
        >>> from interestlens.store import open_store
        >>> with open_store("sqlite://:memory:") as store:
        ...     store.log_slate(request_id="r1", user_id="u1", item_ids=["a", "b"],
        ...                     propensities=[0.9, 0.05], explored=[False, True],
        ...                     policy="epsilon_greedy", explore=0.1)
        ...     _ = store.log_feedback("r1", "b", 1.0)
        ...     store.slate_frame()[["item_id", "position", "reward", "propensity"]].values.tolist()
        True
        [['a', 0, 0.0, 0.9], ['b', 1, 1.0, 0.05]]
        """
        n = len(item_ids)
        if not str(request_id) or not str(user_id):
            raise ValueError("request_id and user_id must not be empty")
        scores = [math.nan] * n if scores is None else list(scores)
        for name, values in (
            ("propensities", propensities),
            ("explored", explored),
            ("scores", scores),
        ):
            if len(values) != n:
                raise ValueError(f"{name} has {len(values)} entries for {n} items")
        props = [float(p) for p in propensities]
        bad = [p for p in props if not 0 < p <= 1]
        if bad:
            raise ValueError(f"propensities must lie in (0, 1], got {bad[0]!r}")
        if not 0 <= float(explore) <= 1:
            raise ValueError(f"explore must be in [0, 1], got {explore!r}")
        slate = (
            str(request_id),
            str(user_id),
            str(policy),
            json.dumps(_json_safe(params or {}), sort_keys=True),
            float(explore),
            str(propensity_method),
            json.dumps(_json_safe(context or {}), sort_keys=True),
            _now_us(timestamp),
        )
        items = [
            (
                str(request_id),
                j,
                str(item),
                None if s is None or math.isnan(float(s)) else float(s),
                p,
                bool(e),
            )
            for j, (item, s, p, e) in enumerate(zip(item_ids, scores, props, explored, strict=True))
        ]
        return self._insert_slate(slate, items)

    def log_feedback(
        self,
        request_id: str,
        item_id: str,
        reward: float,
        *,
        timestamp: Any = None,
        feedback_id: str | None = None,
    ) -> bool:
        """Store a reward for an item of a logged slate durably.

        The latest feedback for a ``(request_id, item_id)`` is its reward in the exported
        log; items without feedback count as reward 0. ``feedback_id`` makes retries
        idempotent (default: a fresh id, so every call is stored).

        Returns
        -------
        bool
            Whether the feedback was new.

        Raises
        ------
        KeyError
            No logged slate ``request_id`` showed ``item_id``.
        ValueError
            The reward is not a finite number.
        """
        r = check_reward(reward)
        row = (
            str(feedback_id or uuid.uuid4()),
            str(request_id),
            str(item_id),
            r,
            _now_us(timestamp),
        )
        return self._insert_feedback(row)

    def slate_frame(
        self, *, policy: str | None = None, since: Any = None, until: Any = None
    ) -> pd.DataFrame:
        """The slate log joined with its feedback: one row per shown position.

        Columns ``request_id, user_id, timestamp, item_id, position, reward, propensity,
        explored, score, policy, explore, propensity_method``, then one ``context_<key>``
        column per key of the logged context summaries (a number or a string). ``reward``
        is the latest feedback for that item of that slate, 0 where none came. The frame
        is what :meth:`BanditLog.from_frame <interestlens.data.bandit.BanditLog.from_frame>`
        and :func:`interestlens.evaluate.ope.read_log` (once written to a file) read.

        Parameters
        ----------
        policy
            Only slates of this policy.
        since, until
            Only slates served at or after ``since`` and before ``until``.
        """
        rows = self._fetch_slate_rows(
            policy,
            None if since is None else _now_us(since),
            None if until is None else _now_us(until),
        )
        raw = pd.DataFrame(rows, columns=list(SLATE_LOG_COLUMNS))
        frame = pd.DataFrame(
            {
                "request_id": raw["request_id"].astype(object),
                "user_id": raw["user_id"].astype(object),
                "timestamp": _us_to_ts(raw["ts"].tolist()),
                "item_id": raw["item_id"].astype(object),
                "position": raw["position"].astype(np.int64),
                "reward": pd.to_numeric(raw["reward"]).fillna(0.0).astype(np.float64),
                "propensity": raw["propensity"].astype(np.float64),
                "explored": raw["explored"].astype(bool),
                "score": pd.to_numeric(raw["score"]).astype(np.float64),
                "policy": raw["policy"].astype(object),
                "explore": raw["explore"].astype(np.float64),
                "propensity_method": raw["propensity_method"].astype(object),
            }
        )
        contexts = [_loads(c) or {} for c in raw["context"].tolist()]
        keys = sorted({k for c in contexts for k in c})
        for key in keys:
            values = [c.get(key) for c in contexts]
            col = pd.Series(
                [
                    v if isinstance(v, int | float | str) or v is None else json.dumps(v)
                    for v in values
                ],
                dtype=object,
            )
            numeric = pd.to_numeric(col, errors="coerce")
            frame[f"context_{key}"] = numeric if numeric.notna().sum() == col.notna().sum() else col
        return frame

    def slate_log(
        self, *, policy: str | None = None, since: Any = None, until: Any = None
    ) -> BanditLog:
        """The slate log as a :class:`~interestlens.data.bandit.BanditLog` for off-policy evaluation.

        Rows of :meth:`slate_frame`; its ``context_*`` columns form the context (text ones
        one-hot encoded; numeric ones that some slates lack are left out).
        """
        frame = self.slate_frame(policy=policy, since=since, until=until)
        # a number missing from some slates' context would reject those rows: leave it out
        context = [
            c
            for c in frame.columns
            if c.startswith("context_") and (frame[c].dtype == object or frame[c].notna().all())
        ]
        categorical = [c for c in context if frame[c].dtype == object]
        return BanditLog.from_frame(
            frame,
            context_columns=context,
            categorical=categorical,
            policy_name=policy or "",
            source=self.url,
        )

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
