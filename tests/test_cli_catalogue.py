"""Your own catalogue from the command line: the README's shop example, run as written.

The commands are read from the README's "Your own catalogue" section and run verbatim as
real subprocesses on the files in ``examples/shop/``, so the README cannot drift from what
the command line does.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import LIGHT_HYBRID

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).with_name("interestlens")
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README[README.index("## Your own catalogue\n") :]
SECTION = SECTION[: SECTION.index("\n## ")]
SH_BLOCKS = re.findall(r"```sh\n(.*?)```", SECTION, flags=re.S)
DEPARTMENTS = ("coffee", "running", "camping", "baking")


def commands(block: str) -> list[list[str]]:
    """The command lines of a shell block, continuation lines joined."""
    return [shlex.split(line) for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def shown_block(after: str) -> list[str]:
    """The indented lines of the README's output block that follows the line ending ``after``."""
    lines = SECTION[SECTION.index(after) + len(after) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("    "))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("    ")), None)
    return [line[4:] for line in lines[start:end]]


class Shop:
    """A temporary folder holding a copy of ``examples/`` where the commands run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(ROOT / "examples" / "shop", root / "examples" / "shop")
        # a cache of its own: every command that needs the language model loads it
        self.env = {k: v for k, v in os.environ.items() if k != "INTERESTLENS_DEBUG"}
        self.env["INTERESTLENS_CACHE_DIR"] = str(root / "cache")

    def run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        assert args[0] == "interestlens"
        return subprocess.run(
            [str(BIN), *args[1:]],
            capture_output=True,
            text=True,
            cwd=self.root,
            env=self.env,
            timeout=600,
        )

    def json(self, *args: str) -> dict:
        p = self.run(["interestlens", *args, "--json"])
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The shop after the README's commands: the shop and each command's result."""
    s = Shop(tmp_path_factory.mktemp("shop"))
    s.results = [(cmd, s.run(cmd)) for cmd in commands(SH_BLOCKS[0])]
    return s


def test_the_readme_shows_the_commands_the_test_runs():
    assert len(SH_BLOCKS) == 2
    first = [cmd[:2] for cmd in commands(SH_BLOCKS[0])]
    assert first == [
        ["interestlens", "ingest"],
        ["interestlens", "fit"],
        ["interestlens", "interests"],
        ["interestlens", "recommend"],
    ]
    assert "--explain" in commands(SH_BLOCKS[0])[3]


def test_the_example_config_is_the_light_pipeline_of_the_suite():
    from interestlens.engine import Config

    assert Config.from_toml(ROOT / "examples" / "shop" / "light.toml").hybrid_models == (
        LIGHT_HYBRID
    )


def test_the_readme_commands_run(shop):
    for cmd, p in shop.results:
        assert p.returncode == 0, (cmd, p.stderr)
        assert "Loading weights" not in p.stderr and "Traceback" not in p.stderr
    ingest, fit = shop.results[0][1], shop.results[1][1]
    assert "stored 36 items and 40 users (new or replaced)" in ingest.stdout
    assert "stored 410 new events; the store holds 410" in ingest.stdout
    assert "fitted on 40 users and 36 items" in fit.stdout


def test_interests_carry_the_catalogue_labels(shop):
    rows = shop.json("interests")["interests"]
    labels = [r["label"] for r in rows]
    assert labels and "misc" not in labels
    broad = [r["label"] for r in rows if r["level"] == "broad"]
    for dept in DEPARTMENTS:
        assert sum(dept in label.split(" · ") for label in broad) == 1, (dept, broad)
    # the table in the README is the one `interests` prints, row for row
    printed = {line.strip() for line in shop.results[2][1].stdout.splitlines()}
    for line in shown_block("each followed by its fine ones, indented):"):
        assert line.strip() in printed, line


def test_recommendations_carry_titles_and_reasons(shop):
    names = pd.read_csv(ROOT / "examples" / "shop" / "items.csv").set_index("sku")["name"]
    labels = {r["label"] for r in shop.json("interests")["interests"]}
    recs = shop.json("recommend", "C001", "--explain", "--k", "5")["items"]
    assert len(recs) == 5
    for it in recs:
        assert it["title"] == names[it["item_id"]]
        reason = re.fullmatch(r"serves your interest in (.+?); like (.+)", it["reason"])
        assert reason is not None and reason[1] in labels, it["reason"]
    printed = shop.results[3][1].stdout
    for it in recs:
        row = next(line for line in printed.splitlines() if f" {it['item_id']} " in line)
        assert it["title"] in row and it["reason"] in row
    # the rows the README shows are the first ones `recommend` gives
    shown = shown_block('cut\nat "…"):')
    assert shown[0].split() == ["#", "item", "title", "why"]
    for line in shown[1:]:
        rank, item_id, title, why = re.split(r"\s{2,}", line.strip())
        it = recs[int(rank) - 1]
        assert (it["item_id"], it["title"]) == (item_id, title)
        assert it["reason"].startswith(why.removesuffix("…").rstrip(", ")), (it["reason"], why)


