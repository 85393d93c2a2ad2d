"""Row-by-row validation of incoming events with a rejection report.

Every row either becomes an event or is listed in the :class:`LoadReport` with
its row number and the reasons it was refused: nothing is dropped silently.
Validation is vectorised with pandas, so it keeps up with the store's append rate.

Values are never coerced across types (typed sources such as Parquet and JSON Lines
would otherwise turn ``1.5`` into the user ``"1.5"``, a list into the item ``"[1]"``
and ``True`` into a 1970 timestamp): ids are strings or integers, values numbers (or
strings that parse as numbers, as CSV gives them), timestamps strings, numbers or
datetimes, text strings or numbers; booleans, lists and objects are refused, naming the
field and the type found. An integral float id (``7.0``) is accepted as ``"7"``, because
pandas stores an integer column with blanks as floats. Ids holding a control character
(NUL, escape, ...) are refused.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from interestlens.data.schema import (
    EVENT_COLUMNS,
    EVENT_TYPES,
    ITEMLESS_TYPES,
    TEXT_TYPES,
    EventType,
)

UnknownItems = Literal["reject", "create"]
#: What a field may hold: ``id`` a string or an integer (an integral float such as ``7.0``,
#: which pandas makes of an integer column with blanks, is read as ``"7"``); ``number`` a
#: number or a string that parses as one; ``timestamp`` a string, a number or a datetime;
#: ``text`` a string or a number. Booleans, lists and objects fit none of them.
FieldKind = Literal["id", "number", "timestamp", "text"]

_TS_MIN = pd.Timestamp("1970-01-01", tz="UTC")
_TS_MAX = pd.Timestamp("2100-01-01", tz="UTC")
TIMESTAMP_DTYPE = "datetime64[ns, UTC]"
# What a nanosecond timestamp can hold (1677-09-21 00:12:43 to 2262-04-11 23:47:16), on whole days.
_NS_MIN = pd.Timestamp("1677-09-22", tz="UTC")
_NS_MAX = pd.Timestamp("2262-04-11", tz="UTC")


@dataclass(frozen=True)
class Rejection:
    """A refused row: ``row`` is its 1-based record number in the source (header excluded)."""

    row: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, ``{"row": ..., "reason": ...}``."""
        return {"row": self.row, "reason": self.reason}


@dataclass
class LoadReport:
    """What a load or an append did with each row.

    Attributes
    ----------
    source
        Where the rows came from (a path or a dataset name).
    loaded
        Rows accepted as events.
    rejections
        One :class:`Rejection` per refused row.
    duplicates
        Accepted rows whose ``event_id`` the store already held (idempotent re-sends).
    created_items
        Items auto-created for events that named an unknown item (``unknown_items="create"``).
    items
        The report of the item file read with the events (``datasets.load(events,
        items=PATH)``): its rows are numbered in that file, so it is kept apart.
    """

    source: str = ""
    loaded: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    duplicates: int = 0
    created_items: int = 0
    items: LoadReport | None = None

    @property
    def rejected(self) -> int:
        """Number of refused rows."""
        return len(self.rejections)

    def merge(self, other: LoadReport) -> None:
        """Add another report's counts and rejections to this one."""
        self.loaded += other.loaded
        self.rejections.extend(other.rejections)
        self.duplicates += other.duplicates
        self.created_items += other.created_items
        if other.items is not None:
            if self.items is None:
                self.items = LoadReport(source=other.items.source)
            self.items.merge(other.items)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary including every rejection (and the item file's, as ``items``)."""
        out = {
            "source": self.source,
            "loaded": self.loaded,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "created_items": self.created_items,
            "rejections": [r.to_dict() for r in self.rejections],
        }
        if self.items is not None:
            out["items"] = self.items.to_dict()
        return out

    def write_csv(self, path: str | Path) -> None:
        """Write the rejections as CSV with columns ``source,row,reason`` (item file's first)."""
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["source", "row", "reason"])
            for report in (self.items, self):
                for r in report.rejections if report is not None else ():
                    w.writerow([report.source, r.row, r.reason])


