"""User-based collaborative filtering: what the most similar users engaged with."""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp

from interestlens.data import Dataset
from interestlens.models.base import History, Recommender

#: Cells of each dense array of a block of users scored at once (float64: 64 MB).
_BLOCK_CELLS = 1 << 23


class UserKNN(Recommender):
    r"""User-based collaborative filtering over the ``k`` most similar users per item.

    The score of item :math:`i` for user :math:`u` is

    .. math:: R_{ui} = \sum_{j \in N_k(u, i)} w_{uj}\, r_{ji}

    where :math:`N_k(u, i)` holds the ``k`` users most similar to :math:`u` among
    those who engaged with :math:`i` (never :math:`u`), :math:`w_{uj}` is their
    similarity and :math:`r_{ji}` is 1 or the engagement value (``weighting``). With
    ``normalize`` the sum is divided by :math:`\sum_{j \in N_k(u, i)} |w_{uj}|`, a
    weighted mean that predicts the value itself (Resnick et al., 1994; Herlocker et
    al., 1999) but ranks an item one similar user engaged with as high as one that
    fifty did, so it is off by default for ranking.

    Parameters
    ----------
    k
        Neighbours per user and item.
    similarity
        ``"cosine"``: cosine of the users' rows of the matrix chosen by
        ``weighting``. ``"pearson"``: Pearson correlation of the users' values over
        the items both engaged with, each user's values centred on that user's mean
        over all their items; it needs graded values (ratings), whatever
        ``weighting``, and is 0 for a user whose values are all equal.
    shrinkage
        Damps similarities resting on few common items: ``w * n / (n + shrinkage)``,
        with ``n`` the items both users engaged with; ``0`` leaves them unchanged.
    weighting
        ``"binary"``: :math:`r_{ji} = 1` for every engagement. ``"value"``: the
        dataset's interaction weights (a rating's value, other event types their
        weight; see :class:`~interestlens.data.InteractionWeights`).
    normalize
        Divide each score by the sum of the absolute neighbour similarities.
    random_state
        Unused: the model is deterministic. Kept for the common signature.

    Notes
    -----
    The user-user similarities are computed when scoring, a block of users at a
    time: scoring ``m`` users costs about ``m`` times the number of training
    interactions, which on ml-latest-small (610 users, 100k ratings) is a fraction
    of a second for every user, but grows with the square of the users on larger
    data, where :class:`~interestlens.models.ItemKNN` or a factor model serves better.
    Users never seen in training get popularity scores.

    References
    ----------
    Paul Resnick, Neophytos Iacovou, Mitesh Suchak, Peter Bergstrom, John Riedl. 1994.
    GroupLens: An Open Architecture for Collaborative Filtering of Netnews. CSCW '94.

    Jonathan Herlocker, Joseph Konstan, Al Borchers, John Riedl. 1999. An Algorithmic
    Framework for Performing Collaborative Filtering. SIGIR '99.

    Examples
    --------
    >>> from interestlens.data import Dataset, Event
    >>> ds = Dataset.from_records(
    ...     [Event(u, i, "click") for u, i in [("a", "x"), ("b", "x"), ("b", "y"), ("c", "z")]]
    ... )
    >>> UserKNN(k=5, shrinkage=0).fit(ds).recommend("a", k=1)["item_id"].tolist()
    ['y']
    """

    _user_state = ("user_items_", "profiles_", "support_", "squares_", "item_users_")

    def __init__(
        self,
        k: int = 50,
        similarity: Literal["cosine", "pearson"] = "cosine",
        shrinkage: float = 10.0,
        weighting: Literal["binary", "value"] = "binary",
        normalize: bool = False,
        *,
        random_state: int = 0,
    ) -> None:
        super().__init__(random_state=random_state)
        self.k = k
        self.similarity = similarity
        self.shrinkage = shrinkage
        self.weighting = weighting
        self.normalize = normalize

    def _cells(self, interactions: sp.csr_matrix) -> sp.csr_matrix:
        """Binary engagement, or the dataset's interaction weights with ``weighting="value"``."""
        if self.weighting == "binary":
            return super()._cells(interactions)
        if self.weighting == "value":
            return sp.csr_matrix(interactions, dtype=np.float64).astype(np.float32)
        raise ValueError(f"weighting must be 'binary' or 'value', not {self.weighting!r}")

    def _profiles(
        self, X: sp.csr_matrix, values: sp.csr_matrix | None
    ) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix | None]:
        """Each user's profile, support (where they have a value) and, for Pearson, squares.

        ``X`` is the users' rows of :meth:`interaction_matrix`; Pearson reads ``values``,
        their rows of the dataset's interaction weights (float64), both on the
        catalogue's columns.
        """
        if self.similarity == "cosine":
            V = sp.csr_matrix(X, dtype=np.float64)
            norms = np.sqrt(np.asarray(V.multiply(V).sum(axis=1)).ravel())
            inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
            return (
                sp.csr_matrix(sp.diags(inv) @ V),
                sp.csr_matrix((X != 0).astype(np.float64)),
                None,
            )
        if self.similarity == "pearson" and values is not None:
            V = values.copy()
            counts = np.diff(V.indptr)
            means = np.divide(
                np.asarray(V.sum(axis=1)).ravel(),
                counts,
                out=np.zeros(V.shape[0]),
                where=counts > 0,
            )
            V.data -= np.repeat(means, counts)
            support = sp.csr_matrix(
                (np.ones_like(V.data), V.indices.copy(), V.indptr.copy()), shape=V.shape
            )
            return V, support, V.multiply(V).tocsr()
        raise ValueError(f"similarity must be 'cosine' or 'pearson', not {self.similarity!r}")

    def _fit(self, dataset: Dataset, X: sp.csr_matrix) -> None:
        if self.k < 1:
            raise ValueError(f"k must be at least 1, not {self.k}")
        if self.shrinkage < 0:
            raise ValueError(f"shrinkage must be non-negative, not {self.shrinkage}")
        self.user_items_ = sp.csr_matrix(X, dtype=np.float32)
        values = None
        if self.similarity == "pearson":
            M = dataset.interactions(user_ids=self.user_ids_, item_ids=self.item_ids_).matrix
            values = sp.csr_matrix(M, dtype=np.float64)
        self.profiles_, self.support_, squares = self._profiles(X, values)
        if squares is not None:
            self.squares_ = squares
        self.item_users_ = sp.csc_matrix(self.user_items_, dtype=np.float32)

    def _similarities(self, rows: np.ndarray) -> np.ndarray:
        """Similarities (with shrinkage) of the users at ``rows`` to every user, 0 to themselves."""
        Q = self.squares_[rows] if self.similarity == "pearson" else None
        w = self._similarity_to(self.profiles_[rows], self.support_[rows], Q)
        w[np.arange(len(rows)), rows] = 0.0
        return w

    def _similarity_to(
        self, P: sp.csr_matrix, B: sp.csr_matrix, Q: sp.csr_matrix | None
    ) -> np.ndarray:
        """Similarities (with shrinkage) of profiles ``P`` (support ``B``, squares ``Q``) to every user."""
        w = (P @ self.profiles_.T).toarray()
        if self.similarity == "pearson":
            scale = (Q @ self.support_.T).toarray() * (B @ self.squares_.T).toarray()
            w = np.divide(w, np.sqrt(scale), out=np.zeros_like(w), where=scale > 0)
        if self.shrinkage:
            common = (B @ self.support_.T).toarray()
            w *= common / (common + self.shrinkage)
        return w

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        n_users, n_items = self.user_items_.shape
        out = np.empty((len(rows), n_items), dtype=np.float32)
        block = max(1, _BLOCK_CELLS // max(n_users, n_items, 1))
        for start in range(0, len(rows), block):
            out[start : start + block] = self._block_scores(rows[start : start + block])
        return out

    def _history_scores(self, history: History, X: sp.csr_matrix) -> np.ndarray:
        values = None
        if self.similarity == "pearson":
            M, item_ids = history.interactions()
            values = self._catalogue_columns(item_ids, sp.csr_matrix(M, dtype=np.float64))
        P, B, Q = self._profiles(X, values)
        return self._neighbour_scores(self._similarity_to(P, B, Q).astype(np.float32), None)[0]

    def _block_scores(self, rows: np.ndarray) -> np.ndarray:
        return self._neighbour_scores(self._similarities(rows).astype(np.float32), rows)

    def _neighbour_scores(self, w: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        """Item scores from similarities ``w`` to every user; ``rows``: the users themselves."""
        R = self.item_users_
        raters = np.diff(R.indptr)
        few = np.flatnonzero(raters <= self.k)
        many = np.flatnonzero(raters > self.k)
        num = np.empty((len(w), R.shape[1]), dtype=np.float32)
        den = np.empty_like(num) if self.normalize else None
        # Items with at most k raters: every rater is a neighbour.
        R_few = R[:, few]
        num[:, few] = (R_few.T @ w.T).T
        if den is not None:
            den[:, few] = ((R_few != 0).astype(np.float32).T @ np.abs(w).T).T
        # Items with more: the k most similar raters, never the user themselves.
        if rows is not None:
            w[np.arange(len(rows)), rows] = -np.inf
        unit = bool(np.all(R.data == 1.0))  # binary: the values of the top k are enough
        for i in many:
            users = R.indices[R.indptr[i] : R.indptr[i + 1]]
            wi = w[:, users]
            if unit:
                wk = np.partition(wi, len(users) - self.k, axis=1)[:, -self.k :]
                num[:, i] = wk.sum(axis=1)
            else:
                top = np.argpartition(-wi, self.k - 1, axis=1)[:, : self.k]
                wk = np.take_along_axis(wi, top, axis=1)
                num[:, i] = (wk * R.data[R.indptr[i] : R.indptr[i + 1]][top]).sum(axis=1)
            if den is not None:
                den[:, i] = np.abs(wk).sum(axis=1)
        if den is not None:
            num = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        return num
