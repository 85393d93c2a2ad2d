"""Splits: disjoint, complete, seeded, and without held-out events leaking into training."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interestlens.data.dataset import Dataset
from interestlens.data.movielens import load_latest
from interestlens.data.schema import Event
from interestlens.data.splits import (
    Split,
    kfold,
    leave_last_out,
    random_holdout,
    temporal_cut,
)

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def day(k: float) -> datetime:
    return T0 + timedelta(days=k)


@pytest.fixture(scope="module")
def ml() -> Dataset:
    return load_latest()


def records(*events: Event) -> Dataset:
    ds = Dataset.from_records(events)
    assert ds.report is not None and ds.report.rejected == 0, ds.report.to_dict()
    return ds


def ids(ds: Dataset | None) -> list[str]:
    return [] if ds is None else ds.events["event_id"].tolist()


def parts(split: Split) -> dict[str, str]:
    """event_id -> part name."""
    out = {e: "train" for e in ids(split.train)}
    out.update({e: "validation" for e in ids(split.validation)})
    out.update({e: "test" for e in ids(split.test)})
    return out


def assert_partition(ds: Dataset, split: Split) -> None:
    """Parts pairwise disjoint; their union plus the dropped events is every event."""
    train, val, test = set(ids(split.train)), set(ids(split.validation)), set(ids(split.test))
    assert not train & val
    assert not train & test
    assert not val & test
    n = len(ids(split.train)) + len(ids(split.validation)) + len(ids(split.test))
    assert n == len(train | val | test)
    assert train | val | test <= set(ids(ds))
    assert n + split.dropped == len(ds.events)


def stable_order(ds: Dataset) -> pd.DataFrame:
    """Events with their row number, per user in time order, ties and missing times by row."""
    ev = ds.events.assign(row=np.arange(len(ds.events)))
    ev = ev.sort_values("timestamp", kind="stable", na_position="first")
    return ev.sort_values("user_id", kind="stable")


def is_target(row: pd.Series | tuple, target_types: set[str] | None) -> bool:
    return pd.notna(row.item_id) and (target_types is None or row.type in target_types)


def reference_leave_last_out(
    ds: Dataset, validation: bool = True, target_types: set[str] | None = None
) -> dict[str, str]:
    """event_id -> part, one user at a time, straight from the protocol's definition."""
    out: dict[str, str] = {}
    for _, g in stable_order(ds).groupby("user_id", sort=False):
        rows = list(g.itertuples())
        targets = [r for r in rows if is_target(r, target_types)]
        held: dict[str, str] = {}
        if len(targets) >= 2:
            held[targets[-1].event_id] = "test"
        if validation and len(targets) >= 3:
            held[targets[-2].event_id] = "validation"
        seen_held = False
        for r in rows:
            if r.event_id in held:
                out[r.event_id] = held[r.event_id]
                seen_held = True
            elif is_target(r, target_types):
                out[r.event_id] = "train"
            else:
                out[r.event_id] = "dropped" if seen_held else "train"
    return out


def assert_context_rule(ds: Dataset, split: Split, target_types: set[str] | None) -> None:
    """Context events are in train exactly when no held-out event of theirs comes earlier."""
    where = parts(split)
    for _, g in stable_order(ds).groupby("user_id", sort=False):
        seen_held = False
        for r in g.itertuples():
            part = where.get(r.event_id, "dropped")
            if is_target(r, target_types):
                assert part != "dropped"
                seen_held |= part in ("validation", "test")
            else:
                assert part == ("dropped" if seen_held else "train")


# ----- leave-last-out -------------------------------------------------------------


def test_leave_last_out_on_movielens_holds_out_one_per_user(ml: Dataset) -> None:
    s = leave_last_out(ml)
    assert_partition(ml, s)
    assert s.name == "leave_last_out"
    assert s.validation is not None
    assert len(s.test.events) == 610
    assert s.test.events["user_id"].nunique() == 610
    assert len(s.validation.events) == 610
    assert s.validation.events["user_id"].nunique() == 610
    assert s.dropped == 0
    assert len(s.train.events) == len(ml.events) - 1220