@dataclass(frozen=True)
class ValidationOptions:
    """How strictly rows are checked.

    Parameters
    ----------
    default_type
        Event type for rows whose source has no ``type`` column.
    rating_range
        Inclusive ``(low, high)`` bounds for rating values; ``None`` accepts any finite rating.
    timestamp_unit
        Unit of numeric timestamps (``"s"``, ``"ms"``, ``"us"``, ``"ns"``). Strings are parsed as ISO 8601.
    unknown_items
        What to do with an event naming an item the item table lacks, when one is given:
        ``"reject"`` the row, or ``"create"`` a bare item for it.
    allow_missing_timestamp
        Accept rows whose timestamp is empty although the source has a timestamp column
        (their time is then unknown, and arrival order stands for it).
    """

    default_type: str | None = None
    rating_range: tuple[float, float] | None = None
    timestamp_unit: str = "s"
    unknown_items: UnknownItems = "reject"
    allow_missing_timestamp: bool = False

    def __post_init__(self) -> None:
        if self.default_type is not None and self.default_type not in EVENT_TYPES:
            raise ValueError(
                f"default_type {self.default_type!r} is not an event type; "
                f"use one of {sorted(EVENT_TYPES)}"
            )
        if self.unknown_items not in ("reject", "create"):
            raise ValueError("unknown_items must be 'reject' or 'create'")
        if self.timestamp_unit not in ("s", "ms", "us", "ns"):
            raise ValueError("timestamp_unit must be one of s, ms, us, ns")


def _blank(s: pd.Series) -> np.ndarray:
    """True where a value is missing or only whitespace."""
    na = s.isna().to_numpy().copy()
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        stripped = s.astype("string").str.strip()
        na |= (stripped == "").fillna(True).to_numpy(dtype=bool)
    return na


def _as_str(s: pd.Series) -> pd.Series:
    """Strings with whitespace trimmed and missing kept as ``None``.

    Integral floats (from typed sources) render without a trailing ``.0``.
    """
    if pd.api.types.is_float_dtype(s.dtype):
        vals = s.to_numpy()
        integral = np.isfinite(vals) & (vals == np.round(vals))
        out = s.astype(object)
        out[integral] = vals[integral].astype(np.int64).astype(str)
        s = out
    elif s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) not in ("string", "empty"):
        s = pd.Series(
            [
                str(int(v))
                if isinstance(v, float | np.floating) and math.isfinite(v) and v == round(v)
                else v
                for v in s.tolist()
            ],
            index=s.index,
            dtype=object,
        )
    if len(s) <= _SMALL:  # what the vectorised path does, without its fixed cost
        trimmed = [None if _missing(v) else str(v).strip() for v in s.tolist()]
        return pd.Series([v or None for v in trimmed], index=s.index, dtype=object)
    out = s.astype("string").str.strip()
    return out.astype(object).where(
        out.notna().to_numpy() & (out != "").fillna(False).to_numpy(), None
    )


#: Up to this many values, :func:`_as_str` works value by value: a few microseconds each,
#: where pandas' string methods cost about a millisecond whatever the length.
_SMALL = 64


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


_EVENT_KINDS: dict[str, FieldKind] = {
    "event_id": "id",
    "user_id": "id",
    "item_id": "id",
    "type": "text",
    "value": "number",
    "timestamp": "timestamp",
    "text": "text",
}
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_INFERRED_OK: dict[str, frozenset[str]] = {
    "id": frozenset({"string", "empty", "integer"}),
    "number": frozenset({"string", "empty", "integer", "floating", "mixed-integer-float"}),
    "timestamp": frozenset(
        {"string", "empty", "integer", "floating", "mixed-integer-float", "datetime64", "datetime"}
    ),
    "text": frozenset({"string", "empty", "integer", "floating", "mixed-integer-float"}),
}
_EXPECTED: dict[str, str] = {
    "id": "ids must be strings or integers",
    "number": "expected a number",
    "timestamp": "expected a string, a number or a datetime",
    "text": "expected a string",
}


