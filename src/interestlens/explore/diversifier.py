"""Interest diversification: a slate that covers more of the user's interests.

Pure exploitation fills a slate with the ranker's top items, which tend to share one or
two interests: a user is shown more of what they already engage with, and an interest the
ranker rates a little lower never reaches the slate. Re-ranking the ranker's best items
so that each further item of an interest the user already has counts for less (maximal
marginal relevance over interests, as in calibrated or coverage-based re-ranking) brings
other interests in at a small cost in predicted relevance. Interests the user has not
engaged with yet get a bonus in proportion to how much of the ranker's predicted
preference falls in them: the ranker's own view of where the user's unconfirmed
interests lie decides which new interests the slate tries, and with how many items.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from interestlens.explore.base import EXACT, check_non_negative, check_positive, check_unit
from interestlens.explore.interest_explorer import InterestPolicy
from interestlens.models import Recommender


class InterestDiversifier(InterestPolicy):
    r"""Re-ranks the ranker's best items so that the slate spreads over interests.

    The slate is built greedily from the ranker's ``n_candidates`` best eligible items.
    Each item's value :math:`v_i` is its exploitation score (the ranker's score in robust
    standard units, plus the per-item feedback shift). The predicted share of interest
    :math:`c` is :math:`s_c = \sum_{c(i) = c} e^{v_i}`, relative to the largest. At each
    position the item with the highest

    .. math::

        v_i - \gamma \, n_{c(i)}                 & \quad \text{if the user has } c(i), \\
        v_i + \beta \, s_{c(i)} \, \delta^{n_{c(i)}} & \quad \text{if } c(i) \text{ is new to them}

    is added, where :math:`n_c` counts the items of interest :math:`c` already in the slate,
    :math:`\gamma = \text{explore} \cdot \text{diversity}`,
    :math:`\beta = \text{explore} \cdot \text{novelty}` and :math:`\delta` is ``decay``. A
    new interest the ranker predicts strongly can take several positions until a click
    confirms it. At ``explore = 0`` this is the ranker's top ``k``. By default the slate
    is deterministic given the policy's state, so every propensity is 1 (a positive
    ``temperature`` draws it at random instead, for logs that off-policy evaluation can
    reuse). The policy learns online through the feedback shift and through the user's
    interests: a rewarded item of a new interest makes it theirs, and its items are then
    penalised like the others.

    In the simulation of ``benchmarks/explore.py`` it finds more of the users' true
    interests, and more new ones, than any other policy that keeps 95% of pure
    exploitation's reward (see ``docs/simulate.md``).

    Parameters
    ----------
    ranker
        A :class:`~interestlens.models.Recommender`.
    diversity
        Penalty, in standard units of the scores at ``explore = 1``, of each further item
        of an interest the user has, per item of it already in the slate.
    novelty
        Bonus, in the same units at ``explore = 1``, of the first item of the new
        interest with the largest predicted share (others in proportion to their share).
    decay
        Factor in [0, 1] of the bonus for each further item of the same new interest.
    temperature
        0 (the default) builds the slate greedily, as above. A positive value draws each
        position instead, with odds :math:`\exp(\cdot / T)` of the quantity above at
        :math:`T = \text{explore} \cdot \text{temperature}` (in the same standard
        units), so that the served slates can be reused by off-policy evaluation.
        Propensities are then a Monte-Carlo estimate from ``n_draws`` slates, exact at
        the first position (``propensity_method`` ``"monte-carlo:<n_draws>"``).
    n_draws
        Simulated slates behind each propensity estimate when ``temperature > 0``.
    **kwargs
        Shared parameters of :class:`~interestlens.explore.Policy`.

    Examples
    --------
    >>> import numpy as np
    >>> from interestlens.data import Dataset, Event
    >>> from interestlens.interests import InterestTaxonomy
    >>> from interestlens.models import Popularity
    >>> items = [f"i{i}" for i in range(9)]  # interests A (i0-i2), B (i3-i5), C (i6-i8)
    >>> tax = InterestTaxonomy(n_fine=3, n_broad=1).fit(items, np.repeat(np.eye(3), 3, axis=0))
    >>> counts = [9, 8, 7, 3, 2, 1, 5, 4, 3]   # A the most popular interest, then C, then B
    >>> ds = Dataset.from_records([Event(f"u{u}", f"i{i}", "click")
    ...                            for i, n in enumerate(counts) for u in range(n)]
    ...                           + [Event("fan", "i0", "click")])   # a fan of A
    >>> policy = InterestDiversifier(Popularity()).fit(ds, taxonomy=tax)
    >>> policy.recommend("fan", k=4, explore=0.0).item_ids   # the most popular items
    ('i1', 'i2', 'i6', 'i7')
    >>> policy.recommend("fan", k=4, explore=0.5).item_ids   # C, new to the fan, leads
    ('i6', 'i1', 'i7', 'i8')
    >>> drawn = InterestDiversifier(Popularity(), temperature=0.5, n_draws=200)
    >>> slate = drawn.fit(ds, taxonomy=tax).recommend("fan", k=4, explore=0.5)
    >>> slate.propensity_method, all(0 < p <= 1 for p in slate.propensities)
    ('monte-carlo:200', True)
    """

    name = "interest_diversifier"

    def __init__(
        self,
        ranker: Recommender,
        *,
        diversity: float = 2.0,
        novelty: float = 10.0,
        decay: float = 0.8,
        temperature: float = 0.0,
        n_draws: int = 1000,
        **kwargs: Any,
    ) -> None:
        super().__init__(ranker, **kwargs)
        self.diversity = diversity
        self.novelty = novelty
        self.decay = decay
        self.temperature = temperature
        self.n_draws = n_draws

    def _fit(self, dataset: Any, item_vectors: Any, taxonomy: Any) -> None:
        check_positive("diversity", self.diversity)
        check_non_negative("novelty", self.novelty)
        check_unit("decay", self.decay)
        check_non_negative("temperature", self.temperature)
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
        pool, value = self._exploit(scores, k)
        clusters = self.clusters_[pool]
        has = clusters >= 0
        slot = np.where(has, clusters, 0)
        n_fine = len(self.taxonomy_.fine_ids_)
        held = np.zeros(n_fine, dtype=bool)
        held[self.user_interests_.get(user_id, [])] = True
        weight = np.exp(value - value.max()) * has
        share = np.bincount(slot, weights=weight, minlength=n_fine)
        share /= share.max() or 1.0
        new = has & ~held[slot]
        bonus = explore * self.novelty * share[slot] * new
        penalty = explore * self.diversity * (has & ~new)
        if self.temperature == 0:
            return pool[self._rerank(value, clusters, bonus, penalty, k)[0]], np.ones(k), EXACT
        t = explore * self.temperature
        slates = self._rerank(value, clusters, bonus, penalty, k, t, self.n_draws)
        served = slates[0]
        first = (value + bonus) / t  # every count is 0 at the first position
        first = np.exp(first - first.max())
        props = (slates == served).mean(axis=0)
        props[0] = first[served[0]] / first.sum()
        return pool[served], props, f"monte-carlo:{self.n_draws}"

    def _rerank(
        self,
        value: np.ndarray,
        clusters: np.ndarray,
        bonus: np.ndarray,
        penalty: np.ndarray,
        k: int,
        temperature: float = 0.0,
        n_slates: int = 1,
    ) -> np.ndarray:
        """Positions in ``value`` of ``n_slates`` slates of ``k`` candidates, one per row.

        Each step takes the candidate with the best ``value - penalty * n + bonus *
        decay**n``, ``n`` counting the candidates of its interest already taken
        (``clusters``: each candidate's interest, -1 for none); at a positive
        ``temperature`` it draws one instead, with odds ``exp(that / temperature)``, so
        the rows are independent draws.
        """
        has = clusters >= 0
        slot = np.where(has, clusters, 0)
        rows = np.arange(n_slates)
        in_slate = np.zeros((n_slates, slot.max(initial=0) + 1), dtype=np.int64)
        decayed = self.decay ** np.arange(k + 1)
        value = np.tile(value, (n_slates, 1))
        picked = np.empty((n_slates, k), dtype=np.int64)
        for j in range(k):
            n = in_slate[:, slot]
            adjusted = value - penalty * n + bonus * decayed[n]
            if temperature > 0:
                # inverse-CDF draw of one candidate per row (cheaper than Gumbel noise)
                odds = np.cumsum(
                    np.exp((adjusted - adjusted.max(axis=1)[:, None]) / temperature), 1
                )
                total = odds[:, -1]
                u = np.minimum(self.rng_.random(n_slates) * total, np.nextafter(total, 0))
                i = (odds <= u[:, None]).sum(axis=1)
            else:
                i = np.argmax(adjusted, axis=1)
            picked[:, j] = i
            value[rows, i] = -np.inf
            in_slate[rows, slot[i]] += has[i]
        return picked
