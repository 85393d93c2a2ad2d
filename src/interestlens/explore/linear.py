"""What LinUCB and linear Thompson sampling share: joint user-item features and a ridge model.

Both policies model the reward of showing item ``i`` to user ``u`` as linear in one
feature vector of the pair, with one weight vector shared by every item (the "hybrid",
shared-parameter model of Li et al. 2010 without per-item parts). Per-item (disjoint) arms
would need feedback on each of thousands of items before they could be ranked, and an
``d x d`` matrix each; the shared model generalises a click on one item to every item
whose embedding is alike, and scores a brand-new item from its text at once.

The features, for the language-model embeddings reduced once by PCA (whitened, ``dims``
components) to ``e_i`` for the item and ``u`` (the mean of the user's engaged items'
reduced embeddings) for the user::

    x(u, i) = [1, z_i, e_i, u, sqrt(dims) * (u * e_i)]        (2 + 3 * dims values)

where ``z_i`` is the ranker's score of the item standardised among the candidates, so the
model can learn how far to trust the ranker. The prior mean puts ``prior_score_weight`` on
``z_i`` and 0 elsewhere: before any feedback the model ranks like the ranker.

Every served item is an observation (reward 0 until feedback says otherwise), folded into
``A`` with a Sherman–Morrison update of its inverse; feedback adds ``reward * x`` to ``b``.
The inverse is recomputed from ``A`` every 1000 updates to keep rounding from drifting.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from interestlens.data import Dataset
from interestlens.explore.base import Policy, _Served, check_positive, robust_z
from interestlens.models import Recommender
from interestlens.models.base import without_id

_REFRESH = 1000


class RidgeState:
    """Ridge regression ``theta = A^-1 b`` with rank-one updates.

    Parameters
    ----------
    prior_mean
        The weights before any data (``b`` starts at ``ridge * prior_mean``).
    ridge
        ``A`` starts at ``ridge * I``.

    Examples
    --------
    >>> m = RidgeState(np.zeros(2), ridge=1.0)
    >>> m.observe(np.array([1.0, 0.0]), 1.0)
    >>> m.theta.tolist()
    [0.5, 0.0]
    """

    def __init__(self, prior_mean: np.ndarray, ridge: float) -> None:
        d = len(prior_mean)
        self.A = ridge * np.eye(d)
        self.A_inv = np.eye(d) / ridge
        self.b = ridge * np.asarray(prior_mean, dtype=np.float64)
        self.n = 0

    def observe(self, x: np.ndarray, reward: float = 0.0) -> None:
        """Add one observation: ``A += x x'`` (Sherman–Morrison on the inverse), ``b += r x``."""
        self.A += np.outer(x, x)
        ax = self.A_inv @ x
        self.A_inv -= np.outer(ax, ax) / (1.0 + x @ ax)
        self.b += reward * x
        self.n += 1
        if self.n % _REFRESH == 0:
            self.A_inv = np.linalg.inv(self.A)
            self.A_inv = (self.A_inv + self.A_inv.T) / 2

    def reward(self, x: np.ndarray, delta: float) -> None:
        """Change the reward of an observation already added by ``delta``."""
        self.b += delta * x

    @property
    def theta(self) -> np.ndarray:
        """The current weights."""
        return self.A_inv @ self.b


