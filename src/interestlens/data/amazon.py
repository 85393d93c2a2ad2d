"""Amazon product reviews (McAuley/UCSD 2014 "5-core" files): stars and the reviewers' own words.

A folder holds the reviews as JSON lines (``reviews_<Category>_5.json.gz``, or the same
uncompressed) and, optionally, an item table ``<...>_meta_5.csv`` with the header
``Product ID,Description,price,Category`` (the ``Description`` column holds the product
title). The shared copy is the Musical Instruments set: 10,261 reviews by 1,429 users of
900 items, 2004-2014.

References: R. He and J. McAuley. 2016. Ups and Downs: Modeling the Visual Evolution of
Fashion Trends with One-Class Collaborative Filtering. WWW 2016. J. McAuley, C. Targett,
Q. Shi and A. van den Hengel. 2015. Image-based Recommendations on Styles and Substitutes.
SIGIR 2015.
"""

from __future__ import annotations

import csv
import gzip
import html
import io
import json
import math
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from interestlens.data.dataset import Dataset, items_frame
from interestlens.data.schema import Item
from interestlens.data.validation import (
    EventValidator,
    LoadReport,
    Rejection,
    UnknownItems,
    ValidationOptions,
)

RATING_RANGE = (1.0, 5.0)
#: Header of the item table (``Description`` is the product title).
META_COLUMNS = ("Product ID", "Description", "price", "Category")
#: A longer line is refused unread (the longest real review is 11 KB).
MAX_LINE_BYTES = 1 << 20
#: Title the item table uses for items whose metadata was missing; read as no title.
_NO_TITLE = "No Title"
_SENTENCE_END = (".", "!", "?", ":", ";")


def review_text(summary: str, review: str) -> str:
    """The words of one review: the headline, then the body, as one text.

    The headline comes first because it is the reviewer's verdict in a few words and
    because sentence encoders truncate long texts (256 word pieces for the bundled model):
    the end of a long body may be cut, the headline never is. A full stop is added after a
    headline without closing punctuation, so that it reads as its own sentence (lexicons
    such as VADER weigh sentences, and "Great" and "It broke" should not run together).
    HTML entities (``&#34;``) are decoded; whitespace runs become one space.

    Examples
    --------
    >>> review_text("Five Stars", "Works as it should.")
    'Five Stars. Works as it should.'
    >>> review_text("Meh!", "")
    'Meh!'
    >>> review_text("", "Bought it for my son &#34;Rocky&#34;.")
    'Bought it for my son "Rocky".'
    """
    head = " ".join(html.unescape(summary).split())
    body = " ".join(html.unescape(review).split())
    if head and body and not head.endswith(_SENTENCE_END):
        head += "."
    return " ".join(p for p in (head, body) if p)


def _find(folder: Path, patterns: tuple[str, ...]) -> Path | None:
    for pattern in patterns:
        found = sorted(folder.glob(pattern))
        if len(found) > 1:
            raise ValueError(f"{folder}: several files match {pattern}: {[f.name for f in found]}")
        if found:
            return found[0]
    return None


def _resolve(path: Path) -> tuple[Path, Path | None]:
    """The reviews file and the item table (if any) that ``path`` points at."""
    if path.is_file():
        return path, _find(path.parent, ("*meta*.csv",))
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    reviews = _find(path, ("reviews_*.json.gz", "reviews_*.json"))
    if reviews is None:
        raise FileNotFoundError(
            f"{path}: not an Amazon reviews folder; it needs reviews_<Category>_5.json.gz "
            "(or .json), and optionally <...>_meta_5.csv"
        )
    return reviews, _find(path, ("*meta*.csv",))