def test_leave_last_out_order_per_user_on_movielens(ml: Dataset) -> None:
    s = leave_last_out(ml)
    where = parts(s)
    ev = stable_order(ml)
    ev["pos"] = np.arange(len(ev))
    ev["part"] = ev["event_id"].map(where)
    by_user = ev.groupby(["user_id", "part"])["pos"].agg(["min", "max", "size"]).unstack()
    assert (by_user["size"]["test"] == 1).all()
    assert (by_user["size"]["validation"] == 1).all()
    assert (by_user["max"]["train"] < by_user["min"]["validation"]).all()
    assert (by_user["max"]["validation"] < by_user["min"]["test"]).all()
    last = ev.groupby("user_id")["pos"].max()
    assert (by_user["min"]["test"] == last).all()


def test_leave_last_out_matches_reference_on_movielens_ratings(ml: Dataset) -> None:
    s = leave_last_out(ml, target_types="rating")
    assert_partition(ml, s)
    expected = reference_leave_last_out(ml, target_types={"rating"})
    assert parts(s) == {e: p for e, p in expected.items() if p != "dropped"}
    assert s.dropped == Counter(expected.values())["dropped"]
    assert s.dropped > 0
    assert set(s.test.events["type"]) == {"rating"}
    assert s.test.events["user_id"].nunique() == 610


def test_leave_last_out_timestamp_ties_keep_file_order() -> None:
    ds = records(
        Event("u", "c", "click", timestamp=day(1), event_id="c"),
        Event("u", "a", "click", timestamp=day(1), event_id="a"),
        Event("u", "z", "click", timestamp=day(0), event_id="z"),
        Event("u", "b", "click", timestamp=day(1), event_id="b"),
    )
    s = leave_last_out(ds)
    assert ids(s.test) == ["b"]
    assert ids(s.validation) == ["a"]
    assert ids(s.train) == ["c", "z"]


def test_leave_last_out_without_timestamps_uses_arrival_order() -> None:
    ds = records(
        Event("u", "a", "click", event_id="a"),
        Event("u", "b", "click", timestamp=day(5), event_id="b"),
        Event("u", "c", "click", event_id="c"),
        Event("v", "x", "click", event_id="x"),
        Event("v", "y", "click", event_id="y"),
    )
    s = leave_last_out(ds)
    # u: untimed a and c come first, in arrival order, then b
    assert ids(s.test) == ["b", "y"]
    assert ids(s.validation) == ["c"]
    assert ids(s.train) == ["a", "x"]


def test_leave_last_out_small_users_and_no_validation() -> None:
    ds = records(
        *(Event("three", f"i{k}", "view", timestamp=day(k), event_id=f"t{k}") for k in range(3)),
        Event("two", "i0", "view", timestamp=day(0), event_id="w0"),
        Event("two", "i1", "view", timestamp=day(1), event_id="w1"),
        Event("one", "i0", "view", timestamp=day(0), event_id="o0"),
    )
    s = leave_last_out(ds)
    assert ids(s.test) == ["t2", "w1"]
    assert ids(s.validation) == ["t1"]
    assert ids(s.train) == ["t0", "w0", "o0"]
    s = leave_last_out(ds, validation=False)
    assert s.validation is None
    assert ids(s.test) == ["t2", "w1"]
    assert ids(s.train) == ["t0", "t1", "w0", "o0"]


def test_context_after_first_held_out_event_is_dropped() -> None:
    ds = records(
        Event("u", "r1", "rating", 4, day(1), event_id="r1"),
        Event("u", "r2", "rating", 5, day(2), event_id="r2"),
        Event("u", "r3", "rating", 3, day(3), event_id="r3"),
        Event("u", "r1", "tag", timestamp=day(1.5), text="fun", event_id="tag1"),
        Event("u", "r2", "tag", timestamp=day(2.5), text="sad", event_id="tag2"),
        Event("u", "r3", "review", timestamp=day(4), text="meh", event_id="rev"),
        Event("u", None, "search", timestamp=day(0), text="comedy", event_id="s0"),
        Event("u", None, "search", timestamp=day(3.5), text="drama", event_id="s1"),
    )
    s = leave_last_out(ds, target_types="rating")
    assert ids(s.test) == ["r3"]
    assert ids(s.validation) == ["r2"]
    assert ids(s.train) == ["r1", "tag1", "s0"]
    assert s.dropped == 3
    # by default every item event is a target; searches are context
    s = leave_last_out(ds)
    assert ids(s.test) == ["rev"]
    assert ids(s.validation) == ["r3"]
    assert ids(s.train) == ["r1", "r2", "tag1", "tag2", "s0"]
    assert s.dropped == 1
    s = leave_last_out(ds, target_types=["rating", "review"])
    assert (ids(s.validation), ids(s.test)) == (["r3"], ["rev"])


