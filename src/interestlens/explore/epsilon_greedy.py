"""Epsilon-greedy: each position shows a uniformly random item with probability epsilon."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from interestlens.explore.base import EXACT, Policy
from interestlens.models import Recommender


class EpsilonGreedy(Policy):
    """Epsilon-greedy slates over a ranker.

    Each position independently keeps the exploitation item (the ranker's order, shifted by
    feedback) with probability ``1 - epsilon`` and otherwise shows an item drawn uniformly,
    without replacement, from the eligible items outside the exploitation slate.
    ``epsilon = explore``. Propensities are exact: the exploitation item at position ``j``
    has ``1 - epsilon`` (plus the chance that the random pool ran dry, on tiny catalogues),
    every other item ``epsilon / M`` for ``M`` items in the random pool.

    Simple and unbiased for off-policy evaluation, but it explores blindly: on a large
    catalogue the random items are mostly irrelevant, which is what the interest explorer
    and the linear policies improve on.

    Parameters
    ----------
    ranker
        A :class:`~interestlens.models.Recommender`.
    explore_from
        ``"catalogue"`` (every eligible item) or ``"candidates"`` (the ranker's top
        ``n_candidates``) as the pool of random items.
    **kwargs
        Shared parameters of :class:`~interestlens.explore.Policy`.

    Examples
    --------
    >>> from interestlens.data import Dataset, Event
    >>> from interestlens.models import Popularity
    >>> ds = Dataset.from_records([Event(f"u{u}", f"i{i}", "click")
    ...                            for u in range(6) for i in range(u + 2)])
    >>> policy = EpsilonGreedy(Popularity(), random_state=0).fit(ds)
    >>> greedy = policy.recommend("new user", k=3, explore=0.0)
    >>> greedy.item_ids, greedy.propensities
    (('i0', 'i1', 'i2'), (1.0, 1.0, 1.0))
    >>> slate = policy.recommend("new user", k=3, explore=0.5)
    >>> [round(p, 3) for p in slate.propensities]  # 0.5 for kept items, 0.5 / 4 for random ones
    [0.5, 0.125, 0.125]
    >>> slate.explored
    (False, True, True)
    """

    name = "epsilon_greedy"

    def __init__(
        self, ranker: Recommender, *, explore_from: str = "catalogue", **kwargs: Any
    ) -> None:
        super().__init__(ranker, **kwargs)
        self.explore_from = explore_from

    def _fit(self, dataset: Any, item_vectors: Any, taxonomy: Any) -> None:
        if self.explore_from not in ("catalogue", "candidates"):
            raise ValueError(
                f"explore_from must be 'catalogue' or 'candidates', got {self.explore_from!r}"
            )

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
        pool = (
            np.flatnonzero(np.isfinite(scores))
            if self.explore_from == "catalogue"
            else self._pool(scores, k)
        )
        pool = pool[~np.isin(pool, lead)]
        m = len(pool)
        if m == 0:
            return lead, np.ones(k), EXACT
        eps = explore
        cols = lead.copy()
        coins = self.rng_.random(k) < eps
        picks = self.rng_.permutation(m)[: int(coins.sum())]
        explored_at = np.flatnonzero(coins)[: len(picks)]
        cols[explored_at] = pool[picks]
        # P(the pool still has items when position j is explored) = P(Bin(j, eps) < m): 1 while
        # j < m, so only a pool smaller than the slate needs scipy.stats (half a second to import)
        if m >= k:
            open_ = np.ones(k)
        else:
            from scipy.stats import binom

            open_ = binom.cdf(m - 1, np.arange(k), eps)
        props = np.where(
            np.isin(np.arange(k), explored_at),
            eps * open_ / m,
            (1 - eps) + eps * (1 - open_),
        )
        return cols, props, EXACT
