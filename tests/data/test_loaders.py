"""`datasets.load` and the dataset loaders: known names, folder layouts, and their real counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import interestlens.data as data_pkg
from interestlens import datasets
from interestlens.data import BanditLog, Dataset
from interestlens.data.jester import load_jester
from interestlens.data.msweb import load_msweb


def rejections(ds) -> list[tuple[int, str]]:
    return [(r.row, r.reason) for r in ds.report.rejections]


# ----- ml-latest-small (bundled) ------------------------------------------------------------


@pytest.fixture(scope="module")
def ml_small() -> Dataset:
    ds = datasets.load("ml-latest-small")
    assert isinstance(ds, Dataset)
    return ds


def test_bundled_movielens_counts(ml_small):
    assert ml_small.name == "ml-latest-small"
    assert ml_small.events["type"].value_counts().to_dict() == {"rating": 100836, "tag": 3683}
    assert (ml_small.n_users, ml_small.n_items, len(ml_small.items)) == (610, 9742, 9742)
    assert (ml_small.report.loaded, ml_small.report.rejected) == (104519, 0)
    ratings = ml_small.events.loc[ml_small.events["type"] == "rating", "value"]
    assert (ratings.min(), ratings.max()) == (0.5, 5.0)


def test_bundled_movielens_items_and_tags(ml_small):
    items = ml_small.items.set_index("item_id")
    assert items.loc["1", "title"] == "Toy Story (1995)"
    assert items.loc["1", "categories"] == [
        "Adventure",
        "Animation",
        "Children",
        "Comedy",
        "Fantasy",
    ]
    assert items.loc["114335", "categories"] == []  # "(no genres listed)"
    assert sum(c == [] for c in ml_small.items["categories"]) == 34
    first_tag = ml_small.events[ml_small.events["type"] == "tag"].iloc[0]
    assert (first_tag["user_id"], first_tag["item_id"], first_tag["text"]) == (
        "2",
        "60756",
        "funny",
    )
    assert first_tag["timestamp"] == pd.Timestamp(1445714994, unit="s", tz="UTC")


def test_shared_movielens_folder_is_detected(shared_data, ml_small):
    ds = datasets.load(shared_data / "ml-latest-small", with_tags=False)
    assert ds.name == "ml-latest-small"
    assert (len(ds.events), ds.n_users, ds.n_items, ds.report.rejected) == (100836, 610, 9742, 0)
    pd.testing.assert_frame_equal(
        ds.events, ml_small.events[ml_small.events["type"] == "rating"].reset_index(drop=True)
    )


# ----- ml-1m and ml-100k layouts, written in their real formats -------------------------------


def write_ml1m(folder: Path) -> Path:
    folder.mkdir()
    (folder / "movies.dat").write_text(
        "1::Toy Story (1995)::Animation|Children's|Comedy\n"
        "2::Misérables, Les (1995)::Drama|Musical\n",
        encoding="latin-1",
    )
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    (folder / "ratings.dat").write_text(
        "1::1::5::978300760\n"
        "1::2::3::978302109\n"
        "2::1193\n"
        "2::2::6::978298413\n"
        "2::99::4::978299000\n"
        "2::1::4::978299001\n"
    )
    return folder


def test_ml1m_layout(tmp_path):
    ds = datasets.load("ml-1m", path=write_ml1m(tmp_path / "ml-1m"))
    assert ds.name == "ml-1m"
    assert ds.events[["user_id", "item_id", "value"]].values.tolist() == [
        ["1", "1", 5.0],
        ["1", "2", 3.0],
        ["2", "1", 4.0],
    ]
    assert ds.events["timestamp"].iloc[0] == pd.Timestamp("2000-12-31T22:12:40Z")
    assert rejections(ds) == [
        (3, "wrong number of '::' fields"),
        (4, "rating 6 out of range [1, 5]"),
        (5, "unknown item_id '99'"),
    ]
    assert ds.items["title"].tolist() == ["Toy Story (1995)", "Misérables, Les (1995)"]
    assert ds.items["categories"].tolist() == [
        ["Animation", "Children's", "Comedy"],
        ["Drama", "Musical"],
    ]
    assert ds.users["attributes"].tolist()[1] == {
        "gender": "M",
        "age": 56,
        "occupation": 16,
        "zip": "70072",
    }


def test_ml1m_folder_is_detected_and_options_pass_through(tmp_path):
    ds = datasets.load(write_ml1m(tmp_path / "mine"), unknown_items="create")
    assert ds.name == "ml-1m"
    assert [r for r, _ in rejections(ds)] == [3, 4]
    assert ds.items["item_id"].tolist() == ["1", "2", "99"]
    assert ds.report.created_items == 1


def write_ml100k(folder: Path) -> Path:
    folder.mkdir()
    flags = {"1": [0, 0, 0, 1, 1, 1] + [0] * 13, "2": [0, 1, 1] + [0] * 13 + [1, 0, 0]}
    (folder / "u.item").write_text(
        "".join(
            f"{i}|{t}|01-Jan-1995||http://us.imdb.com/M/title-exact?{i}|{'|'.join(map(str, flags[i]))}\n"
            for i, t in (("1", "Toy Story (1995)"), ("2", "GoldenEye (1995)"))
        ),
        encoding="latin-1",
    )
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    (folder / "u.data").write_text(
        "1\t1\t5\t874965758\n1\t2\t3\n2\t1\t4\t876893171\n2\t2\t0\t876893172\n"
    )
    return folder


def test_ml100k_layout(tmp_path):
    ds = datasets.load("ml-100k", path=write_ml100k(tmp_path / "ml-100k"))
    assert ds.events[["user_id", "item_id", "value"]].values.tolist() == [
        ["1", "1", 5.0],
        ["2", "1", 4.0],
    ]
    assert rejections(ds) == [
        (2, "wrong number of tab-separated fields"),
        (4, "rating 0 out of range [1, 5]"),
    ]
    assert ds.items["categories"].tolist() == [
        ["Animation", "Children's", "Comedy"],
        ["Action", "Adventure", "Thriller"],
    ]
    assert ds.users["attributes"].tolist()[0] == {
        "age": 24,
        "gender": "M",
        "occupation": "technician",
        "zip": "85711",
    }
    assert datasets.load(tmp_path / "ml-100k").name == "ml-100k"


# ----- Jester ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jester5k(request) -> Dataset:
    shared = request.getfixturevalue("shared_data")
    ds = datasets.load("jester", path=shared / "jester5k")
    assert isinstance(ds, Dataset)
    return ds


def test_jester5k_counts(jester5k):
    ev = jester5k.events
    assert (len(ev), jester5k.n_users, jester5k.n_items, jester5k.report.rejected) == (
        363209,
        5000,
        100,
        0,
    )
    assert set(ev["type"]) == {"rating"}
    assert (ev["value"].min(), ev["value"].max(), int((ev["value"] == 0).sum())) == (
        -9.95,
        9.9,
        1025,
    )
    assert round(ev["value"].mean(), 4) == 0.9159
    per_user = ev.groupby("user_id").size()
    assert (per_user.min(), per_user.max()) == (36, 100)
    assert ev["timestamp"].isna().all()
    assert ev[["user_id", "item_id", "value"]].iloc[0].tolist() == ["u7452", "j1", -1.6]


def test_jester5k_items_carry_the_joke_text(jester5k):
    items = jester5k.items
    assert items["item_id"].tolist() == [f"j{i}" for i in range(1, 101)]
    assert items["title"].tolist()[:3] == ["Joke 1", "Joke 2", "Joke 3"]
    assert items["text"].iloc[2] == (
        "Q. What's 200 feet long and has 4 teeth? A. The front row at a Willie Nelson Concert."
    )
    lengths = items["text"].str.len()
    assert (lengths.min(), lengths.max()) == (56, 1215)


def test_jester_bad_rows_and_folder_detection(tmp_path):
    (tmp_path / "jokes.csv").write_text('joke_id,text\nj1,"Why? Because."\nj2,Two\n')
    (tmp_path / "ratings.csv").write_text(
        "user_id,joke_id,rating\nu1,j1,9.5\nu1,j2,-10.5\nu2,j3,1\nu2,j1\nu2,j2,-10\n"
    )
    ds = datasets.load(tmp_path)
    assert ds.name == "jester"
    assert ds.events[["user_id", "item_id", "value"]].values.tolist() == [
        ["u1", "j1", 9.5],
        ["u2", "j2", -10.0],
    ]
    assert rejections(ds) == [
        (2, "rating -10.5 out of range [-10, 10]"),
        (3, "unknown item_id 'j3'"),
        (4, "expected 3 fields, found 2"),
    ]


def test_jester_classic_dataset2_layout(tmp_path):
    (tmp_path / "jester_items.dat").write_text(
        "5:\n<p>Q: What&#039;s O. J. Simpson's Internet address?<br />\nA: Slash, slash,"
        " backslash...</p>\n\n7:\n<p>How many feminists does it take?</p>\n"
    )
    (tmp_path / "jester_ratings.dat").write_text(
        "1\t5\t\t0.219\n1 7 -9.281\n2\t7\n63978\t5\t-10.5\n"
    )
    ds = load_jester(tmp_path)
    assert ds.items[["item_id", "title", "text"]].values.tolist() == [
        [
            "5",
            "Joke 5",
            "Q: What's O. J. Simpson's Internet address? A: Slash, slash, backslash...",
        ],
        ["7", "Joke 7", "How many feminists does it take?"],
    ]
    assert ds.events[["user_id", "item_id", "value"]].values.tolist() == [
        ["1", "5", 0.219],
        ["1", "7", -9.281],
    ]
    assert rejections(ds) == [
        (3, "expected 3 whitespace-separated fields"),
        (4, "rating -10.5 out of range [-10, 10]"),
    ]


# ----- msweb --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def msweb_all(request) -> Dataset:
    return load_msweb(request.getfixturevalue("shared_data") / "msweb", split="all")


@pytest.mark.parametrize(
    ("split", "users", "visits", "areas_visited"),
    [("train", 32711, 98654, 285), ("test", 5000, 15191, 236)],
)
def test_msweb_splits(shared_data, split, users, visits, areas_visited):
    ds = datasets.load("msweb", path=shared_data / "msweb", split=split)
    assert (ds.n_users, len(ds.events), len(ds.items), ds.report.rejected) == (
        users,
        visits,
        294,
        0,
    )
    assert ds.events["item_id"].nunique() == areas_visited
    assert set(ds.events["type"]) == {"view"} and set(ds.events["value"]) == {1.0}
    assert ds.events["timestamp"].isna().all()
    assert ds.users["attributes"].iloc[0] == {"split": split}
    assert ds.events["user_id"].iloc[0] == "10001"


def test_msweb_items(msweb_all):
    items = msweb_all.items.set_index("item_id")
    assert items.loc["1287", "title"] == "International AutoRoute"
    assert items.loc["1287", "attributes"] == {"url": "/autoroute"}
    assert items.loc["1017", "title"] == "Products"  # the test file spells it "Products "


def test_msweb_all_keeps_the_two_files_users_apart(msweb_all):
    ev = msweb_all.events
    assert (msweb_all.n_users, len(ev), msweb_all.report.rejected) == (37711, 98654 + 15191, 0)
    assert ev["user_id"].str.startswith("train:").sum() == 98654
    assert ev["user_id"].str.startswith("test:").sum() == 15191
    first = ev.groupby("user_id", sort=False)["item_id"].apply(list)
    assert first["train:10001"] == ["1000", "1001", "1002"]
    assert first["test:10001"] != first["train:10001"]


def test_msweb_bad_lines(tmp_path):
    good = 'A,1000,1,"Home","/home"\nA,1001,1,"Support, US","/support"\n'
    (tmp_path / "anonymous-msweb.data").write_text(
        good + 'V,1000,1\nC,"1",1\nV,1000,1\nV,1001,1\nV,1234,1\nV,1001\nX,9\nC,"2",2\nV,1001,1\n'
    )
    (tmp_path / "anonymous-msweb.test").write_text(good + 'C,"1",1\nV,999,1\nV,1000,1\n')
    train = datasets.load(tmp_path / "anonymous-msweb.data")
    assert train.events[["user_id", "item_id"]].values.tolist() == [
        ["1", "1000"],
        ["1", "1001"],
        ["2", "1001"],
    ]
    assert train.items["title"].tolist() == ["Home", "Support, US"]
    assert rejections(train) == [
        (3, "visit (V line) without a valid user (C line)"),
        (7, "unknown item_id '1234'"),
        (8, "V line needs 3 fields, found 2"),
        (9, "unknown line type 'X'"),
    ]
    both = datasets.load(tmp_path, split="all")
    assert both.events["user_id"].tolist() == ["train:1", "train:1", "train:2", "test:1"]
    assert rejections(both)[-1] == (4, "anonymous-msweb.test: unknown item_id '999'")
    assert len(both.report.rejections) == 5
    created = datasets.load(tmp_path, split="test", unknown_items="create")
    assert created.events["item_id"].tolist() == ["999", "1000"]
    assert created.items["item_id"].tolist() == ["1000", "1001", "999"]
    with pytest.raises(ValueError, match="split='all' needs the folder"):
        load_msweb(tmp_path / "anonymous-msweb.test", split="all")


# ----- Open Bandit Dataset through the dispatcher -------------------------------------------


def test_obd_loads_as_a_bandit_log(shared_data):
    log = datasets.load("obd", path=shared_data / "obd-sample", policy="bts", campaign="men")
    assert isinstance(log, BanditLog)
    assert (len(log), log.n_actions, log.policy_name, log.campaign) == (10000, 34, "bts", "men")
    found = datasets.load(shared_data / "obd-sample" / "random" / "women" / "women.csv")
    assert (found.policy_name, found.campaign, found.n_actions) == ("random", "women", 46)


# ----- the dispatcher's errors, available() and describe() ---------------------------------


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        datasets.load("netflix-prize")
    msg = str(err.value)
    assert "unknown dataset 'netflix-prize'" in msg
    for name in ("ml-latest-small", "ml-1m", "ml-100k", "jester", "msweb", "obd"):
        assert name in msg


@pytest.mark.parametrize(
    ("name", "files"),
    [
        ("ml-1m", "ratings.dat and movies.dat"),
        ("ml-100k", "u.data and u.item"),
        ("ml-25m", "ratings.csv and movies.csv"),
        ("jester", "ratings.csv and jokes.csv"),
        ("msweb", "anonymous-msweb.data and anonymous-msweb.test"),
        ("obd", "random/ and bts/"),
    ],
)
def test_known_name_without_path_says_what_to_point_at(name, files):
    with pytest.raises(
        ValueError,
        match=f"{name} is not bundled: pass path= pointing at the folder holding {files}",
    ):
        datasets.load(name)


def test_other_dispatch_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        datasets.load(tmp_path / "missing.csv")
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        datasets.load("nowhere/events.csv")
    with pytest.raises(ValueError, match=r"ml-latest-small takes no option\(s\) \['split'\]"):
        datasets.load("ml-latest-small", split="all")
    with pytest.raises(ValueError, match="is not a known dataset name"):
        datasets.load("my-data", path=tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="no known dataset layout"):
        datasets.load(tmp_path)


def test_available_and_describe():
    listed = datasets.available()
    assert [d["name"] for d in listed] == [
        "ml-latest-small",
        "ml-latest",
        "ml-25m",
        "ml-1m",
        "ml-100k",
        "jester",
        "amazon",
        "msweb",
        "obd",
    ]
    assert all(
        set(d) == {"name", "description", "bundled", "needs_path", "citation"} for d in listed
    )
    assert [d["name"] for d in listed if d["bundled"]] == ["ml-latest-small"]
    assert all(d["needs_path"] != d["bundled"] for d in listed)
    assert "Harper and Joseph A. Konstan" in listed[0]["citation"]
    assert "Eigentaste" in datasets.describe("jester")["citation"]
    obd = datasets.describe("obd")
    assert (obd["returns"], obd["needs_path"], "summary" in obd) == ("BanditLog", True, False)
    small = datasets.describe("ml-latest-small")
    assert (small["summary"]["events"], small["summary"]["users"], small["summary"]["items"]) == (
        104519,
        610,
        9742,
    )
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        datasets.describe("nope")


def test_public_modules():
    assert datasets.__all__ == ["available", "describe", "load"]
    assert set(data_pkg.__all__) == {
        "Event",
        "Item",
        "User",
        "EventType",
        "Dataset",
        "InteractionWeights",
        "Interactions",
        "LoadReport",
        "Rejection",
        "ValidationOptions",
        "EventValidator",
        "BanditLog",
        "read_items",
        "read_users",
    }
    for name in data_pkg.__all__:
        assert getattr(data_pkg, name) is not None
    assert np.array_equal(datasets.load("ml-latest-small").item_index(["1", "nope"]), [0, -1])


def test_catalogue_aligns_items_with_item_ids_and_fills_event_only_items():
    from interestlens.data import Dataset, Event, Item
    from interestlens.data.dataset import items_frame

    events = Dataset.from_records([Event("u", "b", "click"), Event("u", "ghost", "click")]).events
    ds = Dataset(events, items_frame([Item("a", "A"), Item("b", "B", categories=["x"])]))
    cat = ds.catalogue()
    assert cat["item_id"].tolist() == list(ds.item_ids) == ["a", "b", "ghost"]
    assert cat["title"].tolist() == ["A", "B", ""]
    assert cat["categories"].tolist() == [[], ["x"], []]
