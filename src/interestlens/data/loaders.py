"""One entry point for every dataset: known names, folders of a known layout, and event files.

``load("ml-latest-small")`` needs nothing else; the other known datasets load from a path;
a folder is recognised by the files it holds; any other CSV/TSV/Parquet/JSONL file is read as
events, its columns matched to the schema by name or by an explicit mapping.
"""

from __future__ import annotations

import csv
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

import pandas as pd

from interestlens.data import amazon, jester, movielens, msweb
from interestlens.data.bandit import OBD_POLICIES, BanditLog, load_obd
from interestlens.data.catalogue import read_items
from interestlens.data.dataset import Dataset, items_frame
from interestlens.data.readers import detect_format, iter_event_chunks
from interestlens.data.schema import Item
from interestlens.data.validation import (
    EventValidator,
    UnknownItems,
    ValidationOptions,
    empty_events,
)

_MOVIELENS = (
    "F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and "
    "Context. ACM Transactions on Interactive Intelligent Systems 5(4):19."
)
_LATEST_FILES = "ratings.csv and movies.csv (tags.csv optional)"


@dataclass(frozen=True)
class DatasetInfo:
    """A known dataset: what it is, whom to cite, and the files its folder must hold."""

    name: str
    description: str
    citation: str
    files: str
    bundled: bool
    loader: Callable[..., Dataset | BanditLog]

    @property
    def needs_path(self) -> bool:
        """Whether :func:`load` needs ``path=`` for it."""
        return not self.bundled

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as plain data (without the loader)."""
        return {
            "name": self.name,
            "description": self.description,
            "bundled": self.bundled,
            "needs_path": self.needs_path,
            "citation": self.citation,
            "files": self.files,
            "returns": "BanditLog" if self.loader is load_obd else "Dataset",
        }


_INFOS = (
    DatasetInfo(
        "ml-latest-small",
        "MovieLens latest, small: 100,836 ratings (0.5-5) and 3,683 tag applications "
        "by 610 users on 9,742 movies with titles and genres (1996-2018). Ships with the package.",
        _MOVIELENS,
        _LATEST_FILES,
        True,
        partial(movielens.load_latest, name="ml-latest-small"),
    ),
    DatasetInfo(
        "ml-latest",
        "MovieLens latest, full: about 33M ratings and 2M tags on 86,000 movies.",
        _MOVIELENS,
        _LATEST_FILES,
        False,
        partial(movielens.load_latest, name="ml-latest"),
    ),
    DatasetInfo(
        "ml-25m",
        "MovieLens 25M: 25M ratings and 1M tags by 162,000 users on 62,000 movies (1995-2019).",
        _MOVIELENS,
        _LATEST_FILES,
        False,
        partial(movielens.load_latest, name="ml-25m"),
    ),
    DatasetInfo(
        "ml-1m",
        "MovieLens 1M: 1,000,209 ratings (1-5) by 6,040 users with demographics "
        "on 3,706 movies (2000-2003).",
        _MOVIELENS,
        "ratings.dat and movies.dat (users.dat optional)",
        False,
        movielens.load_1m,
    ),
    DatasetInfo(
        "ml-100k",
        "MovieLens 100K: 100,000 ratings (1-5) by 943 users with demographics "
        "on 1,682 movies (1997-1998).",
        _MOVIELENS,
        "u.data and u.item (u.user and u.genre optional)",
        False,
        movielens.load_100k,
    ),
    DatasetInfo(
        "jester",
        "Jester jokes: continuous ratings (-10 to 10) with the full text of every joke; "
        "the Jester5k sample has 363,209 ratings by 5,000 users on 100 jokes. No timestamps.",
        "K. Goldberg, T. Roeder, D. Gupta and C. Perkins. 2001. Eigentaste: A Constant Time "
        "Collaborative Filtering Algorithm. Information Retrieval 4(2):133-151.",
        "ratings.csv and jokes.csv (or jester_ratings.dat and jester_items.dat)",
        False,
        jester.load_jester,
    ),
    DatasetInfo(
        "amazon",
        "Amazon 5-core reviews of one category (e.g. Musical Instruments: 10,261 reviews by "
        "1,429 users of 900 items): 1-5 stars with the reviewer's headline and text, items with "
        "titles, prices and a category. Each review loads as a rating and a review event; "
        "timestamps are whole days, so same-day events keep file order.",
        "R. He and J. McAuley. 2016. Ups and Downs: Modeling the Visual Evolution of Fashion "
        "Trends with One-Class Collaborative Filtering. WWW 2016.",
        "reviews_<Category>_5.json.gz (or .json), optionally <...>_meta_5.csv",
        False,
        amazon.load_amazon,
    ),
    DatasetInfo(
        "msweb",
        "Anonymous Microsoft Web Data: which of 294 titled areas of microsoft.com each "
        "anonymous user visited in one week of 1998; 32,711 training and 5,000 test users. "
        "No timestamps.",
        "J. S. Breese, D. Heckerman and C. Kadie. 1998. Empirical Analysis of Predictive "
        "Algorithms for Collaborative Filtering. UAI 1998 (MSR-TR-98-12).",
        "anonymous-msweb.data and anonymous-msweb.test",
        False,
        msweb.load_msweb,
    ),
    DatasetInfo(
        "obd",
        "Open Bandit Dataset (ZOZOTOWN): logged clicks with true propensities from a uniform "
        "random and a Bernoulli Thompson sampling policy, 3 positions, campaigns all/men/women. "
        "Loads as a BanditLog for off-policy evaluation.",
        "Y. Saito, S. Aihara, M. Matsutani and Y. Narita. 2021. Open Bandit Dataset and "
        "Pipeline: Towards Realistic and Reproducible Off-Policy Evaluation. NeurIPS Datasets "
        "and Benchmarks (arXiv:2008.07146).",
        "random/ and bts/ folders, each with all/, men/ and women/ holding <campaign>.csv "
        "and item_context.csv",
        False,
        load_obd,
    ),
)
REGISTRY: dict[str, DatasetInfo] = {info.name: info for info in _INFOS}


def _known() -> str:
    return ", ".join(REGISTRY)


def _info(name: str) -> DatasetInfo:
    if name not in REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; known datasets are {_known()}")
    return REGISTRY[name]


def _check_options(what: str, loader: Callable[..., Any], options: Mapping[str, Any]) -> None:
    params = inspect.signature(loader).parameters
    allowed = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"{what} takes no option(s) {unknown}; its options are {allowed}")


def _csv_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        return next(csv.reader(fh), [])


def _detect_folder(folder: Path) -> str:
    """Name the registry layout that a folder holds."""
    has = {p.name for p in folder.iterdir()}
    if {"ratings.csv", "movies.csv"} <= has:
        return "ml-latest"
    if "ratings.dat" in has:
        return "ml-1m"
    if "u.data" in has:
        return "ml-100k"
    if "jokes.csv" in has or "jester_ratings.dat" in has:
        return "jester"
    if has & set(msweb.FILES.values()):
        return "msweb"
    if any(f.startswith("reviews_") and f.endswith((".json.gz", ".json")) for f in has):
        return "amazon"
    if (
        any((folder / p).is_dir() for p in (*OBD_POLICIES, "all", "men", "women"))
        or "item_context.csv" in has
        or any("propensity_score" in _csv_header(folder / f) for f in has if f.endswith(".csv"))
    ):
        return "obd"
    layouts: dict[str, list[str]] = {}
    for info in _INFOS:
        layouts.setdefault(info.files, []).append(info.name)
    raise ValueError(
        f"{folder}: no known dataset layout; expected one of: "
        + "; ".join(f"{', '.join(names)}: {files}" for files, names in layouts.items())
    )


def _load_event_file(
    path: Path,
    *,
    mapping: Mapping[str, str] | None = None,
    items: str | Path | pd.DataFrame | Iterable[Item] | None = None,
    default_type: str | None = None,
    rating_range: tuple[float, float] | None = None,
    timestamp_unit: str = "s",
    unknown_items: UnknownItems = "reject",
    fmt: str | None = None,
    delimiter: str | None = None,
    chunk_size: int = 200_000,
    progress: bool | None = None,
    name: str | None = None,
) -> Dataset:
    items_report = None
    if isinstance(items, str | Path):
        items_df, items_report = read_items(items)
    else:
        items_df = items_frame(items)
    opts = ValidationOptions(
        default_type=default_type,
        rating_range=rating_range,
        timestamp_unit=timestamp_unit,
        unknown_items=unknown_items,
    )
    known = None if items is None else items_df["item_id"].tolist()
    v = EventValidator(opts, known_items=known, source=str(path))
    v.report.items = items_report
    frames = list(
        iter_event_chunks(
            path,
            v,
            mapping=mapping,
            fmt=fmt,
            chunk_size=chunk_size,
            progress=progress,
            delimiter=delimiter,
        )
    )
    events = pd.concat(frames, ignore_index=True) if frames else empty_events()
    v.report.rejections.sort(key=lambda r: r.row)
    if v.created_items:
        created = items_frame([Item(i) for i in v.created_items])
        items_df = pd.concat([items_df, created], ignore_index=True)
    return Dataset(events, items_df, name=name or path.stem, report=v.report)


def load(
    name_or_path: str | Path, *, path: str | Path | None = None, **options: Any
) -> Dataset | BanditLog:
    r"""Load a known dataset, a folder in a known layout, or a file of events.

    Parameters
    ----------
    name_or_path
        A name from :func:`available` (``"ml-latest-small"``, ``"ml-1m"``, ``"obd"``, ...);
        or a folder, whose layout is recognised from its files (``ratings.csv`` with
        ``movies.csv``: MovieLens latest; ``ratings.dat``: ml-1m; ``u.data``: ml-100k;
        ``jokes.csv``: Jester; ``anonymous-msweb.*``: msweb; ``random/`` or ``bts/``, or a
        CSV with ``propensity_score``: Open Bandit); or a file. An msweb ``.data``/``.test``
        file and an Open Bandit log CSV load as such; any other ``.csv``, ``.tsv``,
        ``.parquet`` or ``.jsonl`` file (``.gz`` too) loads as events.
    path
        Where a known dataset lives; required for all but the bundled ones.
    **options
        Passed to the loader: for known datasets, e.g. ``unknown_items="create"``,
        ``split="all"`` (msweb), ``policy="bts"`` or ``campaign="men"`` (obd). For event
        files: ``mapping`` (``{schema_field: column}``; other columns are matched by name
        or alias such as ``userId``/``movieId``/``rating``), ``default_type`` (event type
        when there is no type column), ``items`` (a DataFrame, :class:`Item` records, or
        the path of an item file, read by :func:`~interestlens.data.catalogue.read_items`
        with its rejections in ``report.items``; events naming other items are then
        rejected, or create items with ``unknown_items="create"``), ``rating_range``, ``timestamp_unit``, ``fmt``,
        ``delimiter``, ``chunk_size``, ``progress``, ``name``.

    Returns
    -------
    Dataset or BanditLog
        A :class:`~interestlens.data.bandit.BanditLog` for the Open Bandit Dataset, a
        :class:`~interestlens.data.dataset.Dataset` otherwise. Either carries ``report``,
        listing every refused row with its row number and reason (sorted by row).

    Raises
    ------
    ValueError
        An unknown name (the message lists the known ones), a known name that needs a path
        but got none (the message says which files to point at), an unknown option, a
        folder in no known layout, or an event file without rows (``"FILE: no rows"``).
    FileNotFoundError
        A path that does not exist.

    Examples
    --------
    >>> ds = load("ml-latest-small")
    >>> ds.n_users, ds.n_items, ds.report.rejected
    (610, 9742, 0)
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "clicks.csv"
    >>> _ = f.write_text("visitor,product,when\n7,p1,2024-05-01T10:00:00Z\n,p2,2024-05-01\n")
    >>> ds = load(f, mapping={"user_id": "visitor", "item_id": "product",
    ...                       "timestamp": "when"}, default_type="click")
    >>> ds.events[["user_id", "item_id", "type"]].values.tolist()
    [['7', 'p1', 'click']]
    >>> [(r.row, r.reason) for r in ds.report.rejections]
    [(2, 'missing user_id')]
    """
    if isinstance(name_or_path, str) and name_or_path in REGISTRY:
        info = REGISTRY[name_or_path]
        if path is None and not info.bundled:
            raise ValueError(
                f"{info.name} is not bundled: pass path= pointing at the folder holding "
                f"{info.files}"
            )
        _check_options(info.name, info.loader, options)
        return info.loader(path, **options)
    if path is not None:
        raise ValueError(
            f"{str(name_or_path)!r} is not a known dataset name (known: {_known()}); "
            "to load a file or folder, pass it as the first argument"
        )
    target = Path(name_or_path).expanduser()
    if target.is_dir():
        kind = _detect_folder(target)
        if kind == "ml-latest":
            options.setdefault("name", target.name)
        loader = REGISTRY[kind].loader
        _check_options(f"{target} ({kind} layout)", loader, options)
        return loader(target, **options)
    if target.is_file():
        if target.suffix in (".data", ".test"):
            _check_options(f"{target} (msweb file)", msweb.load_msweb, options)
            return msweb.load_msweb(target, **options)
        fmt = options.get("fmt") or detect_format(target)
        if fmt == "csv" and not target.name.endswith(".gz"):
            header = _csv_header(target)
            if "propensity_score" in header or "action_prob" in header:
                _check_options(f"{target} (Open Bandit log)", load_obd, options)
                return load_obd(target, **options)
        _check_options(f"{target} (event file)", _load_event_file, options)
        return _load_event_file(target, **options)
    if isinstance(name_or_path, Path) or len(target.parts) > 1 or target.suffix:
        raise FileNotFoundError(f"{target}: no such file or folder")
    raise ValueError(
        f"unknown dataset {str(name_or_path)!r}; known datasets are {_known()} "
        "(or give the path of a file or folder)"
    )


def available() -> list[dict[str, Any]]:
    """List the known datasets: name, description, bundled, needs_path, citation.

    Examples
    --------
    >>> [d["name"] for d in available() if d["bundled"]]
    ['ml-latest-small']
    """
    keys = ("name", "description", "bundled", "needs_path", "citation")
    return [{k: info.to_dict()[k] for k in keys} for info in _INFOS]


def describe(name: str) -> dict[str, Any]:
    """Describe one dataset; a bundled one also gets its ``Dataset.summary()``.

    Examples
    --------
    >>> d = describe("ml-1m")
    >>> d["needs_path"], d["files"]
    (True, 'ratings.dat and movies.dat (users.dat optional)')
    >>> describe("ml-latest-small")["summary"]["events"]
    104519
    """
    info = _info(name)
    out = info.to_dict()
    if info.bundled:
        out["summary"] = cast(Dataset, info.loader(None)).summary()
    return out
