"""The ``interestlens`` command line.

Every command takes ``--json`` and then prints exactly one JSON document on stdout;
progress and logs go to stderr. Errors are one line on stderr and exit code 2.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import typer.core
from rich.console import Console
from rich.table import Table
from rich.text import Text

from interestlens import __version__


def _no_flag_hints(params: list[Any]) -> list[Any]:
    """Blank the value hint (``<bool>``) that help would show after each flag."""
    for p in params:
        if getattr(p, "is_flag", False) and p.metavar is None:
            p.metavar = ""
    return params


class _Command(typer.core.TyperCommand):
    """A command whose help shows no value hint after a flag."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _no_flag_hints(super().get_params(ctx))


class _Group(typer.core.TyperGroup):
    """The command group, whose help shows no value hint after a flag."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _no_flag_hints(super().get_params(ctx))


app = typer.Typer(
    name="interestlens",
    help="User-interest engine: profiles, recommendations, exploration and evaluation.",
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _reflow(doc: str) -> str:
    """A docstring as help text: each paragraph on one line, so the terminal wraps it."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def command(**kwargs: Any) -> Callable[[F], F]:
    """Register a command whose help is its docstring, reflowed to the terminal's width."""

    def register(fn: F) -> F:
        help_text = kwargs.pop("help", None) or _reflow(fn.__doc__ or "")
        return app.command(cls=_Command, help=help_text, **kwargs)(fn)  # type: ignore[return-value]

    return register


#: Width of stdout when it is not a terminal: wide enough that no table cuts a value.
PIPE_WIDTH = 10_000


def _stdout_console() -> Console:
    """The terminal's width on a terminal; never cut a value when piped or redirected."""
    return Console() if sys.stdout.isatty() else Console(width=PIPE_WIDTH)


out = _stdout_console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DataDirOpt = Annotated[
    Path, typer.Option("--data-dir", help="Where the store and model artefacts live.")
]
DEFAULT_DATA_DIR = Path(".interestlens")
DatasetOpt = Annotated[
    str | None,
    typer.Option("--dataset", help="Dataset name or path (default: the bundled ml-latest-small)."),
]


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def _say(*parts: str | tuple[str, str], console: Console | None = None) -> None:
    """Print one line of plain text: data is never read as markup or emoji codes.

    Each part is a string, or a ``(string, style)`` pair for our own emphasis.
    """
    (console or out).print(Text.assemble(*parts), soft_wrap=True)


def _row(table: Table, *cells: str | Text) -> None:
    """Add a table row; a string cell is data, shown as it is (a :class:`Text` keeps its style)."""
    table.add_row(*(c if isinstance(c, Text) else Text(c) for c in cells))


def _title(text: str) -> Text:
    """A table title that may hold data (ids, paths), never read as markup."""
    return Text(text, style="table.title")


def _fail(message: str) -> None:
    """Print ``error: MESSAGE`` as one line on stderr and exit with code 2.

    It never fails itself: if the console cannot print the message, it goes to stderr raw.
    """
    text = message.strip() or "error"
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    try:
        err.print(Text.assemble(("error:", "bold red"), " ", line), soft_wrap=True)
    except Exception:
        sys.stderr.write(f"error: {line}".encode("ascii", "backslashreplace").decode() + "\n")
    raise typer.Exit(2)


def handles_errors(fn: F) -> F:
    """Turn any exception into one clear line on stderr and exit code 2.

    Set ``INTERESTLENS_DEBUG=1`` to see the traceback instead.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if os.environ.get("INTERESTLENS_DEBUG"):
                raise
            try:
                text = str(exc).strip()
            except Exception:
                text = ""
            msg = text.splitlines()[0] if text else type(exc).__name__
            if not isinstance(exc, CLIError | ValueError | FileNotFoundError):
                msg = f"{type(exc).__name__}: {msg}"
            _fail(msg)

    return wrapper  # type: ignore[return-value]


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float (no score, say) replaced by ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _emit_json(doc: Any) -> None:
    """Print one strict JSON document (no NaN, which JSON lacks: ``null`` instead)."""
    text = json.dumps(_finite(doc), indent=2, default=str, allow_nan=False)
    sys.stdout.write(text + "\n")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"interestlens {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log progress details to stderr.")
    ] = False,
) -> None:
    """interestlens: understand user interests, recommend, explore, evaluate."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _store_url(store: str | None, data_dir: Path) -> str:
    return store or f"sqlite://{data_dir / 'events.db'}"


def _parse_mapping(text: str | None, option: str = "--map") -> dict[str, str] | None:
    if not text:
        return None
    examples = {"--map": "user_id=userId", "--item-map": "item_id=sku", "--user-map": "user_id=uid"}
    mapping: dict[str, str] = {}
    for part in text.split(","):
        if "=" not in part:
            raise CLIError(
                f"{option} entry {part!r} is not FIELD=COLUMN (e.g. {examples.get(option, 'a=b')})"
            )
        field, column = (s.strip() for s in part.split("=", 1))
        mapping[field] = column
    return mapping


def _parse_range(text: str | None) -> tuple[float, float] | None:
    if not text:
        return None
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise CLIError(f"--rating-range {text!r} is not LOW,HIGH (e.g. 0.5,5)") from None
    return lo, hi


