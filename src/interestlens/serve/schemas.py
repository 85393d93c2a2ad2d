"""Request and response bodies of the HTTP API: pydantic models that refuse unknown fields."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)


class Strict(BaseModel):
    """A body whose unknown fields are refused (422 naming the field)."""

    model_config = ConfigDict(extra="forbid")


#: The instants a date-time may name: what a nanosecond timestamp (the engine's) can hold.
EARLIEST = datetime(1677, 9, 22, tzinfo=timezone.utc)
LATEST = datetime(2262, 4, 11, tzinfo=timezone.utc)


def _date_time_text(value: Any) -> Any:
    """Let only a date-time string (or a ``datetime``, from Python) reach pydantic's parser.

    Pydantic's lax mode would read a number as seconds since the epoch, which the spec
    (``type: string, format: date-time``) does not allow; strict mode, the other way
    out, refuses the ISO strings FastAPI passes on from the JSON.
    """
    if value is None or isinstance(value, (str, datetime)):
        return value
    raise ValueError("expected a date-time string (RFC 3339, e.g. 2024-05-01T12:00:00Z)")


def _representable(value: datetime) -> datetime:
    """Refuse an instant the engine cannot hold (year 74, year 9999), rather than fail on it."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    if not EARLIEST <= aware <= LATEST:
        raise ValueError(
            f"date-time {value.isoformat()} is outside {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}"
        )
    return value


#: A date-time given as an RFC 3339 string, as the spec documents it (a number is refused),
#: within what the engine can hold (1677-09-22 to 2262-04-11): an item's ``created_at``.
DateTime = Annotated[
    datetime,
    BeforeValidator(_date_time_text),
    AfterValidator(_representable),
    Field(description="RFC 3339, between 1677-09-22 and 2262-04-11."),
]
#: RFC 3339's grammar (section 5.6), which allows what Python's datetime cannot hold: year
#: 0000 and a leap second (``23:59:60``).
_RFC3339 = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt ]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)"
    r"(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)"
)


