"""UCI Anonymous Microsoft Web Data (msweb): which areas of microsoft.com each user visited.

The files are in the DST format: ``A`` lines are the areas ("Vroots", the items) with a
title and a URL path, a ``C`` line starts a user ("case"), and the ``V`` lines after it are
that user's visits. ``I``, ``T`` and ``N`` lines describe the file and carry no data. There
are no timestamps; event order is file order.

Reference: J. S. Breese, D. Heckerman and C. Kadie. 1998. Empirical Analysis of Predictive
Algorithms for Collaborative Filtering. UAI 1998 (MSR-TR-98-12).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from interestlens.data.dataset import Dataset, items_frame, users_frame
from interestlens.data.schema import Item
from interestlens.data.validation import (
    EventValidator,
    LoadReport,
    Rejection,
    UnknownItems,
    ValidationOptions,
    empty_events,
)

Split = Literal["train", "test", "all"]
FILES: dict[str, str] = {"train": "anonymous-msweb.data", "test": "anonymous-msweb.test"}
_METADATA = frozenset("ITN")


def _parse(
    path: Path, prefix: str
) -> tuple[dict[str, Item], list[str], pd.DataFrame, np.ndarray, list[Rejection]]:
    """Items, user ids, raw visit rows with their line numbers, and unparsable lines."""
    items: dict[str, Item] = {}
    users: dict[str, None] = {}
    visits: list[tuple[str, str]] = []
    rows: list[int] = []
    bad: list[Rejection] = []
    user: str | None = None
    with open(path, newline="", encoding="latin-1") as fh:
        for line_no, rec in enumerate(csv.reader(fh), start=1):
            kind = rec[0].strip() if rec else ""
            if kind == "V":
                if len(rec) != 3:
                    bad.append(Rejection(line_no, f"V line needs 3 fields, found {len(rec)}"))
                elif user is None:
                    bad.append(Rejection(line_no, "visit (V line) without a valid user (C line)"))
                else:
                    visits.append((user, rec[1].strip()))
                    rows.append(line_no)
            elif kind == "C":
                user = f"{prefix}{rec[1].strip()}" if len(rec) == 3 and rec[1].strip() else None
                if user is None:
                    bad.append(Rejection(line_no, "C line needs 3 fields and a user id"))
                else:
                    users[user] = None
            elif kind == "A":
                if len(rec) != 5 or not rec[1].strip():
                    bad.append(Rejection(line_no, "A line needs 5 fields and an item id"))
                else:
                    item_id = rec[1].strip()
                    items.setdefault(
                        item_id, Item(item_id, title=rec[3].strip(), attributes={"url": rec[4]})
                    )
            elif kind not in _METADATA and rec:
                bad.append(Rejection(line_no, f"unknown line type {kind!r}"))
    raw = pd.DataFrame(visits, columns=["user_id", "item_id"], dtype=object)
    return items, list(users), raw, np.asarray(rows, dtype=np.int64), bad


def _resolve(path: Path, split: Split) -> list[tuple[str, Path]]:
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', not {split!r}")
    if path.is_file():
        if split == "all":
            raise ValueError(
                f"{path}: split='all' needs the folder holding both "
                f"{FILES['train']} and {FILES['test']}"
            )
        return [("test" if path.suffix == ".test" else "train", path)]
    wanted = ["train", "test"] if split == "all" else [split]
    missing = [FILES[s] for s in wanted if not (path / FILES[s]).exists()]
    if missing:
        raise FileNotFoundError(f"{path}: missing {', '.join(missing)} (is this the msweb folder?)")
    return [(s, path / FILES[s]) for s in wanted]


def load_msweb(
    path: str | Path,
    *,
    split: Split = "train",
    name: str = "msweb",
    unknown_items: UnknownItems = "reject",
) -> Dataset:
    r"""Load msweb visits as ``view`` events (value 1) and the areas as items.

    Parameters
    ----------
    path
        The folder holding ``anonymous-msweb.data`` and ``anonymous-msweb.test``, or one of
        these files (which is then read whatever ``split`` says, except ``"all"``).
    split
        ``"train"`` (32,711 users), ``"test"`` (5,000 users) or ``"all"``. The two files
        reuse the same user ids for different people, so with ``"all"`` every user id is
        prefixed by its file (``"train:10001"``, ``"test:10001"``) and the rejection reasons
        name the file their line number refers to. Single splits keep the original ids.
    name
        Dataset name, also the source of the rejection report.
    unknown_items
        ``"reject"`` or ``"create"`` for a visit to an area that no ``A`` line describes.

    Returns
    -------
    Dataset
        Items carry the area title and ``attributes["url"]``; users carry
        ``attributes["split"]``. Timestamps are missing (``NaT``). Rejected lines are in
        ``report`` by line number: a visit before any user, a visit to an unknown area,
        or a line that does not parse.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "anonymous-msweb.data"
    >>> _ = f.write_text('A,1000,1,"Home","/home"\nV,1000,1\nC,"7",7\nV,1000,1\nV,99,1\n')
    >>> ds = load_msweb(f)
    >>> ds.events[["user_id", "item_id", "type", "value"]].values.tolist()
    [['7', '1000', 'view', 1.0]]
    >>> [(r.row, r.reason) for r in ds.report.rejections]
    [(2, 'visit (V line) without a valid user (C line)'), (5, "unknown item_id '99'")]
    """
    parts = _resolve(Path(path), split)
    report = LoadReport(source=name)
    items: dict[str, Item] = {}
    users: list[tuple[str, str]] = []
    parsed = []
    for part, file in parts:
        prefix = f"{part}:" if split == "all" else ""
        part_items, part_users, raw, rows, bad = _parse(file, prefix)
        for item_id, item in part_items.items():
            items.setdefault(item_id, item)
        users.extend((u, part) for u in part_users)
        parsed.append((file, raw, rows, bad))

    known = list(items)
    opts = ValidationOptions(default_type="view", unknown_items=unknown_items)
    frames = []
    created: list[str] = []
    for file, raw, rows, bad in parsed:
        v = EventValidator(opts, known_items=known, source=name)
        frames.append(v.validate(raw, rows=rows) if len(raw) else empty_events())
        v.report.rejections.extend(bad)
        v.report.rejections.sort(key=lambda r: r.row)
        if split == "all":
            v.report.rejections = [
                Rejection(r.row, f"{file.name}: {r.reason}") for r in v.report.rejections
            ]
        created.extend(i for i in v.created_items if i not in created)
        report.merge(v.report)
    report.created_items = len(created)
    items_df = items_frame(list(items.values()) + [Item(i) for i in created])
    users_df = users_frame(
        pd.DataFrame(
            {"user_id": [u for u, _ in users], "attributes": [{"split": s} for _, s in users]}
        )
    )
    events = pd.concat(frames, ignore_index=True)
    return Dataset(events, items_df, users_df, name=name, report=report)
