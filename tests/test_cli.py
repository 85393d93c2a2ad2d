"""The `interestlens` command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from interestlens import __version__
from interestlens.engine.artefact import list_versions
from tests.conftest import LIGHT_HYBRID

BIN = Path(sys.executable).with_name("interestlens")


def run(
    *args: str, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "INTERESTLENS_DEBUG"}
    return subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


def test_version():
    p = run("--version")
    assert p.returncode == 0 and p.stdout.strip() == f"interestlens {__version__}"


def test_ingest_movielens_ratings_twice(tmp_path, shared_data):
    ratings = shared_data / "ml-latest-small" / "ratings.csv"
    url = f"sqlite://{tmp_path / 'ev.db'}"
    first = run("ingest", str(ratings), "--store", url, "--json")
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert (doc["stored"], doc["rejected"], doc["duplicates"], doc["rejections"]) == (
        100836,
        0,
        0,
        [],
    )
    second = run("ingest", str(ratings), "--store", url)
    assert second.returncode == 0, second.stderr
    assert "stored 0 new events: all 100,836 were already in the store" in second.stdout


def test_ingest_reports_five_bad_rows(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(
        "event_id,user_id,item_id,type,value,timestamp\n"
        "a1,u1,i1,rating,4,2024-01-01T10:00:00Z\n"
        "a2,,i2,rating,3,2024-01-01T10:01:00Z\n"  # 2 missing user
        "a3,u1,i3,rating,4,not-a-time\n"  # 3 unparsable timestamp
        "a4,u2,i1,view,1,2024-01-02T09:00:00Z\n"
        "a5,u2,i2,rating,11,2024-01-02T09:05:00Z\n"  # 5 out of range
        "a6,u2,i3,like,1,2024-01-02T09:06:00Z\n"  # 6 unknown type
        "a4,u3,i1,view,1,2024-01-03T09:00:00Z\n"  # 7 duplicate event id
        "a8,u3,i4,purchase,19.99,1704272400\n"
    )
    bad_csv = tmp_path / "rejected.csv"
    p = run(
        "ingest",
        str(path),
        "--store",
        f"sqlite://{tmp_path / 'ev.db'}",
        "--rating-range",
        "0.5,5",
        "--rejections",
        str(bad_csv),
        "--json",
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert (doc["stored"], doc["rejected"]) == (3, 5)
    assert [(r["row"], r["reason"]) for r in doc["rejections"]] == [
        (2, "missing user_id"),
        (3, "unparsable timestamp 'not-a-time'"),
        (5, "rating 11 out of range [0.5, 5]"),
        (6, "unknown event type 'like'"),
        (7, "duplicate event_id 'a4' (first at row 4)"),
    ]
    assert len(bad_csv.read_text().splitlines()) == 6


def test_ingest_with_column_mapping(tmp_path):
    path = tmp_path / "shop.tsv"
    path.write_text("customer\tsku\twhen\n7\tA-1\t1700000000\n8\tB-2\t1700000100\n")
    url = f"sqlite://{tmp_path / 'ev.db'}"
    p = run(
        "ingest",
        str(path),
        "--store",
        url,
        "--map",
        "user_id=customer,item_id=sku,timestamp=when",
        "--type",
        "purchase",
        "--json",
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["stored"] == 2
    from interestlens.store import open_store

    with open_store(url) as st:
        ev = st.events()
    assert ev["type"].tolist() == ["purchase", "purchase"] and ev["item_id"].tolist() == [
        "A-1",
        "B-2",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "nope.csv"], "nope.csv: no such file"),
        (["ingest", "x.csv", "--map", "user_id"], "--map entry 'user_id' is not FIELD=COLUMN"),
        (["datasets", "no-such-dataset"], "no-such-dataset"),
    ],
)
def test_errors_are_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "x.csv").write_text("user_id,item_id\n1,2\n")
    p = (
        run(*args, "--store", f"sqlite://{tmp_path / 'e.db'}", cwd=tmp_path)
        if args[0] == "ingest"
        else run(*args)
    )
    assert p.returncode == 2
    assert message in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_datasets_list_and_describe_json():
    p = run("datasets", "--json")
    assert p.returncode == 0, p.stderr
    names = [d["name"] for d in json.loads(p.stdout)["datasets"]]
    assert {"ml-latest-small", "ml-100k", "ml-1m", "jester", "msweb", "obd"} <= set(names)
    p = run("datasets", "ml-latest-small", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["summary"]["events"] == 104519


def test_demo_fits_and_shows_a_profile(tmp_path):
    config = tmp_path / "light.toml"
    config.write_text(f"[engine]\nhybrid_models = {list(LIGHT_HYBRID)!r}\n".replace("'", '"'))
    # a fit and an evaluation of three models: 140 CPU-seconds, 290 s beside other busy jobs
    p = run(
        "demo",
        "--json",
        "--no-serve",
        "--data-dir",
        str(tmp_path),
        "--config",
        str(config),
        timeout=900,
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    summary = doc["dataset"]
    # the engine learnt from all but each user's last rating; user 474's had been tagged
    # before, so 609 users are scored (the LOO protocol note)
    assert (summary["users"], summary["items"], summary["events_by_type"]["rating"]) == (
        610,
        9742,
        100836 - 610,
    )
    results = doc["evaluation"]["results"]
    assert list(results) == ["default pipeline", "ItemKNN", "ContentLM"]
    assert doc["evaluation"]["n_users"] == 609
    assert all(
        0 <= r["ndcg"]["ci"][0] <= r["ndcg"]["value"] <= r["ndcg"]["ci"][1]
        for r in results.values()
    )
    assert doc["profile"]["user_id"] == "1" and len(doc["profile"]["interests"]) == 10
    assert list_versions(tmp_path / "engine") == ["v000001"]


@pytest.fixture(scope="module")
def fitted_dir(ml_engine, tmp_path_factory):
    d = tmp_path_factory.mktemp("data-dir")
    ml_engine.save(d / "engine")
    return d


def test_profile_json_has_the_documented_keys(fitted_dir, ml_engine):
    p = run("profile", "414", "--data-dir", str(fitted_dir), "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["user_id"] == "414"
    assert {"label", "weight", "trend"} <= set(doc["interests"][0])
    assert [i["label"] for i in doc["interests"]] == [
        i.label for i in ml_engine.profile("414").interests
    ]
    table = run("profile", "414", "--data-dir", str(fitted_dir))
    assert table.returncode == 0 and doc["interests"][0]["label"] in table.stdout


def test_interests_lists_the_taxonomy(fitted_dir):
    p = run("interests", "--data-dir", str(fitted_dir), "--json")
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)["interests"]
    assert (
        sum(r["level"] == "broad" for r in rows) == 15
        and sum(r["level"] == "fine" for r in rows) == 99
    )
    p = run("interests", "--level", "broad", "--data-dir", str(fitted_dir))
    assert p.returncode == 0 and "15 broad and 0 fine interests" in p.stdout


def test_audience_exports_csv(fitted_dir, tmp_path):
    out = tmp_path / "aud.csv"
    p = run(
        "audience",
        "animation",
        "--min-weight",
        "0.1",
        "--out",
        str(out),
        "--data-dir",
        str(fitted_dir),
        "--json",
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    frame = pd.read_csv(out, dtype={"user_id": str})
    assert len(frame) == doc["users"] > 0 and list(frame.columns) == [
        "user_id",
        "weight",
        "interests",
    ]
    assert (frame["weight"] >= 0.1).all()


def test_commands_that_need_a_fit_say_so(tmp_path):
    p = run("profile", "1", "--data-dir", str(tmp_path))
    assert p.returncode == 2 and "run `interestlens fit`" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_recommend_explores_and_logs_the_slate(fitted_dir):
    greedy = json.loads(run("recommend", "414", "--data-dir", str(fitted_dir), "--json").stdout)
    assert all(it["propensity"] == 1.0 and not it["explored"] for it in greedy["items"])
    p = run(
        "recommend", "414", "--explore", "1", "--k", "5", "--data-dir", str(fitted_dir), "--json"
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["request_id"] and doc["request_id"] != greedy["request_id"]
    assert len(doc["items"]) == 5 and any(it["explored"] for it in doc["items"])
    assert all(0 < it["propensity"] <= 1 for it in doc["items"])
    from interestlens.store import open_store

    with open_store(f"sqlite://{fitted_dir / 'events.db'}") as store:
        logged = store.slate_frame()
    served = logged[logged["request_id"] == doc["request_id"]]
    assert served["item_id"].tolist() == [it["item_id"] for it in doc["items"]]
    bad = run("recommend", "414", "--explore", "2", "--data-dir", str(fitted_dir))
    assert bad.returncode == 2


# ----- data shown as it is: markup, emoji codes and backslashes are data, not styling ------
SHOP = Path(__file__).resolve().parents[1] / "examples" / "shop"
#: Text a shop's data may hold that rich would read as markup (an unmatched closing tag
#: crashes it, an opening one restyles), an emoji code, and backslashes.
HOSTILE = "[/bold]Lamp [red]hot[/red] :smile: C:\\new\\[b]"
HOSTILE_USER = "[/bold]u[red]1"
HOSTILE_DIR = "data [/bold] [red]dir"


def _hostile_shop() -> Any:
    """The shop example with hostile titles, a hostile category (so a label) and user id."""
    from interestlens.data import Dataset
    from interestlens.data.dataset import items_frame

    raw = pd.read_csv(SHOP / "items.csv", dtype=str)
    items = items_frame(
        pd.DataFrame(
            {
                "item_id": raw["sku"],
                "title": [f"{HOSTILE} {t}" if i % 2 else t for i, t in enumerate(raw["name"])],
                "text": raw["description"],
                "categories": [
                    [HOSTILE.lower()] if d == "coffee" else [d] for d in raw["department"]
                ],
                "tags": [k.split("|") for k in raw["keywords"]],
            }
        )
    )
    ev = pd.read_csv(SHOP / "events.csv", dtype=str)
    events = pd.DataFrame(
        {
            "event_id": None,
            "user_id": ev["customer"].replace({"C001": HOSTILE_USER}),
            "item_id": ev["sku"],
            "type": ev["action"],
            "value": 1.0,
            "timestamp": pd.to_datetime(ev["when"], utc=True),
            "text": None,
            "context": None,
        }
    )
    return Dataset(events, items, name="hostile shop")


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory, encoder, sentiment):
    """A data dir whose name, titles, labels and one user id read as markup."""
    from interestlens.engine import Config, Engine

    d = tmp_path_factory.mktemp("hostile") / HOSTILE_DIR
    config = Config(data_dir=d, hybrid_models=LIGHT_HYBRID)
    engine = Engine(config, encoder=encoder, sentiment=sentiment).fit(_hostile_shop())
    engine.save(d / "engine")
    return d


def test_hostile_text_is_shown_as_it_is(hostile_dir):
    label = next(
        i["label"]
        for i in json.loads(run("interests", "--data-dir", str(hostile_dir), "--json").stdout)[
            "interests"
        ]
        if HOSTILE.lower() in i["label"]
    )
    shown = run("interests", "--data-dir", str(hostile_dir))
    assert shown.returncode == 0, shown.stderr
    assert label in shown.stdout

    prof = run("profile", HOSTILE_USER, "--data-dir", str(hostile_dir))
    assert prof.returncode == 0, prof.stderr
    assert f"interests of user {HOSTILE_USER}" in prof.stdout and label in prof.stdout

    doc = json.loads(
        run("recommend", HOSTILE_USER, "--explain", "--data-dir", str(hostile_dir), "--json").stdout
    )
    recs = run("recommend", HOSTILE_USER, "--explain", "--data-dir", str(hostile_dir))
    assert recs.returncode == 0, recs.stderr
    assert any(HOSTILE in it["title"] for it in doc["items"])
    for it in doc["items"]:
        assert it["title"] in recs.stdout and it["reason"] in recs.stdout

    aud = run("audience", label, "--data-dir", str(hostile_dir))
    assert aud.returncode == 0, aud.stderr
    assert label in aud.stdout and HOSTILE_USER in aud.stdout


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_errors_print_hostile_text_as_it_is(tmp_path, json_flag):
    data_dir = tmp_path / HOSTILE_DIR
    p = run("profile", "1", "--data-dir", str(data_dir), *json_flag)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip() == (
        f"error: no fitted engine in {data_dir}: run `interestlens fit` "
        "(or `interestlens demo`) first"
    )


def test_ingest_shows_hostile_paths_and_values_as_they_are(tmp_path):
    path = tmp_path / HOSTILE_DIR / "events [red].csv"
    path.parent.mkdir(parents=True)
    path.write_text(
        f"user_id,item_id,type\n{HOSTILE_USER},i1,view\nu2,i2,{HOSTILE}\n", encoding="utf-8"
    )
    args = ("ingest", str(path), "--data-dir", str(tmp_path / HOSTILE_DIR))
    p = run(*args)
    assert p.returncode == 0, p.stderr
    assert str(path) in p.stdout and f"ingest into sqlite://{tmp_path / HOSTILE_DIR}" in p.stdout
    assert f"{path} row 2: unknown event type {HOSTILE.lower()!r}" in p.stdout
    doc = json.loads(run(*args, "--json").stdout)
    assert doc["rejections"][0]["reason"] == f"unknown event type {HOSTILE.lower()!r}"


def test_a_piped_table_keeps_every_value_whole(hostile_dir):
    doc = json.loads(
        run("recommend", HOSTILE_USER, "--explain", "--data-dir", str(hostile_dir), "--json").stdout
    )
    p = run("recommend", HOSTILE_USER, "--explain", "--data-dir", str(hostile_dir))
    assert p.returncode == 0, p.stderr
    assert max(len(line) for line in p.stdout.splitlines()) > 80
    assert "…" not in p.stdout
    rows = [line for line in p.stdout.splitlines() if line.startswith("│")]
    for it in doc["items"]:
        row = next(r for r in rows if f" {it['item_id']} " in r)
        assert it["title"] in row and it["reason"] in row and f"{it['score']:.3f}" in row


@pytest.mark.parametrize(
    "args",
    [
        ["profile", HOSTILE_USER],
        # free text is embedded at once: the language model loads in this process
        ["audience", "something warm to drink before a morning run"],
    ],
    ids=["profile", "audience"],
)
def test_no_loading_bar_of_the_model_loader(hostile_dir, args):
    p = run(*args, "--data-dir", str(hostile_dir))
    assert p.returncode == 0, p.stderr
    assert "Loading weights" not in p.stderr and p.stderr == ""


@pytest.mark.parametrize("content", ["", "user_id,item_id,type\n"], ids=["0 bytes", "header"])
def test_an_empty_events_file_is_an_error(tmp_path, content):
    path = tmp_path / "events.csv"
    path.write_text(content)
    p = run("ingest", str(path), "--data-dir", str(tmp_path), "--json")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip().splitlines()[-1] == f"error: {path}: no rows"
    p = run("fit", "--dataset", str(path), "--data-dir", str(tmp_path))
    assert p.returncode == 2 and p.stderr.strip().splitlines()[-1] == f"error: {path}: no rows"


def test_help_shows_every_option_text_whole_and_no_flag_hints():
    import typer.main

    from interestlens.cli import app

    group = typer.main.get_command(app)
    env = {**os.environ, "TERMINAL_WIDTH": "400"}
    for name, cmd in [("", group), *group.commands.items()]:
        p = subprocess.run(
            [str(BIN), *([name] if name else []), "--help"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert p.returncode == 0, p.stderr
        assert "<bool>" not in p.stdout, name
        for param in cmd.params:
            if getattr(param, "help", None):
                assert param.help.replace("\\[", "[") in p.stdout, (name, param.help)
        for paragraph in (cmd.help or "").split("\n\n") if name else []:
            assert " ".join(paragraph.split()) in p.stdout, (name, paragraph)
    fit_help = run("fit", "--help").stdout
    assert "TOML file with an [engine] table." in " ".join(fit_help.split())


def test_a_progress_bar_shows_its_description_as_it_is():
    # a file name in the description ("reading NAME") is data, not markup
    code = (
        "import sys\n"
        "from interestlens.progress import progress_bar\n"
        "with progress_bar(sys.argv[1], total=2, enabled=True) as bar:\n"
        "    bar.advance(2)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, f"reading {HOSTILE}.csv"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