# ----- random hold-out ------------------------------------------------------------


def test_random_holdout_shares_per_user(ml: Dataset) -> None:
    s = random_holdout(ml, test_ratio=0.2, validation_ratio=0.25, random_state=3)
    assert_partition(ml, s)
    assert s.dropped == 0
    n = ml.events.groupby("user_id").size()
    n_test = s.test.events.groupby("user_id").size().reindex(n.index, fill_value=0)
    n_val = s.validation.events.groupby("user_id").size().reindex(n.index, fill_value=0)
    expected_test = np.clip(np.floor(0.2 * n + 0.5), 1, n - 1)
    assert (n_test == expected_test).all()
    rest = n - expected_test
    assert (n_val == np.clip(np.floor(0.25 * rest + 0.5), 1, rest - 1)).all()
    assert abs(n_test.sum() / n.sum() - 0.2) < 0.002


def test_random_holdout_is_seeded(ml: Dataset) -> None:
    a = random_holdout(ml, random_state=11)
    b = random_holdout(ml, random_state=11)
    c = random_holdout(ml, random_state=12)
    assert a.test.events.equals(b.test.events)
    assert a.train.events.equals(b.train.events)
    assert a.validation is None
    assert len(c.test.events) == len(a.test.events)
    overlap = len(set(ids(a.test)) & set(ids(c.test))) / len(a.test.events)
    assert overlap < 0.4


def test_random_holdout_small_users() -> None:
    ds = records(
        Event("one", "a", "view", timestamp=day(0), event_id="o"),
        Event("two", "a", "view", timestamp=day(0), event_id="w0"),
        Event("two", "b", "view", timestamp=day(1), event_id="w1"),
    )
    for seed in range(5):
        s = random_holdout(ds, test_ratio=0.9, validation_ratio=0.9, random_state=seed)
        assert "o" in ids(s.train)
        assert len(s.test.events) == 1
        assert s.validation is not None and len(s.validation.events) == 0
    three = records(*(Event("u", f"i{k}", "view", timestamp=day(k)) for k in range(3)))
    for d in (ds, three):
        s = random_holdout(d, test_ratio=0.1, validation_ratio=0.1, random_state=0)
        assert len(s.test.events) == 1  # rounds to none, but each user gives at least one
    assert len(s.validation.events) == 1
    assert len(s.train.events) == 1


def test_random_holdout_drops_context_after_held_out() -> None:
    ds = records(
        *(Event("u", f"i{k}", "rating", 4, day(k), event_id=f"r{k}") for k in range(10)),
        *(
            Event("u", None, "search", timestamp=day(k + 0.5), text="q", event_id=f"s{k}")
            for k in range(10)
        ),
    )
    s = random_holdout(ds, test_ratio=0.3, random_state=1)
    assert_partition(ds, s)
    assert_context_rule(ds, s, None)
    first = min(int(e[1:]) for e in ids(s.test))
    assert sorted(e for e in ids(s.train) if e.startswith("s")) == [f"s{k}" for k in range(first)]
    assert s.dropped == 10 - first


# ----- temporal cut ---------------------------------------------------------------


def test_temporal_cut_on_movielens(ml: Dataset) -> None:
    s = temporal_cut(ml, quantile=0.8, validation_quantile=0.7)
    assert_partition(ml, s)
    assert s.validation is not None
    train_max = s.train.events["timestamp"].max()
    assert train_max < s.validation.events["timestamp"].min()
    assert s.validation.events["timestamp"].max() < s.test.events["timestamp"].min()
    times = ml.events["timestamp"].sort_values(ignore_index=True)
    cut, validation_cut = times[int(0.8 * len(times))], times[int(0.7 * len(times))]
    assert s.test.events["timestamp"].min() == cut
    assert s.validation.events["timestamp"].min() == validation_cut
    assert len(s.test.events) == (times >= cut).sum() == 20904
    assert len(s.train.events) == (times < validation_cut).sum() == 73163


