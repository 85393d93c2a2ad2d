"""The references and the Vowpal Wabbit adapter of ``benchmarks/explore.py`` run and do what they say."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from interestlens.evaluate import simulate
from interestlens.evaluate.simulate import EXPLOIT
from interestlens.models import ALS
from tests.evaluate.test_simulate import fitted_tiny

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "explore.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("explore_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    for row, user in enumerate(sim.user_ids_):
        true = np.flatnonzero(sim.true_interests_[row])
        slate = policy.recommend(user, k=2, explore=1.0)
        first = sim.item_interest_[sim.item_ids_.get_loc(slate.item_ids[0])]
        pool = sim.item_interest_[policy._pool(policy._user_scores(user, None, True), 2)]
        if np.isin(pool, true).any():
            assert first in true, (user, first, true)
        assert slate.propensities == (1.0, 1.0)
