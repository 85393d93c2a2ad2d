"""Engine commands: fit it, ask it (recommend, profile, interests, audience), forget a user, demo."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from interestlens.cli import render
from interestlens.cli.data import is_dataset, print_sources, read_catalogue
from interestlens.cli.serve import HostOpt, PortOpt
from interestlens.cli.serve import run as run_server
from interestlens.cli.shared import (
    DEFAULT_DATA_DIR,
    CLIError,
    ConfigOpt,
    DataDirOpt,
    EventTypeOpt,
    FormatOpt,
    ItemMapOpt,
    ItemsOpt,
    JsonOpt,
    ListSeparatorOpt,
    MapOpt,
    RatingRangeOpt,
    ThreadsOpt,
    TimestampUnitOpt,
    UnknownItemsOpt,
    UserMapOpt,
    UsersOpt,
    fitted_engine,
    load_config,
    load_dataset,
    parse_mapping,
    parse_range,
)

if TYPE_CHECKING:
    from interestlens.data import Dataset
    from interestlens.engine import Engine


def _interest_doc(interest: Any) -> dict[str, Any]:
    """An :class:`~interestlens.interests.Interest` as JSON, its level named."""
    return dict(asdict(interest), level="broad" if interest.level == 0 else "fine")


def _fit_data(
    engine: Engine,
    dataset: str | None,
    store: str | None,
    events: dict[str, tuple[str, Any]],
    catalogue: tuple[Path | None, Path | None, str | None, str | None, str],
) -> tuple[Dataset, list[dict[str, Any]]]:
    """What ``fit`` learns from, and the report of each file read for it.

    ``events`` maps each event-file option given on the command line (``--map``, ``--type``,
    ...) to its :func:`interestlens.data.loaders.load` keyword and value; ``catalogue``
    holds the item and user files with their mappings.
    """
    from interestlens.data import Dataset
    from interestlens.data.loaders import load

    items, users = catalogue[0], catalogue[1]
    file_options = [flag for flag, (_, v) in events.items() if v] + [
        opt for opt, v in (("--items", items), ("--users", users)) if v is not None
    ]
    if dataset is not None and store is not None:
        raise CLIError("give --dataset or --store, not both")
    if file_options and (dataset is None or is_dataset(dataset)):
        raise CLIError(
            f"{', '.join(file_options)}: only for a --dataset event file; to fit on the store, "
            "`interestlens ingest` the files first"
        )
    if dataset is None:
        stored = engine.dataset_from_store()
        if len(stored.events):
            return stored, []
        if store is not None:
            raise CLIError(f"no events in {store} to fit on")
        render.say(
            f"no events in {engine.info()['store']}: fitting the bundled ml-latest-small "
            "(`interestlens ingest` your files first, or give --dataset)",
            stderr=True,
        )
    if not file_options:
        return load_dataset(dataset), []
    items_df, users_df, read = read_catalogue(*catalogue)
    options = {key: v for key, v in events.values() if v}
    if items_df is not None:
        options["items"] = items_df
    ds = load(dataset, **options)  # type: ignore[arg-type]
    if not isinstance(ds, Dataset):
        raise CLIError(f"{dataset} is a bandit log, not events")
    if users_df is not None:
        ds = Dataset(ds.events, ds.items, users_df, name=ds.name, report=ds.report)
    reports = [*read.items(), *([("events", ds.report)] if ds.report is not None else [])]
    sources = [dict(r.to_dict(), kind=kind) for kind, r in reports]
    if len(ds.events) == 0:
        print_sources(sources)
        raise CLIError(f"{dataset}: no events to fit on")
    return ds, sources


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
        str | None,
        typer.Option(
            "--store", help="Fit on everything in this store instead (the engine then uses it)."
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
    config: ConfigOpt = None,
    threads: ThreadsOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_out: JsonOpt = False,
) -> None:
    """Fit the engine (embeddings, interest taxonomy, profiles) and save a new version in DATA_DIR.

    It learns from a --dataset (a name, a folder, or an event file with its --items and
    --users files), from a --store, or else from the store in DATA_DIR when that holds
    events (what `interestlens ingest` wrote), or else from the bundled ml-latest-small.
    Interest ids carry over from the engine saved there; earlier versions are kept.
    """
    from dataclasses import replace

    from interestlens.engine import Engine

    events = {
        "--map": ("mapping", parse_mapping(mapping)),
        "--type": ("default_type", event_type),
        "--unknown-items": ("unknown_items", unknown_items if unknown_items != "reject" else None),
        "--rating-range": ("rating_range", parse_range(rating_range)),
        "--timestamp-unit": ("timestamp_unit", timestamp_unit if timestamp_unit != "s" else None),
        "--format": ("fmt", file_format),
    }
    cfg = load_config(config, data_dir, threads)
    if store is not None:
        cfg = replace(cfg, store=store)
    engine = Engine.open(data_dir, config=cfg)
    data, sources = _fit_data(
        engine,
        dataset,
        store,
        events,
        (items, users, item_map, user_map, list_separator),
    )
    if not json_out:
        print_sources(sources)
    engine.fit(data)
    saved = engine.save()
    info = engine.info()
    doc = {
        "saved": str(saved),
        "generation": info["generation"],
        "users": info["n_users"],
        "items": info["n_items"],
        "broad_interests": len(engine.interests("broad")),
        "fine_interests": len(engine.interests("fine")),
        "sources": sources,
    }
    if json_out:
        render.emit_json(doc)
        return
    render.say(
        f"fitted on {doc['users']:,} users and {doc['items']:,} items: "
        f"{doc['broad_interests']} broad and {doc['fine_interests']} fine interests; "
        f"saved to {doc['saved']}"
    )


def refit(
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    threads: ThreadsOpt = None,
    keep: Annotated[
        int, typer.Option("--keep", min=1, help="Versions to keep, the new one included.")
    ] = 3,
    nice: Annotated[
        int,
        typer.Option(
            "--nice", min=0, max=19, help="Lower this process's CPU priority by this much."
        ),
    ] = 10,
    json_out: JsonOpt = False,
) -> None:
    """Fit the next version from the saved one and every event stored since, and publish it.

    What a server runs in the background (after --refit-every events, every
    --refit-interval, or on POST /v1/admin/refit): running servers swap to the new
    version between requests. It runs beside them at a lower CPU priority and on
    --threads threads. Users erased meanwhile are left out. Only one refit runs at a time
    per data directory: a second one exits at once, saying so.
    """
    from interestlens.engine.background import refit_published

    if not (data_dir / "engine" / "CURRENT").exists():
        raise CLIError(
            f"no fitted engine in {data_dir}: run `interestlens fit` (or `interestlens demo`) first"
        )
    doc = refit_published(data_dir, keep=keep, threads=threads, nice=nice)
    if json_out:
        render.emit_json(doc)
        return
    if not doc["started"]:
        render.say(f"a refit of {data_dir} is already running: nothing done")
        return
    render.say(
        f"published {doc['version']} (generation {doc['generation']}) on {doc['events']:,} "
        f"events in {doc['seconds']:.1f} s"
        + (f"; {doc['erased']} user(s) erased meanwhile left out" if doc["erased"] else "")
    )


def profile(
    user: Annotated[str, typer.Argument(help="User id.")],
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_out: JsonOpt = False,
) -> None:
    """Show a user's interest profile: interests with weight and trend, dislikes, own words."""
    engine = fitted_engine(data_dir)
    if not engine.knows_user(user):
        raise CLIError(f"unknown user {user!r}")
    doc = engine.profile(user).to_dict()
    if json_out:
        render.emit_json(doc)
    else:
        render.profile(doc)


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
    engine = fitted_engine(data_dir)
    recs = engine.recommend(user, k=k, explain=explain, explore=explore, policy=policy)
    titles = engine.item_titles()
    items = [dict(r.to_dict(), title=titles.get(r.item_id, "")) for r in recs]
    request_id = recs[0].request_id if recs else ""
    if json_out:
        render.emit_json({"user_id": user, "request_id": request_id, "items": items})
        return
    explored = explore > 0
    columns = ["#", "item", "title", "score"] + (["p", "explored"] if explored else [])
    rows = []
    for it in items:
        row = [
            str(it["rank"]),
            it["item_id"],
            it["title"],
            "" if it["score"] is None else f"{it['score']:.3f}",
        ]
        if explored:
            row += [f"{it['propensity']:.3f}", "yes" if it["explored"] else ""]
        rows.append(row + ([it["reason"]] if explain else []))
    render.table(
        f"recommendations for user {user} (request {request_id})",
        columns + (["why"] if explain else []),
        rows,
        right=("#", "score", "p"),
    )