def _summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title=_title(f"dataset {summary.get('name') or ''}".strip()), show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    for key, value in summary.items():
        if key == "name":
            continue
        if isinstance(value, dict):
            value = ", ".join(
                f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}" for k, v in value.items()
            )
        elif isinstance(value, int):
            value = f"{value:,}"
        _row(table, key.replace("_", " "), str(value))
    return table


@command()
@handles_errors
def datasets(
    name: Annotated[str | None, typer.Argument(help="Describe this dataset.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List the bundled and known datasets, or describe one."""
    from interestlens import datasets as ds_mod

    if name is None:
        rows = ds_mod.available()
        if json_out:
            _emit_json({"datasets": rows})
            return
        table = Table(title="datasets")
        for col in ("name", "bundled", "needs path", "description"):
            table.add_column(col)
        for r in rows:
            _row(
                table,
                r["name"],
                "yes" if r["bundled"] else "",
                "yes" if r["needs_path"] else "",
                r["description"],
            )
        out.print(table)
        return
    info = ds_mod.describe(name)
    if json_out:
        _emit_json(info)
        return
    for key, value in info.items():
        if key == "summary":
            out.print(_summary_table(value))
        else:
            _say((f"{key}:", "bold"), f" {value}")


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


def _read_catalogue(
    items: Path | None,
    users: Path | None,
    item_map: str | None,
    user_map: str | None,
    list_separator: str,
) -> tuple[Any, Any, list[tuple[str, Any]]]:
    """The item and user files read (``None`` where not given) and their reports."""
    from interestlens.data import read_items, read_users

    items_df = users_df = None
    reports: list[tuple[str, Any]] = []
    if items is not None:
        items_df, report = read_items(
            items,
            mapping=_parse_mapping(item_map, "--item-map"),
            list_separator=list_separator,
        )
        reports.append(("items", report))
    elif item_map:
        raise CLIError("--item-map applies to an --items file")
    if users is not None:
        users_df, report = read_users(users, mapping=_parse_mapping(user_map, "--user-map"))
        reports.append(("users", report))
    elif user_map:
        raise CLIError("--user-map applies to a --users file")
    return items_df, users_df, reports


def _source_doc(kind: str, report: Any) -> dict[str, Any]:
    """One file's part of a JSON document: what it held, what was kept, what was refused."""
    doc = {
        "source": report.source,
        "kind": kind,
        "stored": report.loaded,
        "rejected": report.rejected,
        "rejections": [r.to_dict() for r in report.rejections],
    }
    if kind == "events":
        doc.update(duplicates=report.duplicates, created_items=report.created_items)
    return doc


def _print_sources(sources: list[dict[str, Any]]) -> None:
    """A line per file read (what it held, how many rows were refused), then the refusals."""
    for src in sources:
        _say(
            f"{src['source']}: {src['stored']:,} {src['kind']}"
            + (f", {src['rejected']:,} rejected" if src["rejected"] else "")
        )
    _print_rejections(sources)


def _print_rejections(sources: list[dict[str, Any]], limit: int = 20) -> int:
    """The first ``limit`` refused rows of every file, each with its file and row number."""
    rejected = [dict(r, source=s["source"]) for s in sources for r in s["rejections"]]
    if rejected:
        _say(
            (f"{len(rejected):,} rows rejected", "yellow"),
            f" (first {limit}):" if len(rejected) > limit else ":",
        )
        for r in rejected[:limit]:
            _say(f"  {r['source']} row {r['row']}: {r['reason']}")
    return len(rejected)


@command()
@handles_errors
def ingest(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            help="Event files (CSV, TSV, Parquet, JSONL), dataset folders, or bundled dataset names."
        ),
    ] = None,
    items: ItemsOpt = None,
    users: UsersOpt = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Store URL: sqlite://PATH or postgresql://...; default DATA_DIR/events.db.",
        ),
    ] = None,
    mapping: MapOpt = None,
    item_map: ItemMapOpt = None,
    user_map: UserMapOpt = None,
    event_type: EventTypeOpt = None,
    list_separator: ListSeparatorOpt = "|",
    unknown_items: UnknownItemsOpt = "reject",
    rating_range: RatingRangeOpt = None,
    timestamp_unit: TimestampUnitOpt = "s",
    file_format: FormatOpt = None,
    rejections: Annotated[
        Path | None, typer.Option("--rejections", help="Write rejected rows to this CSV.")
    ] = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_out: JsonOpt = False,
) -> None:
    """Validate event, item and user files and write them to the store.

    Items and users are upserted first (a row replaces the stored one with its id), so
    events are checked against the catalogue; events are appended, and re-ingesting
    stores nothing twice.
    """
    from interestlens import datasets as ds_mod
    from interestlens.data import Dataset
    from interestlens.data.validation import LoadReport, ValidationOptions
    from interestlens.store import open_store

    files = files or []
    if not files and items is None and users is None:
        raise CLIError("nothing to ingest: give event files, --items FILE or --users FILE")
    options = ValidationOptions(
        default_type=event_type,
        rating_range=_parse_range(rating_range),
        timestamp_unit=timestamp_unit,
        unknown_items=unknown_items,  # type: ignore[arg-type]
    )
    parsed_map = _parse_mapping(mapping)
    items_df, users_df, catalogue = _read_catalogue(
        items, users, item_map, user_map, list_separator
    )
    reports: list[LoadReport] = []
    with open_store(_store_url(store, data_dir)) as st:
        if items_df is not None:
            st.upsert_items(items_df)
        if users_df is not None:
            st.upsert_users(users_df)
        for f in files:
            if Path(f).is_dir() or (
                not Path(f).exists() and f in {d["name"] for d in ds_mod.available()}
            ):
                ds = ds_mod.load(f)
                if not isinstance(ds, Dataset):
                    raise CLIError(
                        f"{f} is a bandit log, not events: read it with `interestlens ope`"
                    )
                result = st.append_dataset(ds)
                rep = ds.report or LoadReport(source=f)
                rep.loaded, rep.duplicates = result.stored, result.duplicates
            else:
                rep = st.ingest(f, mapping=parsed_map, options=options, fmt=file_format)
            if rep.loaded + rep.rejected + rep.duplicates == 0:
                raise CLIError(f"{f}: no rows")
            reports.append(rep)
        total_in_store = st.count()
    entities = {kind: _source_doc(kind, r) for kind, r in catalogue}
    doc = {
        "store": _store_url(store, data_dir),
        "stored": sum(r.loaded for r in reports),
        "rejected": sum(r.rejected for r in reports),
        "duplicates": sum(r.duplicates for r in reports),
        "events_in_store": total_in_store,
        "files": [
            {k: v for k, v in _source_doc("events", r).items() if k not in ("kind", "rejections")}
            for r in reports
        ],
        "rejections": [
            dict(r.to_dict(), source=rep.source) for rep in reports for r in rep.rejections
        ],
        "items": entities.get("items"),
        "users": entities.get("users"),
    }
    sources = [*entities.values(), *(_source_doc("events", r) for r in reports)]
    if rejections is not None:
        import csv

        with open(rejections, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["source", "row", "reason"])
            for src in sources:
                for r in src["rejections"]:
                    w.writerow([src["source"], r["row"], r["reason"]])
    if json_out:
        _emit_json(doc)
        return
    table = Table(title=_title(f"ingest into {doc['store']}"))
    for col in ("file", "holds", "stored", "already stored", "rejected"):
        table.add_column(col, justify="right" if col not in ("file", "holds") else "left")
    for src in sources:
        _row(
            table,
            str(src["source"]),
            src["kind"],
            f"{src['stored']:,}",
            f"{src['duplicates']:,}" if src["kind"] == "events" else "",
            f"{src['rejected']:,}",
        )
    out.print(table)
    written = [f"{e['stored']:,} {kind}" for kind, e in entities.items()]
    if written:
        _say(f"stored {' and '.join(written)} (new or replaced)")
    if reports:
        if doc["stored"] == 0 and doc["duplicates"]:
            _say(f"stored 0 new events: all {doc['duplicates']:,} were already in the store")
        else:
            _say(f"stored {doc['stored']:,} new events; the store holds {total_in_store:,}")
    n_rejected = _print_rejections(sources)
    if rejections is None and n_rejected > 20:
        _say("  write them all with --rejections FILE.csv")


