"""The references and the Vowpal Wabbit adapter of ``benchmarks/explore.py`` run and do what they say."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from interestlens.evaluate import simulate
from interestlens.evaluate.simulate import EXPLOIT
from interestlens.models import ALS, build_model
from tests.benchmarks.scripts import BENCHMARKS, benchmark_script
from tests.evaluate.test_simulate import fitted_tiny


@pytest.fixture(scope="module")
def bench():
    with benchmark_script("explore") as module:
        yield module


@pytest.fixture(scope="module")
def sim():
    return fitted_tiny()


@pytest.fixture(scope="module")
def runs(bench, sim):
    factories = {
        "interest_oracle": lambda r, s: bench.InterestOracle(r, simulator=sim, random_state=s),
        "interest_knowing": lambda r, s: bench.InterestKnowing(r, simulator=sim, random_state=s),
        "vw_epsilon": bench.vw_factory("epsilon"),
    }
    ranker = ALS(factors=4, iterations=3)
    result = simulate(
        sim, factories, ranker=ranker, rounds=40, k=2, explore=[0, 1], seeds=[0], n_users=None
    )
    return result.runs.set_index(["policy", "explore"])


def test_at_explore_zero_every_reference_is_pure_exploitation(runs):
    exploit = runs.loc[(EXPLOIT, 0.0), ["reward", "interests_found"]]
    for name in ("interest_oracle", "interest_knowing"):
        assert runs.loc[(name, 0.0), ["reward", "interests_found"]].equals(exploit), name


def test_with_the_truth_references_find_at_least_as_many_interests_as_exploitation(runs):
    for name in ("interest_oracle", "interest_knowing"):
        found = runs.loc[(name, 1.0), "interests_found"]
        assert found >= runs.loc[(EXPLOIT, 0.0), "interests_found"], name


def test_vowpal_wabbit_at_epsilon_one_explores(runs):
    assert runs.loc[("vw_epsilon", 1.0), "explored_share"] > 0.3


def test_interest_knowing_leads_with_a_true_interest_not_yet_found(bench, sim):
    ranker = ALS(factors=4, iterations=3).fit(sim.start_)
    policy = bench.InterestKnowing(ranker, simulator=sim).fit(
        sim.start_, item_vectors=sim.item_vectors_, taxonomy=sim.taxonomy_
    )
    led_by_truth = 0
    for row, user in enumerate(sim.user_ids_):
        true = np.flatnonzero(sim.true_interests_[row])
        scores = policy._user_scores(user, None, True)
        pool = policy._pool(scores, 2)
        slate = policy.recommend(user, k=2, explore=1.0)
        first = sim.item_interest_[sim.item_ids_.get_loc(slate.item_ids[0])]
        assert slate.propensities == (1.0, 1.0)
        # no click yet, so every true interest among the candidates earns the bonus
        leads_with = true if np.isin(sim.item_interest_[pool], true).any() else None
        if leads_with is None:  # nothing to lead with: the ranker's best comes first
            assert slate.item_ids[0] == sim.item_ids_[pool[0]], user
        else:
            assert first in leads_with, (user, first, true)
            led_by_truth += 1
    assert led_by_truth >= len(sim.user_ids_) // 2, "too few users to test the lead on"


# ----- Vowpal Wabbit: cold and warm ------------------------------------------------


@pytest.fixture(scope="module")
def als(sim):
    return ALS(factors=4, iterations=15).fit(sim.start_)


def test_exploitation_log_is_the_rankers_top_k_with_clicks_of_its_own(bench, sim, als):
    log = bench.exploitation_log(sim, als, rounds=30, k=2, seed=0)
    assert len(log) == 30
    shown: dict[str, set] = {}
    for logged in log:
        row = sim.user_ids_.get_loc(logged.user_id)
        start = set(sim.start_items_[row].indices.tolist())
        expected = np.where(
            np.isin(np.arange(len(sim.item_ids_)), [*start, *shown.get(logged.user_id, ())]),
            -np.inf,
            als.score_all([logged.user_id])[0].astype(np.float64),
        )
        assert np.array_equal(np.isinf(logged.scores), np.isinf(expected))
        assert np.allclose(logged.scores, expected, rtol=1e-5)  # batched scores may round apart
        others = np.delete(expected, logged.cols)
        assert len(logged.cols) == 2 and expected[logged.cols].min() >= others.max()
        assert np.isfinite(expected[logged.cols]).all()
        assert set(logged.rewards.tolist()) <= {0.0, 1.0}
        shown.setdefault(logged.user_id, set()).update(logged.cols.tolist())
    clicks = sum(logged.rewards.sum() for logged in log)
    assert 0 < clicks < 60
    again = bench.exploitation_log(sim, als, rounds=30, k=2, seed=0)
    other = bench.exploitation_log(sim, als, rounds=30, k=2, seed=1)
    assert [x.user_id for x in again] == [x.user_id for x in log]
    assert [x.user_id for x in other] != [x.user_id for x in log]


def test_warm_vowpal_wabbit_learns_the_log_before_its_first_request(bench, sim, als):
    log = bench.exploitation_log(sim, als, rounds=20, k=2, seed=0)
    fit = dict(item_vectors=sim.item_vectors_, taxonomy=sim.taxonomy_)
    warm = bench.VowpalWabbit(als, warm_log=log).fit(sim.start_, **fit)
    cold = bench.VowpalWabbit(als).fit(sim.start_, **fit)
    assert "warm_log" not in warm.get_params()
    examples = warm.warm_examples_
    assert len(examples) == sum(len(x.cols) for x in log) and cold.warm_examples_ == []
    for logged, (first, second) in zip(
        log, zip(examples[::2], examples[1::2], strict=True), strict=True
    ):
        assert len(second) == len(first) - 1  # the first position's item is no longer a candidate
        labelled = [line for line in first if not line.startswith("|")]
        assert labelled == [f"0:{-logged.rewards[0]:g}:1 " + labelled[0].split(" ", 1)[1]]
    assert warm._workspace(0.1).get_weighted_examples() == len(examples)
    assert cold._workspace(0.1).get_weighted_examples() == 0
    user = str(sim.user_ids_[0])
    assert len(warm.recommend(user, k=2, explore=0.1)) == 2


def test_the_warm_factory_draws_one_log_per_seed(bench, sim, als):
    factory = bench.vw_factory("epsilon", warm=(sim, 10, 2))
    a, b, c = factory(als, 0), factory(als, 0), factory(als, 1)
    assert a.warm_log is b.warm_log and a.warm_log is not c.warm_log
    assert bench.vw_factory("epsilon")(als, 0).warm_log is None


@pytest.mark.parametrize("ranker", ["ease", "itemknn"])
def test_the_references_run_on_every_ranker_option(bench, sim, ranker):
    assert ranker in bench.RANKERS
    factories = {
        "interest_knowing": lambda r, s: bench.InterestKnowing(r, simulator=sim, random_state=s)
    }
    result = simulate(
        sim,
        factories,
        ranker=build_model(ranker),
        rounds=20,
        k=2,
        explore=[0],
        seeds=[0],
        n_users=None,
    )
    runs = result.runs.set_index("policy")
    assert runs.loc["interest_knowing", "reward"] == runs.loc[EXPLOIT, "reward"]
    assert ranker in result.settings["ranker"].lower()


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / "explore.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_script_refuses_an_unknown_policy_or_ranker_before_any_work():
    bad = run_script("--policies", "lin_ucb,nope")
    assert bad.returncode == 2 and "unknown policy 'nope'" in bad.stderr
    assert "vw_epsilon_warm" in bad.stderr
    assert run_script("--ranker", "bpr").returncode == 2
    assert "must be positive" in run_script("--warm-rounds", "0").stderr
    bad_vary = run_script("--policies", "interest_explorer,lin_ucb", "--vary", "affinity=3")
    assert bad_vary.returncode == 2 and "not a parameter of 'lin_ucb'" in bad_vary.stderr
    assert "with numbers" in run_script("--vary", "affinity=high").stderr


def test_vary_builds_the_registered_policy_with_each_value(bench, als):
    policy = bench.varied_factory("interest_explorer", "affinity", 1.5)(als, 7)
    assert (type(policy).__name__, policy.affinity, policy.random_state) == (
        "InterestExplorer",
        1.5,
        7,
    )
