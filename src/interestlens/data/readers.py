"""Generic event files: CSV/TSV, Parquet and JSON Lines, with a column mapping.

Files are read in chunks so that a file of any size streams into a store with
bounded memory. A row that cannot even be parsed (a CSV line with the wrong number
of fields, a JSONL line that is not a JSON object) is a rejection like any other.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from interestlens.data.schema import EVENT_COLUMNS
from interestlens.data.validation import EventValidator, Rejection
from interestlens.progress import progress_bar

log = logging.getLogger(__name__)

#: Source column names recognised without a mapping, per schema field (case-insensitive).
ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": ("user_id", "userid", "user", "uid", "customer_id", "visitor_id", "visitorid"),
    "item_id": (
        "item_id",
        "itemid",
        "item",
        "iid",
        "movieid",
        "movie_id",
        "product_id",
        "productid",
        "joke_id",
    ),
    "type": ("type", "event_type", "event", "action"),
    "value": ("value", "rating", "score", "weight"),
    "timestamp": ("timestamp", "ts", "time", "datetime", "event_time"),
    "event_id": ("event_id", "eventid"),
    "text": ("text", "query", "tag", "review", "comment"),
    "context": ("context",),
}
#: When a column found through one of these aliases carries the value or text and no
#: type column exists, the event type follows from it.
TYPE_HINTS: dict[str, str] = {
    "rating": "rating",
    "tag": "tag",
    "review": "review",
    "query": "search",
}

FORMATS = ("csv", "tsv", "parquet", "jsonl")


def detect_format(path: str | Path) -> str:
    """File format from the extension (``.gz`` allowed for text formats)."""
    name = str(path).lower().removesuffix(".gz")
    for ext, fmt in (
        (".csv", "csv"),
        (".tsv", "tsv"),
        (".parquet", "parquet"),
        (".pq", "parquet"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "jsonl"),
    ):
        if name.endswith(ext):
            return fmt
    raise ValueError(
        f"{path}: unknown file type; use .csv, .tsv, .parquet or .jsonl (or give the format)"
    )


def resolve_mapping(
    columns: list[str], mapping: Mapping[str, str] | None = None
) -> tuple[dict[str, str], str | None]:
    """Match source columns to schema fields.

    Parameters
    ----------
    columns
        The source's column names.
    mapping
        Explicit ``{schema_field: source_column}`` pairs; other fields are found by name
        or :data:`ALIASES`.

    Returns
    -------
    (dict, str or None)
        ``{source_column: schema_field}`` and the event type implied by the columns
        (``"rating"`` for a ``rating`` column, ...), if any.

    Examples
    --------
    >>> resolve_mapping(["userId", "movieId", "rating", "timestamp"])
    ({'userId': 'user_id', 'movieId': 'item_id', 'rating': 'value', 'timestamp': 'timestamp'}, 'rating')
    """
    mapping = dict(mapping or {})
    bad = set(mapping) - set(EVENT_COLUMNS)
    if bad:
        raise ValueError(
            f"mapping names unknown fields {sorted(bad)}; fields are {list(EVENT_COLUMNS)}"
        )
    missing = [c for c in mapping.values() if c not in columns]
    if missing:
        raise ValueError(f"mapped column(s) {missing} not in the file; it has {columns}")
    out = {src: fld for fld, src in mapping.items()}
    lower = {c.lower(): c for c in columns}
    implied = None
    for fld in EVENT_COLUMNS:
        if fld in mapping:
            continue
        for alias in ALIASES[fld]:
            src = lower.get(alias)
            if src is not None and src not in out:
                out[src] = fld
                implied = implied or TYPE_HINTS.get(alias)
                break
    if "type" in out.values():
        implied = None
    return out, implied


class _CountingReader(io.RawIOBase):
    """Counts bytes read from a binary file, so progress can follow a text parser."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._fh.readinto(b)
        self.count += n or 0
        return n or 0


