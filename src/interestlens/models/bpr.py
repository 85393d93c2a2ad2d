"""Bayesian personalised ranking: matrix factorisation for pairwise ranking, on implicit."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from interestlens.data import Dataset
from interestlens.models.base import History, Recommender


class BPR(Recommender):
    r"""Matrix factorisation trained to rank engaged items above the rest (Rendle et al., 2009).

    Stochastic gradient ascent on :math:`\sum \ln \sigma(\hat x_{ui} - \hat x_{uj})`
    minus an L2 penalty, over triples of a user :math:`u`, an item :math:`i` they
    engaged with and a sampled item :math:`j` they did not, where
    :math:`\hat x_{ui} = w_u^\top h_i + b_i` (implicit adds the item bias :math:`b_i`).
    Fitted by implicit's CPU trainer.

    Parameters
    ----------
    factors
        Dimension of the user and item factors (plus one for the item bias).
    learning_rate
        SGD step size.
    regularization
        The L2 penalty on the factors.
    iterations
        Epochs; each draws as many triples as there are engagements.
    random_state
        Seed of the initial factors and of the sampling.

    Notes
    -----
    Needs the ``implicit`` package to fit (not to score or load). Training runs on
    one thread: implicit's multithreaded SGD updates shared factors without locks
    (Hogwild), so its result would depend on thread timing; one thread makes a seed
    give the same model every time. Unlike the paper's uniform draw, implicit samples
    the negative item from all engagements, so in proportion to its popularity.
    Limits: the training matrix is binary; items nobody engaged with get zero
    factors and score 0, which can rank them above engaged items a user's factors
    point away from; unseen users get popularity; more epochs than the default
    overfit ml-latest-small.

    References
    ----------
    Steffen Rendle, Christoph Freudenthaler, Zeno Gantner, Lars Schmidt-Thieme. 2009.
    BPR: Bayesian Personalized Ranking from Implicit Feedback. UAI '09.

    Examples
    --------
    >>> from interestlens.data import Dataset, Event
    >>> pairs = [(f"u{u}", f"{g}{i}") for u in range(6) for g in "ab"[u % 2] for i in range(3)]
    >>> ds = Dataset.from_records([Event(u, i, "click") for u, i in pairs[:-1]])
    >>> BPR(factors=4, learning_rate=0.05).fit(ds).recommend("u5", k=1)["item_id"].tolist()
    ['b2']
    """

    _user_state = ("user_factors_",)

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        *,
        random_state: int = 0,
    ) -> None:
        super().__init__(random_state=random_state)
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations

    def _fit(self, dataset: Dataset, X: sp.csr_matrix) -> None:
        try:
            from implicit.cpu.bpr import BayesianPersonalizedRanking
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("BPR needs the implicit package: pip install implicit") from exc
        model = BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            num_threads=1,
            random_state=self.random_state,
        )
        model.fit(sp.csr_matrix(X, dtype=np.float32), show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return self.user_factors_[rows] @ self.item_factors_.T

    #: Items drawn as the negatives of a folded-in user's pairs.
    _FOLD_NEGATIVES = 500

    def _history_scores(self, history: History, X: sp.csr_matrix) -> np.ndarray:
        # The user step of BPR with the items fixed: maximise the mean log sigmoid of
        # positive-minus-negative scores (negatives a seeded sample of the other items)
        # minus the L2 penalty; the last factor is implicit's item bias (user side 1).
        from scipy.optimize import minimize
        from scipy.special import log_expit

        V = self.item_factors_.astype(np.float64)
        pos = X.indices
        others = np.setdiff1d(np.arange(len(V)), pos)
        if not len(others):  # every item is the user's: no pair to rank, the biases remain
            return V[:, -1].astype(np.float32)
        rng = np.random.default_rng(self.random_state)
        neg = rng.choice(others, min(self._FOLD_NEGATIVES, len(others)), replace=False)
        D = (V[pos][:, None, :] - V[neg][None, :, :]).reshape(-1, V.shape[1])
        bias, D = D[:, -1], D[:, :-1]

        def loss(u: np.ndarray) -> tuple[float, np.ndarray]:
            m = D @ u + bias
            g = -(D.T @ np.exp(log_expit(-m))) / len(m) + 2 * self.regularization * u
            return -log_expit(m).mean() + self.regularization * u @ u, g

        u = minimize(loss, np.zeros(V.shape[1] - 1), jac=True, method="L-BFGS-B").x
        return (V @ np.r_[u, 1.0]).astype(np.float32)
