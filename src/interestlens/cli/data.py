"""Data commands: ``datasets`` (what can be loaded) and ``ingest`` (files into the store)."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from interestlens.cli import render
from interestlens.cli.shared import (
    DEFAULT_DATA_DIR,
    CLIError,
    DataDirOpt,
    EventTypeOpt,
    FormatOpt,
    ItemMapOpt,
    ItemsOpt,
    JsonOpt,
    ListSeparatorOpt,
    MapOpt,
    RatingRangeOpt,
    TimestampUnitOpt,
    UnknownItemsOpt,
    UserMapOpt,
    UsersOpt,
    parse_mapping,
    parse_range,
)

if TYPE_CHECKING:
    import pandas as pd

    from interestlens.data import LoadReport


def datasets(
    name: Annotated[str | None, typer.Argument(help="Describe this dataset.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List the bundled and known datasets, or describe one."""
    from interestlens.data.loaders import available, describe

    if name is None:
        rows = available()
        if json_out:
            render.emit_json({"datasets": rows})
            return
        render.table(
            "datasets",
            ("name", "bundled", "needs path", "description"),
            [
                (
                    r["name"],
                    "yes" if r["bundled"] else "",
                    "yes" if r["needs_path"] else "",
                    r["description"],
                )
                for r in rows
            ],
        )
        return
    info = describe(name)
    if json_out:
        render.emit_json(info)
        return
    for key, value in info.items():
        if key == "summary":
            render.summary(value)
        else:
            render.say((f"{key}:", "bold"), f" {value}")


def read_catalogue(
    items: Path | None,
    users: Path | None,
    item_map: str | None,
    user_map: str | None,
    list_separator: str,
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, dict[str, LoadReport]]:
    """The item and user files read (``None`` where not given) and their reports by kind."""
    from interestlens.data import read_items, read_users

    items_df = users_df = None
    reports: dict[str, LoadReport] = {}
    if items is not None:
        items_df, reports["items"] = read_items(
            items, mapping=parse_mapping(item_map, "--item-map"), list_separator=list_separator
        )
    elif item_map:
        raise CLIError("--item-map applies to an --items file")
    if users is not None:
        users_df, reports["users"] = read_users(
            users, mapping=parse_mapping(user_map, "--user-map")
        )
    elif user_map:
        raise CLIError("--user-map applies to a --users file")
    return items_df, users_df, reports


def print_sources(sources: Sequence[Mapping[str, Any]]) -> None:
    """A line per file read (what it held, how many rows were refused), then the refusals.

    Each source is a load report's ``to_dict()`` with the ``kind`` of rows it held.
    """
    for doc in sources:
        render.say(
            f"{doc['source']}: {doc['loaded']:,} {doc['kind']}"
            + (f", {doc['rejected']:,} rejected" if doc["rejected"] else "")
        )
    render.rejections(sources)


def is_dataset(name: str) -> bool:
    """Whether ``name`` is a dataset folder or a known dataset's name (not an event file)."""
    from interestlens.data.loaders import available

    return Path(name).is_dir() or (
        not Path(name).exists() and name in {d["name"] for d in available()}
    )


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
    from interestlens.data import Dataset, ValidationOptions
    from interestlens.data.loaders import load
    from interestlens.engine import Config, Engine

    files = files or []
    if not files and items is None and users is None:
        raise CLIError("nothing to ingest: give event files, --items FILE or --users FILE")
    options = ValidationOptions(
        default_type=event_type,
        rating_range=parse_range(rating_range),
        timestamp_unit=timestamp_unit,
        unknown_items=unknown_items,  # type: ignore[arg-type]
    )
    parsed_map = parse_mapping(mapping)
    items_df, users_df, catalogue = read_catalogue(items, users, item_map, user_map, list_separator)
    # a saved engine keeps its own settings; --store replaces them to reach another store
    engine = Engine.open(
        data_dir, config=Config(data_dir=data_dir, store=store) if store is not None else None
    )
    entities: dict[str, dict[str, Any]] = {}
    if items_df is not None:
        entities["items"] = dict(catalogue["items"].to_dict(), stored=engine.add_items(items_df))
    if users_df is not None:
        entities["users"] = dict(catalogue["users"].to_dict(), stored=engine.add_users(users_df))
    files_read: list[dict[str, Any]] = []
    for f in files:
        if is_dataset(f):
            ds = load(f)
            if not isinstance(ds, Dataset):
                raise CLIError(f"{f} is a bandit log, not events: read it with `interestlens ope`")
            report = engine.ingest(ds)
            refused = [r.to_dict() for r in ds.report.rejections] if ds.report else []
        else:
            report = engine.ingest(f, mapping=parsed_map, options=options, fmt=file_format)
            refused = []
        doc = report.to_dict()
        doc = dict(
            doc,
            source=f,
            rejected=doc["rejected"] + len(refused),
            rejections=[*refused, *doc["rejections"]],
        )
        if doc["stored"] + doc["rejected"] + doc["duplicates"] == 0:
            raise CLIError(f"{f}: no rows")
        files_read.append(doc)
    in_store = engine.slate_store.count()
    sources = [*entities.values(), *files_read]
    doc = {
        "store": engine.info()["store"],
        "stored": sum(d["stored"] for d in files_read),
        "rejected": sum(d["rejected"] for d in files_read),
        "duplicates": sum(d["duplicates"] for d in files_read),
        "events_in_store": in_store,
        "files": [{k: v for k, v in d.items() if k != "rejections"} for d in files_read],
        "rejections": [dict(r, source=d["source"]) for d in files_read for r in d["rejections"]],
        "items": entities.get("items"),
        "users": entities.get("users"),
    }
    if rejections is not None:
        with open(rejections, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["source", "row", "reason"])
            for src in sources:
                for r in src["rejections"]:
                    w.writerow([src["source"], r["row"], r["reason"]])
    if json_out:
        render.emit_json(doc)
        return
    kinds = [*entities.items(), *(("events", d) for d in files_read)]
    render.table(
        f"ingest into {doc['store']}",
        ("file", "holds", "stored", "already stored", "rejected"),
        [
            (
                str(src["source"]),
                kind,
                f"{src['stored']:,}",
                f"{src['duplicates']:,}" if kind == "events" else "",
                f"{src['rejected']:,}",
            )
            for kind, src in kinds
        ],
        right=("stored", "already stored", "rejected"),
    )
    written = [f"{e['stored']:,} {kind}" for kind, e in entities.items()]
    if written:
        render.say(f"stored {' and '.join(written)} (new or replaced)")
    if files_read:
        if doc["stored"] == 0 and doc["duplicates"]:
            render.say(f"stored 0 new events: all {doc['duplicates']:,} were already in the store")
        else:
            render.say(f"stored {doc['stored']:,} new events; the store holds {in_store:,}")
    n_rejected = render.rejections(sources)
    if rejections is None and n_rejected > 20:
        render.say("  write them all with --rejections FILE.csv")
