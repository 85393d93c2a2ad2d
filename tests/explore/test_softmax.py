from __future__ import annotations

import numpy as np
import pytest

from interestlens.explore import Softmax
from interestlens.explore.base import robust_z
from tests.explore.policy_contract import NOW, USER, PolicyContract


class TestSoftmax(PolicyContract):
    mc_slack = 0.07

    def make(self, ranker, **params):
        params.setdefault("n_draws", 500)
        return Softmax(ranker, **params)

    def test_first_position_is_the_exact_softmax(self, policy):
        scores = policy._user_scores(USER, None, True)
        pool = policy._pool(scores, 4)
        logits = robust_z(scores[pool]) / (0.4 * policy.temperature)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        for _ in range(10):
            s = policy.recommend(USER, k=4, explore=0.4, now=NOW)
            first = int(np.flatnonzero(policy.item_ids_[pool] == s.item_ids[0])[0])
            assert s.propensities[0] == pytest.approx(p[first])
            assert s.propensity_method == "monte-carlo:500"

    def test_lower_temperature_stays_closer_to_greedy(self, policy):
        greedy = policy.recommend(USER, k=4, explore=0.0).item_ids
        hot = sum(
            s.item_ids == greedy
            for s in (policy.recommend(USER, k=4, explore=1.0) for _ in range(50))
        )
        cold = sum(
            s.item_ids == greedy
            for s in (policy.recommend(USER, k=4, explore=0.05) for _ in range(50))
        )
        assert cold > hot

    def test_parameters_are_checked(self, tiny_world, tiny_ranker):
        with pytest.raises(ValueError, match="temperature must be a positive number"):
            Softmax(tiny_ranker, temperature=0).fit(tiny_world[0])
        with pytest.raises(ValueError, match="n_draws must be a positive integer"):
            Softmax(tiny_ranker, n_draws=2.5).fit(tiny_world[0])