def test_temporal_cut_at_a_time_and_context() -> None:
    ds = records(
        Event("u", "a", "click", timestamp=day(0), event_id="a"),
        Event("v", "b", "click", timestamp=day(1), event_id="b"),
        Event("u", None, "search", timestamp=day(2), text="q", event_id="s"),
        Event("v", "c", "click", timestamp=day(2), event_id="c"),
        Event("u", "d", "click", timestamp=day(3), event_id="d"),
    )
    s = temporal_cut(ds, at="2024-01-03")
    assert (ids(s.train), ids(s.test), s.dropped) == (["a", "b"], ["c", "d"], 1)
    assert s.validation is None
    s = temporal_cut(ds, at=datetime(2024, 1, 3, 1, tzinfo=timezone(timedelta(hours=2))))
    assert ids(s.test) == ["c", "d"]  # 2024-01-02 23:00 UTC
    s = temporal_cut(ds, at=day(3), validation_at=day(1))
    assert (ids(s.train), ids(s.validation), ids(s.test)) == (["a"], ["b", "c"], ["d"])
    assert s.dropped == 1
    s = temporal_cut(ds, quantile=0.5)
    assert (ids(s.train), ids(s.test)) == (["a", "b"], ["c", "d"])
    summary = s.summary()
    assert summary["test"] == {
        "events": 2,
        "users": 2,
        "items": 2,
        "first_event": "2024-01-03T00:00:00+00:00",
        "last_event": "2024-01-04T00:00:00+00:00",
    }
    assert (summary["protocol"], summary["dropped"], summary["validation"]) == (
        "temporal_cut",
        1,
        None,
    )
    assert summary["test_users_not_in_train"] == 0


def test_temporal_cut_counts_cold_start_users() -> None:
    ds = records(
        Event("u", "a", "click", timestamp=day(0), event_id="a"),
        Event("new", "b", "click", timestamp=day(5), event_id="b"),
    )
    assert temporal_cut(ds, at=day(1)).summary()["test_users_not_in_train"] == 1


def test_temporal_cut_needs_timestamps() -> None:
    ds = records(Event("u", "a", "click", timestamp=day(0)), Event("u", "b", "click"))
    with pytest.raises(ValueError, match="temporal_cut needs timestamps, and 1 of 2 events"):
        temporal_cut(ds)


def test_temporal_cut_rejects_bad_cuts() -> None:
    ds = records(*(Event("u", f"i{k}", "click", timestamp=day(k)) for k in range(5)))
    with pytest.raises(ValueError, match="validation cut"):
        temporal_cut(ds, quantile=0.4, validation_quantile=0.8)
    with pytest.raises(ValueError, match=r"quantile must be in \(0, 1\)"):
        temporal_cut(ds, quantile=1.0)
    searches = records(Event("u", None, "search", timestamp=day(0), text="q"))
    with pytest.raises(ValueError, match="no target events"):
        temporal_cut(searches)


# ----- k-fold ---------------------------------------------------------------------


def test_kfold_tests_every_target_event_once(ml: Dataset) -> None:
    folds = list(kfold(ml, k=5, random_state=2))
    assert [f.name for f in folds] == [f"kfold {i}/5" for i in range(1, 6)]
    tested: Counter[str] = Counter()
    for f in folds:
        assert_partition(ml, f)
        assert f.validation is None
        assert f.dropped == 0
        tested.update(ids(f.test))
    assert set(tested.values()) == {1}
    assert set(tested) == set(ids(ml))
    per_user = pd.DataFrame(
        [(u, i) for i, f in enumerate(folds) for u in f.test.events["user_id"]],
        columns=["user", "fold"],
    ).value_counts()
    spread = per_user.groupby("user").agg(["min", "max", "size"])
    assert ((spread["max"] - spread["min"] <= 1) & (spread["size"] == 5)).all()
    sizes = [len(f.test.events) for f in folds]
    assert max(sizes) - min(sizes) < 0.002 * len(ml.events)
    again = list(kfold(ml, k=5, random_state=2))
    assert all(ids(a.test) == ids(b.test) for a, b in zip(folds, again, strict=True))
    other = next(kfold(ml, k=5, random_state=3))
    assert ids(other.test) != ids(folds[0].test)


