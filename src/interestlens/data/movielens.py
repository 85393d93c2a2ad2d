"""MovieLens loaders: ml-latest-small (bundled), ml-latest / ml-25m, ml-1m and ml-100k layouts.

Ratings become ``rating`` events, tag applications become ``tag`` events with the tag
as text, movies become items whose categories are the genres. User tags stay events
(not item fields), so a split never leaks a test-period tag into an item's text.

Reference: F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets:
History and Context. ACM TiiS 5(4):19.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from interestlens.data.dataset import Dataset, items_frame, users_frame
from interestlens.data.validation import (
    EventValidator,
    LoadReport,
    ValidationOptions,
    empty_events,
)

BUNDLED = Path(__file__).parent / "bundled" / "ml-latest-small"
NO_GENRES = "(no genres listed)"


def _require(path: Path, *names: str) -> None:
    missing = [n for n in names if not (path / n).exists()]
    if missing:
        raise FileNotFoundError(
            f"{path}: missing {', '.join(missing)} (is this a MovieLens folder?)"
        )


def _genres(s: pd.Series) -> list[list[str]]:
    return [[] if (not isinstance(g, str) or g == NO_GENRES) else g.split("|") for g in s]


def _validate(raw: pd.DataFrame, validator: EventValidator) -> pd.DataFrame:
    return validator.validate(raw) if len(raw) else empty_events()


def _finish(
    name: str,
    validators: list[EventValidator],
    frames: list[pd.DataFrame],
    items: pd.DataFrame,
    users: pd.DataFrame | None = None,
) -> Dataset:
    report = LoadReport(source=name)
    for v in validators:
        report.merge(v.report)
    events = pd.concat(frames, ignore_index=True)
    created = sorted({i for v in validators for i in v.created_items})
    if created:
        items = pd.concat(
            [items, items_frame(pd.DataFrame({"item_id": created}))], ignore_index=True
        )
    return Dataset(events, items, users_frame(users), name=name, report=report)


def load_latest(
    path: str | Path | None = None,
    *,
    name: str | None = None,
    unknown_items: str = "reject",
    with_tags: bool = True,
) -> Dataset:
    """Load the ml-latest layout (``ratings.csv``, ``movies.csv``, optional ``tags.csv``).

    Parameters
    ----------
    path
        Folder holding the files; ``None`` loads the bundled ml-latest-small.
    unknown_items
        ``"reject"`` or ``"create"`` for events naming a movie not in ``movies.csv``.
    with_tags
        Also load tag applications as ``tag`` events.

    Examples
    --------
    >>> ds = load_latest()
    >>> ds.summary()["events_by_type"]
    {'rating': 100836, 'tag': 3683}
    """
    folder = BUNDLED if path is None else Path(path)
    name = name or ("ml-latest-small" if path is None else folder.name)
    _require(folder, "ratings.csv", "movies.csv")
    movies = pd.read_csv(folder / "movies.csv", dtype=str, keep_default_na=False)
    items = items_frame(
        pd.DataFrame(
            {
                "item_id": movies["movieId"],
                "title": movies["title"],
                "categories": _genres(movies["genres"]),
            }
        )
    )
    known = items["item_id"].tolist()
    opts = ValidationOptions(
        default_type="rating", rating_range=(0.5, 5.0), unknown_items=unknown_items
    )  # type: ignore[arg-type]
    rv = EventValidator(opts, known_items=known, source=f"{name}/ratings.csv")
    ratings = pd.read_csv(folder / "ratings.csv", dtype=str, keep_default_na=False)
    frames = [
        _validate(
            ratings.rename(columns={"userId": "user_id", "movieId": "item_id", "rating": "value"}),
            rv,
        )
    ]
    validators = [rv]
    if with_tags and (folder / "tags.csv").exists():
        tv = EventValidator(
            ValidationOptions(default_type="tag", unknown_items=unknown_items),  # type: ignore[arg-type]
            known_items=known,
            source=f"{name}/tags.csv",
        )
        tags = pd.read_csv(folder / "tags.csv", dtype=str, keep_default_na=False)
        frames.append(
            _validate(
                tags.rename(columns={"userId": "user_id", "movieId": "item_id", "tag": "text"}), tv
            )
        )
        validators.append(tv)
    return _finish(name, validators, frames, items)


def load_1m(path: str | Path, *, name: str = "ml-1m", unknown_items: str = "reject") -> Dataset:
    """Load the ml-1m layout (``ratings.dat``, ``movies.dat``, ``users.dat``; ``::``-separated, Latin-1)."""
    folder = Path(path)
    _require(folder, "ratings.dat", "movies.dat")

    def dat(fname: str, cols: list[str]) -> tuple[pd.DataFrame, list[int]]:
        lines = (folder / fname).read_text(encoding="latin-1").splitlines()
        rows = [ln.split("::") for ln in lines if ln.strip()]
        bad = [i + 1 for i, r in enumerate(rows) if len(r) != len(cols)]
        if bad and fname != "ratings.dat":
            raise ValueError(
                f"{folder / fname}: row {bad[0]} does not have {len(cols)} '::' fields"
            )
        return pd.DataFrame(
            [r if len(r) == len(cols) else [""] * len(cols) for r in rows], columns=cols
        ), bad

    movies, _ = dat("movies.dat", ["item_id", "title", "genres"])
    items = items_frame(
        pd.DataFrame(
            {
                "item_id": movies["item_id"],
                "title": movies["title"],
                "categories": _genres(movies["genres"]),
            }
        )
    )
    users = None
    if (folder / "users.dat").exists():
        u, _ = dat("users.dat", ["user_id", "gender", "age", "occupation", "zip"])
        users = pd.DataFrame(
            {
                "user_id": u["user_id"],
                "attributes": [
                    {"gender": g, "age": int(a), "occupation": int(o), "zip": z}
                    for g, a, o, z in zip(
                        u["gender"], u["age"], u["occupation"], u["zip"], strict=True
                    )
                ],
            }
        )
    ratings, bad = dat("ratings.dat", ["user_id", "item_id", "value", "timestamp"])
    v = EventValidator(
        ValidationOptions(default_type="rating", rating_range=(1, 5), unknown_items=unknown_items),  # type: ignore[arg-type]
        known_items=items["item_id"].tolist(),
        source=f"{name}/ratings.dat",
    )
    ev = _drop_unparsable(ratings, bad, v, "'::' fields")
    return _finish(name, [v], [ev], items, users)


def _drop_unparsable(
    raw: pd.DataFrame, bad: list[int], v: EventValidator, what: str
) -> pd.DataFrame:
    from interestlens.data.validation import Rejection

    keep = np.ones(len(raw), dtype=bool)
    keep[np.asarray(bad, dtype=int) - 1] = False
    v.report.rejections.extend(Rejection(r, f"wrong number of {what}") for r in bad)
    ev = v.validate(raw[keep], rows=np.flatnonzero(keep) + 1) if keep.any() else empty_events()
    v.report.rejections.sort(key=lambda r: r.row)
    return ev


ML100K_GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]


def load_100k(path: str | Path, *, name: str = "ml-100k", unknown_items: str = "reject") -> Dataset:
    """Load the ml-100k layout (``u.data`` tab-separated, ``u.item`` and ``u.user`` pipe-separated)."""
    folder = Path(path)
    _require(folder, "u.data", "u.item")
    item_rows = [
        ln.split("|")
        for ln in (folder / "u.item").read_text(encoding="latin-1").splitlines()
        if ln.strip()
    ]
    genre_names = ML100K_GENRES
    if (folder / "u.genre").exists():
        pairs = [
            ln.split("|")
            for ln in (folder / "u.genre").read_text(encoding="latin-1").splitlines()
            if ln.strip()
        ]
        genre_names = [g for g, _ in sorted(pairs, key=lambda p: int(p[1]))]
    items = items_frame(
        pd.DataFrame(
            {
                "item_id": [r[0] for r in item_rows],
                "title": [r[1] for r in item_rows],
                "categories": [
                    [
                        g
                        for g, flag in zip(genre_names, r[5 : 5 + len(genre_names)], strict=False)
                        if flag == "1" and g != "unknown"
                    ]
                    for r in item_rows
                ],
                "attributes": [
                    {"release_date": r[2], "imdb_url": r[4]} if len(r) > 4 else {}
                    for r in item_rows
                ],
            }
        )
    )
    users = None
    if (folder / "u.user").exists():
        urows = [
            ln.split("|")
            for ln in (folder / "u.user").read_text(encoding="latin-1").splitlines()
            if ln.strip()
        ]
        users = pd.DataFrame(
            {
                "user_id": [r[0] for r in urows],
                "attributes": [
                    {"age": int(r[1]), "gender": r[2], "occupation": r[3], "zip": r[4]}
                    for r in urows
                ],
            }
        )
    lines = [
        ln.split("\t")
        for ln in (folder / "u.data").read_text(encoding="latin-1").splitlines()
        if ln.strip()
    ]
    bad = [i + 1 for i, r in enumerate(lines) if len(r) != 4]
    ratings = pd.DataFrame(
        [r if len(r) == 4 else [""] * 4 for r in lines],
        columns=["user_id", "item_id", "value", "timestamp"],
    )
    v = EventValidator(
        ValidationOptions(default_type="rating", rating_range=(1, 5), unknown_items=unknown_items),  # type: ignore[arg-type]
        known_items=items["item_id"].tolist(),
        source=f"{name}/u.data",
    )
    ev = _drop_unparsable(ratings, bad, v, "tab-separated fields")
    return _finish(name, [v], [ev], items, users)
