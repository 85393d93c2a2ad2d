"""`Dataset`: events, items and users as pandas frames, with id maps and matrix builders."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from interestlens.data.schema import (
    EVENT_COLUMNS,
    ITEM_COLUMNS,
    USER_COLUMNS,
    Event,
    Item,
    User,
)
from interestlens.data.validation import (
    TIMESTAMP_DTYPE,
    EventValidator,
    LoadReport,
    ValidationOptions,
    empty_events,
)


def _empty_items() -> pd.DataFrame:
    return _EMPTY_ITEMS.copy()


def _empty_users() -> pd.DataFrame:
    return _EMPTY_USERS.copy()


# built once (a millisecond each), copied per call (microseconds): a small batch of events
# (one posted over HTTP) builds several empty frames
_EMPTY_ITEMS = pd.DataFrame({c: pd.Series([], dtype=object) for c in ITEM_COLUMNS}).astype(
    {"created_at": TIMESTAMP_DTYPE}
)
_EMPTY_USERS = pd.DataFrame({c: pd.Series([], dtype=object) for c in USER_COLUMNS})


def items_frame(items: Iterable[Item] | pd.DataFrame | None) -> pd.DataFrame:
    """Canonical items frame from :class:`Item` records or a frame with item columns.

    Missing columns are filled (empty title and text, empty category and tag lists,
    empty attribute dicts); an item id given twice raises ``ValueError``.
    """
    if items is None:
        return _empty_items()
    if isinstance(items, pd.DataFrame):
        df = items.copy()
    else:
        df = pd.DataFrame([it.to_record() for it in items], columns=list(ITEM_COLUMNS))
    if "item_id" not in df.columns:
        raise ValueError("items need an item_id column")
    extra = set(df.columns) - set(ITEM_COLUMNS)
    if extra:
        raise ValueError(
            f"unknown item columns {sorted(extra)}; expected some of {list(ITEM_COLUMNS)}"
        )
    n = len(df)
    df["item_id"] = df["item_id"].astype(str)
    for col in ("title", "text"):
        df[col] = df[col].fillna("").astype(str) if col in df.columns else [""] * n
    for col in ("categories", "tags"):
        df[col] = (
            [list(v) if isinstance(v, list | tuple | np.ndarray) else [] for v in df[col]]
            if col in df.columns
            else [[] for _ in range(n)]
        )
    df["attributes"] = (
        [dict(v) if isinstance(v, Mapping) else {} for v in df["attributes"]]
        if "attributes" in df.columns
        else [{} for _ in range(n)]
    )
    df["created_at"] = (
        pd.to_datetime(df["created_at"], utc=True).astype(TIMESTAMP_DTYPE)
        if "created_at" in df.columns
        else pd.Series(pd.NaT, index=df.index, dtype=TIMESTAMP_DTYPE)
    )
    dup = df["item_id"].duplicated()
    if dup.any():
        raise ValueError(
            f"item_id {df['item_id'][dup].iloc[0]!r} appears more than once in the items"
        )
    return df[list(ITEM_COLUMNS)].reset_index(drop=True)


def users_frame(users: Iterable[User] | pd.DataFrame | None) -> pd.DataFrame:
    """Canonical users frame from :class:`User` records or a frame with user columns."""
    if users is None:
        return _empty_users()
    if isinstance(users, pd.DataFrame):
        df = users.copy()
    else:
        df = pd.DataFrame([u.to_record() for u in users], columns=list(USER_COLUMNS))
    df["user_id"] = df["user_id"].astype(str)
    df["attributes"] = (
        [dict(v) if isinstance(v, Mapping) else {} for v in df["attributes"]]
        if "attributes" in df.columns
        else [{} for _ in range(len(df))]
    )
    dup = df["user_id"].duplicated()
    if dup.any():
        raise ValueError(
            f"user_id {df['user_id'][dup].iloc[0]!r} appears more than once in the users"
        )
    return df[list(USER_COLUMNS)].reset_index(drop=True)


@dataclass(frozen=True)
class InteractionWeights:
    """How much each event type says about interest, for the interaction matrix.

    A cell's weight is the sum over the user's events on the item of
    ``weight[type] * strength * decay``, where strength is the event's value for
    types in ``use_value`` (ratings by default, minus ``rating_center`` if set) and 1
    otherwise, and decay is ``0.5 ** (age / half_life)`` when a half-life is given.

    Examples
    --------
    >>> InteractionWeights(purchase=10.0).weight("purchase")
    10.0
    """

    view: float = 1.0
    click: float = 2.0
    rating: float = 1.0
    purchase: float = 4.0
    tag: float = 2.0
    review: float = 2.0
    search: float = 0.0
    use_value: frozenset[str] = frozenset({"rating"})
    rating_center: float | None = None

    def weight(self, event_type: str) -> float:
        """Base weight of one event type."""
        return float(getattr(self, event_type))

    def as_dict(self) -> dict[str, float]:
        """Base weight per event type."""
        return {
            f.name: float(getattr(self, f.name))
            for f in fields(self)
            if f.name not in ("use_value", "rating_center")
        }


def cell_values(
    events: pd.DataFrame,
    weights: InteractionWeights | None = None,
    *,
    half_life: pd.Timedelta | float | None = None,
    now: pd.Timestamp | None = None,
) -> np.ndarray:
    """What each event adds to its interaction-matrix cell (see :meth:`Dataset.interactions`).

    ``events`` are item events (columns ``type``, ``value`` and, with a ``half_life``,
    ``timestamp``); the result is float64, one value per row.

    Examples
    --------
    >>> ev = pd.DataFrame({"type": ["click", "rating"], "value": [None, 4.0]})
    >>> cell_values(ev).tolist()
    [2.0, 4.0]
    """
    w = weights or InteractionWeights()
    types = events["type"].to_numpy(dtype=object)
    weight = w.as_dict()  # a type without a weight gives NaN
    base = np.fromiter((weight.get(t, np.nan) for t in types), dtype=np.float64, count=len(types))
    strength = np.ones(len(events))
    for t in w.use_value:
        m = types == t
        v = events["value"].to_numpy()[m]
        if t == "rating" and w.rating_center is not None:
            v = v - w.rating_center
        strength[m] = v
    data = base * strength
    if half_life is not None and len(events):
        hl = (
            half_life
            if isinstance(half_life, pd.Timedelta)
            else pd.Timedelta(days=float(half_life))
        )
        ts = events["timestamp"]
        ref = ts.max() if now is None else pd.Timestamp(now)
        age = (ref - ts).dt.total_seconds().to_numpy() / hl.total_seconds()
        data = data * np.where(np.isnan(age), 1.0, np.power(0.5, np.nan_to_num(age)))
    return data


@dataclass
class Interactions:
    """A user x item weight matrix with the ids of its rows and columns."""

    matrix: sp.csr_matrix
    user_ids: pd.Index
    item_ids: pd.Index

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_users, n_items)``."""
        return self.matrix.shape  # type: ignore[return-value]


