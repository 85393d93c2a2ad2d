from __future__ import annotations

import implicit  # noqa: F401  a required dependency: a broken install fails here, never skips
import numpy as np

from interestlens.models.bpr import BPR
from tests.models.contract import RecommenderContract, tiny_dataset


class TestBPR(RecommenderContract):
    # the fold-in solves the user step to convergence; 20 SGD epochs leave the fitted
    # users short of it
    fold_in_agreement = 0.8

    def make_model(self, random_state: int = 0):
        return BPR(factors=8, iterations=20, random_state=random_state)


def test_recommends_from_the_users_own_taste_group():
    ds = tiny_dataset()
    model = BPR(factors=8, learning_rate=0.05, iterations=200).fit(ds)
    # implicit appends the item bias as one more factor, against a user factor of 1
    assert model.item_factors_.shape == (ds.n_items, 9)
    np.testing.assert_array_equal(model.user_factors_[:, -1], 1.0)
    users = [f"u{u}" for u in range(12)]
    recs = model.recommend(users, k=5)
    group = recs["user_id"].str[1:].astype(int) % 2
    assert (recs["item_id"].str[1:].astype(int) % 2 == group).mean() >= 0.9
