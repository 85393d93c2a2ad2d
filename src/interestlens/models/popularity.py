"""Most popular items, optionally within a recent time window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from interestlens.data import Dataset
from interestlens.models.base import History, Recommender


class Popularity(Recommender):
    """Recommend what most users engaged with.

    Parameters
    ----------
    window_days
        Count only events from the last ``window_days`` before the latest event
        (``None``: all time). Events without a timestamp count in any window.
    random_state
        Unused; kept for the common signature.

    Examples
    --------
    >>> from interestlens.data import Dataset, Event
    >>> ds = Dataset.from_records([Event("a", "x", "click"), Event("b", "x", "click"), Event("b", "y", "click")])
    >>> Popularity().fit(ds).recommend("a", k=2)[["item_id", "rank"]].values.tolist()
    [['y', 1]]
    """

    def __init__(self, window_days: float | None = None, *, random_state: int = 0) -> None:
        super().__init__(random_state=random_state)
        self.window_days = window_days

    def _fit(self, dataset: Dataset, X: sp.csr_matrix) -> None:
        ev = dataset.events[dataset.events["item_id"].notna()]
        if self.window_days is not None and ev["timestamp"].notna().any():
            start = ev["timestamp"].max() - pd.Timedelta(days=self.window_days)
            ev = ev[ev["timestamp"].isna() | (ev["timestamp"] >= start)]
        users = ev[["user_id", "item_id"]].drop_duplicates()
        counts = users["item_id"].value_counts()
        pop = counts.reindex(self.item_ids_, fill_value=0).to_numpy(dtype=np.float64)
        self.scores_ = (pop / max(pop.max(), 1.0)).astype(np.float32)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return np.tile(self.scores_, (len(rows), 1))

    def _cold_scores(self, n: int) -> np.ndarray:
        return np.tile(self.scores_, (n, 1))

    def _history_scores(self, history: History, X: sp.csr_matrix) -> np.ndarray:
        return self.scores_.copy()
