"""The records interestlens works with: events, items and users.

Ids are strings to the outside world; the integer indices models use live in
:class:`~interestlens.data.dataset.Dataset` and never leak into the public API.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any


class EventType(str, Enum):
    """What a user did.

    ``search`` carries the query in ``text`` and needs no item; ``tag`` and
    ``review`` carry the user's own words in ``text``.
    """

    VIEW = "view"
    CLICK = "click"
    RATING = "rating"
    PURCHASE = "purchase"
    SEARCH = "search"
    TAG = "tag"
    REVIEW = "review"


EVENT_TYPES: frozenset[str] = frozenset(t.value for t in EventType)
#: Event types that may omit ``item_id``.
ITEMLESS_TYPES: frozenset[str] = frozenset({EventType.SEARCH.value})
#: Event types whose meaning lies in ``text``; an empty text is rejected.
TEXT_TYPES: frozenset[str] = frozenset(
    {EventType.SEARCH.value, EventType.TAG.value, EventType.REVIEW.value}
)

EVENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "user_id",
    "item_id",
    "type",
    "value",
    "timestamp",
    "text",
    "context",
)
ITEM_COLUMNS: tuple[str, ...] = (
    "item_id",
    "title",
    "text",
    "categories",
    "tags",
    "attributes",
    "created_at",
)
USER_COLUMNS: tuple[str, ...] = ("user_id", "attributes")


def _as_utc(ts: datetime | float | int | None) -> datetime | None:
    if ts is None:
        return None
    if isinstance(ts, datetime):
        return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)
    return datetime.fromtimestamp(float(ts), tz=timezone.utc)


def derive_event_id(
    user_id: str,
    item_id: str | None,
    type: str,
    value: float,
    timestamp_us: int | None,
    text: str | None,
) -> str:
    """Content-derived id for an event that arrives without one.

    Re-sending the same event (same user, item, type, value, time and text)
    yields the same id, which is what makes re-ingesting a file idempotent.
    """
    key = "\x1f".join(
        (
            user_id,
            item_id or "",
            type,
            repr(float(value)),
            "" if timestamp_us is None else str(int(timestamp_us)),
            text or "",
        )
    )
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Event:
    """One thing a user did.

    Parameters
    ----------
    user_id, item_id
        String ids. ``item_id`` may be ``None`` only for ``search`` events.
    type
        One of :class:`EventType` (``"view"``, ``"click"``, ``"rating"``, ...).
    value
        Rating for ``rating`` events, otherwise a non-negative strength (count,
        dwell seconds, price...); defaults to 1.
    timestamp
        When it happened (UTC); ``None`` when the source has no time, in which case
        order of arrival stands for time.
    event_id
        Makes retries idempotent; derived from the content when not given.
    text
        The query of a search, the words of a tag or review.
    context
        Free-form request context (device, page, ...), JSON-serialisable.

    Examples
    --------
    >>> e = Event(user_id="42", item_id="318", type="click")
    >>> e.type, e.value
    ('click', 1.0)
    >>> len(e.event_id)
    32
    """

    user_id: str
    item_id: str | None = None
    type: str = EventType.VIEW.value
    value: float = 1.0
    timestamp: datetime | None = None
    event_id: str = ""
    text: str | None = None
    context: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "user_id", str(self.user_id))
        if self.item_id is not None:
            object.__setattr__(self, "item_id", str(self.item_id))
        if isinstance(self.type, EventType):
            object.__setattr__(self, "type", self.type.value)
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "timestamp", _as_utc(self.timestamp))
        if not self.event_id:
            ts = self.timestamp
            ts_us = None if ts is None else round(ts.timestamp() * 1_000_000)
            object.__setattr__(
                self,
                "event_id",
                derive_event_id(
                    self.user_id, self.item_id, self.type, self.value, ts_us, self.text
                ),
            )

    def to_record(self) -> dict[str, Any]:
        """Plain dict with the event columns, in schema order."""
        return {c: getattr(self, c) for c in EVENT_COLUMNS}


@dataclass(frozen=True)
class Item:
    """Something that can be recommended.

    Examples
    --------
    >>> Item("1", title="Toy Story (1995)", categories=["Animation", "Comedy"]).categories
    ['Animation', 'Comedy']
    """

    item_id: str
    title: str = ""
    text: str = ""
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "item_id", str(self.item_id))
        object.__setattr__(self, "created_at", _as_utc(self.created_at))

    def to_record(self) -> dict[str, Any]:
        """Plain dict with the item columns, in schema order."""
        return {c: getattr(self, c) for c in ITEM_COLUMNS}


@dataclass(frozen=True)
class User:
    """Someone whose interests we model; ``attributes`` hold optional profile facts.

    Examples
    --------
    >>> User("42", {"age": 31}).attributes["age"]
    31
    """

    user_id: str
    attributes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "user_id", str(self.user_id))

    def to_record(self) -> dict[str, Any]:
        """Plain dict with the user columns, in schema order."""
        return {c: getattr(self, c) for c in USER_COLUMNS}


def check_reward(reward: Any) -> float:
    """``reward`` as a finite float, or ``ValueError`` saying it must be one."""
    try:
        r = float(reward)
    except (TypeError, ValueError):
        raise ValueError(f"reward must be a finite number, got {reward!r}") from None
    if not math.isfinite(r):
        raise ValueError(f"reward must be a finite number, got {reward!r}")
    return r