def test_kfold_with_target_types() -> None:
    ds = records(
        *(Event("u", f"i{k}", "rating", 3, day(k), event_id=f"r{k}") for k in range(4)),
        Event("u", "i0", "tag", timestamp=day(9), text="x", event_id="t"),
    )
    folds = list(kfold(ds, k=2, target_types={"rating"}))
    assert sorted(ids(folds[0].test) + ids(folds[1].test)) == ["r0", "r1", "r2", "r3"]
    assert [len(f.test.events) for f in folds] == [2, 2]
    assert [f.dropped for f in folds] == [1, 1]


# ----- arguments and docs ---------------------------------------------------------


def test_bad_arguments() -> None:
    ds = records(Event("u", "a", "click", timestamp=day(0)))
    with pytest.raises(ValueError, match="unknown event types \\['like'\\]"):
        leave_last_out(ds, target_types=["rating", "like"])
    with pytest.raises(ValueError, match="target_types is empty"):
        leave_last_out(ds, target_types=[])
    with pytest.raises(ValueError, match="test_ratio"):
        random_holdout(ds, test_ratio=1.0)
    with pytest.raises(ValueError, match="validation_ratio"):
        random_holdout(ds, validation_ratio=-0.1)
    with pytest.raises(ValueError, match="k must be an integer of at least 2"):
        kfold(ds, k=1)


def test_empty_dataset() -> None:
    ds = Dataset()
    for s in (leave_last_out(ds), random_holdout(ds), *kfold(ds, k=2)):
        assert (len(s.train.events), len(s.test.events), s.dropped) == (0, 0, 0)


# ----- properties over random small datasets --------------------------------------

TYPES = ["view", "click", "rating", "tag", "search"]

event_rows = st.lists(
    st.tuples(
        st.integers(0, 3),  # user
        st.sampled_from(TYPES),
        st.integers(0, 4),  # item
        st.one_of(st.none(), st.integers(0, 5)),  # day, or no timestamp
    ),
    max_size=30,
)


def random_dataset(rows: list[tuple[int, str, int, int | None]]) -> Dataset:
    return records(
        *(
            Event(
                f"u{u}",
                None if t == "search" else f"i{i}",
                t,
                3.0 if t == "rating" else 1.0,
                None if d is None else day(d),
                event_id=f"e{n}",
                text="words" if t in ("tag", "search") else None,
            )
            for n, (u, t, i, d) in enumerate(rows)
        )
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=event_rows,
    target=st.sampled_from([None, {"rating"}, {"click", "view"}]),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_protocol_partitions_without_leaks(
    rows: list[tuple[int, str, int, int | None]], target: set[str] | None, seed: int
) -> None:
    ds = random_dataset(rows)
    for validation in (True, False):
        s = leave_last_out(ds, validation=validation, target_types=target)
        assert_partition(ds, s)
        expected = reference_leave_last_out(ds, validation, target)
        assert parts(s) == {e: p for e, p in expected.items() if p != "dropped"}
    s = random_holdout(
        ds, test_ratio=0.3, validation_ratio=0.3, random_state=seed, target_types=target
    )
    assert_partition(ds, s)
    assert_context_rule(ds, s, target)
    again = random_holdout(
        ds, test_ratio=0.3, validation_ratio=0.3, random_state=seed, target_types=target
    )
    assert parts(s) == parts(again)
    tested: Counter[str] = Counter()
    for f in kfold(ds, k=3, random_state=seed, target_types=target):
        assert_partition(ds, f)
        assert_context_rule(ds, f, target)
        tested.update(ids(f.test))
    targets = {r.event_id for r in ds.events.itertuples() if is_target(r, target)}
    assert set(tested) == targets
    assert set(tested.values()) <= {1}
    if ds.events["timestamp"].isna().any():
        with pytest.raises(ValueError, match="needs timestamps"):
            temporal_cut(ds, target_types=target)
    elif targets:
        s = temporal_cut(ds, quantile=0.6, validation_quantile=0.3, target_types=target)
        assert_partition(ds, s)
        assert s.validation is not None
        times = [p.events["timestamp"] for p in (s.train, s.validation, s.test)]
        for earlier, later in itertools.combinations(times, 2):
            if len(earlier) and len(later):
                assert earlier.max() < later.min()