@dataclass
class Dataset:
    """Events, items and users of one catalogue.

    Build one with :func:`interestlens.datasets.load`, :meth:`from_records`, or from an
    :class:`~interestlens.store.EventStore`. ``events`` keeps arrival order, which
    breaks timestamp ties (and stands for time where the source has none).

    Examples
    --------
    >>> from interestlens.data import Dataset, Event
    >>> ds = Dataset.from_records([Event("u1", "i1", "click"), Event("u2", "i1", "view")])
    >>> ds.n_users, ds.n_items
    (2, 1)
    >>> ds.interactions().matrix.toarray().tolist()
    [[2.0], [1.0]]
    """

    events: pd.DataFrame = field(default_factory=empty_events)
    items: pd.DataFrame = field(default_factory=_empty_items)
    users: pd.DataFrame = field(default_factory=_empty_users)
    name: str = ""
    report: LoadReport | None = None

    def __post_init__(self) -> None:
        missing = [c for c in EVENT_COLUMNS if c not in self.events.columns]
        if missing:
            raise ValueError(f"events frame lacks columns {missing}")
        self.events = self.events[list(EVENT_COLUMNS)].reset_index(drop=True)
        self._user_ids: pd.Index | None = None
        self._item_ids: pd.Index | None = None

    @classmethod
    def from_records(
        cls,
        events: Iterable[Event | Mapping[str, Any]],
        items: Iterable[Item] | pd.DataFrame | None = None,
        users: Iterable[User] | pd.DataFrame | None = None,
        *,
        options: ValidationOptions | None = None,
        name: str = "",
    ) -> Dataset:
        """Validate events (objects or dicts) into a Dataset; bad rows go to ``report``.

        When ``items`` is given, events naming unknown items are rejected or create
        bare items, per ``options.unknown_items``. By default an event without a
        timestamp is accepted (its time is unknown).
        """
        rows = [e.to_record() if isinstance(e, Event) else dict(e) for e in events]
        raw = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["user_id", "item_id", "type"])
        if options is None:
            options = ValidationOptions(
                default_type=None if "type" in raw.columns else "view", allow_missing_timestamp=True
            )
        items_df = items_frame(items)
        known = None if items is None else items_df["item_id"].tolist()
        v = EventValidator(options, known_items=known, source=name or "records")
        ev = v.validate(raw)
        if v.created_items:
            items_df = pd.concat(
                [items_df, items_frame([Item(i) for i in v.created_items])], ignore_index=True
            )
        return cls(ev, items_df, users_frame(users), name=name, report=v.report)

    # ----- ids -------------------------------------------------------------
    @property
    def user_ids(self) -> pd.Index:
        """Every user id, users table first then first appearance in events."""
        if self._user_ids is None:
            ids = pd.concat([self.users["user_id"], self.events["user_id"]], ignore_index=True)
            self._user_ids = pd.Index(ids.drop_duplicates().to_numpy(dtype=object), name="user_id")
        return self._user_ids

    @property
    def item_ids(self) -> pd.Index:
        """Every item id, items table first then first appearance in events."""
        if self._item_ids is None:
            ids = pd.concat(
                [self.items["item_id"], self.events["item_id"].dropna()], ignore_index=True
            )
            self._item_ids = pd.Index(ids.drop_duplicates().to_numpy(dtype=object), name="item_id")
        return self._item_ids

    @property
    def n_users(self) -> int:
        """Number of distinct users."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Number of distinct items (the catalogue plus any item events name)."""
        return len(self.item_ids)

    def catalogue(self) -> pd.DataFrame:
        """The items frame with one row per :attr:`item_ids`, in that order.

        Items that only events name get a bare row (empty title, text and lists), so
        anything aligned with ``item_ids`` (text, vectors, matrix columns) can use it.
        """
        known = self.items["item_id"]
        extra = self.item_ids[~self.item_ids.isin(known)]
        frame = self.items
        if len(extra):
            frame = pd.concat(
                [frame, items_frame(pd.DataFrame({"item_id": extra}))], ignore_index=True
            )
        return frame.set_index("item_id").loc[self.item_ids].reset_index()

    def user_index(self, user_ids: Iterable[str]) -> np.ndarray:
        """Row indices of user ids; -1 for unknown users."""
        return self.user_ids.get_indexer(pd.Index(list(user_ids), dtype=object))

    def item_index(self, item_ids: Iterable[str]) -> np.ndarray:
        """Column indices of item ids; -1 for unknown items."""
        return self.item_ids.get_indexer(pd.Index(list(item_ids), dtype=object))

    # ----- derived views ----------------------------------------------------
    def subset(self, mask: np.ndarray | pd.Series, name: str | None = None) -> Dataset:
        """The same catalogue and users with only the events where ``mask`` is true."""
        mask = np.asarray(mask, dtype=bool)
        return Dataset(
            self.events[mask].reset_index(drop=True),
            self.items,
            self.users,
            name=self.name if name is None else name,
        )

    def sorted_events(self) -> pd.DataFrame:
        """Events ordered by user then time, arrival order breaking ties; keeps the original index."""
        ev = self.events
        order = np.lexsort(
            (
                np.arange(len(ev)),
                ev["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64),
                self.user_index(ev["user_id"]),
            )
        )
        return ev.iloc[order]

    def interactions(
        self,
        weights: InteractionWeights | None = None,
        *,
        half_life: pd.Timedelta | float | None = None,
        now: pd.Timestamp | None = None,
        user_ids: pd.Index | None = None,
        item_ids: pd.Index | None = None,
    ) -> Interactions:
        """User x item interaction matrix.

        Parameters
        ----------
        weights
            Per-type weights (see :class:`InteractionWeights`).
        half_life
            Exponential time decay: an event ``half_life`` older than ``now`` counts half.
            A number is read as days. Events without a timestamp are not decayed.
        now
            Reference time for the decay; the latest event by default.
        user_ids, item_ids
            Row and column ids (default: this dataset's); events outside them are left out,
            which lets a test split share the training split's matrix layout.
        """
        users = self.user_ids if user_ids is None else user_ids
        items = self.item_ids if item_ids is None else item_ids
        ev = self.events[self.events["item_id"].notna()]
        data = cell_values(ev, weights, half_life=half_life, now=now)
        rows = users.get_indexer(pd.Index(ev["user_id"], dtype=object))
        cols = items.get_indexer(pd.Index(ev["item_id"], dtype=object))
        keep = (rows >= 0) & (cols >= 0) & (data != 0)
        m = sp.coo_matrix(
            (data[keep], (rows[keep], cols[keep])), shape=(len(users), len(items))
        ).tocsr()
        m.sum_duplicates()
        return Interactions(m, users, items)

    def summary(self) -> dict[str, Any]:
        """Counts and distributions that describe the dataset."""
        ev = self.events
        per_user = ev.groupby("user_id", sort=False).size()
        item_ev = ev[ev["item_id"].notna()]
        per_item = item_ev.groupby("item_id", sort=False).size()
        n_u, n_i = self.n_users, self.n_items
        pairs = item_ev[["user_id", "item_id"]].drop_duplicates().shape[0]
        ratings = ev.loc[ev["type"] == "rating", "value"]
        ts = ev["timestamp"].dropna()

        def dist(s: pd.Series) -> dict[str, float]:
            if s.empty:
                return {"min": 0, "median": 0, "mean": 0.0, "max": 0}
            return {
                "min": int(s.min()),
                "median": float(s.median()),
                "mean": round(float(s.mean()), 3),
                "max": int(s.max()),
            }

        return {
            "name": self.name,
            "events": len(ev),
            "users": n_u,
            "items": n_i,
            "items_with_events": int(per_item.shape[0]),
            "events_by_type": {str(k): int(v) for k, v in ev["type"].value_counts().items()},
            "density": round(pairs / (n_u * n_i), 6) if n_u and n_i else 0.0,
            "events_per_user": dist(per_user),
            "events_per_item": dist(per_item),
            "ratings": (
                {
                    "min": float(ratings.min()),
                    "mean": round(float(ratings.mean()), 4),
                    "max": float(ratings.max()),
                }
                if len(ratings)
                else None
            ),
            "events_with_text": int(ev["text"].notna().sum()),
            "first_event": ts.min().isoformat() if len(ts) else None,
            "last_event": ts.max().isoformat() if len(ts) else None,
            "items_with_text": int(
                ((self.items["title"] != "") | (self.items["text"] != "")).sum()
            ),
        }
