"""Item and user files: a catalogue from CSV/TSV, Parquet or JSON Lines, with a column mapping.

The same reader as for events (format detection, chunked streaming, one rejection per
unreadable row), with the fields of an item or a user instead of an event. Every row
becomes an item (user) or a rejection with its row number and reason.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from interestlens.data.dataset import items_frame, users_frame
from interestlens.data.readers import iter_mapped_chunks
from interestlens.data.validation import (
    _NS_MAX,
    _NS_MIN,
    LoadReport,
    Rejection,
    _as_str,
    _parse_timestamps,
    control_char_errors,
    type_errors,
)

#: Source column names recognised without a mapping, per item field (case-insensitive).
ITEM_ALIASES: dict[str, tuple[str, ...]] = {
    "item_id": (
        "item_id",
        "itemid",
        "id",
        "sku",
        "product_id",
        "productid",
        "movieid",
        "movie_id",
    ),
    "title": ("title", "name"),
    "text": ("text", "description", "body"),
    "categories": ("categories", "category", "genres", "genre"),
    "tags": ("tags",),
    "attributes": ("attributes",),
    "created_at": ("created_at", "created"),
}
#: Source column names recognised without a mapping, per user field (case-insensitive).
USER_ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": (
        "user_id",
        "userid",
        "id",
        "user",
        "uid",
        "customer_id",
        "visitor_id",
        "visitorid",
    ),
    "attributes": ("attributes",),
}


def _plain(v: Any) -> Any:
    """A JSON-ready copy of a value from any reader (numpy scalars and arrays, timestamps)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, dt.datetime | dt.date | pd.Timestamp):
        return v.isoformat()
    return v


