from __future__ import annotations

import implicit  # noqa: F401  a required dependency: a broken install fails here, never skips
import numpy as np

from interestlens.models.als import ALS
from tests.models.contract import RecommenderContract, tiny_dataset


class TestALS(RecommenderContract):
    def make_model(self, random_state: int = 0):
        return ALS(factors=8, iterations=5, random_state=random_state)


def test_recommends_from_the_users_own_taste_group():
    ds = tiny_dataset()
    model = ALS(factors=2, regularization=0.05, iterations=10).fit(ds)  # two groups: rank two
    assert model.user_factors_.shape == (ds.n_users, 2) and model.item_factors_.shape == (
        ds.n_items,
        2,
    )
    users = [f"u{u}" for u in range(12)]
    recs = model.recommend(users, k=5)
    group = recs["user_id"].str[1:].astype(int) % 2
    assert (recs["item_id"].str[1:].astype(int) % 2 == group).all()


def test_confidence_is_one_plus_alpha_times_the_engagement():
    from implicit.cpu.als import AlternatingLeastSquares

    ds = tiny_dataset()
    model = ALS(factors=4, regularization=0.05, alpha=3.0, iterations=3, random_state=1).fit(ds)
    X = model.interaction_matrix(ds)
    reference = AlternatingLeastSquares(
        factors=4, alpha=1.0, iterations=3, random_state=1, regularization=0.05
    )
    reference.fit((X * 3.0 + X.sign()).tocsr(), show_progress=False)
    np.testing.assert_allclose(model.item_factors_, reference.item_factors, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        model.score_all(["u0"])[0], reference.user_factors[0] @ reference.item_factors.T, rtol=1e-4
    )


def test_different_seeds_give_different_factors():
    ds = tiny_dataset()
    a = ALS(factors=4, iterations=2, random_state=0).fit(ds).item_factors_
    b = ALS(factors=4, iterations=2, random_state=1).fit(ds).item_factors_
    assert not np.allclose(a, b)
