"""Softmax (Boltzmann) exploration: Plackett–Luce slates at a temperature."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from interestlens.explore.base import Policy, check_positive
from interestlens.models import Recommender


def plackett_luce_propensities(
    logits: np.ndarray, slate: np.ndarray, rng: np.random.Generator, n_draws: int
) -> np.ndarray:
    """Probability of each ``slate[j]`` at position ``j`` under Plackett–Luce sampling.

    Position 0 is exact (the softmax); the others are estimated from ``n_draws`` slates
    drawn with the Gumbel-top-k trick, counting the served slate as one of them (so no
    estimate is 0 for an item that was in fact shown there).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = plackett_luce_propensities(np.log([0.5, 0.3, 0.2]), np.array([0, 1]), rng, 20_000)
    >>> exact = [0.5, 0.5 * 0.3 / 0.5 + 0.2 * 0.3 / 0.8]  # = [0.5, 0.375]
    >>> float(p[0]) == exact[0], abs(float(p[1]) - exact[1]) < 0.01
    (True, True)
    """
    k = len(slate)
    z = logits - logits.max()
    p0 = np.exp(z) / np.exp(z).sum()
    out = np.empty(k)
    out[0] = p0[slate[0]]
    if k > 1:
        g = z[None, :] + rng.gumbel(size=(n_draws - 1, len(z)))
        part = np.argpartition(-g, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(g, part, axis=1), axis=1)
        draws = np.take_along_axis(part, order, axis=1)
        out[1:] = ((draws[:, 1:] == slate[None, 1:]).sum(axis=0) + 1) / n_draws
    return out


class Softmax(Policy):
    """Softmax exploration: slates drawn without replacement with odds ``exp(score / T)``.

    Scores are the exploitation scores of the ranker's top ``n_candidates`` (standardised,
    shifted by feedback); the temperature is ``T = explore * temperature``, so a small
    ``explore`` stays close to the greedy order and ``explore = 1`` reaches ``temperature``.
    The slate is a Plackett–Luce sample. Propensities: position 0 exact, the others a
    Monte-Carlo estimate from ``n_draws`` slates (``propensity_method`` says
    ``"monte-carlo:<n_draws>"``); the standard error of an estimate ``p`` is about
    ``sqrt(p (1 - p) / n_draws)``.

    Unlike epsilon-greedy it explores near the top: a candidate's chance falls smoothly
    with its score, so nearly-as-good items are tried often and poor ones rarely.

    Parameters
    ----------
    ranker
        A :class:`~interestlens.models.Recommender`.
    temperature
        Temperature at ``explore = 1``, in standard units of the candidates' scores.
    n_draws
        Simulated slates behind each propensity estimate.
    **kwargs
        Shared parameters of :class:`~interestlens.explore.Policy`.

    Examples
    --------
    >>> from interestlens.data import Dataset, Event
    >>> from interestlens.models import Popularity
    >>> ds = Dataset.from_records([Event(f"u{u}", f"i{i}", "click")
    ...                            for u in range(6) for i in range(u + 2)])
    >>> policy = Softmax(Popularity(), n_draws=500).fit(ds)
    >>> slate = policy.recommend("new user", k=3, explore=0.5)
    >>> slate.propensity_method, len(slate), all(0 < p <= 1 for p in slate.propensities)
    ('monte-carlo:500', 3, True)
    """

    name = "softmax"

    def __init__(
        self,
        ranker: Recommender,
        *,
        temperature: float = 1.0,
        n_draws: int = 1000,
        **kwargs: Any,
    ) -> None:
        super().__init__(ranker, **kwargs)
        self.temperature = temperature
        self.n_draws = n_draws

    def _fit(self, dataset: Any, item_vectors: Any, taxonomy: Any) -> None:
        check_positive("temperature", self.temperature)
        check_positive("n_draws", self.n_draws, integer=True)

    def _select(
        self,
        user_id: str,
        scores: np.ndarray,
        greedy: np.ndarray,
        explore: float,
        now: pd.Timestamp,
    ) -> tuple[np.ndarray, np.ndarray, str]:
        k = len(greedy)
        pool, value = self._exploit(scores, k)
        logits = value / (explore * self.temperature)
        g = logits - logits.max() + self.rng_.gumbel(size=len(pool))
        picked = np.argsort(-g, kind="stable")[:k]
        props = plackett_luce_propensities(logits, picked, self.rng_, self.n_draws)
        return pool[picked], props, f"monte-carlo:{self.n_draws}"
