"""Cold-start boost: new and rarely shown items get a share of the slate."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from interestlens.data import Dataset
from interestlens.explore.base import EXACT, Policy, check_positive
from interestlens.models import Recommender


class ColdStartBoost(Policy):
    """Shows new items that have had few impressions, so they can earn a ranking.

    An item is *cold* while it is young (first seen — created, or first engaged with —
    within ``max_age`` days of the request; an item with no known time counts as new) and
    rarely shown (events in the training data plus slates served here fewer than
    ``min_impressions``). A share ``explore`` of the slate (randomised rounding, positions
    uniformly random) shows cold items drawn uniformly among the ``n_cold`` the ranker
    likes best; the exploitation items fill the rest. Every propensity is exact.

    ``weight`` plays the part of AWS Personalize's ``explorationWeight`` (and
    ``max_age`` of its ``explorationItemAgeCutOff``): it is the policy's default
    exploration level, the share used by requests that do not give ``explore``.

    Parameters
    ----------
    ranker
        A :class:`~interestlens.models.Recommender`.
    weight
        Default share of the slate for cold items, in [0, 1].
    max_age
        Age cut-off in days.
    min_impressions
        Items shown this often are no longer cold.
    n_cold
        Cold items, best by the ranker, among which the shown ones are drawn.
    **kwargs
        Shared parameters of :class:`~interestlens.explore.Policy` (but ``explore``).

    Examples
    --------
    >>> from interestlens.data import Dataset, Event, Item
    >>> day = lambda d: pd.Timestamp(d, tz="UTC")
    >>> events = [Event(f"u{u}", f"i{i}", "click", timestamp=day("2024-01-01"))
    ...           for u in range(4) for i in range(4)]
    >>> items = [Item(f"i{i}") for i in range(4)] + [Item("fresh", created_at=day("2024-03-01"))]
    >>> from interestlens.models import Popularity
    >>> ds = Dataset.from_records(events, items)
    >>> policy = ColdStartBoost(Popularity(), weight=0.5, max_age=30, min_impressions=5).fit(ds)
    >>> slate = policy.recommend("new user", k=2, now=day("2024-03-10"))
    >>> "fresh" in slate.item_ids, slate.explored.count(True) <= 1
    (True, True)
    >>> policy.cold_items(now=day("2024-06-01"))   # too old by June
    []
    """

    name = "cold_start"
    _explore_name = "weight"

    def __init__(
        self,
        ranker: Recommender,
        *,
        weight: float = 0.3,
        max_age: float = 30.0,
        min_impressions: int = 100,
        n_cold: int = 10,
        **kwargs: Any,
    ) -> None:
        if "explore" in kwargs:
            raise TypeError("ColdStartBoost takes its default exploration level as `weight`")
        super().__init__(ranker, explore=weight, **kwargs)
        self.weight = weight
        self.max_age = max_age
        self.min_impressions = min_impressions
        self.n_cold = n_cold

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters (``weight`` stands for the shared ``explore``)."""
        params = super().get_params()
        params.pop("explore", None)
        return params

    def _fit(self, dataset: Dataset, item_vectors: Any, taxonomy: Any) -> None:
        check_positive("max_age", self.max_age)
        check_positive("min_impressions", self.min_impressions, integer=True)
        check_positive("n_cold", self.n_cold, integer=True)
        ev = dataset.events[dataset.events["item_id"].notna()]
        first_event = ev.groupby("item_id")["timestamp"].min()
        created = dataset.items.set_index("item_id")["created_at"]
        first = pd.concat([first_event, created], axis=1).min(axis=1)
        self.first_seen_ = pd.DatetimeIndex(first.reindex(self.item_ids_)).tz_convert("UTC")
        self.prior_impressions_ = (
            ev["item_id"].value_counts().reindex(self.item_ids_, fill_value=0).to_numpy(float)
        )

    def _cold_mask(self, now: pd.Timestamp) -> np.ndarray:
        age = (now - self.first_seen_) / pd.Timedelta(days=1)
        young = np.isnan(np.asarray(age, dtype=np.float64)) | (age <= self.max_age)
        return np.asarray(young) & (self.prior_impressions_ + self.shown_ < self.min_impressions)

    def cold_items(self, now: pd.Timestamp | None = None) -> list[str]:
        """Ids of the items that are cold at ``now`` (default: the clock)."""
        self._check_fitted()
        now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
        return [str(i) for i in self.item_ids_[self._cold_mask(now)]]

    def _select(
        self,
        user_id: str,
        scores: np.ndarray,
        greedy: np.ndarray,
        explore: float,
        now: pd.Timestamp,
    ) -> tuple[np.ndarray, np.ndarray, str]:
        k = len(greedy)
        lead = self._exploit(scores, k)[0][:k]
        cold = self._cold_mask(now) & np.isfinite(scores)
        cold[lead] = False
        cand = np.flatnonzero(cold)
        cand = cand[np.argsort(-scores[cand], kind="stable")][: self.n_cold]
        if len(cand) == 0:
            return lead, np.ones(k), EXACT
        cols, props = self._share_slate(lead, cand, np.ones(len(cand)), explore)
        return cols, props, EXACT
