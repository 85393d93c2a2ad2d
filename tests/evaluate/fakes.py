"""Small recommenders with known behaviour, for the evaluation tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from interestlens.data import Dataset
from interestlens.models import Recommender


class RandomRecommender(Recommender):
    """Uniformly random scores, fixed per fit (a deliberately useless model)."""

    def _fit(self, dataset: Dataset, X: sp.csr_matrix) -> None:
        self.seed_ = self.random_state

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng([self.seed_, int(rows[0]) if len(rows) else 0])
        return rng.random((len(rows), len(self.item_ids_))).astype(np.float32)


class ColumnOrder(Recommender):
    """Scores item column j as -j: a fixed total order over the whole catalogue."""

    def _fit(self, dataset: Dataset, X: sp.csr_matrix) -> None:
        self.order_ = -np.arange(len(self.item_ids_), dtype=np.float32)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return np.tile(self.order_, (len(rows), 1))


class Oracle(Recommender):
    """Knows the held-out items: scores training items highest, held-out items next.

    Without seen-item exclusion every list would be full of training items.
    """

    def __init__(self, held_out: pd.DataFrame | None = None, *, random_state: int = 0) -> None:
        super().__init__(random_state=random_state)
        self.held_out = held_out

    def _fit(self, dataset: Dataset, X: sp.csr_matrix) -> None:
        self.X_ = X
        assert self.held_out is not None
        rows = self.user_ids_.get_indexer(pd.Index(self.held_out["user_id"], dtype=object))
        cols = self.item_ids_.get_indexer(pd.Index(self.held_out["item_id"], dtype=object))
        ok = (rows >= 0) & (cols >= 0)
        self.target_ = sp.csr_matrix(
            (np.ones(int(ok.sum()), dtype=np.float32), (rows[ok], cols[ok])), shape=X.shape
        )

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return (10.0 * self.X_[rows] + self.target_[rows]).toarray().astype(np.float32)


class ListsSeenItems(ColumnOrder):
    """Overrides recommend_indices and wrongly puts training items in its lists."""

    def recommend_indices(self, user_ids, k=10, exclude_seen=True):
        return super().recommend_indices(user_ids, k, exclude_seen=False)
