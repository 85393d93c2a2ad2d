from __future__ import annotations

import numpy as np
import pytest

from interestlens.models.ease import EASE
from tests.models.contract import RecommenderContract, tiny_dataset


class TestEASE(RecommenderContract):
    def make_model(self, random_state: int = 0):
        return EASE(l2=10.0, random_state=random_state)


def test_weights_and_scores_match_a_direct_computation():
    ds = tiny_dataset()
    model = EASE(l2=7.0).fit(ds)
    X = model.interaction_matrix(ds).toarray().astype(np.float64)
    P = np.linalg.inv(X.T @ X + 7.0 * np.eye(X.shape[1]))
    B = np.eye(X.shape[1]) - P / np.diag(P)
    np.fill_diagonal(B, 0.0)
    assert model.weights_.dtype == np.float32
    np.testing.assert_allclose(model.weights_, B, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.score_all(list(ds.user_ids)), X @ B, rtol=1e-5, atol=1e-6)


def test_recommends_from_the_users_own_taste_group():
    recs = EASE(l2=10.0).fit(tiny_dataset()).recommend([f"u{u}" for u in range(12)], k=5)
    group = recs["user_id"].str[1:].astype(int) % 2
    assert (recs["item_id"].str[1:].astype(int) % 2 == group).all()


def test_refuses_catalogues_above_max_items():
    with pytest.raises(ValueError, match="max_items=10"):
        EASE(max_items=10).fit(tiny_dataset())


def test_rejects_a_non_positive_penalty():
    with pytest.raises(ValueError, match="l2"):
        EASE(l2=0.0).fit(tiny_dataset())
