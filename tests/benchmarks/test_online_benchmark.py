"""``benchmarks/online.py`` times a saved engine's requests around a new event, on a copy of its folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from interestlens.engine import Config, Engine
from tests.benchmarks.scripts import benchmark_script
from tests.conftest import LIGHT_HYBRID
from tests.models.contract import tiny_dataset


@pytest.fixture(scope="module")
def bench():
    with benchmark_script("online") as module:
        yield module


@pytest.fixture(scope="module")
def saved(tmp_path_factory, encoder, sentiment) -> Path:
    """A light engine fitted on the tiny dataset and saved in its own folder."""
    folder = tmp_path_factory.mktemp("online")
    config = Config(data_dir=folder, hybrid_models=LIGHT_HYBRID, n_fine=4, n_broad=2, threads=1)
    engine = Engine(config, encoder=encoder, sentiment=sentiment).fit(tiny_dataset())
    engine.save()
    return folder


def test_each_user_gets_a_new_click_between_the_timed_requests(bench, saved):
    engine = Engine.open(saved)
    users = ["u0", "u1", "u2"]
    before = {u: len(engine.user_events(u)) for u in users}
    ms, wrote = bench.time_requests(engine, users, k=5)
    assert wrote == [False, False, False]  # the tiny dataset's users wrote nothing
    # and, the engine's recommender being a Hybrid, the floor of its models' arithmetic
    assert set(ms) == {*bench.OPERATIONS, "model_arithmetic"}
    assert all(len(v) == len(users) and min(v) > 0 for v in ms.values())
    for u in users:
        mine = engine.user_events(u)
        assert len(mine) == before[u] + 1
        # the click is the user's newest event, on an item they had no event on
        assert mine["type"].iloc[-1] == "click"
        assert mine["timestamp"].iloc[-1] == mine["timestamp"].max()
        assert (mine["item_id"] == mine["item_id"].iloc[-1]).sum() == 1


def test_a_run_reopens_the_saved_engine_and_leaves_its_folder_as_it_was(bench, saved, capsys):
    stored = Engine.open(saved).info()
    doc = bench.run(saved, users=4, dataset="not fitted again")
    assert doc["fit_seconds"] is None  # reopened, not refitted
    assert doc["users"] == 4 and doc["recommender"] == "hybrid"
    assert doc["hybrid_models"] == list(LIGHT_HYBRID)
    for op in bench.OPERATIONS:
        p = doc["latency_ms"][op]
        assert p["n"] == 4 and 0 < p["p50"] <= p["p95"] <= p["p99"] <= p["max"]
    assert 0 <= doc["machine"]["other_cpu_share"] <= 1
    assert doc["after_event_recommend_ms_by_user_text"] == {
        "without_text": doc["latency_ms"]["after_event_recommend"]
    }
    # the clicks went to a copy: the saved folder's store holds what it held
    assert Engine.open(saved).info() == stored
    bench.print_table(doc)
    out = capsys.readouterr().out
    assert "after_event_recommend" in out and "target: after_event_recommend p95 < 10.0 ms" in out


def test_percentiles_of_known_values(bench):
    p = bench.percentiles([float(x) for x in range(1, 101)])
    assert (p["p50"], p["p95"], p["p99"], p["max"], p["n"]) == (50.5, 95.05, 99.01, 100.0, 100)
