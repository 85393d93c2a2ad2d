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
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

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
    columns: list[str],
    mapping: Mapping[str, str] | None = None,
    *,
    aliases: Mapping[str, tuple[str, ...]] = ALIASES,
    hints: Mapping[str, str] = TYPE_HINTS,
) -> tuple[dict[str, str], str | None]:
    """Match source columns to schema fields.

    Parameters
    ----------
    columns
        The source's column names.
    mapping
        Explicit ``{schema_field: source_column}`` pairs; other fields are found by name
        or alias.
    aliases
        Source names recognised per schema field (case-insensitive); the fields are its
        keys. :data:`ALIASES` (events) by default.
    hints
        Aliases that imply an event type (:data:`TYPE_HINTS` by default).

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
    bad = set(mapping) - set(aliases)
    if bad:
        raise ValueError(f"mapping names unknown fields {sorted(bad)}; fields are {list(aliases)}")
    missing = [c for c in mapping.values() if c not in columns]
    if missing:
        raise ValueError(f"mapped column(s) {missing} not in the file; it has {columns}")
    out = {src: fld for fld, src in mapping.items()}
    lower = {c.lower(): c for c in columns}
    implied = None
    for fld, names in aliases.items():
        if fld in mapping:
            continue
        for alias in names:
            src = lower.get(alias)
            if src is not None and src not in out:
                out[src] = fld
                implied = implied or hints.get(alias)
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


#: Longest physical line read whole (characters); a longer one is skipped in pieces and
#: rejected, so no line, however long, is held in memory.
MAX_LINE_CHARS = 1 << 24
#: Undecodable bytes arrive as these lone surrogates (``errors="surrogateescape"``).
_SURROGATE = re.compile("[\udc80-\udcff]")
_JSON_BLOCK = 1 << 20


class _Overlong(Exception):
    """A physical line longer than the line limit (already skipped)."""

    def __init__(self, length: int) -> None:
        super().__init__(f"a line of {length:,} characters, over the limit of {MAX_LINE_CHARS:,}")
        self.length = length


class _Lines:
    """Physical lines of a text stream, each at most ``limit`` characters.

    Keeps the lines of the record being parsed (``record``) so that a record that went
    wrong can be re-read line by line (``pending``), and notes the first undecodable byte
    of the record (``bad_byte``).
    """

    def __init__(self, text: io.TextIOBase, limit: int, encoding: str) -> None:
        self._text = text
        self._limit = limit
        self._encoding = encoding
        self.pending: list[str | _Overlong] = []
        self.record: list[str] = []
        self.bad_byte: str | None = None

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pending:
            line = self.pending.pop()
            if isinstance(line, _Overlong):
                raise line
        else:
            line = self._text.readline(self._limit)
            if not line:
                raise StopIteration
            if len(line) >= self._limit and line[-1] not in "\r\n":
                raise self._skip_rest(len(line))
        self.record.append(line)
        if self.bad_byte is None and not line.isascii():
            m = _SURROGATE.search(line)
            if m:
                byte = ord(m.group()) - 0xDC00
                self.bad_byte = (
                    f"not valid {self._encoding}: byte 0x{byte:02x} at character "
                    f"{sum(map(len, self.record[:-1])) + m.start() + 1}"
                )
        return line

    def _skip_rest(self, length: int) -> _Overlong:
        while True:
            piece = self._text.readline(self._limit)
            length += len(piece)
            if not piece or piece[-1] in "\r\n":
                return _Overlong(length)

    def retry_after_first(self, overlong: _Overlong | None = None) -> None:
        """Read the current record's lines again, all but its first (then the overlong one)."""
        if overlong is not None:
            self.pending.append(overlong)
        self.pending.extend(reversed(self.record[1:]))
        self.bad_byte = None


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
    The frame holds a placeholder for each unparsable row (``frame.attrs["unparsable"]``
    lists their positions). A row that cannot be read costs only itself: a CSV quote
    left open is rejected on its own line and the lines after it are read again (a
    record spanning lines is kept when it parses strictly to the header's width, as a
    quoted field with newlines does; a stray quote that happens to close on a later
    line at a field's end cannot be told from one, and swallows the lines between); a row
    with bytes that are not valid in ``encoding``, a field over ``csv.field_size_limit()``
    or a line over :data:`MAX_LINE_CHARS` is rejected with its length; memory stays
    bounded by the chunk size and those limits. A ``.json``/``.jsonl`` file whose first
    character is ``[`` is read as one JSON array whose elements are the rows (what an
    export of records usually is), element by element.
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
                # Python ints, not floats, for integer columns with nulls: a float loses ids
                # past 2**53.
                frame = batch.to_pandas(integer_object_nulls=True)
                yield row, frame, []
                row += len(frame)
                done += len(frame)
                bar.update(size * done / max(pf.metadata.num_rows, 1))
            return
        with _open_binary(path) as raw:
            counter = _CountingReader(raw)
            buffered = io.BufferedReader(counter)
            text = io.TextIOWrapper(
                buffered, encoding=encoding, errors="surrogateescape", newline=""
            )
            lines = _Lines(text, MAX_LINE_CHARS, encoding)
            if fmt == "jsonl":
                starts = buffered.peek(4096).lstrip(b" \t\r\n").removeprefix(b"\xef\xbb\xbf")
                records = (
                    _json_array(text, encoding) if starts.startswith(b"[") else _json_records(lines)
                )
                yield from _record_chunks(records, chunk_size, counter, bar)
            else:
                sep = delimiter or ("\t" if fmt == "tsv" else ",")
                yield from _csv_chunks(lines, sep, chunk_size, counter, bar, path)


def read_raw_frame(
    path: str | Path, fmt: str | None = None
) -> tuple[pd.DataFrame, np.ndarray, list[Rejection]]:
    """A whole file as raw rows without its unparsable lines.

    Returns the frame, each kept row's number in the file (from 1) and the rejections of
    the lines that could not be parsed. A file without rows raises ``ValueError``.
    """
    frames, row_numbers, unparsable = [], [], []
    for first, frame, bad in iter_raw_chunks(path, fmt):
        keep = np.ones(len(frame), dtype=bool)
        keep[frame.attrs.get("unparsable", [])] = False
        frames.append(frame[keep])
        row_numbers.append(np.arange(first, first + len(frame))[keep])
        unparsable.extend(bad)
    if not frames:
        raise ValueError(f"{path}: no rows")
    return pd.concat(frames, ignore_index=True), np.concatenate(row_numbers), unparsable


def _field_limit_reason(line: str, sep: str, header: list[str], limit: int) -> str:
    where = f"the row is {len(line):,} characters long"
    if '"' not in line:
        fields = line.rstrip("\r\n").split(sep)
        longest = max(range(len(fields)), key=lambda i: len(fields[i]))
        name = f" ({header[longest]})" if longest < len(header) else ""
        where = f"field {longest + 1}{name} is {len(fields[longest]):,} characters long"
    return f"{where}, over the limit of {limit:,} characters per field (csv.field_size_limit)"


_UNTERMINATED = "unterminated quote: the quoted field opened on this row does not close"


def _csv_chunks(
    lines: _Lines,
    sep: str,
    chunk_size: int,
    counter: _CountingReader,
    bar: Any,
    path: Path,
) -> Iterator[tuple[int, pd.DataFrame, list[Rejection]]]:
    # strict: a quote that does not close by the end of the file is an error, not a field.
    reader = csv.reader(lines, delimiter=sep, strict=True)
    header: list[str] = []
    while not header:
        try:
            header = next(reader)
        except StopIteration:
            return
        except (csv.Error, _Overlong) as exc:
            raise ValueError(f"{path}: the header row cannot be read ({exc})") from None
        if lines.bad_byte:
            raise ValueError(f"{path}: the header row is {lines.bad_byte}")
    header = [h.strip().lstrip("\ufeff") for h in header]
    width = len(header)
    rows: list[list[str]] = []
    bad: list[Rejection] = []
    first = 1
    n = 0
    while True:
        record = lines.record
        record.clear()
        try:
            rec = next(reader)
        except StopIteration:
            break
        except _Overlong as exc:
            reason = (
                f"the row is {exc.length:,} characters long, over the limit of {MAX_LINE_CHARS:,}"
            )
            if record:
                lines.retry_after_first(exc)
                reason = _UNTERMINATED
        except csv.Error as exc:
            message = str(exc)
            if len(record) > 1:
                lines.retry_after_first()
                reason = _UNTERMINATED
                if "field limit" in message:
                    reason = (
                        "the quoted field opened on this row runs past the limit of "
                        f"{csv.field_size_limit():,} characters per field (csv.field_size_limit): "
                        "a quote left open, or a field over the limit"
                    )
            elif "field limit" in message:
                reason = _field_limit_reason(record[0], sep, header, csv.field_size_limit())
            elif "unexpected end of data" in message:
                reason = _UNTERMINATED
            else:
                reason = f"bad CSV quoting ({message})"
        else:
            if len(rec) == width and not lines.bad_byte:
                n += 1
                rows.append(rec)
                if len(rows) >= chunk_size:
                    yield first, _frame_with_holes(rows, header, bad, first), bad
                    bar.update(counter.count)
                    first, rows, bad = n + 1, [], []
                continue
            if not rec:  # a blank line is not a record
                continue
            if len(record) > 1 and len(rec) != width:
                lines.retry_after_first()
                reason = _UNTERMINATED
            elif len(rec) != width:
                reason = f"expected {width} fields, found {len(rec)}"
            else:
                reason = f"the row is {lines.bad_byte}"
        lines.bad_byte = None
        n += 1
        bad.append(Rejection(n, reason))
        rows.append([""] * width)
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


_NOT_DELIMITED = "the rows after it cannot be told apart and are not read"


def _json_records(lines: _Lines) -> Iterator[tuple[int, Any, str | None]]:
    """``(row, object, reason)`` per JSON Lines row."""
    n = 0
    while True:
        lines.record.clear()
        try:
            line = next(lines)
        except StopIteration:
            return
        except _Overlong as exc:
            n += 1
            yield (
                n,
                None,
                f"line is {exc.length:,} characters long, over the limit of {MAX_LINE_CHARS:,}",
            )
            continue
        stripped = line.strip().lstrip("\ufeff")
        if not stripped:
            continue
        n += 1
        if lines.bad_byte:
            yield n, None, f"line is {lines.bad_byte}"
            lines.bad_byte = None
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            yield n, None, "line is not valid JSON"
            continue
        if isinstance(obj, dict):
            yield n, obj, None
        elif isinstance(obj, list):
            yield n, None, "line is a JSON array, expected one object per line"
        else:
            yield n, None, "line is not a JSON object"


def _json_array(text: io.TextIOBase, encoding: str) -> Iterator[tuple[int, Any, str | None]]:
    """``(row, object, reason)`` per element of a file that is one JSON array.

    Elements are decoded one at a time from a sliding buffer, so memory holds one block
    and the element being read, never the whole array.
    """
    decoder = json.JSONDecoder()
    ws = re.compile(r"\s*")
    buf = ""
    while not buf.strip():
        piece = text.read(_JSON_BLOCK)
        if not piece:
            break
        buf += piece
    buf = buf.lstrip().lstrip("\ufeff")
    pos = 1  # after the "["
    eof = False
    n = 0
    expect_value = True

    def more() -> None:
        nonlocal buf, pos, eof
        piece = text.read(_JSON_BLOCK)
        if piece:
            buf = buf[pos:] + piece
            pos = 0
        else:
            eof = True

    while True:
        pos = ws.match(buf, pos).end()  # type: ignore[union-attr]
        if pos >= len(buf):
            if eof:
                yield n + 1, None, "the JSON array ends without its closing ']'"
                return
            more()
            continue
        c = buf[pos]
        if c == "]" and (not expect_value or n == 0):
            rest = buf[pos + 1 :]
            while not rest.strip():
                rest = text.read(_JSON_BLOCK)
                if not rest:
                    return
            yield (
                n + 1,
                None,
                "content after the JSON array's closing ']' is not read (a file is one JSON "
                "array, or one JSON object per line)",
            )
            return
        if not expect_value:
            if c == ",":
                pos += 1
                expect_value = True
                continue
            yield (
                n + 1,
                None,
                f"not valid JSON (expected ',' or ']' after row {n}); {_NOT_DELIMITED}",
            )
            return
        try:
            obj, end = decoder.raw_decode(buf, pos)
        except json.JSONDecodeError as exc:
            # Cut off by the end of the buffer (not a real error) if it fails at the end,
            # or in a string that the buffer ends inside.
            cut = exc.pos >= len(buf) - 8 or exc.msg.startswith("Unterminated string")
            if cut and not eof and len(buf) - pos <= MAX_LINE_CHARS:
                more()
                continue
            what = (
                f"over {MAX_LINE_CHARS:,} characters long"
                if cut and len(buf) - pos > MAX_LINE_CHARS
                else f"not valid JSON ({exc.msg})"
            )
            yield n + 1, None, f"{what}; {_NOT_DELIMITED}"
            return
        if end >= len(buf) and not eof:  # a number may go on in the next block
            more()
            continue
        n += 1
        expect_value = False
        m = _SURROGATE.search(buf, pos, end) if not buf[pos:end].isascii() else None
        if m:
            byte = ord(m.group()) - 0xDC00
            yield n, None, f"not valid {encoding}: byte 0x{byte:02x}"
        elif isinstance(obj, dict):
            yield n, obj, None
        else:
            kind = "a JSON array" if isinstance(obj, list) else "not a JSON object"
            yield n, None, f"element is {kind}, expected an object"
        pos = end


def _record_chunks(
    records: Iterator[tuple[int, Any, str | None]],
    chunk_size: int,
    counter: _CountingReader,
    bar: Any,
) -> Iterator[tuple[int, pd.DataFrame, list[Rejection]]]:
    rows: list[dict[str, Any]] = []
    bad: list[Rejection] = []
    first = 1
    for n, obj, reason in records:
        if reason is None:
            rows.append(obj)
        else:
            bad.append(Rejection(n, reason))
            rows.append({})
        if len(rows) >= chunk_size:
            yield first, _json_frame(rows, bad, first), bad
            bar.update(counter.count)
            first, rows, bad = n + 1, [], []
    if rows:
        yield first, _json_frame(rows, bad, first), bad
    bar.update(counter.count)


def _json_frame(rows: list[dict[str, Any]], bad: list[Rejection], first: int) -> pd.DataFrame:
    # object: a column of ints with a gap would become float64 and lose ids past 2**53;
    # and from_records would make no row of [{}].
    frame = pd.DataFrame(rows, dtype=object)
    frame.attrs["unparsable"] = [r.row - first for r in bad]
    return frame


def iter_mapped_chunks(
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    aliases: Mapping[str, tuple[str, ...]] = ALIASES,
    hints: Mapping[str, str] = TYPE_HINTS,
    fmt: str | None = None,
    chunk_size: int = 200_000,
    progress: bool | None = None,
    delimiter: str | None = None,
) -> Iterator[tuple[pd.DataFrame, np.ndarray, list[Rejection], dict[str, str], str | None]]:
    """Parsed rows of a file with their columns matched to schema fields, chunk by chunk.

    Yields ``(frame, rows, unparsable, columns, implied_type)``: the parsable rows (source
    column names), their row numbers, the rejections of the unparsable rows, the
    ``{source_column: field}`` match of :func:`resolve_mapping` and the event type it
    implies. A JSON Lines chunk missing a mapped key gets it as an empty column (keys
    are per row there); the first chunk must have it.

    Raises
    ------
    ValueError
        ``"FILE: no rows"`` for a file without a single row (empty, or a header only).
    """
    seen_rows = False
    first_chunk = True
    for first, frame, unparsable in iter_raw_chunks(
        path, fmt, chunk_size=chunk_size, progress=progress, delimiter=delimiter
    ):
        seen_rows = True
        rows = np.arange(first, first + len(frame))
        holes = frame.attrs.get("unparsable", [])
        if holes:
            keep = np.ones(len(frame), dtype=bool)
            keep[holes] = False
            frame, rows = frame[keep], rows[keep]
        if not len(frame):
            yield frame, rows, unparsable, {}, None
            continue
        columns = [str(c) for c in frame.columns]
        if not first_chunk and mapping:
            for src in mapping.values():
                if src not in columns:
                    frame = frame.assign(**{src: None})
                    columns.append(src)
        first_chunk = False
        resolved, implied = resolve_mapping(columns, mapping, aliases=aliases, hints=hints)
        yield frame, rows, unparsable, resolved, implied
    if not seen_rows:
        raise ValueError(f"{path}: no rows")


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
    ``validator.report``. If the columns imply an event type (a ``rating`` column) and
    the validator has no default type, that type is used.

    Raises
    ------
    ValueError
        ``"FILE: no rows"`` for a file without rows (empty, or a header only).
    """
    warned: set[str] = set()
    for frame, rows, unparsable, resolved, implied in iter_mapped_chunks(
        path,
        mapping=mapping,
        fmt=fmt,
        chunk_size=chunk_size,
        progress=progress,
        delimiter=delimiter,
    ):
        validator.report.rejections.extend(unparsable)
        if not len(frame):
            continue
        ignored = [c for c in frame.columns if c not in resolved and c not in warned]
        if ignored:
            warned.update(ignored)
            log.warning(
                "%s: columns %s are not part of the event schema and are not stored",
                path,
                ignored,
            )
        if implied and validator.options.default_type is None:
            from dataclasses import replace

            validator.options = replace(validator.options, default_type=implied)
        events_raw = frame[[c for c in frame.columns if c in resolved]].rename(columns=resolved)
        yield validator.validate(events_raw, rows=rows)
