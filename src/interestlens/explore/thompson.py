"""Linear Thompson sampling over language-model features."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from interestlens.explore.base import check_positive
from interestlens.explore.linear import LinearPolicy
from interestlens.models import Recommender


class LinTS(LinearPolicy):
    """Linear Thompson sampling over the ranker's candidates (Agrawal and Goyal, ICML 2013).

    Each request draws weights ``theta~ ~ N(theta, v^2 A^-1)`` from the posterior of the
    shared ridge model (:mod:`interestlens.explore.linear`), with ``v = explore * scale``,
    and fills the slate with the ``k`` candidates that score highest under the draw. Items
    the model is unsure of win some draws and lose others, in proportion to how plausible
    it is that they are best.

    Propensities are Monte-Carlo estimates (``propensity_method`` ``"monte-carlo:<n>"``):
    the share of ``n_draws`` posterior draws, the served one among them, whose slate has
    the item at that position. Exact values would need an integral over the Gaussian for
    each item and position.

    Parameters
    ----------
    ranker
        A :class:`~interestlens.models.Recommender`.
    scale
        Posterior scale ``v`` at ``explore = 1``.
    n_draws
        Posterior draws behind each propensity estimate.
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
    >>> policy = LinTS(Popularity(), dims=4, n_draws=200).fit(ds, item_vectors=vecs)
    >>> slate = policy.recommend("u0", k=2, explore=1.0)
    >>> slate.propensity_method, all(0 < p <= 1 for p in slate.propensities)
    ('monte-carlo:200', True)
    """

    name = "lin_ts"

    def __init__(
        self, ranker: Recommender, *, scale: float = 1.0, n_draws: int = 1000, **kwargs: Any
    ) -> None:
        super().__init__(ranker, **kwargs)
        self.scale = scale
        self.n_draws = n_draws

    def _fit(self, dataset: Any, item_vectors: np.ndarray | None, taxonomy: Any) -> None:
        check_positive("scale", self.scale)
        check_positive("n_draws", self.n_draws, integer=True)
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
        cov = (explore * self.scale) ** 2 * model.A_inv
        chol = np.linalg.cholesky(cov + 1e-12 * np.eye(len(cov)))
        thetas = model.theta + self.rng_.standard_normal((self.n_draws, len(cov))) @ chol.T
        values = thetas @ X.T  # draws x candidates
        part = np.argpartition(-values, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(values, part, axis=1), axis=1, kind="stable")
        slates = np.take_along_axis(part, order, axis=1)
        served = slates[0]
        props = (slates == served[None, :]).mean(axis=0)
        return pool[served], props, f"monte-carlo:{self.n_draws}"
