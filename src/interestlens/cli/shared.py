"""What several commands share: options, the user-facing error, value parsers, opening an engine."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from interestlens.data import Dataset
    from interestlens.engine import Config, Engine


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DataDirOpt = Annotated[
    Path, typer.Option("--data-dir", help="Where the store and model artefacts live.")
]
DEFAULT_DATA_DIR = Path(".interestlens")
DatasetOpt = Annotated[
    str | None,
    typer.Option("--dataset", help="Dataset name or path (default: the bundled ml-latest-small)."),
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML file with an \\[engine] table.")
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads",
        help="Threads for the fit's heavy work (default: $INTERESTLENS_THREADS, else 1); "
        "more than 1 only on cores that no other busy process shares.",
    ),
]
MapOpt = Annotated[
    str | None,
    typer.Option(
        "--map",
        help="Event columns FIELD=COLUMN,... (e.g. user_id=customer,item_id=sku,type=action).",
    ),
]
EventTypeOpt = Annotated[
    str | None,
    typer.Option("--type", help="Event type for files without a type column (e.g. purchase)."),
]
ItemsOpt = Annotated[
    Path | None,
    typer.Option(
        "--items",
        help="Item file (CSV, TSV, Parquet, JSONL): ids, titles, descriptions, categories, "
        "tags; other columns become attributes.",
    ),
]
UsersOpt = Annotated[
    Path | None,
    typer.Option("--users", help="User file: ids; other columns become attributes."),
]
ItemMapOpt = Annotated[
    str | None,
    typer.Option(
        "--item-map",
        help="Item columns FIELD=COLUMN,... for item_id, title, text, categories, tags, "
        "attributes, created_at (e.g. item_id=sku,title=name,text=description).",
    ),
]
UserMapOpt = Annotated[
    str | None,
    typer.Option(
        "--user-map", help="User columns FIELD=COLUMN,... for user_id (e.g. user_id=customer)."
    ),
]
ListSeparatorOpt = Annotated[
    str,
    typer.Option(
        "--list-separator", help="Separates the categories (tags) given in one item column."
    ),
]
UnknownItemsOpt = Annotated[
    str,
    typer.Option(
        "--unknown-items",
        help="reject or create the items of events that the catalogue lacks "
        "(when there is a catalogue).",
    ),
]
RatingRangeOpt = Annotated[
    str | None, typer.Option("--rating-range", help="Accepted rating values LOW,HIGH.")
]
TimestampUnitOpt = Annotated[
    str, typer.Option("--timestamp-unit", help="Unit of numeric timestamps: s, ms, us, ns.")
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format", help="Events: csv, tsv, parquet or jsonl (default: from the extension)."
    ),
]

_MAP_EXAMPLES = {
    "--map": "user_id=userId",
    "--item-map": "item_id=sku",
    "--user-map": "user_id=uid",
}


def parse_mapping(text: str | None, option: str = "--map") -> dict[str, str] | None:
    """``FIELD=COLUMN,...`` as a dict, or a one-line error naming the option.

    Examples
    --------
    >>> parse_mapping("user_id=customer, item_id=sku")
    {'user_id': 'customer', 'item_id': 'sku'}
    """
    if not text:
        return None
    mapping: dict[str, str] = {}
    for part in text.split(","):
        if "=" not in part:
            raise CLIError(
                f"{option} entry {part!r} is not FIELD=COLUMN "
                f"(e.g. {_MAP_EXAMPLES.get(option, 'a=b')})"
            )
        field, column = (s.strip() for s in part.split("=", 1))
        mapping[field] = column
    return mapping


def parse_range(text: str | None) -> tuple[float, float] | None:
    """``LOW,HIGH`` as two floats, or a one-line error naming ``--rating-range``.

    Examples
    --------
    >>> parse_range("0.5,5")
    (0.5, 5.0)
    """
    if not text:
        return None
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise CLIError(f"--rating-range {text!r} is not LOW,HIGH (e.g. 0.5,5)") from None
    return lo, hi


def parse_list(option: str, text: str, kind: type) -> list[Any]:
    """Comma-separated values of one type, or a one-line error naming the option.

    Examples
    --------
    >>> parse_list("--seeds", "0, 1,2", int)
    [0, 1, 2]
    """
    try:
        values = [kind(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CLIError(
            f"{option} {text!r} is not a comma-separated list of {kind.__name__}s"
        ) from None
    if not values:
        raise CLIError(f"{option} is empty")
    return values


def load_config(path: Path | None, data_dir: Path, threads: int | None = None) -> Config:
    """The engine settings of a TOML file (defaults without one), living in ``data_dir``.

    ``threads``, when given, replaces the file's ``threads``.
    """
    from dataclasses import replace

    from interestlens.engine import Config

    if threads is not None and threads < 1:
        raise CLIError(f"--threads must be at least 1, got {threads}")
    config = replace(Config.from_toml(path) if path else Config(), data_dir=data_dir)
    return config if threads is None else replace(config, threads=threads)


def fitted_engine(data_dir: Path) -> Engine:
    """The engine saved in ``data_dir`` with every event stored since, or a one-line error."""
    from interestlens.engine import Engine

    engine = Engine.open(data_dir) if data_dir.is_dir() else None
    if engine is None or not engine.fitted:
        raise CLIError(
            f"no fitted engine in {data_dir}: run `interestlens fit` (or `interestlens demo`) first"
        )
    return engine


def load_dataset(name: str | None) -> Dataset:
    """A dataset by name or path (default the bundled ml-latest-small) that holds events."""
    from interestlens.data import Dataset
    from interestlens.data.loaders import load

    ds = load(name or "ml-latest-small")
    if not isinstance(ds, Dataset):
        raise CLIError(f"{name} is a bandit log, not events")
    if len(ds.events) == 0:
        raise CLIError(f"{name}: no rows")
    return ds