class LinearPolicy(Policy):
    """Base of the linear contextual bandits: features, the shared ridge model, online updates.

    :meth:`~interestlens.explore.Policy.forget_user` erases the user's vector (the sum of
    their fitted engagements and what their rewards added); the shared ridge model keeps
    what their slates taught it until the next fit.

    Parameters
    ----------
    ranker
        A :class:`~interestlens.models.Recommender`.
    dims
        PCA components of the embeddings (the model has ``2 + 3 * dims`` weights).
    ridge
        Regularisation: the prior counts as ``ridge`` observations.
    prior_score_weight
        Prior weight of the ranker's standardised score.
    **kwargs
        Shared parameters of :class:`~interestlens.explore.Policy`.
    """

    def __init__(
        self,
        ranker: Recommender,
        *,
        dims: int = 16,
        ridge: float = 1.0,
        prior_score_weight: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(ranker, **kwargs)
        self.dims = dims
        self.ridge = ridge
        self.prior_score_weight = prior_score_weight

    def _fit(self, dataset: Dataset, item_vectors: np.ndarray | None, taxonomy: Any) -> None:
        # sklearn takes a quarter of a second to import; only a fit needs it
        from sklearn.decomposition import PCA

        check_positive("dims", self.dims, integer=True)
        check_positive("ridge", self.ridge)
        vecs = self._item_vectors(dataset, item_vectors)
        r = max(1, min(self.dims, vecs.shape[1], len(vecs) - 1))
        pca = PCA(n_components=r, whiten=True, random_state=self.random_state).fit(vecs)
        self.item_features_ = pca.transform(vecs) / math.sqrt(r)
        seen = self.ranker.seen_.astype(np.float64)
        # the rows of user_sum_ and user_n_, kept here so that the policy can find a user's
        # row to erase whether or not the ranker forgot them first
        self.user_ids_ = self.ranker.user_ids_
        self.user_sum_ = np.asarray(seen @ self.item_features_)
        self.user_n_ = np.asarray(seen.sum(axis=1)).ravel()
        self.new_users_: dict[str, tuple[np.ndarray, float]] = {}
        prior = np.zeros(2 + 3 * r)
        prior[1] = self.prior_score_weight
        self.model_ = RidgeState(prior, self.ridge)

    # ----- features ---------------------------------------------------------------
    def user_vector(self, user_id: str) -> np.ndarray:
        """The user's reduced interest vector (zeros for a user with no known engagement)."""
        r = self.user_ids_.get_indexer([user_id])[0]
        total, n = (self.user_sum_[r], self.user_n_[r]) if r >= 0 else (0.0, 0.0)
        extra = self.new_users_.get(user_id)
        if extra is not None:
            total, n = total + extra[0], n + extra[1]
        return (
            np.asarray(total, dtype=np.float64) / n if n else np.zeros(self.item_features_.shape[1])
        )

    def features(self, user_id: str, cols: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Joint features ``(len(cols), 2 + 3 * dims)`` of the user with each item."""
        u = self.user_vector(user_id)
        e = self.item_features_[cols]
        ones = np.ones((len(cols), 1))
        return np.hstack(
            [ones, z[:, None], e, np.tile(u, (len(cols), 1)), math.sqrt(e.shape[1]) * u * e]
        )

    def _candidates(
        self, user_id: str, scores: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The candidate pool and its feature matrix."""
        pool = self._pool(scores, k)
        return pool, self.features(user_id, pool, robust_z(scores[pool]))

    # ----- online -----------------------------------------------------------------
    def _served(self, served: _Served, scores: np.ndarray) -> np.ndarray:
        pool = self._pool(scores, len(served.cols))
        z = robust_z(scores[served.cols], reference=scores[pool])
        X = self.features(served.user_id, served.cols, z)
        for x in X:
            self.model_.observe(x)
        return X

    def _learn(self, served: _Served, position: int, old: float, new: float) -> None:
        self.model_.reward(served.extra[position], new - old)
        if old <= 0 < new:  # a first positive reward: the item joins the user's interests
            total, n = self.new_users_.get(served.user_id, (0.0, 0.0))
            col = served.cols[position]
            self.new_users_[served.user_id] = (total + self.item_features_[col], n + 1.0)

    def _forget(self, user_id: str) -> bool:
        row = int(self.user_ids_.get_indexer([user_id])[0])
        if row >= 0:
            self.user_ids_ = without_id(self.user_ids_, row)
            self.user_sum_[row] = 0.0
            self.user_n_[row] = 0.0
        return self.new_users_.pop(user_id, None) is not None or row >= 0
