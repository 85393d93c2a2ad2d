"""Jester joke ratings: continuous ratings in [-10, 10] of jokes whose full text is known.

Two layouts load:

* the CSV export (``ratings.csv`` with ``user_id,joke_id,rating`` and ``jokes.csv`` with
  ``joke_id,text``), as in the recommenderlab ``Jester5k`` sample;
* the classic Jester Dataset 2 files (``jester_ratings.dat``: whitespace-separated
  ``user item rating``; ``jester_items.dat``: blocks of ``N:`` followed by the joke as HTML).

The Excel files of Jester Datasets 1, 3 and 4 are not read; export them to the CSV layout.
Jester has no timestamps, so event times stay missing (``NaT``) and file order stands for time.

Reference: K. Goldberg, T. Roeder, D. Gupta and C. Perkins. 2001. Eigentaste: A Constant
Time Collaborative Filtering Algorithm. Information Retrieval 4(2):133-151.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd

from interestlens.data.dataset import Dataset, items_frame
from interestlens.data.readers import iter_event_chunks
from interestlens.data.validation import (
    EventValidator,
    Rejection,
    UnknownItems,
    ValidationOptions,
    empty_events,
)

RATING_RANGE = (-10.0, 10.0)
_TAG = re.compile(r"<[^>]+>")
_NUMBER = re.compile(r"j?(\d+)")


def _title(joke_id: str) -> str:
    m = _NUMBER.fullmatch(joke_id)
    return f"Joke {m.group(1) if m else joke_id}"


def _csv_jokes(path: Path) -> pd.DataFrame:
    jokes = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"joke_id", "text"} - set(jokes.columns)
    if missing:
        raise ValueError(f"{path}: needs columns joke_id,text; lacks {sorted(missing)}")
    return jokes


def _dat_jokes(path: Path) -> pd.DataFrame:
    ids: list[str] = []
    texts: list[str] = []
    block: list[str] = []
    for line in [*path.read_text(encoding="latin-1").splitlines(), ""]:
        if line.strip():
            block.append(line.strip())
            continue
        if block:
            head = block[0].rstrip(":")
            if not head.isdigit():
                raise ValueError(f"{path}: joke block starts with {block[0]!r}, not 'N:'")
            text = html.unescape(_TAG.sub(" ", " ".join(block[1:])))
            ids.append(head)
            texts.append(" ".join(text.split()))
            block = []
    return pd.DataFrame({"joke_id": ids, "text": texts})


def _dat_ratings(path: Path, v: EventValidator) -> pd.DataFrame:
    fields = [ln.split() for ln in path.read_text(encoding="latin-1").splitlines()]
    fields = [f for f in fields if f]
    bad = [i + 1 for i, f in enumerate(fields) if len(f) != 3]
    v.report.rejections.extend(Rejection(r, "expected 3 whitespace-separated fields") for r in bad)
    keep = np.array([len(f) == 3 for f in fields], dtype=bool)
    raw = pd.DataFrame(
        [f for f in fields if len(f) == 3], columns=["user_id", "item_id", "value"], dtype=object
    )
    return v.validate(raw, rows=np.flatnonzero(keep) + 1) if len(raw) else empty_events()


def load_jester(
    path: str | Path, *, name: str = "jester", unknown_items: UnknownItems = "reject"
) -> Dataset:
    r"""Load Jester ratings as ``rating`` events and the jokes as items.

    Parameters
    ----------
    path
        Folder holding ``ratings.csv`` and ``jokes.csv`` (or ``jester_ratings.dat`` and
        ``jester_items.dat``).
    name
        Dataset name, also the source of the rejection report.
    unknown_items
        ``"reject"`` or ``"create"`` for a rating of a joke the joke file lacks.

    Returns
    -------
    Dataset
        One ``rating`` event per rating (value in [-10, 10], no timestamp); one item per
        joke with the title ``"Joke N"`` and the whole joke in ``text``. Rejected rows are in
        ``report``, numbered by their record in the ratings file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "jokes.csv").write_text('joke_id,text\nj1,"Knock, knock."\n')
    >>> _ = (d / "ratings.csv").write_text("user_id,joke_id,rating\nu1,j1,7.5\nu2,j1,12\n")
    >>> ds = load_jester(d)
    >>> ds.items[["item_id", "title", "text"]].values.tolist()
    [['j1', 'Joke 1', 'Knock, knock.']]
    >>> ds.events["value"].tolist(), [(r.row, r.reason) for r in ds.report.rejections]
    ([7.5], [(2, 'rating 12 out of range [-10, 10]')])
    """
    folder = Path(path)
    if (folder / "ratings.csv").exists() and (folder / "jokes.csv").exists():
        jokes = _csv_jokes(folder / "jokes.csv")
        ratings_file = folder / "ratings.csv"
    elif (folder / "jester_ratings.dat").exists() and (folder / "jester_items.dat").exists():
        jokes = _dat_jokes(folder / "jester_items.dat")
        ratings_file = folder / "jester_ratings.dat"
    else:
        raise FileNotFoundError(
            f"{folder}: not a Jester folder; it needs ratings.csv and jokes.csv "
            "(or jester_ratings.dat and jester_items.dat)"
        )
    items = items_frame(
        pd.DataFrame(
            {
                "item_id": jokes["joke_id"],
                "title": [_title(j) for j in jokes["joke_id"]],
                "text": jokes["text"],
            }
        )
    )
    opts = ValidationOptions(
        default_type="rating", rating_range=RATING_RANGE, unknown_items=unknown_items
    )
    v = EventValidator(opts, known_items=items["item_id"].tolist(), source=name)
    if ratings_file.suffix == ".csv":
        mapping = {"user_id": "user_id", "item_id": "joke_id", "value": "rating"}
        frames = list(iter_event_chunks(ratings_file, v, mapping=mapping))
        events = pd.concat(frames, ignore_index=True) if frames else empty_events()
    else:
        events = _dat_ratings(ratings_file, v)
    v.report.rejections.sort(key=lambda r: r.row)
    if v.created_items:
        created = items_frame(pd.DataFrame({"item_id": v.created_items}))
        items = pd.concat([items, created], ignore_index=True)
    return Dataset(events, items, name=name, report=v.report)
