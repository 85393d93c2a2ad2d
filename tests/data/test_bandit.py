"""BanditLog and the Open Bandit Dataset loader: real sample counts and row-level validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from interestlens.data import BanditLog
from interestlens.data.bandit import load_obd

# From obd-sample/SOURCE.md: items, propensity min..max, click rate, rows at positions 1/2/3.
OBD_TABLE = {
    ("bts", "all"): (80, 4.5e-05, 0.95424, 0.0042, [3362, 3317, 3321]),
    ("bts", "men"): (34, 0.000165, 0.72529, 0.0069, [3339, 3262, 3399]),
    ("bts", "women"): (46, 1e-06, 0.9628, 0.0046, [3288, 3360, 3352]),
    ("random", "all"): (80, 1 / 80, 1 / 80, 0.0038, [3322, 3412, 3266]),
    ("random", "men"): (34, 1 / 34, 1 / 34, 0.0046, [3284, 3388, 3328]),
    ("random", "women"): (46, 1 / 46, 1 / 46, 0.0046, [3329, 3374, 3297]),
}


@pytest.fixture(scope="module")
def obd_root(request) -> Path:
    return request.getfixturevalue("shared_data") / "obd-sample"


@pytest.fixture(scope="module")
def random_all(obd_root) -> BanditLog:
    return load_obd(obd_root)


@pytest.mark.parametrize(("policy", "campaign"), list(OBD_TABLE))
def test_obd_sample_matches_its_source_table(obd_root, policy, campaign):
    n_items, p_min, p_max, click_rate, per_position = OBD_TABLE[(policy, campaign)]
    log = load_obd(obd_root, policy=policy, campaign=campaign)
    assert (len(log), log.n_actions, log.len_list) == (10000, n_items, 3)
    assert (log.policy_name, log.campaign) == (policy, campaign)
    assert (log.report.loaded, log.report.rejected) == (10000, 0)
    assert log.propensity.min() == pytest.approx(p_min, rel=1e-9)
    assert log.propensity.max() == pytest.approx(p_max, rel=1e-9)
    assert log.reward.mean() == pytest.approx(click_rate, abs=1e-12)
    assert np.bincount(log.position).tolist() == per_position
    assert log.action_ids.tolist() == [str(i) for i in range(n_items)]


def test_random_all_details(random_all):
    log = random_all
    assert (log.policy_name, log.campaign) == ("random", "all")
    assert np.all(log.propensity == 0.0125)
    assert sorted(set(log.position.tolist())) == [0, 1, 2]
    assert set(np.unique(log.reward).tolist()) == {0.0, 1.0}
    assert int(log.reward.sum()) == 38
    assert log.timestamp[0] == pd.Timestamp("2019-11-24 00:00:34.762830", tz="UTC")
    assert log.timestamp.min() >= pd.Timestamp("2019-11-24", tz="UTC")
    assert log.timestamp.max() < pd.Timestamp("2019-12-01", tz="UTC")
    # first row of random/all/all.csv: item 14 at position 3, no click
    assert (log.action[0], log.position[0], log.reward[0]) == (14, 2, 0.0)
    assert log.item_context.columns.tolist() == [
        "item_id",
        "item_feature_0",
        "item_feature_1",
        "item_feature_2",
        "item_feature_3",
    ]
    assert len(log.item_context) == 80


def test_obd_context_is_one_hot_user_features_then_affinities(random_all):
    log = random_all
    names = log.context_names
    assert log.context.shape == (10000, 3 + 5 + 8 + 8 + 80) == (10000, len(names))
    assert names[0].startswith("user_feature_0=") and names[24] == "user-item_affinity_0"
    assert names[-1] == "user-item_affinity_79"
    one_hot = log.context[:, :24]
    for k, (lo, hi) in enumerate([(0, 3), (3, 8), (8, 16), (16, 24)]):
        assert np.all(one_hot[:, lo:hi].sum(axis=1) == 1), f"user_feature_{k}"
    assert names.index("user_feature_0=81ce123cbb5bd8ce818f60fb3586bba5") in np.flatnonzero(
        log.context[0]
    )


def test_empirical_action_dist(random_all):
    dist = random_all.empirical_action_dist()
    assert dist.shape == (3, 80)
    np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    at_first = (random_all.position == 0) & (random_all.action == 14)
    assert dist[0, 14] == at_first.sum() / 3322


def test_subset_and_to_frame(random_all):
    clicked = random_all.subset(random_all.reward == 1)
    assert len(clicked) == 38 and clicked.n_actions == 80 and clicked.len_list == 3
    assert np.all(clicked.reward == 1.0)
    assert clicked.report is None
    frame = clicked.to_frame()
    assert frame.columns.tolist()[:6] == [
        "timestamp",
        "item_id",
        "action",
        "position",
        "reward",
        "propensity",
    ]
    assert frame.shape == (38, 6 + 104)
    assert (frame["item_id"] == frame["action"].astype(str)).all()
    with pytest.raises(ValueError, match="mask has shape"):
        random_all.subset(np.ones(3, dtype=bool))


def test_arrays_are_read_only(random_all):
    with pytest.raises(ValueError, match="read-only"):
        random_all.propensity[0] = 0.5
    with pytest.raises(AttributeError):
        random_all.len_list = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    ("path_parts", "kwargs", "expected"),
    [
        ((), {"policy": "bts", "campaign": "women"}, ("bts", "women", 46)),
        (("bts",), {"campaign": "men"}, ("bts", "men", 34)),
        (("bts",), {}, ("bts", "all", 80)),
        (("random", "men"), {}, ("random", "men", 34)),
        (("random", "men", "men.csv"), {}, ("random", "men", 34)),
    ],
)
def test_path_forms(obd_root, path_parts, kwargs, expected):
    log = load_obd(obd_root.joinpath(*path_parts), **kwargs)
    assert (log.policy_name, log.campaign, log.n_actions) == expected


@pytest.mark.parametrize(
    ("path_parts", "kwargs", "message"),
    [
        ((), {"policy": "greedy"}, "policy must be one of"),
        ((), {"campaign": "kids"}, "campaign must be one of"),
        (("bts",), {"policy": "random"}, "holds the 'bts' policy, but policy='random' was asked"),
        (("random", "men"), {"campaign": "women"}, "holds the 'men' campaign"),
    ],
)
def test_path_conflicts_raise(obd_root, path_parts, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_obd(obd_root.joinpath(*path_parts), **kwargs)


HEADER = ",timestamp,item_id,position,click,propensity_score,user_feature_0,user-item_affinity_0,user-item_affinity_1\n"


def write_campaign(folder: Path, rows: list[str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "item_context.csv").write_text(",item_id,item_feature_0\n0,0,0.1\n1,1,0.2\n")
    (folder / "men.csv").write_text(HEADER + "".join(r + "\n" for r in rows))
    return folder


def test_bad_rows_are_rejected_with_their_numbers(tmp_path):
    t = "2019-11-24 00:00:01+00:00"
    rows = [
        f"0,{t},0,1,0,0.5,a,0.0,1.0",  # 1 good
        f"1,{t},1,2,1,0.0,b,0.0,0.0",  # 2 propensity 0
        f"2,{t},1,3,0,1.5,a,0.0,0.0",  # 3 propensity above 1
        f"3,{t},0,4,0,0.5,a,0.0,0.0",  # 4 position outside 1..3
        f"4,{t},5,1,0,0.5,a,0.0,0.0",  # 5 unknown item
        f"5,{t},0,1,inf,0.5,a,0.0,0.0",  # 6 reward not finite
        f"6,{t},0,1,,0.5,a,0.0,0.0",  # 7 reward missing
        f"7,{t},0,1,0,0.5,a,0.0",  # 8 a field short
        "8,soon,1,2.5,x,0.5,b,0.0,y",  # 9 several problems
        f"9,{t},1,3,1,1.0,,2.0,0.0",  # 10 good, blank categorical
    ]
    log = load_obd(write_campaign(tmp_path / "random" / "men", rows))
    assert [(r.row, r.reason) for r in log.report.rejections] == [
        (2, "propensity 0 out of range (0, 1]"),
        (3, "propensity 1.5 out of range (0, 1]"),
        (4, "position 4 out of range [1, 3]"),
        (5, "unknown item_id '5'"),
        (6, "reward is not finite"),
        (7, "missing reward"),
        (8, "expected 9 fields, found 8"),
        (
            9,
            "position 2.5 is not an integer; reward 'x' is not a number; "
            "unparsable timestamp 'soon'; user-item_affinity_1 'y' is not a number",
        ),
    ]
    assert (len(log), log.report.loaded, log.report.rejected) == (2, 2, 8)
    assert log.action.tolist() == [0, 1] and log.position.tolist() == [0, 2]
    assert log.context_names == ("user_feature_0=a", "user-item_affinity_0", "user-item_affinity_1")
    assert log.context.tolist() == [[1.0, 0.0, 1.0], [0.0, 2.0, 0.0]]
    assert (log.policy_name, log.campaign) == ("random", "men")


def test_from_frame_without_item_context():
    frame = pd.DataFrame(
        {
            "item_id": ["x", "y", "x", "z"],
            "position": [0, 0, 1, 7],
            "reward": [0.5, 1.0, 0.0, 1.0],
            "propensity": [0.2, 0.3, 0.4, 0.5],
            "device": ["phone", "desktop", "phone", "phone"],
        }
    )
    log = BanditLog.from_frame(
        frame, context_columns=["device"], categorical=["device"], len_list=2
    )
    assert log.action_ids.tolist() == ["x", "y"]
    assert log.item_context["item_id"].tolist() == ["x", "y"]
    assert log.action.tolist() == [0, 1, 0]
    assert log.context_names == ("device=desktop", "device=phone")
    assert log.timestamp.isna().all()
    assert [(r.row, r.reason) for r in log.report.rejections] == [
        (4, "position 7 out of range [0, 1]")
    ]
    np.testing.assert_allclose(log.empirical_action_dist(), [[0.5, 0.5], [1.0, 0.0]])


def test_constructor_enforces_its_invariants():
    base = dict(
        context=np.zeros((2, 1)),
        action=[0, 1],
        position=[0, 0],
        reward=[0.0, 1.0],
        propensity=[0.5, 0.5],
        timestamp=pd.DatetimeIndex([pd.NaT, pd.NaT]),
        action_ids=["a", "b"],
        item_context=pd.DataFrame({"item_id": ["a", "b"]}),
        len_list=1,
    )
    assert len(BanditLog(**base)) == 2
    for change, message in [
        ({"propensity": [0.5, 0.0]}, "propensities must lie in"),
        ({"action": [0, 2]}, "actions must lie in"),
        ({"position": [0, 1]}, "positions must lie in"),
        ({"reward": [np.nan, 1.0]}, "rewards must be finite"),
        ({"reward": [1.0]}, "reward has shape"),
        ({"context": np.zeros((3, 1))}, "context must be an"),
    ]:
        with pytest.raises(ValueError, match=message):
            BanditLog(**{**base, **change})
    frame_ctx = BanditLog(**{**base, "context": pd.DataFrame({"age": [30, 40]})})
    assert frame_ctx.context_names == ("age",) and frame_ctx.context.tolist() == [[30.0], [40.0]]