def _open_binary(path: Path) -> BinaryIO:
    if str(path).endswith(".gz"):
        import gzip

        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def iter_raw_chunks(
    path: str | Path,
    fmt: str | None = None,
    *,
    chunk_size: int = 200_000,
    progress: bool | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8",
) -> Iterator[tuple[int, pd.DataFrame, list[Rejection]]]:
    """Read a file as raw rows: yields ``(first_row, frame, unparsable_rows)`` per chunk.

    Rows are numbered from 1 (the CSV header is not a row); CSV cells come as strings.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {FORMATS}")
    size = os.path.getsize(path)
    with progress_bar(f"reading {path.name}", total=size, enabled=progress) as bar:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(path)
            row = 1
            done = 0
            for batch in pf.iter_batches(batch_size=chunk_size):
                frame = batch.to_pandas()
                yield row, frame, []
                row += len(frame)
                done += len(frame)
                bar.update(size * done / max(pf.metadata.num_rows, 1))
            return
        with _open_binary(path) as raw:
            counter = _CountingReader(raw)
            text = io.TextIOWrapper(io.BufferedReader(counter), encoding=encoding, newline="")
            if fmt == "jsonl":
                yield from _jsonl_chunks(text, chunk_size, counter, bar)
            else:
                sep = delimiter or ("\t" if fmt == "tsv" else ",")
                yield from _csv_chunks(text, sep, chunk_size, counter, bar)


def read_raw_frame(
    path: str | Path, fmt: str | None = None
) -> tuple[pd.DataFrame, np.ndarray, list[Rejection]]:
    """A whole file as raw rows without its unparsable lines.

    Returns the frame, each kept row's number in the file (from 1) and the rejections of
    the lines that could not be parsed. An empty file raises ``ValueError``.
    """
    frames, row_numbers, unparsable = [], [], []
    for first, frame, bad in iter_raw_chunks(path, fmt):
        keep = np.ones(len(frame), dtype=bool)
        keep[frame.attrs.get("unparsable", [])] = False
        frames.append(frame[keep])
        row_numbers.append(np.arange(first, first + len(frame))[keep])
        unparsable.extend(bad)
    if not frames:
        raise ValueError(f"{path}: empty file")
    return pd.concat(frames, ignore_index=True), np.concatenate(row_numbers), unparsable


def _csv_chunks(
    text: io.TextIOWrapper, sep: str, chunk_size: int, counter: _CountingReader, bar: Any
) -> Iterator[tuple[int, pd.DataFrame, list[Rejection]]]:
    reader = csv.reader(text, delimiter=sep)
    try:
        header = next(reader)
    except StopIteration:
        return
    header = [h.strip().lstrip("\ufeff") for h in header]
    width = len(header)
    rows: list[list[str]] = []
    bad: list[Rejection] = []
    first = 1
    n = 0
    for rec in reader:
        n += 1
        if len(rec) != width:
            if not rec:  # a blank line is not a record
                n -= 1
                continue
            bad.append(Rejection(n, f"expected {width} fields, found {len(rec)}"))
            rows.append([""] * width)
        else:
            rows.append(rec)
        if len(rows) >= chunk_size:
            yield first, _frame_with_holes(rows, header, bad, first), bad
            bar.update(counter.count)
            first, rows, bad = n + 1, [], []
    if rows or bad:
        yield first, _frame_with_holes(rows, header, bad, first), bad
    bar.update(counter.count)


def _frame_with_holes(
    rows: list[list[str]], header: list[str], bad: list[Rejection], first: int
) -> pd.DataFrame:
    """Frame of the chunk's rows; unparsable rows are marked so validation skips them."""
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    frame.attrs["unparsable"] = [r.row - first for r in bad]
    return frame


def _jsonl_chunks(
    text: io.TextIOWrapper, chunk_size: int, counter: _CountingReader, bar: Any
) -> Iterator[tuple[int, pd.DataFrame, list[Rejection]]]:
    rows: list[dict[str, Any]] = []
    bad: list[Rejection] = []
    first = 1
    n = 0
    for line in text:
        if not line.strip():
            continue
        n += 1
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            obj = exc
        if isinstance(obj, dict):
            rows.append(obj)
        else:
            what = "not valid JSON" if isinstance(obj, Exception) else "not a JSON object"
            bad.append(Rejection(n, f"line is {what}"))
            rows.append({})
        if len(rows) >= chunk_size:
            yield first, _json_frame(rows, bad, first), bad
            bar.update(counter.count)
            first, rows, bad = n + 1, [], []
    if rows:
        yield first, _json_frame(rows, bad, first), bad
    bar.update(counter.count)


def _json_frame(rows: list[dict[str, Any]], bad: list[Rejection], first: int) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows)
    frame.attrs["unparsable"] = [r.row - first for r in bad]
    return frame


def iter_event_chunks(
    path: str | Path,
    validator: EventValidator,
    *,
    mapping: Mapping[str, str] | None = None,
    fmt: str | None = None,
    chunk_size: int = 200_000,
    progress: bool | None = None,
    delimiter: str | None = None,
) -> Iterator[pd.DataFrame]:
    """Validated events from a generic file, chunk by chunk.

    Rejections (unparsable rows and rows that fail validation) accumulate in
    ``validator.report``. The mapping is resolved from the first chunk's columns; if
    the columns imply an event type (a ``rating`` column) and the validator has no
    default type, that type is used.
    """
    resolved: dict[str, str] | None = None
    for first, frame, unparsable in iter_raw_chunks(
        path, fmt, chunk_size=chunk_size, progress=progress, delimiter=delimiter
    ):
        if resolved is None:
            resolved, implied = resolve_mapping([str(c) for c in frame.columns], mapping)
            ignored = [c for c in frame.columns if c not in resolved]
            if ignored:
                log.warning(
                    "%s: columns %s are not part of the event schema and are not stored",
                    path,
                    ignored,
                )
            log.info("%s: columns %s", path, resolved)
            if (
                implied
                and validator.options.default_type is None
                and "type" not in resolved.values()
            ):
                from dataclasses import replace

                validator.options = replace(validator.options, default_type=implied)
        holes = frame.attrs.get("unparsable", [])
        events_raw = frame[[c for c in frame.columns if c in resolved]].rename(columns=resolved)
        row_numbers = np.arange(first, first + len(frame))
        if holes:
            keep = np.ones(len(frame), dtype=bool)
            keep[holes] = False
            validator.report.rejections.extend(unparsable)
            events_raw, row_numbers = events_raw[keep], row_numbers[keep]
        yield validator.validate(events_raw, rows=row_numbers)
    if resolved is None:
        log.warning("%s: the file holds no rows", path)