def _type_name(v: Any) -> str:
    if isinstance(v, bool | np.bool_):
        return "bool"
    if isinstance(v, Mapping):
        return "object"
    if isinstance(v, list | tuple | np.ndarray | set):
        return "list"
    if isinstance(v, float | np.floating):
        return "float"
    if isinstance(v, dt.datetime | dt.date | np.datetime64):
        return "datetime"
    return type(v).__name__


def _short(v: Any) -> str:
    text = repr(v.tolist() if isinstance(v, np.ndarray) else v)
    return text if len(text) <= 40 else text[:37] + "..."


def _timestamp_text(v: Any) -> str:
    """A timestamp as given, for a reason: a date-time in ISO 8601, else its repr."""
    if isinstance(v, dt.date):  # datetime and pandas.Timestamp too
        return v.isoformat()
    if isinstance(v, np.datetime64):
        return str(v)
    return _short(v)


def _fits(v: Any, kind: str) -> bool:
    if isinstance(v, bool | np.bool_):
        return False
    if isinstance(v, str):
        return True
    if isinstance(v, int | np.integer):
        return True
    if isinstance(v, float | np.floating):
        return kind != "id" or (math.isfinite(v) and v == round(v))
    if isinstance(v, dt.datetime | dt.date | np.datetime64):
        return kind == "timestamp"
    return False


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def type_errors(raw: pd.Series, field_name: str, kind: FieldKind) -> dict[int, str]:
    r"""Positions of values whose type the field does not take, with a reason for each.

    Text sources (CSV) hold only strings and pass at the cost of one type inference;
    typed sources (Parquet, JSON Lines) are checked value by value only where their
    column mixes types.

    Examples
    --------
    >>> raw = pd.Series(["7", 8, 9.0, 1.5, True, [1]], dtype=object)
    >>> for row, reason in type_errors(raw, "user_id", "id").items():
    ...     print(row, reason)
    3 user_id has type float (1.5); ids must be strings or integers
    4 user_id has type bool (True); ids must be strings or integers
    5 user_id has type list ([1]); ids must be strings or integers
    """
    if isinstance(raw.dtype, pd.CategoricalDtype):
        raw = raw.astype(object)
    inferred = pd.api.types.infer_dtype(raw, skipna=True)
    if inferred in _INFERRED_OK[kind]:
        return {}
    if pd.api.types.is_float_dtype(raw.dtype):
        vals = raw.to_numpy(dtype="float64")
        bad = np.flatnonzero(~np.isnan(vals) & ~(np.isfinite(vals) & (vals == np.round(vals))))
        pairs = [(int(i), float(vals[i])) for i in bad]
    else:
        pairs = [
            (i, v) for i, v in enumerate(raw.tolist()) if not _missing(v) and not _fits(v, kind)
        ]
    return {
        i: f"{field_name} has type {_type_name(v)} ({_short(v)}); {_EXPECTED[kind]}"
        for i, v in pairs
    }


def control_char_errors(ids: pd.Series, field_name: str) -> dict[int, str]:
    r"""Positions of ids holding a control character (NUL, escape, ...), with a reason each.

    Examples
    --------
    >>> control_char_errors(pd.Series(["u1", "u\x002", None]), "user_id")
    {1: "user_id 'u\\x002' contains a control character ('\\x00')"}
    """
    vals = ids.tolist()
    try:
        joined = "".join(filter(None, vals))
    except TypeError:  # NaN for missing
        joined = "".join(v for v in vals if isinstance(v, str))
    if not _CONTROL.search(joined):
        return {}
    out = {}
    for i, v in enumerate(vals):
        m = _CONTROL.search(v) if isinstance(v, str) else None
        if m:
            out[i] = f"{field_name} {_short(v)} contains a control character ({m.group()!r})"
    return out