def interests(
    level: Annotated[str, typer.Option("--level", help="broad, fine or all.")] = "all",
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_out: JsonOpt = False,
) -> None:
    """Show the interest taxonomy: labels, sizes and levels."""
    engine = fitted_engine(data_dir)
    docs = [_interest_doc(i) for i in engine.interests(level)]
    if json_out:
        render.emit_json({"interests": docs})
        return
    broad = [d for d in docs if d["level"] == "broad"]
    fine = [d for d in docs if d["level"] == "fine"]
    rows = []
    for b in broad or [None]:
        if b is not None:
            rows.append((str(b["interest_id"]), render.bold(b["label"]), f"{b['size']:,}"))
        children = [f for f in fine if b is None or f["parent"] == b["interest_id"]]
        for f in sorted(children, key=lambda d: -d["size"]):
            rows.append((str(f["interest_id"]), f"   {f['label']}", f"{f['size']:,}"))
    render.table(
        f"{len(broad)} broad and {len(fine)} fine interests",
        ("id", "interest", "items"),
        rows,
        right=("id", "items"),
    )


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
    engine = fitted_engine(data_dir)
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
        render.emit_json(doc)
        return
    render.say(
        f"{len(frame):,} users hold {' | '.join(doc['interests'])} (matched by {doc['matched']}) "
        f"with weight >= {min_weight}"
    )
    for r in doc["audience"][:15]:
        render.say(f"  {r['user_id']}: {r['weight']:.1%}")
    if out_file is not None:
        render.say(f"written to {out_file}")


