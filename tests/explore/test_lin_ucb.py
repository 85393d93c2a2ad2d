from __future__ import annotations

import numpy as np
import pytest

from interestlens.explore import LinUCB
from tests.explore.policy_contract import NOW, USER, PolicyContract


class TestLinUCB(PolicyContract):
    def make(self, ranker, **params):
        params.setdefault("dims", 4)
        return LinUCB(ranker, **params)

    def test_online_model_equals_the_ridge_solution(self, policy):
        xs, rs = [], []
        rng = np.random.default_rng(0)
        for t in range(30):
            s = policy.recommend(f"u{t % 7}", k=4, explore=0.8, now=NOW)
            served = policy.pending_[s.request_id]
            for pos, item in enumerate(s.item_ids):
                r = float(rng.random() < 0.3)
                policy.update(s.request_id, item, r)
                xs.append(served.extra[pos])
                rs.append(r)
        X, r = np.asarray(xs), np.asarray(rs)
        d = X.shape[1]
        prior = np.zeros(d)
        prior[1] = policy.prior_score_weight
        A = policy.ridge * np.eye(d) + X.T @ X
        theta = np.linalg.solve(A, policy.ridge * prior + X.T @ r)
        np.testing.assert_allclose(policy.model_.A_inv, np.linalg.inv(A), atol=1e-9)
        np.testing.assert_allclose(policy.model_.theta, theta, atol=1e-9)

    def test_features_are_bias_score_item_user_and_interaction(self, policy):
        cols = np.array([0, 1, 2])
        X = policy.features(USER, cols, np.array([0.5, 0.0, -0.5]))
        r = policy.item_features_.shape[1]
        assert X.shape == (3, 2 + 3 * r) == (3, 14)
        u = policy.user_vector(USER)
        np.testing.assert_allclose(X[:, 0], 1.0)
        np.testing.assert_allclose(X[:, 2 : 2 + r], policy.item_features_[cols])
        np.testing.assert_allclose(X[:, 2 + 2 * r :], np.sqrt(r) * u * policy.item_features_[cols])
        assert not u.any() == False  # noqa: E712  (a known user has an interest vector)
        assert not policy.user_vector("nobody").any()

    def test_wider_bounds_explore_more(self, tiny_world, tiny_ranker, tiny_taxonomy):
        counts = []
        for explore in (0.05, 1.0):
            p = self.fresh(tiny_world, tiny_ranker, tiny_taxonomy)
            explored = 0
            for t in range(40):
                s = p.recommend(f"u{t % 12}", k=4, explore=explore, now=NOW)
                explored += sum(s.explored)
            counts.append(explored)
        assert counts[1] > counts[0]

    def test_parameters_are_checked(self, tiny_world, tiny_ranker):
        with pytest.raises(ValueError, match="alpha must be a positive number"):
            LinUCB(tiny_ranker, alpha=-1).fit(tiny_world[0], item_vectors=tiny_world[1])
        with pytest.raises(ValueError, match="item_vectors must be an"):
            LinUCB(tiny_ranker).fit(tiny_world[0], item_vectors=np.zeros((3, 4)))


@pytest.mark.parametrize("ranker_first", [False, True])
def test_forget_user_erases_the_user_vector(tiny_world, tiny_ranker, ranker_first):
    import pickle

    ds, vecs = tiny_world
    ranker = pickle.loads(pickle.dumps(tiny_ranker))
    policy = LinUCB(ranker, dims=4).fit(ds, item_vectors=vecs)
    s = policy.recommend("someone new", k=4, explore=0.5, now=NOW)
    policy.update(s.request_id, s.item_ids[0], 1.0)
    assert np.any(policy.user_vector(USER)) and np.any(policy.user_vector("someone new"))
    row = ranker.user_ids_.get_loc(USER)
    if ranker_first:
        ranker.forget_user(USER)
    assert policy.forget_user(USER) and policy.forget_user("someone new")
    for user in (USER, "someone new"):
        np.testing.assert_array_equal(policy.user_vector(user), np.zeros(4))
    assert not policy.user_sum_[row].any() and policy.user_n_[row] == 0
    assert USER not in policy.user_ids_ and policy.new_users_ == {}
    # everyone else keeps their vector
    other = LinUCB(tiny_ranker, dims=4).fit(ds, item_vectors=vecs)
    np.testing.assert_array_equal(policy.user_vector("u5"), other.user_vector("u5"))
