from __future__ import annotations

import numpy as np
import pytest

from interestlens.explore import InterestDiversifier
from tests.explore.policy_contract import NOW, USER, PolicyContract


def formula_inputs(policy, k):
    """The candidates, their values and interests, USER's interests and each interest's share."""
    pool, value = policy._exploit(policy._user_scores(USER, None, True), k)
    clusters = policy.clusters_[pool]
    share: dict[int, float] = {}
    for c, v in zip(clusters, value, strict=True):
        share[c] = share.get(c, 0.0) + np.exp(v)
    top = max(share.values())
    share = {c: w / top for c, w in share.items()}
    return pool, value, clusters, set(policy.user_interests_[USER]), share


class TestInterestDiversifier(PolicyContract):
    learns_per_user = True

    def make(self, ranker, **params):
        return InterestDiversifier(ranker, **params)

    def interests(self, policy, slate) -> list[int]:
        return [int(policy.clusters_[policy.item_ids_.get_loc(i)]) for i in slate.item_ids]

    def test_slate_is_the_greedy_re_ranking_of_its_formula(self, policy):
        explore = 0.4
        pool, value, clusters, held, share = formula_inputs(policy, 6)
        expected: list[int] = []
        for _ in range(6):
            best, best_v = -1, -np.inf
            for i, c in enumerate(clusters):
                if i in expected:
                    continue
                n = sum(clusters[j] == c for j in expected)
                if c in held:
                    v = value[i] - explore * policy.diversity * n
                else:
                    v = value[i] + explore * policy.novelty * share[c] * policy.decay**n
                if v > best_v:
                    best, best_v = i, v
            expected.append(best)
        slate = policy.recommend(USER, k=6, explore=explore, now=NOW)
        assert slate.item_ids == tuple(policy.item_ids_[pool[expected]])
        assert slate.propensities == (1.0,) * 6 and slate.propensity_method == "exact"

    def test_more_explore_spreads_the_slate_over_more_interests(self, policy):
        spread = [
            len(set(self.interests(policy, policy.recommend(u, k=8, explore=e, now=NOW))))
            for e in (0.0, 0.3, 1.0)
            for u in (USER, "u10", "u21")
        ]
        by_level = np.reshape(spread, (3, 3)).sum(axis=1)
        assert by_level[0] < by_level[1] <= by_level[2], by_level

    def test_novelty_favours_interests_the_user_has_not_engaged_with(
        self, tiny_world, tiny_ranker, tiny_taxonomy
    ):
        new_items, first_new = [], []
        for novelty in (0.0, 10.0, 30.0):
            p = self.fresh(tiny_world, tiny_ranker, tiny_taxonomy, diversity=0.5, novelty=novelty)
            n = first = 0
            for user in (USER, "u10"):
                held = set(p.user_interests_[user])
                new = [
                    c not in held for c in self.interests(p, p.recommend(user, k=6, explore=1.0))
                ]
                n, first = n + sum(new), first + new[0]
            new_items.append(n)
            first_new.append(first)
        assert new_items[0] < new_items[1] < new_items[2], new_items
        assert first_new == [0, 1, 2]

    def test_rewarded_new_interest_becomes_the_users_own(self, policy):
        slate = policy.recommend(USER, k=6, explore=1.0, now=NOW)
        held = set(policy.user_interests_[USER])
        new = [
            (i, c)
            for i, c in zip(slate.item_ids, self.interests(policy, slate), strict=True)
            if c not in held
        ]
        assert new
        item, cluster = new[0]
        policy.update(slate.request_id, item, 1.0)
        assert policy.user_interests_[USER][-1] == cluster
        policy.update(slate.request_id, item, 2.0)  # an upgrade is not a second arrival
        assert policy.user_interests_[USER].count(cluster) == 1

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"diversity": 0.0}, "diversity must be a positive number"),
            ({"novelty": -1.0}, "novelty must be >= 0"),
            ({"decay": 1.5}, r"decay must be in \[0, 1\]"),
        ],
    )
    def test_bad_parameters_name_the_parameter(
        self, tiny_world, tiny_ranker, tiny_taxonomy, params, message
    ):
        with pytest.raises(ValueError, match=message):
            self.fresh(tiny_world, tiny_ranker, tiny_taxonomy, **params)


class TestRandomisedInterestDiversifier(PolicyContract):
    """``temperature > 0``: the same formula, drawn position by position."""

    learns_per_user = True

    mc_slack = 0.07

    def make(self, ranker, **params):
        params.setdefault("temperature", 1.0)
        params.setdefault("n_draws", 500)
        return InterestDiversifier(ranker, **params)

    def test_first_position_is_the_exact_softmax_of_the_formula(self, policy):
        explore = 0.4
        pool, value, clusters, held, share = formula_inputs(policy, 4)
        first = np.array(
            [
                v if c in held else v + explore * policy.novelty * share[c]
                for c, v in zip(clusters, value, strict=True)
            ]
        ) / (explore * policy.temperature)
        p = np.exp(first - first.max())
        p /= p.sum()
        for _ in range(10):
            s = policy.recommend(USER, k=4, explore=explore, now=NOW)
            at = int(np.flatnonzero(policy.item_ids_[pool] == s.item_ids[0])[0])
            assert s.propensities[0] == pytest.approx(p[at])
            assert s.propensity_method == "monte-carlo:500"

    def test_a_cold_temperature_gives_the_greedy_slate(
        self, tiny_world, tiny_ranker, tiny_taxonomy
    ):
        greedy = self.fresh(tiny_world, tiny_ranker, tiny_taxonomy, temperature=0.0)
        cold = self.fresh(tiny_world, tiny_ranker, tiny_taxonomy, temperature=1e-6)
        for user in (USER, "u10", "u21"):
            want = greedy.recommend(user, k=6, explore=0.5, now=NOW)
            got = cold.recommend(user, k=6, explore=0.5, now=NOW)
            assert got.item_ids == want.item_ids
            assert got.propensities == pytest.approx((1.0,) * 6)

    def test_warmer_slates_vary_more(self, tiny_world, tiny_ranker, tiny_taxonomy):
        distinct = []
        for temperature in (0.05, 2.0):
            p = self.fresh(tiny_world, tiny_ranker, tiny_taxonomy, temperature=temperature)
            distinct.append(len({p.recommend(USER, k=4, explore=0.5).item_ids for _ in range(40)}))
        assert distinct[0] < distinct[1], distinct

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"temperature": -0.1}, "temperature must be >= 0"),
            ({"n_draws": 0}, "n_draws must be a positive integer"),
        ],
    )
    def test_bad_parameters_name_the_parameter(
        self, tiny_world, tiny_ranker, tiny_taxonomy, params, message
    ):
        with pytest.raises(ValueError, match=message):
            self.fresh(tiny_world, tiny_ranker, tiny_taxonomy, **params)