def _engine_dir(data_dir: Path) -> Path:
    return data_dir / "engine"


def _load_engine(data_dir: Path) -> Any:
    from dataclasses import replace

    from interestlens.engine import Engine

    if not (_engine_dir(data_dir) / "engine.pkl").exists():
        raise CLIError(
            f"no fitted engine in {data_dir}: run `interestlens fit` (or `interestlens demo`) first"
        )
    engine = Engine.load(_engine_dir(data_dir))
    # the engine lives in data_dir now: its slate log and caches go there too
    engine.config = replace(engine.config, data_dir=data_dir)
    return engine


def _load_dataset(dataset: str | None, store: str | None) -> Any:
    from interestlens import datasets as ds_mod
    from interestlens.data import Dataset

    if store:
        from interestlens.store import open_store

        with open_store(store) as st:
            return st.to_dataset()
    ds = ds_mod.load(dataset or "ml-latest-small")
    if not isinstance(ds, Dataset):
        raise CLIError(f"{dataset} is a bandit log, not events")
    if len(ds.events) == 0:
        raise CLIError(f"{dataset}: no rows")
    return ds


def _fit(
    dataset: str | None,
    store: str | None,
    config: Path | None,
    data_dir: Path,
    data: Any = None,
) -> Any:
    """Fit an engine on ``data`` (or the named dataset or store) and save it in ``data_dir``."""
    from dataclasses import replace

    from interestlens.engine import Config, Engine

    cfg = Config.from_toml(config) if config else Config()
    engine = Engine(replace(cfg, data_dir=data_dir))
    saved = _engine_dir(data_dir) / "engine.pkl"
    if saved.exists():  # keep interest ids stable across refits
        engine._state = Engine.load(_engine_dir(data_dir))._state
    engine.fit(data if data is not None else _load_dataset(dataset, store))
    engine.save(_engine_dir(data_dir))
    return engine


def _interest_row(i: Any) -> dict[str, Any]:
    return {
        "interest_id": i.interest_id,
        "level": "broad" if i.level == 0 else "fine",
        "label": i.label,
        "size": i.size,
        "parent": i.parent,
    }


