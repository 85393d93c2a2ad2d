"""Off-policy evaluation of our own exploration policies on the engine's own slate log."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from interestlens.data.bandit import BanditLog
from interestlens.engine import ExploreConfig
from interestlens.evaluate.ope import (
    OTHER_ITEMS,
    engine_action_dist,
    evaluate_policy,
    explore_action_dist,
    read_log,
)
from tests.engine.test_facade import _twin
from tests.test_cli import run

K, EXPLORE = 5, 0.3
#: Simulated slates per logged slate. The logging policy's propensities are exact, so a
#: Monte-Carlo estimate p_hat of a propensity p has standard error sqrt(p (1 - p) / N_DRAWS).
N_DRAWS = 250
#: The engine's policy: epsilon-greedy exploring among the ranker's top 30 (not the whole
#: catalogue, where each random item has a probability far below 1 / N_DRAWS), and not
#: learning from feedback, so the policy evaluated is the one that served every slate.
PARAMS = {"explore_from": "candidates", "n_candidates": 30, "feedback_weight": 0.0}


@pytest.fixture(scope="module")
def served(ml_engine, ml_small, tmp_path_factory):
    """An engine that served 100 logged slates (25 users x 4) and got clicks on dramas.

    The simulated user clicks an item exactly when MovieLens files it under Drama.
    """
    engine = _twin(
        ml_engine,
        tmp_path_factory.mktemp("ope-engine"),
        explore=ExploreConfig("epsilon_greedy", PARAMS),
    )
    items = ml_small.items
    liked = set(items.loc[items["categories"].map(lambda c: "Drama" in c), "item_id"])
    users = sorted(ml_small.events["user_id"].unique(), key=int)[:25]
    for _ in range(4):
        for u in users:
            for r in engine.recommend(u, k=K, explore=EXPLORE):
                if r.item_id in liked:
                    engine.feedback(r.request_id, r.item_id, 1.0)
    path = tmp_path_factory.mktemp("ope-log") / "slates.csv"
    frame = engine.slate_store.slate_frame()
    frame.to_csv(path, index=False)
    return engine, frame, read_log(path)


def test_the_exported_log_keeps_users_and_requests(served):
    _, frame, log = served
    assert len(log) == len(frame) == 100 * K and not log.report.rejections
    assert log.user_id.tolist() == frame["user_id"].astype(str).tolist()
    assert log.request_id.tolist() == frame["request_id"].tolist()
    assert log.subset(log.position == 0).user_id.tolist() == (
        frame.loc[frame["position"] == 0, "user_id"].astype(str).tolist()
    )


def test_on_policy_distribution_matches_propensities_and_ips_covers_the_mean(served):
    engine, _, log = served
    pol = engine.policy()
    before = (pol.shown_.copy(), pol.rewards_.copy(), pol.rng_.bit_generator.state)
    ext, pi = engine_action_dist(log, engine, explore=EXPLORE, n_draws=N_DRAWS)
    assert (pol.shown_ == before[0]).all() and (pol.rewards_ == before[1]).all()
    assert pol.rng_.bit_generator.state == before[2]
    assert ext.action_ids[-1] == OTHER_ITEMS and ext.n_actions == log.n_actions + 1
    rows = np.arange(len(log))
    sums = pi[rows, :, log.position].sum(axis=1)
    np.testing.assert_allclose(sums, 1.0, atol=1e-12)
    # (1) the estimate at each logged (item, position) is the logged propensity, within
    # 5 standard errors plus one draw
    p_hat = pi[rows, ext.action, log.position]
    p = log.propensity
    tol = 5 * np.sqrt(p * (1 - p) / N_DRAWS) + 1 / N_DRAWS
    assert (np.abs(p_hat - p) <= tol).all(), np.abs(p_hat - p).max()
    assert abs(np.mean(p_hat / p) - 1) < 0.05  # the importance weights average about 1
    res = evaluate_policy(ext, pi, ["ips", "snips", "dr"], n_bootstrap=300)
    mean = log.reward.mean()
    assert 0.1 < mean < 0.9
    for name, r in res.items():
        assert r.ci_low <= mean <= r.ci_high, (name, r, mean)


def test_explore_zero_puts_all_mass_on_the_greedy_slate(served):
    engine, frame, log = served
    ext, pi = engine_action_dist(log, engine, explore=0.0)
    rows = np.arange(len(log))
    at_pos = pi[rows, :, log.position]
    assert ((at_pos == 0.0) | (at_pos == 1.0)).all() and (at_pos.sum(axis=1) == 1.0).all()
    kept = ~frame["explored"].to_numpy()
    assert (pi[rows, ext.action, log.position][kept] == 1.0).all()
    for u in ("1", "7", "25"):
        greedy = [r.item_id for r in engine.recommend(u, k=K, explore=0.0)]
        row = int(np.flatnonzero(log.user_id == u)[0])
        ids = np.asarray(ext.action_ids)
        shown = [ids[np.flatnonzero(pi[row, :, j] == 1.0)[0]] for j in range(K)]
        assert shown == [g if g in set(ids) else OTHER_ITEMS for g in greedy]


def test_the_policy_is_unchanged_by_its_distribution(served):
    """Thompson sampling: many random draws and a model, and none of it moves."""
    engine, _, log = served
    pol = engine.policy("lin_ts")
    engine.recommend("3", k=K, explore=0.5, policy="lin_ts")  # one slate awaiting feedback
    model = pol.model_
    state = (
        dict(pol.pending_),
        pol.shown_.copy(),
        pol.rng_.bit_generator.state,
        model.A.copy(),
        model.A_inv.copy(),
        model.b.copy(),
        model.n,
        dict(pol.new_users_),
    )
    dist = pol.slate_distribution("3", k=K, explore=0.5, n_draws=30, random_state=1)
    assert dist.method == "monte-carlo:30"
    np.testing.assert_allclose(dist.probabilities.sum(axis=1), 1.0)
    few = log.subset(np.isin(log.request_id, log.request_id[: 3 * K]))
    _, pi = engine_action_dist(few, engine, "lin_ts", explore=0.5, n_draws=20)
    assert pi.shape == (len(few), few.n_actions + 1, few.len_list)
    after = (
        dict(pol.pending_),
        pol.shown_,
        pol.rng_.bit_generator.state,
        model.A,
        model.A_inv,
        model.b,
        model.n,
        dict(pol.new_users_),
    )
    assert after[0] == state[0] and after[2] == state[2] and after[6:] == state[6:]
    for a, b in zip(after[3:6], state[3:6], strict=True):
        assert (a == b).all()
    assert (after[1] == state[1]).all()
    # seeded: the same draws again
    again = pol.slate_distribution("3", k=K, explore=0.5, n_draws=30, random_state=1)
    assert (again.probabilities == dist.probabilities).all()


def test_unknown_users_and_items(served):
    engine, _, _ = served
    popular = [r.item_id for r in engine.recommend("never-seen", k=3, explore=0.0)]
    frame = pd.DataFrame(
        {
            "request_id": ["a", "a", "a"],
            "user_id": ["never-seen"] * 3,
            "item_id": [popular[0], "no-such-item", popular[2]],
            "position": [0, 1, 2],
            "reward": [1, 0, 0],
            "propensity": [0.9, 0.5, 0.9],
        }
    )
    log = BanditLog.from_frame(frame)
    ext, pi = engine_action_dist(log, engine, explore=0.0)
    assert ext.action_ids.tolist() == [popular[0], "no-such-item", popular[2], OTHER_ITEMS]
    assert pi[:, :, 0].tolist()[0] == [1.0, 0.0, 0.0, 0.0]  # the engine's cold slate
    assert pi[0, 1, :].tolist() == [0.0, 0.0, 0.0]  # an item the engine lacks: never
    assert pi[0, -1, 1] == 1.0 and pi[0, 2, 2] == 1.0


def test_a_log_without_users_is_refused(served):
    engine, _, _ = served
    log = BanditLog.from_frame(
        pd.DataFrame({"item_id": ["1"], "position": [0], "reward": [1], "propensity": [0.5]})
    )
    with pytest.raises(ValueError, match="needs each row's user, and this log has no user_id"):
        explore_action_dist(log, engine.policy())


def test_cli_evaluates_a_saved_engines_policy(served, tmp_path, shared_data):
    engine, frame, log = served
    engine.save(tmp_path / "engine")
    slates = tmp_path / "slates.csv"
    frame.to_csv(slates, index=False)
    args = ["ope", str(slates), "--policy", "epsilon_greedy", "--explore", "0"]
    p = run(*args, "--data-dir", str(tmp_path), "--estimators", "ips", "--json")
    assert p.returncode == 0, p.stderr
    ext, pi = engine_action_dist(log, engine, explore=0.0)
    want = evaluate_policy(ext, pi, ["ips"])["ips"].to_dict()
    assert json.loads(p.stdout) == {"ips": want}
    obd = run("ope", str(shared_data / "obd-sample"), "--policy", "lin_ucb")
    assert obd.returncode != 0 and "no user_id column" in obd.stderr
    assert len(obd.stderr.strip().splitlines()) == 1