def _nones(index: pd.Index) -> pd.Series:
    return pd.Series([None] * len(index), index=index, dtype=object)


def _ns(ts: pd.Series) -> pd.Series:
    """UTC timestamps of any resolution as nanoseconds, never failing on the range.

    Pandas parses a date-time (``datetime(74, 1, 1)``, ``"9999-12-31"``) at micro- or
    second resolution, whose range is far wider; one outside what nanoseconds hold
    becomes :data:`_NS_MIN` (or :data:`_NS_MAX`), which the 1970–2099 check then reports
    with the value given, instead of the conversion raising for the whole chunk.
    """
    if ts.dtype == TIMESTAMP_DTYPE:
        return ts
    ts = ts.mask(ts < _NS_MIN, _NS_MIN).mask(ts > _NS_MAX, _NS_MAX)
    return ts.astype(TIMESTAMP_DTYPE)


def _parse_timestamps(raw: pd.Series, unit: str) -> tuple[pd.Series, np.ndarray]:
    """Parse a column to UTC timestamps; returns the parsed series and a bad-value mask.

    A value beyond what nanoseconds hold (year 74, year 9999, 10**30 seconds) is
    pinned to the nearest end of that range rather than called unparsable, so that the
    range check rejects its row by name.
    """
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        ts = raw.dt.tz_localize("UTC") if raw.dt.tz is None else raw.dt.tz_convert("UTC")
        return _ns(ts), np.zeros(len(raw), dtype=bool)
    num = pd.to_numeric(raw, errors="coerce")
    ts = pd.Series(pd.NaT, index=raw.index, dtype=TIMESTAMP_DTYPE)
    is_num = num.notna().to_numpy()
    if is_num.any():
        vals = num.to_numpy(dtype="float64")[is_num]
        scale = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit]
        with np.errstate(over="ignore"):  # 1e300 s overflows to inf: pinned below
            ns = vals * scale
        ok = np.isfinite(ns) & (np.abs(ns) < 9.2e18)
        conv = np.full(len(vals), np.datetime64("NaT"), dtype="datetime64[ns]")
        conv[ok] = np.round(ns[ok]).astype(np.int64).astype("datetime64[ns]")
        # Whole numbers scale exactly in integers; the float product loses sub-microsecond digits.
        exact = ok & (vals == np.round(vals)) & (np.abs(vals) < 2**53)
        conv[exact] = (vals[exact].astype(np.int64) * scale).astype("datetime64[ns]")
        # Too large for nanoseconds (milliseconds read as seconds, say): saturate, so that the
        # range check reports it instead of calling it unparsable.
        far = np.isfinite(vals) & ~ok
        conv[far] = np.where(vals[far] > 0, np.iinfo(np.int64).max, np.iinfo(np.int64).min + 1)
        ts.iloc[np.flatnonzero(is_num)] = pd.to_datetime(conv, utc=True)
    is_text = ~is_num & ~_blank(raw)
    if is_text.any():
        parsed = pd.to_datetime(
            raw[is_text].astype(str), errors="coerce", utc=True, format="ISO8601"
        )
        ts.iloc[np.flatnonzero(is_text)] = _ns(parsed)
    bad = ts.isna().to_numpy() & ~_blank(raw)
    return ts, bad


def _parse_context(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    out: list[Any] = []
    bad = np.zeros(len(raw), dtype=bool)
    for i, v in enumerate(raw.tolist()):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v == "":
            out.append(None)
        elif isinstance(v, Mapping):
            out.append(dict(v))
        elif isinstance(v, str):
            try:
                parsed = json.loads(v)
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, dict):
                out.append(parsed)
            else:
                out.append(None)
                bad[i] = True
        else:
            out.append(None)
            bad[i] = True
    return pd.Series(out, index=raw.index, dtype=object), bad