def _profile_doc(prof: Any) -> dict[str, Any]:
    d = prof.to_dict()
    return {
        "user_id": d["user_id"],
        "interests": [
            {k: x[k] for k in ("label", "weight", "trend", "interest_id")} for x in d["interests"]
        ],
        "broad": [
            {k: x[k] for k in ("label", "weight", "trend", "interest_id")} for x in d["broad"]
        ],
        "dislikes": [{k: x[k] for k in ("label", "weight", "interest_id")} for x in d["dislikes"]],
        "texts": [{k: x[k] for k in ("text", "type", "item_id", "sentiment")} for x in d["texts"]],
        "sentiment": d["sentiment"],
        "n_events": d["n_events"],
        "as_of": d["as_of"],
    }


def _print_profile(doc: dict[str, Any], titles: dict[str, str] | None = None) -> None:
    arrows = {
        "rising": Text("↑ rising", style="green"),
        "fading": Text("↓ fading", style="red"),
        "stable": Text("→ stable"),
    }
    table = Table(
        title=_title(
            f"interests of user {doc['user_id']} ({doc['n_events']:,} events, as of {doc['as_of']})"
        )
    )
    table.add_column("interest")
    table.add_column("weight", justify="right")
    table.add_column("trend")
    for x in doc["interests"]:
        _row(table, x["label"], f"{x['weight']:.1%}", arrows[x["trend"]])
    out.print(table)
    if doc["broad"]:
        _say("broad: " + ";  ".join(f"{b['label']} {b['weight']:.0%}" for b in doc["broad"][:5]))
    if doc["dislikes"]:
        _say("dislikes: " + ";  ".join(d["label"] for d in doc["dislikes"][:5]))
    if doc["texts"]:
        shown = doc["texts"][-8:]
        words = ", ".join(f"{t['text']} ({t['sentiment']:+.2f})" for t in shown)
        _say(f"own words ({len(doc['texts'])}, mean sentiment {doc['sentiment']}): {words}")


ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML file with an \\[engine] table.")
]


def _fit_data(
    dataset: str | None,
    store: str | None,
    data_dir: Path,
    events: dict[str, tuple[str, Any]],
    catalogue: tuple[Path | None, Path | None, str | None, str | None, str],
) -> tuple[Any, list[dict[str, Any]]]:
    """What ``fit`` learns from, and a report of each file read for it.

    ``events`` maps each event-file option given on the command line (``--map``, ``--type``,
    ...) to its :func:`interestlens.datasets.load` keyword and value; ``catalogue`` holds
    the item and user files with their mappings.
    """
    from interestlens import datasets as ds_mod
    from interestlens.data import Dataset
    from interestlens.store import open_store

    items, users = catalogue[0], catalogue[1]
    file_options = [flag for flag, (_, v) in events.items() if v] + [
        opt for opt, v in (("--items", items), ("--users", users)) if v is not None
    ]
    if dataset is not None and store is not None:
        raise CLIError("give --dataset or --store, not both")
    named = dataset is not None and (
        Path(dataset).is_dir()
        or (not Path(dataset).exists() and dataset in {d["name"] for d in ds_mod.available()})
    )
    if file_options and (dataset is None or named):
        raise CLIError(
            f"{', '.join(file_options)}: only for a --dataset event file; to fit on the store, "
            "`interestlens ingest` the files first"
        )
    if dataset is None and store is None:
        default = data_dir / "events.db"
        if default.exists():
            with open_store(_store_url(None, data_dir)) as st:
                if st.count():
                    store = _store_url(None, data_dir)
        if store is None:
            _say(
                f"no events in {default}: fitting the bundled ml-latest-small "
                "(`interestlens ingest` your files first, or give --dataset)",
                console=err,
            )
    if store is not None or not file_options:
        return _load_dataset(dataset, store), []
    items_df, users_df, read = _read_catalogue(*catalogue)
    options = {key: v for key, v in events.values() if v}
    if items_df is not None:
        options["items"] = items_df
    ds = ds_mod.load(dataset, **options)  # type: ignore[arg-type]
    if not isinstance(ds, Dataset):
        raise CLIError(f"{dataset} is a bandit log, not events")
    if users_df is not None:
        ds = Dataset(ds.events, ds.items, users_df, name=ds.name, report=ds.report)
    sources = [_source_doc(kind, r) for kind, r in read]
    if ds.report is not None:
        sources.append(_source_doc("events", ds.report))
    if len(ds.events) == 0:
        _print_sources(sources)
        raise CLIError(f"{dataset}: no events to fit on")
    return ds, sources