def _absent(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and not v.strip()


def _split_list(v: Any, field: str, sep: str) -> tuple[list[str], str | None]:
    """A list field from a separated string or a list of strings/numbers."""
    if _absent(v):
        return [], None
    if isinstance(v, str):
        return [p.strip() for p in v.split(sep) if p.strip()], None
    if isinstance(v, list | tuple | np.ndarray):
        out = []
        for x in v:
            if isinstance(x, bool | np.bool_) or not isinstance(x, str | int | float | np.number):
                return [], (
                    f"{field} holds a {type(x).__name__} ({x!r:.40}); expected strings or numbers"
                )
            out.append(str(x).strip())
        return [x for x in out if x], None
    return [], (
        f"{field} has type {type(v).__name__} ({v!r:.40}); "
        f"expected a list or a string separated by {sep!r}"
    )


def _attributes(v: Any) -> tuple[dict[str, Any], str | None]:
    """An ``attributes`` column: an object, or a JSON object as a string."""
    if _absent(v):
        return {}, None
    if isinstance(v, Mapping):
        return _plain(v), None
    if isinstance(v, str):
        try:
            parsed = json.loads(v)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed, None
    return {}, "attributes is not a JSON object"


class _Catalogue:
    """Validates the rows of an item or user file chunk by chunk."""

    def __init__(self, id_field: str, report: LoadReport, list_separator: str) -> None:
        self.id_field = id_field
        self.report = report
        self.sep = list_separator
        self.seen: dict[str, int] = {}

    def validate(
        self, raw: pd.DataFrame, rows: np.ndarray, columns: dict[str, str]
    ) -> pd.DataFrame:
        """Rows of one chunk (source column names) to canonical fields; rejections to the report."""
        n = len(raw)
        raw = raw.reset_index(drop=True)
        reasons: list[list[str]] = [[] for _ in range(n)]
        by_field = {fld: src for src, fld in columns.items()}
        if self.id_field not in by_field:
            raise ValueError(
                f"{self.report.source}: no {self.id_field} column; name it with "
                f"mapping={{'{self.id_field}': COLUMN}} (columns: {list(raw.columns)})"
            )

        def add(errors: dict[int, str]) -> None:
            for i, message in errors.items():
                reasons[i].append(message)

        def column(fld: str, kind: str) -> pd.Series | None:
            src = by_field.get(fld)
            if src is None:
                return None
            s = raw[src]
            errors = type_errors(s, fld, kind)  # type: ignore[arg-type]
            add(errors)
            if errors:
                s = s.astype(object)
                s.iloc[list(errors)] = None
            return s

        id_raw = column(self.id_field, "id")
        assert id_raw is not None
        ids = _as_str(id_raw)
        wrong_id = {i for i, r in enumerate(reasons) if r}
        for i in np.flatnonzero(ids.isna().to_numpy()):
            if i not in wrong_id:
                reasons[i].append(f"missing {self.id_field}")
        add(control_char_errors(ids, self.id_field))

        out = pd.DataFrame({self.id_field: ids})
        if self.id_field == "item_id":
            for fld in ("title", "text"):
                s = column(fld, "text")
                out[fld] = [""] * n if s is None else _as_str(s).fillna("")
            for fld in ("categories", "tags"):
                src = by_field.get(fld)
                values: list[list[str]] = []
                for i, v in enumerate(raw[src].tolist() if src else [None] * n):
                    parts, problem = _split_list(v, fld, self.sep)
                    if problem:
                        reasons[i].append(problem)
                    values.append(parts)
                out[fld] = values
            s = column("created_at", "timestamp")
            if s is None:
                out["created_at"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
            else:
                ts, bad = _parse_timestamps(s, "s")
                for i in np.flatnonzero(bad):
                    reasons[i].append(f"unparsable created_at {s.iloc[i]!r}")
                # out of what a timestamp holds: pinned to an end by the parser, refused here
                far = ((ts <= _NS_MIN) | (ts >= _NS_MAX)).to_numpy(dtype=bool) & ~bad
                for i in np.flatnonzero(far):
                    reasons[i].append(f"created_at {s.iloc[i]!r} outside 1677-09-22 to 2262-04-11")
                out["created_at"] = ts
        attrs: list[dict[str, Any]] = [{} for _ in range(n)]
        src = by_field.get("attributes")
        if src is not None:
            for i, v in enumerate(raw[src].tolist()):
                parsed, problem = _attributes(v)
                if problem:
                    reasons[i].append(problem)
                attrs[i].update(parsed)
        for extra in [c for c in raw.columns if c not in columns]:
            for i, v in enumerate(raw[extra].tolist()):
                if not _absent(v):
                    attrs[i][str(extra)] = _plain(v.strip() if isinstance(v, str) else v)
        out["attributes"] = attrs

        keep = np.zeros(n, dtype=bool)
        for i, ident in enumerate(ids.tolist()):
            if reasons[i]:
                continue
            first = self.seen.get(ident)
            if first is not None:
                reasons[i].append(f"duplicate {self.id_field} {ident!r} (first at row {first})")
                continue
            self.seen[ident] = int(rows[i])
            keep[i] = True
        for i, r in enumerate(reasons):
            if r:
                self.report.rejections.append(Rejection(int(rows[i]), "; ".join(r)))
        self.report.loaded += int(keep.sum())
        return out[keep]


def _read(
    path: str | Path,
    id_field: str,
    aliases: Mapping[str, tuple[str, ...]],
    mapping: Mapping[str, str] | None,
    fmt: str | None,
    delimiter: str | None,
    list_separator: str,
    chunk_size: int,
    progress: bool | None,
) -> tuple[list[pd.DataFrame], LoadReport]:
    report = LoadReport(source=str(path))
    checker = _Catalogue(id_field, report, list_separator)
    frames = []
    for frame, rows, unparsable, columns, _ in iter_mapped_chunks(
        path,
        mapping=mapping,
        aliases=aliases,
        hints={},
        fmt=fmt,
        chunk_size=chunk_size,
        progress=progress,
        delimiter=delimiter,
    ):
        report.rejections.extend(unparsable)
        if len(frame):
            frames.append(checker.validate(frame, rows, columns))
    report.rejections.sort(key=lambda r: r.row)
    return frames, report


def read_items(
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    fmt: str | None = None,
    delimiter: str | None = None,
    list_separator: str = "|",
    chunk_size: int = 200_000,
    progress: bool | None = None,
) -> tuple[pd.DataFrame, LoadReport]:
    r"""Read a catalogue of items from a CSV/TSV, Parquet or JSON Lines file.

    Parameters
    ----------
    path
        The file (``.csv``, ``.tsv``, ``.parquet``, ``.jsonl``/``.json``, ``.gz`` for text).
    mapping
        ``{field: column}`` for the item fields ``item_id``, ``title``, ``text``,
        ``categories``, ``tags``, ``attributes``, ``created_at``. Without it, columns are
        matched by name or alias (:data:`ITEM_ALIASES`: ``id``/``sku``/``product_id``,
        ``name``, ``description``/``body``, ``category``/``genres``, ...).
    fmt, delimiter
        Format and CSV delimiter, when the extension does not say.
    list_separator
        Separates the entries of ``categories`` and ``tags`` given as one string.
    chunk_size, progress
        Rows read at a time; progress bar on stderr (default: when it is a terminal).

    Returns
    -------
    (pandas.DataFrame, LoadReport)
        The items in the layout of :func:`~interestlens.data.dataset.items_frame` (columns
        that map to no field go into ``attributes``), and the report listing every
        refused row: missing or duplicate id (the first row wins, later ones name it),
        a value of the wrong type, a control character in an id, plus the unreadable
        rows of the reader.

    Raises
    ------
    ValueError
        A file without rows (``"FILE: no rows"``), without an id column, or a mapping
        naming an unknown field or a missing column.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "products.csv"
    >>> _ = f.write_text("sku,name,description,category,price\n"
    ...                  'p1,Tent,"Two-person, light",outdoor|camping,120\n'
    ...                  "p2,Mug,Enamel mug,kitchen,9\n"
    ...                  "p1,Tent again,,outdoor,99\n")
    >>> items, report = read_items(f)
    >>> items[["item_id", "title", "text", "categories"]].values.tolist()
    [['p1', 'Tent', 'Two-person, light', ['outdoor', 'camping']], ['p2', 'Mug', 'Enamel mug', ['kitchen']]]
    >>> items["attributes"].tolist()
    [{'price': '120'}, {'price': '9'}]
    >>> [(r.row, r.reason) for r in report.rejections]
    [(3, "duplicate item_id 'p1' (first at row 1)")]
    """
    frames, report = _read(
        path,
        "item_id",
        ITEM_ALIASES,
        mapping,
        fmt,
        delimiter,
        list_separator,
        chunk_size,
        progress,
    )
    frame = pd.concat(frames, ignore_index=True) if frames else None
    return items_frame(frame), report


def read_users(
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    fmt: str | None = None,
    delimiter: str | None = None,
    chunk_size: int = 200_000,
    progress: bool | None = None,
) -> tuple[pd.DataFrame, LoadReport]:
    r"""Read users from a CSV/TSV, Parquet or JSON Lines file.

    Parameters
    ----------
    path
        The file.
    mapping
        ``{field: column}`` for ``user_id`` (and ``attributes``, a JSON object column);
        without it the id is found by name or alias (:data:`USER_ALIASES`:
        ``user_id``/``userId``/``id``/``customer_id``, ...).
    fmt, delimiter, chunk_size, progress
        As for :func:`read_items`.

    Returns
    -------
    (pandas.DataFrame, LoadReport)
        The users in the layout of :func:`~interestlens.data.dataset.users_frame`, every
        other column in ``attributes``; the report lists every refused row (missing or
        duplicate id, wrong type, control character in the id, unreadable row).

    Raises
    ------
    ValueError
        A file without rows, without an id column, or a bad mapping.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "customers.csv"
    >>> _ = f.write_text("customer_id,country,age\nc1,FR,31\n,DE,40\nc2,IT,\n")
    >>> users, report = read_users(f)
    >>> users.values.tolist()
    [['c1', {'country': 'FR', 'age': '31'}], ['c2', {'country': 'IT'}]]
    >>> [(r.row, r.reason) for r in report.rejections]
    [(2, 'missing user_id')]
    """
    frames, report = _read(
        path, "user_id", USER_ALIASES, mapping, fmt, delimiter, "|", chunk_size, progress
    )
    frame = pd.concat(frames, ignore_index=True) if frames else None
    return users_frame(frame), report