def _rfc3339_as_given(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A date-time; an RFC 3339 one Python cannot hold (year 0000) passes on as its text.

    The engine then rejects that event by its index with the value in the reason, as it
    does any event outside 1970 to 2099, instead of the whole request being refused.
    """
    try:
        return handler(value)
    except ValidationError:
        if isinstance(value, str) and _RFC3339.fullmatch(value):
            return value
        raise


#: An event's time: any RFC 3339 date-time (a number is refused). The engine rejects an
#: event outside 1970 to 2099 by its index, year 74 as much as 1969, and stores the rest
#: of the batch, so the range is not a reason to refuse the whole request (422).
EventTime = Annotated[
    datetime,
    BeforeValidator(_date_time_text),
    WrapValidator(_rfc3339_as_given),
    PlainSerializer(lambda v: v, when_used="unless-none"),
    Field(
        description=(
            "RFC 3339. An event outside 1970 to 2099 is rejected (listed by its index"
            " in `rejections`); the rest of the batch is stored."
        )
    ),
]
#: A finite JSON number; a numeric string (``"1.5"``) is refused, as the spec's ``number`` says.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


# ----- errors -------------------------------------------------------------------------
class ErrorDetail(Strict):
    """What went wrong: a stable ``code``, a readable ``message``, the ``field`` at fault if any."""

    code: str
    message: str
    field: str | None = None


class ErrorBody(Strict):
    """The one shape of every 4xx answer."""

    error: ErrorDetail


# ----- events -------------------------------------------------------------------------
class EventIn(Strict):
    """One thing a user did (see :class:`interestlens.data.Event`).

    ``type`` and the rules between fields (an item for every type but search, a text
    for search, tag and review) are checked row by row by the engine, so one bad event
    of a batch is rejected and the rest stored.
    """

    user_id: str
    item_id: str | None = None
    type: str = "view"
    value: Number = 1.0
    timestamp: EventTime | None = None
    event_id: str | None = Field(None, description="Makes a retry idempotent.")
    text: str | None = None
    context: dict[str, Any] | None = None


class EventBatch(Strict):
    """Several events in one request."""

    events: list[EventIn]


def _body_kind(body: Any) -> str:
    if isinstance(body, dict) and "events" in body:
        return "batch"
    if isinstance(body, EventBatch):
        return "batch"
    return "event"


#: The body of ``POST /v1/events``: one event, or ``{"events": [...]}``.
EventsBody = Annotated[
    Annotated[EventBatch, Tag("batch")] | Annotated[EventIn, Tag("event")],
    Discriminator(_body_kind),
]


class RejectionOut(Strict):
    """A refused event: its 0-based index in the request and why."""

    index: int
    reason: str


class EventsOut(Strict):
    """What ``POST /v1/events`` did: events newly stored, re-sent duplicates, rejections."""

    stored: int
    duplicates: int
    rejected: int
    rejections: list[RejectionOut]


# ----- items --------------------------------------------------------------------------
class ItemIn(Strict):
    """An item's content; its id is in the path.

    At least one of ``title``, ``text``, ``categories`` and ``tags`` must say something
    (:meth:`Engine.add_item` refuses an item without words: it would match nothing).
    """

    title: str = ""
    text: str = ""
    categories: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)
    created_at: DateTime | None = None


class InterestScore(Strict):
    """An interest a text speaks to, with the score of the match."""

    interest_id: int
    label: str
    score: float


class ItemPutOut(Strict):
    """The stored item and the interests its text was tagged with."""

    item_id: str
    interests: list[InterestScore]


class ItemRemovedOut(Strict):
    """An item taken out of the catalogue."""

    item_id: str
    removed: bool = Field(description="Always true: an unknown item is a 404.")


class ItemOut(Strict):
    """An item as the engine holds it."""

    item_id: str
    title: str
    text: str
    categories: list[str]
    tags: list[str]
    attributes: dict[str, Any]
    created_at: datetime | None


# ----- recommendations, feedback ------------------------------------------------------
class RecommendationOut(Strict):
    """One recommended item (see :class:`interestlens.engine.Recommendation`)."""

    item_id: str
    score: float | None
    rank: int
    reason: str
    explored: bool
    propensity: float


class RecommendationsOut(Strict):
    """A slate: its ``request_id`` (for feedback) and its items, best first."""

    user_id: str
    request_id: str
    items: list[RecommendationOut]


class FeedbackIn(Strict):
    """A reward for an item of a served slate (a click is 1)."""

    request_id: str
    item_id: str
    reward: Number


class FeedbackOut(Strict):
    """Whether a live policy learned from the reward (it is logged either way)."""

    learned: bool


# ----- profiles, similar items, erasure -----------------------------------------------
class InterestWeightOut(Strict):
    """One interest of a profile."""

    interest_id: int
    label: str
    weight: float
    trend: str
    short_weight: float
    long_weight: float
    level: int
    parent: int | None


class UserTextOut(Strict):
    """Something the user wrote, with its sentiment."""

    text: str
    type: str
    item_id: str | None
    sentiment: float
    timestamp: str | None


class ProfileOut(Strict):
    """A user's interest profile (empty for an unknown user)."""

    user_id: str
    interests: list[InterestWeightOut]
    broad: list[InterestWeightOut]
    dislikes: list[InterestWeightOut]
    texts: list[UserTextOut]
    sentiment: float | None
    n_events: int
    as_of: str | None


class SimilarItem(Strict):
    """A neighbour with its cosine similarity."""

    item_id: str
    similarity: float


class SimilarOut(Strict):
    """The items closest to ``item_id``."""

    item_id: str
    items: list[SimilarItem]


class ForgetOut(Strict):
    """What erasing a user removed (see :class:`interestlens.engine.ForgetReport`)."""

    user_id: str
    events_deleted: int
    components: dict[str, bool]
    note: str


# ----- operations ---------------------------------------------------------------------
class HealthOut(Strict):
    """Liveness: the model answering (its snapshot generation and age) and the store."""

    status: Literal["ok", "degraded"]
    fitted: bool
    model_version: int | None
    model_age_seconds: float | None
    store_reachable: bool
    worker: int = Field(
        description="The answering worker's process id (workers share one address)."
    )


class RefitOut(Strict):
    """The model version a refit produced."""

    model_version: int
    seconds: float