@command()
@handles_errors
def fit(
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="Dataset name, folder or event file (default: the store in DATA_DIR when it "
            "holds events, else the bundled ml-latest-small).",
        ),
    ] = None,
    items: ItemsOpt = None,
    users: UsersOpt = None,
    store: Annotated[
        str | None, typer.Option("--store", help="Fit on everything in this store instead.")
    ] = None,
    mapping: MapOpt = None,
    item_map: ItemMapOpt = None,
    user_map: UserMapOpt = None,
    event_type: EventTypeOpt = None,
    list_separator: ListSeparatorOpt = "|",
    unknown_items: UnknownItemsOpt = "reject",
    rating_range: RatingRangeOpt = None,
    timestamp_unit: TimestampUnitOpt = "s",
    file_format: FormatOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_out: JsonOpt = False,
) -> None:
    """Fit the engine (embeddings, interest taxonomy, profiles) and save it in DATA_DIR.

    It learns from a --dataset (a name, a folder, or an event file with its --items and
    --users files), from a --store, or else from the store in DATA_DIR when that holds
    events (what `interestlens ingest` wrote), or else from the bundled ml-latest-small.
    """
    events = {
        "--map": ("mapping", _parse_mapping(mapping)),
        "--type": ("default_type", event_type),
        "--unknown-items": ("unknown_items", unknown_items if unknown_items != "reject" else None),
        "--rating-range": ("rating_range", _parse_range(rating_range)),
        "--timestamp-unit": ("timestamp_unit", timestamp_unit if timestamp_unit != "s" else None),
        "--format": ("fmt", file_format),
    }
    data, sources = _fit_data(
        dataset, store, data_dir, events, (items, users, item_map, user_map, list_separator)
    )
    if not json_out:
        _print_sources(sources)
    engine = _fit(dataset, store, config, data_dir, data=data)
    st = engine.state
    doc = {
        "saved": str(_engine_dir(data_dir)),
        "users": st.dataset.n_users,
        "items": len(st.item_ids),
        "broad_interests": len(engine.interests("broad")),
        "fine_interests": len(engine.interests("fine")),
        "sources": sources,
    }
    if json_out:
        _emit_json(doc)
    else:
        _say(
            f"fitted on {doc['users']:,} users and {doc['items']:,} items: "
            f"{doc['broad_interests']} broad and {doc['fine_interests']} fine interests; "
            f"saved to {doc['saved']}"
        )


@command()
@handles_errors
def profile(
    user: Annotated[str, typer.Argument(help="User id.")],
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_out: JsonOpt = False,
) -> None:
    """Show a user's interest profile: interests with weight and trend, dislikes, own words."""
    engine = _load_engine(data_dir)
    if user not in engine.state.profiler._user_pos:
        raise CLIError(f"unknown user {user!r}")
    doc = _profile_doc(engine.profile(user))
    if json_out:
        _emit_json(doc)
    else:
        _print_profile(doc)


@command()
@handles_errors
def recommend(
    user: Annotated[str, typer.Argument(help="User id (an unknown user gets cold-start items).")],
    k: Annotated[int, typer.Option("--k", help="How many items.")] = 10,
    explain: Annotated[
        bool, typer.Option("--explain", help="Say why each item is recommended.")
    ] = False,
    explore: Annotated[
        float,
        typer.Option("--explore", min=0.0, max=1.0, help="0 exploits only; up to 1 explores more."),
    ] = 0.0,
    policy: Annotated[
        str | None,
        typer.Option("--policy", help="Exploration policy (default: the configured one)."),
    ] = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_out: JsonOpt = False,
) -> None:
    """Recommend items for a user through an exploration policy; the slate is logged.

    Each item carries its propensity and whether exploration placed it; the slate's
    request id is what feedback refers to.
    """
    engine = _load_engine(data_dir)
    recs = engine.recommend(user, k=k, explain=explain, explore=explore, policy=policy)
    titles = engine.state.dataset.items.set_index("item_id")["title"]
    items = [
        {
            "item_id": r.item_id,
            "score": r.score,
            "reason": r.reason,
            "explored": r.explored,
            "propensity": r.propensity,
            "title": str(titles.get(r.item_id, "")),
        }
        for r in recs
    ]
    request_id = recs[0].request_id if recs else ""
    if json_out:
        _emit_json({"user_id": user, "request_id": request_id, "items": items})
        return
    table = Table(title=_title(f"recommendations for user {user} (request {request_id})"))
    explored = explore > 0
    cols = ("#", "item", "title", "score") + (("p", "explored") if explored else ())
    for col in cols + (("why",) if explain else ()):
        table.add_column(col, justify="right" if col in ("#", "score", "p") else "left")
    for n, it in enumerate(items, 1):
        score = it["score"]
        row = [str(n), it["item_id"], it["title"], "" if math.isnan(score) else f"{score:.3f}"]
        if explored:
            row += [f"{it['propensity']:.3f}", "yes" if it["explored"] else ""]
        _row(table, *row, *([it["reason"] or ""] if explain else []))
    out.print(table)


@command()
@handles_errors
def interests(
    level: Annotated[str, typer.Option("--level", help="broad, fine or all.")] = "all",
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_out: JsonOpt = False,
) -> None:
    """Show the interest taxonomy: labels, sizes and levels."""
    engine = _load_engine(data_dir)
    rows = [_interest_row(i) for i in engine.interests(level)]
    if json_out:
        _emit_json({"interests": rows})
        return
    broad = [r for r in rows if r["level"] == "broad"]
    fine = [r for r in rows if r["level"] == "fine"]
    table = Table(title=f"{len(broad)} broad and {len(fine)} fine interests")
    for col in ("id", "interest", "items"):
        table.add_column(col, justify="right" if col != "interest" else "left")
    for b in broad or [None]:
        if b is not None:
            _row(table, str(b["interest_id"]), Text(b["label"], style="bold"), f"{b['size']:,}")
        children = [f for f in fine if b is None or f["parent"] == b["interest_id"]]
        for f in sorted(children, key=lambda r: -r["size"]):
            _row(table, str(f["interest_id"]), f"   {f['label']}", f"{f['size']:,}")
    out.print(table)


