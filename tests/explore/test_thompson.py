from __future__ import annotations

import numpy as np

from interestlens.explore import LinTS
from tests.explore.policy_contract import NOW, USER, PolicyContract


class TestLinTS(PolicyContract):
    learns_per_user = True

    mc_slack = 0.07

    def make(self, ranker, **params):
        params.setdefault("dims", 4)
        params.setdefault("n_draws", 500)
        return LinTS(ranker, **params)

    def test_posterior_draws_centre_on_the_model(self, policy):
        # with a tiny posterior scale the sampled slate is the model's own ranking
        scores = policy._user_scores(USER, None, True)
        pool, X = policy._candidates(USER, scores, 4)
        best = pool[np.argsort(-(X @ policy.model_.theta), kind="stable")[:4]]
        s = policy.recommend(USER, k=4, explore=1e-6, now=NOW)
        assert s.item_ids == tuple(policy.item_ids_[best])
        assert s.propensities == (1.0,) * 4

    def test_more_feedback_narrows_the_posterior(self, policy):
        before = np.trace(policy.model_.A_inv)
        for _ in range(10):
            s = policy.recommend(USER, k=4, explore=0.5, now=NOW)
            policy.update(s.request_id, s.item_ids[0], 1.0)
        assert np.trace(policy.model_.A_inv) < before