def _lines(path: Path) -> Iterator[tuple[int, bytes | None, str | None]]:
    """``(line_number, line, problem)``: each line's bytes, or why it cannot be read."""
    raw: BinaryIO = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # type: ignore[assignment]
    n = 0
    with raw:
        while True:
            try:
                line = raw.readline(MAX_LINE_BYTES + 1)
                if not line:
                    return
                n += 1
                if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                    while (rest := raw.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                        pass
                    yield n, None, f"line is longer than {MAX_LINE_BYTES:,} bytes"
                    continue
            except (EOFError, OSError, zlib.error) as exc:
                # a truncated or corrupt gzip stream: the rest of the file cannot be read
                yield n + 1, None, f"file cannot be read from here on ({exc or type(exc).__name__})"
                return
            yield n, line, None


def _whole(v: Any) -> bool:
    return isinstance(v, int) or (isinstance(v, float) and math.isfinite(v) and v == round(v))


def _record(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The event fields of one review line, or why the line is refused."""
    try:
        obj = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return None, f"line is not valid UTF-8 (byte {exc.start})"
    except json.JSONDecodeError:
        return None, "line is not valid JSON"
    if not isinstance(obj, dict):
        return None, f"line is a JSON {type(obj).__name__}, not an object"
    bad = []
    for key in ("reviewerID", "asin"):
        v = obj.get(key)
        if v is None:
            bad.append(f"missing {key}")
        elif not isinstance(v, str):
            bad.append(f"{key} must be a string, not {type(v).__name__} {v!r:.40}")
        elif "\x00" in v:
            bad.append(f"{key} holds a NUL byte")
    stars = obj.get("overall")
    if stars is None:
        bad.append("missing overall")
    elif isinstance(stars, bool) or not isinstance(stars, int | float):
        bad.append(f"overall must be a number, not {type(stars).__name__} {stars!r:.40}")
    when = obj.get("unixReviewTime")
    if when is None:
        bad.append("missing unixReviewTime")
    elif isinstance(when, bool) or not _whole(when):
        bad.append(f"unixReviewTime must be whole seconds, not {type(when).__name__} {when!r:.40}")
    for key in ("summary", "reviewText"):
        v = obj.get(key, "")
        if not isinstance(v, str):
            bad.append(f"{key} must be a string, not {type(v).__name__} {v!r:.40}")
    if bad:
        return None, "; ".join(bad)
    return {
        "user_id": obj["reviewerID"],
        "item_id": obj["asin"],
        "value": float(stars),
        "timestamp": int(when),
        "text": review_text(obj.get("summary", ""), obj.get("reviewText", "")),
    }, None


def _reviews(path: Path) -> tuple[pd.DataFrame, np.ndarray, list[Rejection]]:
    """One raw row per readable review, its line number, and the refused lines."""
    records: list[dict[str, Any]] = []
    rows: list[int] = []
    bad: list[Rejection] = []
    for n, line, problem in _lines(path):
        if line is not None and not line.strip():
            continue  # a blank line is not a record
        rec, problem = _record(line) if line is not None else (None, problem)
        if rec is None:
            bad.append(Rejection(n, problem or "unreadable"))
        else:
            records.append(rec)
            rows.append(n)
    columns = ["user_id", "item_id", "value", "timestamp", "text"]
    return pd.DataFrame(records, columns=columns), np.asarray(rows, dtype=np.int64), bad


def _items(path: Path) -> tuple[list[Item], list[Rejection]]:
    """The item table's items, and its refused rows (named by file and record number)."""
    data = path.read_bytes().decode("utf-8", errors="surrogateescape")
    reader = csv.reader(io.StringIO(data, newline=""))
    header = [h.strip().lstrip("\ufeff") for h in next(reader, [])]
    missing = [c for c in META_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path}: the item table lacks column(s) {missing}; it has {header}")
    col = {c: header.index(c) for c in META_COLUMNS}
    items: dict[str, Item] = {}
    first_row: dict[str, int] = {}
    bad: list[Rejection] = []

    def refuse(row: int, reason: str) -> None:
        bad.append(Rejection(row, f"{path.name}: {reason}"))

    for row, rec in enumerate(reader, start=1):
        if not rec:
            continue
        if len(rec) != len(header):
            refuse(row, f"expected {len(header)} fields, found {len(rec)}")
            continue
        if any("\udc80" <= ch <= "\udcff" for field in rec for ch in field):
            refuse(row, "row is not valid UTF-8")
            continue
        item_id = rec[col["Product ID"]].strip()
        title = " ".join(html.unescape(rec[col["Description"]]).split())
        price_text = rec[col["price"]].strip()
        category = rec[col["Category"]].strip()
        if not item_id or "\x00" in item_id:
            refuse(row, "missing Product ID" if not item_id else "Product ID holds a NUL byte")
            continue
        if item_id in items:
            refuse(row, f"Product ID {item_id!r} given again (first at row {first_row[item_id]})")
            continue
        try:
            price = float(price_text) if price_text else None
        except ValueError:
            price = math.nan
        if price is not None and not (math.isfinite(price) and price >= 0):
            refuse(row, f"price {price_text!r:.40} is not a non-negative number")
            continue
        placeholder = title == _NO_TITLE
        items[item_id] = Item(
            item_id,
            title="" if placeholder else title,
            categories=[category] if category else [],
            attributes={} if price is None or (placeholder and price == 0) else {"price": price},
        )
        first_row[item_id] = row
    return list(items.values()), bad


def load_amazon(
    path: str | Path,
    *,
    name: str = "amazon-instruments",
    unknown_items: UnknownItems = "reject",
) -> Dataset:
    r"""Load Amazon reviews: each review as a ``rating`` and a ``review`` event.

    Parameters
    ----------
    path
        The folder holding ``reviews_<Category>_5.json.gz`` (or ``.json``) and, optionally,
        the item table ``<...>_meta_5.csv``; or the reviews file itself (an item table
        beside it is read too).
    name
        Dataset name, also the source of the rejection report.
    unknown_items
        ``"reject"`` or ``"create"`` for a review of an item the item table lacks. Without
        an item table every reviewed item is created bare.

    Returns
    -------
    Dataset
        Per review, in file order, a ``rating`` event (value: the stars, 1 to 5) and a
        ``review`` event (value 1) whose ``text`` is :func:`review_text` of the headline
        (``summary``) and the body (``reviewText``), both at the review's time. Items carry
        the title, the one leaf category of the item table and ``attributes["price"]``
        (USD). The table writes "No Title" where the title was missing (4 items), and
        also price 0 where the price was (2 of them): these give an item with no title, or
        no price. There is no description text. The
        reviewer's display name and the helpful votes are not read.

        **Order**: times are whole days (midnight UTC) and the file is sorted by item, so
        most users have several events on one day. The events frame keeps file order
        (rating before review within a record), and downstream orderings must break time
        ties by it with a stable sort, as :meth:`Dataset.sorted_events` does.

        ``report`` lists every refused line by its line number in the reviews file (a line
        that is not a JSON object, is not UTF-8, or is too long; a missing field or a
        field of the wrong type, such as ``"overall": "five"`` or a numeric
        ``reviewerID``; stars outside 1-5; a review of an unknown item). Where only one of
        a line's two events is refused (a review with neither headline nor body keeps its
        rating), the reason says which. Refused item-table rows are listed too, their
        reason starting with the table's file name, their row counted from the first row
        after the header. ``report.loaded`` counts events, two per good review.

    Examples
    --------
    >>> import gzip, json, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> good = {"reviewerID": "U1", "asin": "B1", "overall": 2.0, "summary": "Meh",
    ...         "reviewText": "Broke in a week.", "unixReviewTime": 1393545600}
    >>> lines = [json.dumps(good), json.dumps({**good, "overall": "five"})]
    >>> _ = (d / "reviews_Toys_5.json.gz").write_bytes(gzip.compress("\n".join(lines).encode()))
    >>> ds = load_amazon(d)
    >>> ds.events[["user_id", "item_id", "type", "value", "text"]].values.tolist()
    [['U1', 'B1', 'rating', 2.0, None], ['U1', 'B1', 'review', 1.0, 'Meh. Broke in a week.']]
    >>> [(r.row, r.reason) for r in ds.report.rejections]
    [(2, "overall must be a number, not str 'five'")]
    """
    reviews, meta = _resolve(Path(path))
    item_list, item_bad = _items(meta) if meta is not None else ([], [])
    items = items_frame(item_list)
    raw, rows, line_bad = _reviews(reviews)

    opts = ValidationOptions(rating_range=RATING_RANGE, unknown_items=unknown_items)
    known = items["item_id"].tolist() if meta is not None else None
    ratings_v = EventValidator(opts, known_items=known, source=name)
    ratings = ratings_v.validate(raw.drop(columns="text").assign(type="rating"), rows=rows)
    reviews_v = EventValidator(
        opts, known_items=None if known is None else [*known, *ratings_v.created_items]
    )
    reviews_raw = raw.assign(type="review", value=1.0)
    reviews_ev = reviews_v.validate(reviews_raw, rows=rows)

    # one line, two events: keep file order, each record's rating before its review
    position = np.arange(len(rows))
    keys = []
    for validator in (ratings_v, reviews_v):
        refused = np.isin(rows, [r.row for r in validator.report.rejections])
        keys.append(position[~refused])
    order = np.argsort(np.concatenate([2 * keys[0], 2 * keys[1] + 1]), kind="stable")
    events = pd.concat([ratings, reviews_ev], ignore_index=True).iloc[order]

    # one rejection per line, saying which event was refused when only one was
    why: dict[int, dict[str, str]] = {}
    for kind, validator in (("rating", ratings_v), ("review", reviews_v)):
        for r in validator.report.rejections:
            why.setdefault(r.row, {})[kind] = r.reason
    merged = []
    for row, parts in why.items():
        if len(parts) == 2 and parts["rating"] == parts["review"]:
            merged.append(Rejection(row, parts["rating"]))
        elif len(parts) == 2:
            merged.append(Rejection(row, f"rating: {parts['rating']}; review: {parts['review']}"))
        else:
            ((kind, reason),) = parts.items()
            kept = "review" if kind == "rating" else "rating"
            merged.append(Rejection(row, f"{kind}: {reason} (its {kept} was kept)"))
    created = [*ratings_v.created_items, *reviews_v.created_items]
    report = LoadReport(
        source=name,
        loaded=ratings_v.report.loaded + reviews_v.report.loaded,
        rejections=sorted([*merged, *line_bad, *item_bad], key=lambda r: r.row),
        created_items=len(created),
    )
    if created:
        items = pd.concat([items, items_frame([Item(i) for i in created])], ignore_index=True)
    return Dataset(events, items, name=name, report=report)