@command()
@handles_errors
def audience(
    query: Annotated[str, typer.Argument(help="Interest id, label, label term, or free text.")],
    min_weight: Annotated[
        float, typer.Option("--min-weight", help="Lowest profile share of the interest.")
    ] = 0.05,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the audience to this CSV.")
    ] = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_out: JsonOpt = False,
) -> None:
    """Users whose profile holds an interest, for marketing and ad targeting."""
    engine = _load_engine(data_dir)
    frame = engine.audience(query, min_weight=min_weight)
    if out_file is not None:
        frame.to_csv(out_file, index=False)
    doc = {
        "query": query,
        "matched": frame.attrs["how"],
        "interests": [i.label for i in engine.resolve(query)],
        "users": len(frame),
        "audience": frame[["user_id", "weight"]].to_dict(orient="records"),
    }
    if json_out:
        _emit_json(doc)
        return
    _say(
        f"{len(frame):,} users hold {' | '.join(doc['interests'])} (matched by {doc['matched']}) "
        f"with weight >= {min_weight}"
    )
    for r in doc["audience"][:15]:
        _say(f"  {r['user_id']}: {r['weight']:.1%}")
    if out_file is not None:
        _say(f"written to {out_file}")


@command()
@handles_errors
def demo(
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    config: ConfigOpt = None,
    user: Annotated[str, typer.Option("--user", help="User whose profile to show.")] = "1",
    json_out: JsonOpt = False,
) -> None:
    """Fit the default pipeline on the bundled ml-latest-small; show its accuracy, interests, a profile.

    The engine learns from everything but each user's last rating, which then measures
    the default pipeline against each of its own components (temporal leave-last-out,
    full ranking over all items, K = 10, bootstrap intervals over users). The fitted
    engine is saved in --data-dir for profile, recommend and the rest.
    """
    from interestlens.evaluate import evaluate as run_evaluation
    from interestlens.evaluate import make_split

    split = make_split(_load_dataset(None, None), "loo", target_types="rating").for_refit()
    engine = _fit(None, None, config, data_dir, data=split.train)
    pipeline = engine.state.recommender
    models = {"default pipeline": pipeline} if pipeline is not None else {}
    models.update({type(m).__name__: m for m in getattr(pipeline, "models_", [])})
    report = (
        run_evaluation(models, None, split=split, fit=False, n_bootstrap=500) if models else None
    )
    summary = engine.state.dataset.summary()
    prof = _profile_doc(engine.profile(user))
    if json_out:
        _emit_json(
            {
                "dataset": summary,
                "evaluation": report.to_dict() if report is not None else None,
                "interests": [_interest_row(i) for i in engine.interests("broad")],
                "profile": prof,
            }
        )
        return
    out.print(_summary_table(summary))
    if report is not None:
        _print_report(report, report.to_dict(), 10, ("ndcg", "hr", "mrr", "coverage", "novelty"))
    table = Table(title="broad interests")
    table.add_column("interest")
    table.add_column("items", justify="right")
    for i in sorted(engine.interests("broad"), key=lambda i: -i.size):
        _row(table, i.label, f"{i.size:,}")
    out.print(table)
    _print_profile(prof)
    _say(
        "\nnext: interestlens profile USER | interestlens interests | interestlens audience 'space opera'"
    )


@command()
@handles_errors
def evaluate(
    dataset: DatasetOpt = None,
    protocol: Annotated[
        str, typer.Option("--protocol", help="loo (leave-last-out), random or temporal.")
    ] = "loo",
    models: Annotated[
        str, typer.Option("--models", help="Comma-separated model names, e.g. popularity,ease.")
    ] = "popularity",
    k: Annotated[int, typer.Option("--k", help="List length.")] = 10,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write report.md, report.json and report.png here."),
    ] = None,
    target_types: Annotated[
        str | None,
        typer.Option(
            "--target-types", help="Event types that may be held out, e.g. rating (default: all)."
        ),
    ] = None,
    n_bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap resamples of users for the intervals.")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of splits, bootstrap and tests.")] = 0,
    chart_metric: Annotated[
        str, typer.Option("--chart-metric", help="Metric drawn in report.png.")
    ] = "ndcg",
    json_out: JsonOpt = False,
) -> None:
    """Fit models on a split and score them on held-out events, ranking the full catalogue."""
    from interestlens.evaluate import evaluate as run_evaluation
    from interestlens.evaluate import parse_models

    factories = parse_models(models)
    ds = _load_dataset(dataset, None)
    types = [t.strip() for t in target_types.split(",") if t.strip()] if target_types else None
    _say(
        f"evaluating {', '.join(factories)} on {ds.name or dataset} ({protocol}, K={k})",
        console=err,
    )
    report = run_evaluation(
        factories,
        ds,
        protocol,
        k,
        target_types=types,
        n_bootstrap=n_bootstrap,
        random_state=seed,
    )
    doc = report.to_dict()
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        report.to_markdown(out_dir / "report.md")
        report.to_json(out_dir / "report.json")
        report.plot(out_dir / "report.png", metric=chart_metric)
        doc["files"] = [str(out_dir / f) for f in ("report.md", "report.json", "report.png")]
    if json_out:
        _emit_json(doc)
        return
    _print_report(report, doc, k)
    if out_dir is not None:
        _say(f"written to {out_dir}: report.md, report.json, report.png")


_SHOWN = ("ndcg", "hr", "mrr", "map", "auc", "coverage", "novelty", "arp", "serendipity")