def test_reingesting_stores_nothing_twice_and_reports_the_catalogue(shop):
    ingest = commands(SH_BLOCKS[0])[0]
    doc = shop.json(*ingest[1:])
    assert (doc["stored"], doc["duplicates"], doc["rejected"]) == (0, 410, 0)
    assert {k: doc["items"][k] for k in ("source", "stored", "rejected")} == {
        "source": "examples/shop/items.csv",
        "stored": 36,
        "rejected": 0,
    }
    assert (doc["users"]["stored"], doc["users"]["rejections"]) == (40, [])


def test_the_one_step_fit_learns_the_same_interests(shop):
    (cmd,) = commands(SH_BLOCKS[1])
    p = shop.run(cmd)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[:3] == [
        "examples/shop/items.csv: 36 items",
        "examples/shop/users.csv: 40 users",
        "examples/shop/events.csv: 410 events",
    ]
    one_step = shop.json("interests", "--data-dir", cmd[cmd.index("--data-dir") + 1])
    assert [r["label"] for r in one_step["interests"]] == [
        r["label"] for r in shop.json("interests")["interests"]
    ]


def test_catalogue_rejections_are_reported_row_by_row(tmp_path):
    items = tmp_path / "items.csv"
    items.write_text("sku,name\nA,Tent\nA,Tent again\n,Nameless\nB,Mug\n")
    events = tmp_path / "events.csv"
    events.write_text("customer,sku\nc1,A\nc1,B\nc2,Z\n")
    bad = tmp_path / "bad.csv"
    p = subprocess.run(
        [
            str(BIN),
            "ingest",
            str(events),
            "--items",
            str(items),
            "--map",
            "user_id=customer,item_id=sku",
            "--type",
            "view",
            "--data-dir",
            str(tmp_path),
            "--rejections",
            str(bad),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert (doc["items"]["stored"], doc["stored"]) == (2, 2)
    assert doc["items"]["rejections"] == [
        {"row": 2, "reason": "duplicate item_id 'A' (first at row 1)"},
        {"row": 3, "reason": "missing item_id"},
    ]
    # the catalogue is stored first, so an event naming an item it lacks is refused
    assert doc["rejections"] == [{"row": 3, "reason": "unknown item_id 'Z'", "source": str(events)}]
    assert pd.read_csv(bad)["source"].tolist() == [str(items), str(items), str(events)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest"], "nothing to ingest: give event files, --items FILE or --users FILE"),
        (["ingest", "x.csv", "--item-map", "item_id=sku"], "--item-map applies to an --items file"),
        (["fit", "--items", "items.csv"], "--items: only for a --dataset event file"),
        (["fit", "--dataset", "ml-latest-small", "--type", "view"], "--type: only for a --dataset"),
        (["ingest", "--items", "items.csv", "--item-map", "sku"], "--item-map entry 'sku' is not"),
    ],
)
def test_catalogue_option_errors_are_one_line(tmp_path, args, message):
    (tmp_path / "items.csv").write_text("sku,name\nA,Tent\n")
    p = subprocess.run(
        [str(BIN), *args, "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert p.returncode == 2 and message in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_a_refit_writes_a_new_version_and_keeps_the_interests(shop):
    before = shop.json("interests")["interests"]
    doc = shop.json("fit", "--config", "examples/shop/light.toml", "--threads", "1")
    engine_dir = shop.root / ".interestlens" / "engine"
    assert Path(doc["saved"]).name == "v000002" and doc["generation"] == 2
    assert sorted(p.name for p in engine_dir.iterdir() if p.name.startswith("v")) == [
        "v000001",
        "v000002",
    ]
    after = shop.json("interests")["interests"]
    assert [(i["interest_id"], i["label"]) for i in after] == [
        (i["interest_id"], i["label"]) for i in before
    ]
    bad = shop.run(["interestlens", "fit", "--threads", "0"])
    assert bad.returncode == 2 and "--threads must be at least 1" in bad.stderr


def test_forget_erases_a_user_from_the_store_and_the_saved_engine(shop):
    assert shop.json("profile", "C002")["user_id"] == "C002"
    doc = shop.json("forget", "C002")
    assert doc["user_id"] == "C002" and doc["events_deleted"] > 0
    assert doc["components"]["store"] and doc["components"]["profiler"]
    gone = shop.run(["interestlens", "profile", "C002"])
    assert gone.returncode == 2 and "unknown user 'C002'" in gone.stderr
    again = shop.json("forget", "C002")
    assert again["events_deleted"] == 0 and not again["components"]["store"]