def forget(
    user: Annotated[str, typer.Argument(help="User id.")],
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_out: JsonOpt = False,
) -> None:
    """Erase a user everywhere: their events in the store, the engine's state, logs and caches.

    It works on the store in DATA_DIR, and on the fitted engine there if there is one.
    """
    from interestlens.engine import Engine

    if not data_dir.is_dir():
        raise CLIError(f"no data in {data_dir}: nothing to forget")
    doc = Engine.open(data_dir).forget(user).to_dict()
    if json_out:
        render.emit_json(doc)
        return
    render.say(
        f"forgot user {doc['user_id']}: {doc['events_deleted']:,} events deleted from the store"
    )
    render.table(
        "what held the user",
        ("component", "held the user"),
        [(name, "yes" if held else "") for name, held in doc["components"].items()],
    )
    if doc["note"]:
        render.say(doc["note"])


def demo(
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    config: ConfigOpt = None,
    threads: ThreadsOpt = None,
    user: Annotated[str, typer.Option("--user", help="User whose profile to show.")] = "1",
    serve_it: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the engine over HTTP afterwards.")
    ] = True,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    json_out: JsonOpt = False,
) -> None:
    """Fit the default pipeline on the bundled ml-latest-small; show its accuracy, interests, a profile; serve it.

    The engine learns from everything but each user's last rating, which then measures
    the default pipeline against each of its own components (temporal leave-last-out,
    full ranking over all items, K = 10, bootstrap intervals over users). The fitted
    engine is saved as a new version in --data-dir for profile, recommend and the rest.

    Then it is served over HTTP as `interestlens serve` does (the address, an API key
    and a first request are printed), unless --no-serve.
    """
    from interestlens.engine import Engine
    from interestlens.evaluate import evaluate as run_evaluation
    from interestlens.evaluate import make_split

    split = make_split(load_dataset(None), "loo", target_types="rating").for_refit()
    engine = Engine.open(data_dir, config=load_config(config, data_dir, threads))
    engine.fit(split.train)
    engine.save()
    pipeline = engine.recommender
    models = {"default pipeline": pipeline} if pipeline is not None else {}
    models.update({type(m).__name__: m for m in getattr(pipeline, "models_", [])})
    report = (
        run_evaluation(models, None, split=split, fit=False, n_bootstrap=500).to_dict()
        if models
        else None
    )
    summary = engine.dataset.summary()
    broad = engine.interests("broad")
    prof = engine.profile(user).to_dict()
    if json_out:
        render.emit_json(
            {
                "dataset": summary,
                "evaluation": report,
                "interests": [_interest_doc(i) for i in broad],
                "profile": prof,
            }
        )
        if serve_it:
            run_server(engine, host, port, threads, stderr=True)
        return
    render.summary(summary)
    if report is not None:
        render.evaluation(report, ("ndcg", "hr", "mrr", "coverage", "novelty"))
    render.table(
        "broad interests",
        ("interest", "items"),
        [(i.label, f"{i.size:,}") for i in sorted(broad, key=lambda i: -i.size)],
        right=("items",),
    )
    render.profile(prof)
    render.say(
        "\nnext: interestlens profile USER | interestlens interests | interestlens audience 'space opera'"
    )
    if serve_it:
        run_server(engine, host, port, threads)