def _print_report(
    report: Any, doc: dict[str, Any], k: int, shown: tuple[str, ...] = _SHOWN
) -> None:
    """An evaluation report as a table (a row per model, intervals under each value)."""
    table = Table(
        title=_title(
            f"{doc['protocol']}, K={k}, {doc['n_users']:,} users "
            f"({round(report.confidence * 100)}% bootstrap CI)"
        )
    )
    table.add_column("model")
    for m in shown:
        table.add_column(f"{m}@{k}" if m in ("ndcg", "hr", "mrr", "map") else m, justify="right")
    for name, res in doc["results"].items():
        cells = []
        for m in shown:
            r = res.get(m)
            if r is None or r["value"] is None:
                cells.append("")
            elif r["ci"] is None:
                cells.append(f"{r['value']:.4f}")
            else:
                cells.append(f"{r['value']:.4f}\n[{r['ci'][0]:.4f}, {r['ci'][1]:.4f}]")
        _row(table, name, *cells)
    out.print(table)
    for c in doc["comparisons"]:
        _say(
            f"{c['a']} - {c['b']} on {c['metric']}: {c['difference']:+.4f} "
            f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}], p = {c['p_value']:.3g} "
            f"(Wilcoxon {c['wilcoxon_p']:.3g})"
        )


def _ope_action_dist(
    log: Any,
    policy: str | None,
    evaluation_log: Path | None,
    explore: float | None,
    draws: int,
    data_dir: Path,
) -> tuple[Any, Any]:
    """The log to evaluate on and the evaluation policy's action_dist over it.

    A context-free policy by name, another log's empirical one, or one of our exploration
    policies as fitted in the saved engine (the log then gains the OTHER_ITEMS action).
    """
    from interestlens.evaluate import ope as ope_mod
    from interestlens.explore import POLICIES as EXPLORE_POLICIES

    if policy is not None and evaluation_log is not None:
        raise CLIError("give --policy or --evaluation-log, not both")
    if policy not in EXPLORE_POLICIES:
        if explore is not None:
            raise CLIError(
                f"--explore applies to our exploration policies ({', '.join(EXPLORE_POLICIES)})"
            )
        if evaluation_log is not None:
            return log, ope_mod.empirical_policy(ope_mod.read_log(evaluation_log))(log)
        if policy is not None and policy not in ope_mod.POLICIES:
            known = [*ope_mod.POLICIES, *EXPLORE_POLICIES]
            raise CLIError(f"unknown policy {policy!r}; known: {', '.join(known)}")
        return log, ope_mod.policy_action_dist(policy or "uniform", log)
    if log.user_id is None:
        raise CLIError(
            f"the log has no user_id column (an Open Bandit Dataset log, say), and the {policy} "
            "policy needs each row's user; evaluate uniform, logging or --evaluation-log instead"
        )
    return ope_mod.engine_action_dist(
        log, _load_engine(data_dir), policy, explore=explore, n_draws=draws, random_state=0
    )


@command()
@handles_errors
def ope(
    logfile: Annotated[
        Path,
        typer.Argument(
            help="Logged bandit feedback: an Open Bandit Dataset folder or CSV, or a "
            "CSV/Parquet with item_id, position, reward (or click) and propensity."
        ),
    ],
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            help="Evaluation policy: uniform or logging (default uniform), or one of our "
            "exploration policies (epsilon_greedy, softmax, lin_ucb, lin_ts, "
            "interest_explorer, interest_diversifier, cold_start) as fitted in the engine "
            "in --data-dir; those need a log with user ids (the product's slate log).",
        ),
    ] = None,
    explore: Annotated[
        float | None,
        typer.Option(
            "--explore", help="Exploration level of an exploration policy (default: its own)."
        ),
    ] = None,
    draws: Annotated[
        int,
        typer.Option(
            "--draws", help="Simulated slates per logged slate for Monte-Carlo distributions."
        ),
    ] = 1000,
    evaluation_log: Annotated[
        Path | None,
        typer.Option(
            "--evaluation-log",
            help="Evaluate the policy that logged this file (its per-position item shares).",
        ),
    ] = None,
    estimators: Annotated[
        str,
        typer.Option("--estimators", help="Comma-separated: dm,ips,snips,dr,sndr,switch-dr."),
    ] = "dm,ips,snips,dr,sndr,switch-dr",
    tau: Annotated[
        float | None,
        typer.Option("--tau", help="Switch-DR's importance-weight threshold (default 5)."),
    ] = None,
    n_bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap resamples for the intervals.")
    ] = 1000,
    alpha: Annotated[float, typer.Option("--alpha", help="Intervals cover 1 - alpha.")] = 0.05,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap and folds.")] = 0,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_out: JsonOpt = False,
) -> None:
    """Off-policy evaluation: estimate a policy's value from logged bandit feedback."""
    from interestlens.evaluate import ope as ope_mod

    log = ope_mod.read_log(logfile)
    if log.report is not None and log.report.rejected:
        first = log.report.rejections[0]
        _say(
            (f"{log.report.rejected:,} rows refused", "yellow"),
            f" (first: row {first.row}, {first.reason})",
            console=err,
        )
    names = [e.strip().lower() for e in estimators.split(",") if e.strip()]
    chosen = [
        ope_mod.SwitchDR(tau=tau) if e == "switch-dr" and tau is not None else e for e in names
    ]
    log, action_dist = _ope_action_dist(log, policy, evaluation_log, explore, draws, data_dir)
    results = ope_mod.evaluate_policy(
        log, action_dist, chosen, n_bootstrap=n_bootstrap, alpha=alpha, random_state=seed
    )
    if json_out:
        _emit_json({name: r.to_dict() for name, r in results.items()})
        return
    evaluated = f"policy of {evaluation_log}" if evaluation_log else policy or "uniform"
    if explore is not None:
        evaluated += f" at explore {explore:g}"
    table = Table(
        title=_title(
            f"value of {evaluated} on {logfile} ({len(log):,} rows, {1 - alpha:.0%} bootstrap CI)"
        )
    )
    for col in ("estimator", "estimate", "CI low", "CI high"):
        table.add_column(col, justify="left" if col == "estimator" else "right")
    for name, r in results.items():
        _row(table, name, f"{r.estimate:.5f}", f"{r.ci_low:.5f}", f"{r.ci_high:.5f}")
    out.print(table)
    _say(f"the logging policy's own mean reward: {log.reward.mean():.5f}")


