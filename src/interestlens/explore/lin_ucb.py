"""LinUCB: upper confidence bounds of a linear reward model over language-model features."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from interestlens.explore.base import EXACT, check_positive
from interestlens.explore.linear import LinearPolicy
from interestlens.models import Recommender


class LinUCB(LinearPolicy):
    """LinUCB over the ranker's candidates (Li, Chu, Langford and Schapire, WWW 2010).

    Each of the ranker's top ``n_candidates`` items is scored by its upper confidence
    bound ``x' theta + alpha_t * sqrt(x' A^-1 x)`` and the ``k`` highest fill the slate,
    where ``x`` are the joint user-item features of :mod:`interestlens.explore.linear`
    and ``alpha_t = explore * alpha``. Items unlike anything shown so far have wide bounds
    and get tried; feedback narrows them. Deterministic given the model, so every
    propensity is exactly 1 — honest, but off-policy evaluation of other policies from a
    LinUCB log can only use the rows where they agree.

    Parameters
    ----------
    ranker
        A :class:`~interestlens.models.Recommender`.
    alpha
        Width of the confidence bound at ``explore = 1``.
    **kwargs
        Parameters of :class:`~interestlens.explore.linear.LinearPolicy` (``dims``,
        ``ridge``, ``prior_score_weight``) and :class:`~interestlens.explore.Policy`.

    Examples
    --------
    >>> import numpy as np
    >>> from interestlens.data import Dataset, Event
    >>> from interestlens.models import Popularity
    >>> ds = Dataset.from_records([Event(f"u{u}", f"i{i}", "click")
    ...                            for u in range(6) for i in range(u + 2)])
    >>> vecs = np.random.default_rng(0).normal(size=(7, 8))
    >>> policy = LinUCB(Popularity(), dims=4).fit(ds, item_vectors=vecs)
    >>> slate = policy.recommend("u0", k=2, explore=1.0)
    >>> len(slate), slate.propensities
    (2, (1.0, 1.0))
    >>> policy.update(slate.request_id, slate.item_ids[0], 1.0)
    """

    name = "lin_ucb"

    def __init__(self, ranker: Recommender, *, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(ranker, **kwargs)
        self.alpha = alpha

    def _fit(self, dataset: Any, item_vectors: np.ndarray | None, taxonomy: Any) -> None:
        check_positive("alpha", self.alpha)
        super()._fit(dataset, item_vectors, taxonomy)

    def _select(
        self,
        user_id: str,
        scores: np.ndarray,
        greedy: np.ndarray,
        explore: float,
        now: pd.Timestamp,
    ) -> tuple[np.ndarray, np.ndarray, str]:
        k = len(greedy)
        pool, X = self._candidates(user_id, scores, k)
        model = self.model_
        width = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", X, model.A_inv, X), 0.0))
        index = X @ model.theta + explore * self.alpha * width
        order = np.argsort(-index, kind="stable")[:k]
        return pool[order], np.ones(k), EXACT