def derive_event_ids(frame: pd.DataFrame) -> list[str]:
    """Content-derived ids for a validated events frame (see :func:`~interestlens.data.schema.derive_event_id`)."""
    ts_us = frame["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64) // 1000
    nat = frame["timestamp"].isna().to_numpy()
    out = []
    for u, it, t, v, tsu, isnat, tx in zip(
        frame["user_id"].tolist(),
        frame["item_id"].tolist(),
        frame["type"].tolist(),
        frame["value"].tolist(),
        ts_us.tolist(),
        nat.tolist(),
        frame["text"].tolist(),
        strict=True,
    ):
        key = "\x1f".join(
            (
                u,
                it if isinstance(it, str) else "",
                t,
                repr(float(v)),
                "" if isnat else str(tsu),
                tx if isinstance(tx, str) else "",
            )
        )
        out.append(hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest())
    return out


def empty_events() -> pd.DataFrame:
    """An events frame with no rows and the canonical dtypes (a new frame each call)."""
    return _EMPTY_EVENTS.copy()


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": pd.Series([], dtype=object),
            "user_id": pd.Series([], dtype=object),
            "item_id": pd.Series([], dtype=object),
            "type": pd.Series([], dtype=object),
            "value": pd.Series([], dtype="float64"),
            "timestamp": pd.Series([], dtype=TIMESTAMP_DTYPE),
            "text": pd.Series([], dtype=object),
            "context": pd.Series([], dtype=object),
        }
    )


#: Built once: building an empty frame costs a millisecond, copying it a few microseconds,
#: and every small batch of events (one event posted over HTTP) builds several.
_EMPTY_EVENTS = _empty_events()