def _parse_list(option: str, text: str, kind: type) -> list[Any]:
    """Comma-separated values of one type, or a one-line error naming the option."""
    try:
        values = [kind(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CLIError(
            f"{option} {text!r} is not a comma-separated list of {kind.__name__}s"
        ) from None
    if not values:
        raise CLIError(f"{option} is empty")
    return values


@command()
@handles_errors
def simulate(
    policies: Annotated[
        str | None,
        typer.Option("--policies", help="Comma-separated policy names (default: every policy)."),
    ] = None,
    rounds: Annotated[int, typer.Option("--rounds", help="Slates per run.")] = 200,
    explore: Annotated[
        str, typer.Option("--explore", help="Comma-separated exploration levels in [0, 1].")
    ] = "0,0.1,0.3",
    seeds: Annotated[str, typer.Option("--seeds", help="Comma-separated seeds.")] = "0,1,2",
    users: Annotated[int, typer.Option("--users", help="Simulated users drawn per seed.")] = 100,
    k: Annotated[int, typer.Option("--k", help="Slate size.")] = 10,
    dataset: DatasetOpt = None,
    ranker: Annotated[
        str, typer.Option("--ranker", help="Model the policies rank with (a model name).")
    ] = "als",
    static_ranker: Annotated[
        bool,
        typer.Option(
            "--static-ranker",
            help="Keep each user's ranker scores from the fit instead of folding clicks in.",
        ),
    ] = False,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write simulate.json and frontier.png here."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Long-run explore/exploit on simulated users built from real data.

    Each simulated user's true preference over all items comes from EASE fitted on all
    their data; policies start from the first 30% of each user's history, and the ranker
    folds each click in as it comes. Reports reward, regret against the oracle, true
    interests found, coverage, and the frontier.
    """
    from interestlens.evaluate import UserSimulator
    from interestlens.evaluate import simulate as run_simulation
    from interestlens.evaluate.simulate import explore_levels, named_policies
    from interestlens.explore import POLICIES
    from interestlens.models import build_model

    names = _parse_list("--policies", policies, str) if policies else list(POLICIES)
    factories = named_policies(names)
    levels = explore_levels(_parse_list("--explore", explore, float))
    seed_list = _parse_list("--seeds", seeds, int)
    model = build_model(ranker)
    ds = _load_dataset(dataset, None)
    _say(f"building simulated users from {ds.name or dataset} ({ds.n_users:,} users)", console=err)
    sim = UserSimulator().fit(ds)
    result = run_simulation(
        sim,
        factories,
        ranker=model,
        rounds=rounds,
        k=k,
        explore=levels,
        seeds=seed_list,
        n_users=users,
        online=not static_ranker,
        progress=lambda line: _say(line, console=err),
    )
    doc = result.to_dict()
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "simulate.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
        result.frontier(out_dir / "frontier.png")
        doc["files"] = [str(out_dir / "simulate.json"), str(out_dir / "frontier.png")]
    if json_out:
        _emit_json(doc)
        return
    st = doc["settings"]
    table = Table(
        title=_title(
            f"{st['rounds']} rounds of {st['k']} items, {st['users']} users, "
            f"median of {len(st['seeds'])} seeds; ratios to pure exploitation"
        )
    )
    cols = ("policy", "explore", "clicks", "regret", "found", "new", "coverage", "reward×")
    for col in (*cols, "found×"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for r in doc["summary"]:
        _row(
            table,
            r["policy"],
            f"{r['explore']:g}",
            f"{r['reward']:.0f}",
            f"{r['regret']:.1f}",
            f"{r['interests_found']:.0f}/{r['true_interests']:.0f}",
            f"{r['new_interests_found']:.0f}",
            f"{r['coverage']:.1%}",
            f"{r['reward_ratio']:.3f}",
            f"{r['discovery_ratio']:.3f}",
        )
    out.print(table)
    _say(
        "found: true interests with a click (new: not in the starting view); "
        "reward× and found×: expected reward and interests found relative to pure exploitation"
    )
    if out_dir is not None:
        _say(f"written to {out_dir}: simulate.json, frontier.png")


def main() -> None:
    """Entry point of the ``interestlens`` script."""
    app()


if __name__ == "__main__":
    main()
