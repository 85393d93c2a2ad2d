"""The slate log: served slates and their feedback, durable, idempotent, exportable for OPE."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from interestlens.data.bandit import BanditLog
from interestlens.data.schema import Event
from interestlens.evaluate.ope import evaluate_policy, read_log, uniform_policy
from interestlens.store import SQLiteEventStore, open_store
from interestlens.store import sqlite as sqlite_backend
from interestlens.store.sqlite import SCHEMA_VERSION as SCHEMA

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def _slate(
    rid: str, user: str = "u1", items=("a", "b", "c"), *, policy="epsilon_greedy", t=0, **kw
):
    n = len(items)
    return dict(
        request_id=rid,
        user_id=user,
        item_ids=list(items),
        propensities=kw.pop("propensities", [0.9, 0.05, 0.05][:n]),
        explored=kw.pop("explored", [False, True, True][:n]),
        scores=kw.pop("scores", [3.0, 1.0, 0.5][:n]),
        policy=policy,
        params={"explore": 0.1, "n_candidates": np.int64(100)},
        explore=0.1,
        propensity_method="exact",
        context=kw.pop("context", {"user_known": True, "source": "personal", "n_eligible": 50}),
        timestamp=T0 + timedelta(minutes=t),
    )


def test_slates_and_feedback_join_into_the_bandit_frame(store):
    assert store.log_slate(**_slate("r1"))
    assert store.log_slate(**_slate("r2", "u2", ("c", "a"), t=1))
    assert store.log_feedback("r1", "b", 1.0, timestamp=T0)
    store.log_feedback("r2", "a", 0.5)
    store.log_feedback("r2", "a", 2.0)  # the latest feedback is the reward
    frame = store.slate_frame()
    assert frame[["request_id", "item_id", "position", "reward", "propensity"]].values.tolist() == [
        ["r1", "a", 0, 0.0, 0.9],
        ["r1", "b", 1, 1.0, 0.05],
        ["r1", "c", 2, 0.0, 0.05],
        ["r2", "c", 0, 0.0, 0.9],
        ["r2", "a", 1, 2.0, 0.05],
    ]
    assert frame["explored"].tolist() == [False, True, True, False, True]
    assert frame["score"].tolist() == [3.0, 1.0, 0.5, 3.0, 1.0]
    assert (
        frame["timestamp"].tolist()
        == [pd.Timestamp(T0)] * 3 + [pd.Timestamp(T0 + timedelta(minutes=1))] * 2
    )
    assert frame["context_n_eligible"].tolist() == [50] * 5
    assert frame["context_source"].tolist() == ["personal"] * 5
    assert store.count_slates() == 2


def test_the_log_feeds_off_policy_evaluation(store, tmp_path):
    rng = np.random.default_rng(0)
    for r in range(40):
        items = [f"i{j}" for j in rng.permutation(6)[:2]]
        store.log_slate(
            **_slate(
                f"r{r}",
                f"u{r % 5}",
                items,
                propensities=[0.5, 0.25],
                explored=[False, True],
                scores=[1.0, 0.0],
                t=r,
            )
        )
        if rng.random() < 0.4:
            store.log_feedback(f"r{r}", items[0], 1.0)
    log = store.slate_log()
    assert isinstance(log, BanditLog) and len(log) == 80 and log.len_list == 2
    assert not log.report.rejections
    assert (
        "context_source=personal" in log.context_names and "context_n_eligible" in log.context_names
    )
    frame = store.slate_frame()
    assert log.reward.sum() == frame["reward"].sum() > 0
    # written to a file, the frame is what `interestlens ope LOGFILE` reads
    path = tmp_path / "served.csv"
    frame.to_csv(path, index=False)
    from_file = read_log(path)
    assert len(from_file) == 80 and from_file.reward.tolist() == log.reward.tolist()
    result = evaluate_policy(log, uniform_policy(log), estimators=["ips"])
    assert np.isfinite(result["ips"].estimate)


def test_logging_is_idempotent_and_checks_its_input(store):
    assert store.log_slate(**_slate("r1"))
    assert not store.log_slate(**_slate("r1"))
    assert store.count_slates() == 1 and len(store.slate_frame()) == 3
    assert store.log_feedback("r1", "a", 1.0, feedback_id="f1")
    assert not store.log_feedback("r1", "a", 0.0, feedback_id="f1")  # a retry, not a change
    assert store.slate_frame()["reward"].tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(KeyError, match="no logged slate 'r9' showed item 'a'"):
        store.log_feedback("r9", "a", 1.0)
    with pytest.raises(KeyError, match="no logged slate 'r1' showed item 'zzz'"):
        store.log_feedback("r1", "zzz", 1.0)
    with pytest.raises(ValueError, match="reward must be a finite number"):
        store.log_feedback("r1", "a", float("inf"))
    with pytest.raises(ValueError, match=r"propensities must lie in \(0, 1\]"):
        store.log_slate(**_slate("r2", propensities=[0.5, 0.0, 1.0]))
    with pytest.raises(ValueError, match="explored has 2 entries for 3 items"):
        store.log_slate(**_slate("r3", explored=[True, False]))
    assert store.count_slates() == 1


def test_filters_by_policy_and_time(store):
    store.log_slate(**_slate("r1", t=0))
    store.log_slate(**_slate("r2", policy="lin_ucb", t=10))
    store.log_slate(**_slate("r3", t=20))
    assert set(store.slate_frame(policy="lin_ucb")["request_id"]) == {"r2"}
    since = T0 + timedelta(minutes=5)
    assert set(store.slate_frame(since=since)["request_id"]) == {"r2", "r3"}
    assert set(store.slate_frame(since=since, until=T0 + timedelta(minutes=20))["request_id"]) == {
        "r2"
    }
    assert store.slate_log(policy="epsilon_greedy").policy_name == "epsilon_greedy"
    assert store.slate_frame(policy="nobody").empty


def test_contexts_missing_a_number_leave_it_out_of_the_bandit_context(store):
    store.log_slate(**_slate("r1", context={"n_eligible": 5, "source": "popular"}))
    store.log_slate(**_slate("r2", context={"source": "content"}))
    log = store.slate_log()
    assert len(log) == 6 and "context_n_eligible" not in log.context_names
    assert set(log.context_names) == {"context_source=content", "context_source=popular"}


def test_forget_user_removes_their_slates_and_feedback(store):
    store.append([Event("u1", "a", "click", event_id="e1")])
    store.log_slate(**_slate("r1", "u1"))
    store.log_slate(**_slate("r2", "u2"))
    store.log_feedback("r1", "a", 1.0)
    store.log_feedback("r2", "a", 1.0)
    assert store.forget_user("u1") == 1
    frame = store.slate_frame()
    assert set(frame["user_id"]) == {"u2"} and frame["reward"].sum() == 1.0
    assert store.count_slates() == 1


def test_migrates_a_version_two_sqlite_store(tmp_path):
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path, isolation_level=None)
    sqlite_backend.migrate(conn, target=2)
    conn.execute(
        "INSERT INTO events (event_id, user_id, item_id, type, value) VALUES ('e1','u1','i1','click',1)"
    )
    conn.close()
    with SQLiteEventStore(path) as st:
        assert st.schema_version == SCHEMA and st.count() == 1
        st.log_slate(**_slate("r1"))
        assert st.count_slates() == 1
    with open_store(path) as st:  # reopening migrates nothing and keeps everything
        assert st.schema_version == SCHEMA and st.count_slates() == 1


@pytest.mark.postgres
def test_postgres_migrates_a_version_two_store(postgres_url):
    import psycopg

    from interestlens.store import postgres as pg_backend

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        pg_backend.migrate(conn, target=2)
        conn.execute(
            "INSERT INTO events (event_id, user_id, item_id, type, value) VALUES ('e1','u1','i1','view',1)"
        )
    with open_store(postgres_url) as st:
        assert st.schema_version == SCHEMA and st.count() == 1
        st.log_slate(**_slate("r1"))
        st.log_feedback("r1", "c", 1.0)
        assert st.slate_frame()["reward"].tolist() == [0.0, 0.0, 1.0]