class EventValidator:
    """Validates event rows chunk by chunk, remembering event ids across chunks.

    Parameters
    ----------
    options
        :class:`ValidationOptions`.
    known_items
        Item ids of the item table, when one is given; events naming other items are
        rejected or create items, by ``options.unknown_items``.
    source
        Name used in the report.

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.DataFrame({"user_id": ["1", "", "2"], "item_id": ["a", "b", "c"],
    ...                     "value": ["4", "3", "9"]})
    >>> v = EventValidator(ValidationOptions(default_type="rating", rating_range=(1, 5)))
    >>> events = v.validate(raw)
    >>> len(events), [(r.row, r.reason) for r in v.report.rejections]
    (1, [(2, 'missing user_id'), (3, 'rating 9 out of range [1, 5]')])
    """

    def __init__(
        self,
        options: ValidationOptions | None = None,
        known_items: Iterable[str] | None = None,
        source: str = "",
    ) -> None:
        self.options = options or ValidationOptions()
        self.known_items = None if known_items is None else set(known_items)
        self.report = LoadReport(source=source)
        self.created_items: list[str] = []
        self._seen: dict[str, int] = {}
        self._next_row = 1

    def validate(self, raw: pd.DataFrame, rows: np.ndarray | None = None) -> pd.DataFrame:
        """Validate one chunk of rows whose columns carry the schema's names.

        Parameters
        ----------
        raw
            Rows with (some of) the columns ``event_id, user_id, item_id, type, value,
            timestamp, text, context``; ``user_id`` and, unless every row is a search,
            ``item_id`` are required.
        rows
            Record number of each row in its source; by default rows are numbered on
            from the previous chunk.

        Returns
        -------
        pandas.DataFrame
            The accepted rows as a canonical events frame; rejections go to :attr:`report`.
        """
        opts = self.options
        n = len(raw)
        rows = np.arange(self._next_row, self._next_row + n) if rows is None else np.asarray(rows)
        if n:
            self._next_row = int(rows[-1]) + 1
        unknown_cols = set(raw.columns) - set(EVENT_COLUMNS)
        if unknown_cols:
            raise ValueError(
                f"unknown event columns {sorted(unknown_cols)}; expected some of {list(EVENT_COLUMNS)}"
            )
        if "user_id" not in raw.columns:
            raise ValueError("events need a user_id column")
        if "type" not in raw.columns and opts.default_type is None:
            raise ValueError("events have no type column: give a default event type")
        raw = raw.reset_index(drop=True)
        reasons: list[list[str]] = [[] for _ in range(n)]

        def flag(mask: np.ndarray, message: str | list[str]) -> None:
            for i in np.flatnonzero(mask):
                reasons[i].append(message if isinstance(message, str) else message[i])

        def flag_at(errors: dict[int, str]) -> None:
            for i, message in errors.items():
                reasons[i].append(message)

        # A value of the wrong type is refused for that reason alone, and then read as missing
        # by the checks below, which skip it (``wrong[col]``) instead of reporting it twice.
        wrong = {col: np.zeros(n, dtype=bool) for col in _EVENT_KINDS}
        for col, kind in _EVENT_KINDS.items():
            if col in raw.columns:
                errors = type_errors(raw[col], col, kind)
                if errors:
                    flag_at(errors)
                    at = list(errors)
                    wrong[col][at] = True
                    raw[col] = raw[col].astype(object)
                    raw.iloc[at, raw.columns.get_loc(col)] = None

        user = _as_str(raw["user_id"])
        flag(user.isna().to_numpy() & ~wrong["user_id"], "missing user_id")
        flag_at(control_char_errors(user, "user_id"))

        if "type" in raw.columns:
            typ = _as_str(raw["type"]).str.lower()
            missing_type = typ.isna().to_numpy() & ~wrong["type"]
            if opts.default_type is not None:
                typ = typ.fillna(opts.default_type)
                missing_type[:] = False
            flag(missing_type, "missing type")
            bad_type = ~typ.isin(EVENT_TYPES).to_numpy() & ~missing_type & ~wrong["type"]
            flag(bad_type, [f"unknown event type {t!r}" for t in typ.tolist()])
        else:
            typ = pd.Series(opts.default_type, index=raw.index, dtype=object)
        typ_arr = typ.to_numpy(dtype=object)

        if "item_id" in raw.columns:
            item = _as_str(raw["item_id"])
        else:
            item = _nones(raw.index)
        needs_item = ~pd.Series(typ_arr).isin(ITEMLESS_TYPES).to_numpy()
        flag(item.isna().to_numpy() & needs_item & ~wrong["item_id"], "missing item_id")
        flag_at(control_char_errors(item, "item_id"))

        is_rating = typ_arr == EventType.RATING.value
        if "value" in raw.columns:
            vraw = raw["value"]
            value = pd.to_numeric(vraw, errors="coerce").astype("float64")
            blank_v = _blank(vraw)
            flag(blank_v & is_rating & ~wrong["value"], "missing value for a rating")
            value = value.where(~(blank_v & ~is_rating), 1.0)
            not_num = value.isna().to_numpy() & ~blank_v
            flag(not_num, [f"value {v!r} is not a number" for v in vraw.tolist()])
            vals = value.to_numpy()
            inf = np.isinf(vals)
            flag(inf, "value is not finite")
            ok = np.isfinite(vals)
            neg = ok & ~is_rating & (vals < 0)
            flag(
                neg,
                [
                    f"value {v:g} out of range (must be >= 0 for {t})"
                    for v, t in zip(vals, typ_arr, strict=True)
                ],
            )
            if opts.rating_range is not None:
                lo, hi = opts.rating_range
                out = ok & is_rating & ((vals < lo) | (vals > hi))
                flag(out, [f"rating {v:g} out of range [{lo:g}, {hi:g}]" for v in vals])
        else:
            value = pd.Series(1.0, index=raw.index, dtype="float64")
            flag(is_rating, "missing value for a rating")

        if "timestamp" in raw.columns:
            ts, bad_ts = _parse_timestamps(raw["timestamp"], opts.timestamp_unit)
            traw = raw["timestamp"].tolist()
            if not opts.allow_missing_timestamp:
                flag(_blank(raw["timestamp"]) & ~wrong["timestamp"], "missing timestamp")
            flag_at({i: f"unparsable timestamp {_short(traw[i])}" for i in np.flatnonzero(bad_ts)})
            oor = np.flatnonzero(((ts < _TS_MIN) | (ts >= _TS_MAX)).to_numpy(dtype=bool))
            if len(oor):
                given = raw["timestamp"].iloc[oor]
                numeric = (  # a number in the wrong unit is the likely mistake
                    pd.Series(False, index=given.index)
                    if pd.api.types.is_datetime64_any_dtype(given.dtype)
                    else pd.to_numeric(given, errors="coerce").notna()
                )
                flag_at(
                    {
                        i: f"timestamp {_timestamp_text(traw[i])} outside 1970–2099"
                        + (" (wrong unit?)" if is_num else "")
                        for i, is_num in zip(oor.tolist(), numeric.tolist(), strict=True)
                    }
                )
        else:
            ts = pd.Series(pd.NaT, index=raw.index, dtype=TIMESTAMP_DTYPE)

        if "text" in raw.columns:
            text = _as_str(raw["text"])
        else:
            text = _nones(raw.index)
        needs_text = pd.Series(typ_arr).isin(TEXT_TYPES).to_numpy() & ~wrong["text"]
        flag(needs_text & text.isna().to_numpy(), [f"empty text for a {t} event" for t in typ_arr])

        if "context" in raw.columns:
            context, bad_ctx = _parse_context(raw["context"])
            flag(bad_ctx, "context is not a JSON object")
        else:
            context = _nones(raw.index)

        if self.known_items is not None:
            has_item = item.notna().to_numpy()
            unknown = has_item & ~item.isin(self.known_items).to_numpy()
            if opts.unknown_items == "reject":
                flag(unknown, [f"unknown item_id {i!r}" for i in item.tolist()])

        event_id = _as_str(raw["event_id"]) if "event_id" in raw.columns else None
        if event_id is not None:
            flag_at(control_char_errors(event_id, "event_id"))
        frame = pd.DataFrame(
            {
                "event_id": event_id,
                "user_id": user,
                "item_id": item,
                "type": typ_arr,
                "value": value,
                "timestamp": ts,
                "text": text,
                "context": context,
            }
        )
        ok = np.array([not r for r in reasons], dtype=bool)
        good = frame[ok].reset_index(drop=True)
        good_pos = np.flatnonzero(ok)
        if "event_id" not in raw.columns:
            good["event_id"] = derive_event_ids(good)
        else:
            missing_id = good["event_id"].isna().to_numpy()
            if missing_id.any():
                good.loc[missing_id, "event_id"] = derive_event_ids(good[missing_id])
        keep = np.ones(len(good), dtype=bool)
        for i, eid in enumerate(good["event_id"].tolist()):
            first = self._seen.get(eid)
            if first is not None:
                keep[i] = False
                reasons[good_pos[i]].append(f"duplicate event_id {eid!r} (first at row {first})")
            else:
                self._seen[eid] = int(rows[good_pos[i]])
        # Same dtypes whatever the chunk held (pandas would infer "str" for some columns, and
        # float for an empty event_id), so that chunks concatenate to the canonical frame.
        good = good[keep].reset_index(drop=True).astype(empty_events().dtypes.to_dict())

        if self.known_items is not None and opts.unknown_items == "create":
            new = sorted(set(good["item_id"].dropna()) - self.known_items)
            self.known_items.update(new)
            self.created_items.extend(new)
            self.report.created_items += len(new)

        for i, r in enumerate(reasons):
            if r:
                self.report.rejections.append(Rejection(int(rows[i]), "; ".join(r)))
        self.report.loaded += len(good)
        return good
