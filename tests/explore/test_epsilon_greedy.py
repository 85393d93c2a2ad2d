from __future__ import annotations

import numpy as np
import pytest

from interestlens.explore import EpsilonGreedy
from tests.explore.policy_contract import NOW, USER, PolicyContract


class TestEpsilonGreedy(PolicyContract):
    def make(self, ranker, **params):
        return EpsilonGreedy(ranker, **params)

    def test_propensities_are_one_minus_epsilon_and_epsilon_over_pool(self, policy):
        eligible = np.isfinite(policy._user_scores(USER, None, True)).sum()
        for _ in range(20):
            s = policy.recommend(USER, k=4, explore=0.3, now=NOW)
            for p, e in zip(s.propensities, s.explored, strict=True):
                assert p == pytest.approx(0.3 / (eligible - 4) if e else 0.7)

    def test_candidates_pool_keeps_exploration_near_the_top(self, tiny_world, tiny_ranker):
        ds, _ = tiny_world
        p = EpsilonGreedy(tiny_ranker, explore_from="candidates", n_candidates=8).fit(ds)
        top8 = set(tiny_ranker.recommend(USER, k=8)["item_id"])
        for _ in range(20):
            s = p.recommend(USER, k=4, explore=1.0)
            assert set(s.item_ids) <= top8
            assert s.propensities == pytest.approx((0.25,) * 4)  # 1 / (8 - 4)
        with pytest.raises(ValueError, match="explore_from must be"):
            EpsilonGreedy(tiny_ranker, explore_from="everywhere").fit(ds)

    def test_propensities_when_the_pool_is_smaller_than_the_slate(self, tiny_world, tiny_ranker):
        # 6 candidates, 4 kept: a pool of m = 2, so an explored position j finds it still open
        # with P(Bin(j, eps) < 2) = (1 - eps)^j + j eps (1 - eps)^(j - 1)
        ds, _ = tiny_world
        p = EpsilonGreedy(tiny_ranker, explore_from="candidates", n_candidates=6).fit(ds)
        eps, m = 0.5, 2
        open_ = [1.0] + [(1 - eps) ** j + j * eps * (1 - eps) ** (j - 1) for j in range(1, 4)]
        seen_explored = set()
        for _ in range(40):
            s = p.recommend(USER, k=4, explore=eps, now=NOW)
            for j, (prop, explored) in enumerate(zip(s.propensities, s.explored, strict=True)):
                expected = eps * open_[j] / m if explored else (1 - eps) + eps * (1 - open_[j])
                assert prop == pytest.approx(expected, abs=1e-12)
                if explored:
                    seen_explored.add(j)
        assert seen_explored & {2, 3}

    def test_items_drawn_beyond_the_candidates_show_no_score(self, tiny_world, tiny_ranker):
        # the hybrid ranks items outside its candidates at about -1e6: such an order is
        # not a score, so a slate shows NaN there (with the explored flag), and the
        # ranker's own score for every item it did rank
        ds, _ = tiny_world
        p = EpsilonGreedy(tiny_ranker, n_candidates=6).fit(ds)
        scores = p._user_scores(USER, None, True)
        pool = set(p._pool(scores, 4).tolist())
        beyond = 0
        for _ in range(30):
            s = p.recommend(USER, k=4, explore=0.8, now=NOW)
            for item, score, explored, prop in zip(
                s.item_ids, s.scores, s.explored, s.propensities, strict=True
            ):
                col = p.item_ids_.get_loc(item)
                if col in pool:
                    assert score == scores[col]
                else:
                    beyond += 1
                    assert explored and np.isnan(score) and prop > 0
        assert beyond > 0
        greedy = p.recommend(USER, k=4, explore=0.0, now=NOW)
        assert not np.isnan(greedy.scores).any()
