"""The shared interface of exploration policies, and the :class:`Slate` every one returns.

A policy wraps a ranker (any fitted :class:`~interestlens.models.Recommender`, or a score
vector the caller computed) and turns its scores into a slate of ``k`` items, trading the
items the ranker is sure of against items that teach the system something. The one knob
per request is ``explore`` in [0, 1]: 0 serves the ranker's greedy top-``k`` unchanged
(propensity 1 at every position), and each policy maps a positive value to its own
parameter (epsilon, temperature, confidence width, share of the slate).

Every slate records, per position, the probability that the policy's randomisation put
that item at that position (exact, or a stated Monte-Carlo estimate), whether exploration
put it there (the item is not in the greedy slate), and a ``request_id`` under which
feedback comes back through :meth:`Policy.update`. Shown items without feedback count as
reward 0, so the slates and their feedback form a log for off-policy evaluation.
"""

from __future__ import annotations

import abc
import functools
import inspect
import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from interestlens.data import Dataset
from interestlens.data.schema import check_reward
from interestlens.models import Recommender, top_k

#: Propensity method of slates whose probabilities are computed in closed form.
EXACT = "exact"


@dataclass(frozen=True)
class Slate:
    """One served slate: items in position order (position 0 first) with their propensities.

    Attributes
    ----------
    request_id
        Unique id (a random UUID4) under which feedback for this slate comes back.
    user_id
        Who it was served to.
    item_ids, scores
        The items and the ranker's score of each; NaN for an item drawn from beyond the
        ranker's top ``n_candidates`` (only exploration puts one there), where rankers
        give no score a reader can use (the hybrid puts every item outside its
        candidates at about -1e6, to keep them in order below them).
    propensities
        Probability, under the policy's randomisation in this request, that each item was
        shown at its position, in (0, 1].
    explored
        Whether each item is outside the greedy slate (the ranker's top-``k``).
    policy, params
        Name and parameters of the policy that served it.
    explore
        The request's exploration level.
    propensity_method
        ``"exact"``, or ``"monte-carlo:N"`` for estimates from ``N`` simulated slates.
    context
        A summary of what the policy knew (numbers and short strings), logged with the slate.
    timestamp
        When it was served (UTC).
    """

    request_id: str
    user_id: str
    item_ids: tuple[str, ...]
    scores: tuple[float, ...]
    propensities: tuple[float, ...]
    explored: tuple[bool, ...]
    policy: str
    params: Mapping[str, Any]
    explore: float
    propensity_method: str
    context: Mapping[str, Any] = field(default_factory=dict)
    timestamp: pd.Timestamp = field(default_factory=lambda: pd.Timestamp.now(tz="UTC"))

    def __len__(self) -> int:
        return len(self.item_ids)

    def to_frame(self) -> pd.DataFrame:
        """One row per position: ``request_id, user_id, item_id, position, score, propensity, explored``."""
        n = len(self)
        return pd.DataFrame(
            {
                "request_id": [self.request_id] * n,
                "user_id": [self.user_id] * n,
                "item_id": list(self.item_ids),
                "position": np.arange(n),
                "score": np.asarray(self.scores, dtype=np.float64),
                "propensity": np.asarray(self.propensities, dtype=np.float64),
                "explored": np.asarray(self.explored, dtype=bool),
            }
        )

    def record(self) -> dict[str, Any]:
        """The keyword arguments of :meth:`interestlens.store.EventStore.log_slate`."""
        return {
            "request_id": self.request_id,
            "user_id": self.user_id,
            "item_ids": list(self.item_ids),
            "scores": list(self.scores),
            "propensities": list(self.propensities),
            "explored": list(self.explored),
            "policy": self.policy,
            "params": dict(self.params),
            "explore": self.explore,
            "propensity_method": self.propensity_method,
            "context": dict(self.context),
            "timestamp": self.timestamp,
        }


@dataclass(frozen=True)
class SlateDistribution:
    """Where a policy would put each item in a slate for one user, without serving it.

    Attributes
    ----------
    item_ids
        The policy's items (:attr:`Policy.item_ids_`), in column order.
    probabilities
        ``(k, len(item_ids))``: row ``j`` is the probability of each item at position ``j``.
        A row sums to 1, or is all zero where the slate would be shorter than ``k``
        (fewer eligible items).
    method
        ``"exact"``, or ``"monte-carlo:N"`` for shares of ``N`` simulated slates.
    """

    item_ids: pd.Index
    probabilities: np.ndarray
    method: str

    def probability(self, item_id: str, position: int) -> float:
        """The probability of ``item_id`` at ``position`` (0 for an item the policy lacks)."""
        col = self.item_ids.get_indexer([str(item_id)])[0]
        if col < 0 or not 0 <= position < len(self.probabilities):
            return 0.0
        return float(self.probabilities[position, col])


@dataclass
class _Served:
    """What a policy remembers of a slate until its feedback is in."""

    user_id: str
    cols: np.ndarray
    rewards: dict[int, float] = field(default_factory=dict)
    extra: Any = None


def robust_z(
    values: np.ndarray, clip: float = 4.0, reference: np.ndarray | None = None
) -> np.ndarray:
    """Scores standardised by the median and MAD of ``reference`` (default: themselves).

    Rankers put their scores on any scale (the hybrid gives its non-candidates about
    -1e6); the median and the median absolute deviation ignore such outliers, and a
    ``clip * tanh(z / clip)`` squashing bounds the result without creating ties.

    Examples
    --------
    >>> robust_z(np.array([1.0, 2.0, 3.0, -1e6])).round(2).tolist()
    [-0.34, 0.34, 0.99, -4.0]
    """
    v = np.asarray(values, dtype=np.float64)
    ref = v if reference is None else np.asarray(reference, dtype=np.float64)
    if len(ref) == 0:
        return np.zeros_like(v)
    med = np.median(ref)
    mad = 1.4826 * np.median(np.abs(ref - med))
    if mad == 0:
        mad = np.std(ref) or 1.0
    return clip * np.tanh((v - med) / mad / clip)


def check_unit(name: str, value: float) -> float:
    """``value`` as a float in [0, 1], or ``ValueError`` naming ``name``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return v


def check_non_negative(name: str, value: float) -> float:
    """``value`` if it is a finite number >= 0, else ``ValueError`` naming ``name``."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not 0 <= value < math.inf:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def check_positive(name: str, value: float, *, integer: bool = False) -> Any:
    """``value`` if it is a positive number (an ``int`` when ``integer``), else ``ValueError``."""
    ok = isinstance(value, int | np.integer) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or not value > 0 or not math.isfinite(value):
        kind = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return value


def policy_parameters(cls: type[Policy]) -> set[str]:
    """Names of the parameters a policy class takes (its own and its bases')."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass) and issubclass(klass, Policy):
            params = inspect.signature(klass.__init__).parameters.values()
            names |= {p.name for p in params if p.kind is p.KEYWORD_ONLY}
    if cls._explore_name != "explore":
        names.discard("explore")
    return names


def inclusion_probabilities(q: np.ndarray, m: int) -> np.ndarray:
    """Probability that each option is among ``m`` drawn without replacement with odds ``q``.

    Successive sampling: each draw picks a remaining option with probability proportional
    to its ``q``. Exact: equal odds give ``m / n``; otherwise every subset of size ``m`` is
    enumerated (so at most 12 options).

    Examples
    --------
    >>> inclusion_probabilities(np.array([1.0, 1.0, 1.0, 1.0]), 2).tolist()
    [0.5, 0.5, 0.5, 0.5]
    >>> inclusion_probabilities(np.array([2.0, 1.0, 1.0]), 1).tolist()
    [0.5, 0.25, 0.25]
    >>> inclusion_probabilities(np.array([2.0, 1.0, 1.0]), 2).round(4).tolist()
    [0.8333, 0.5833, 0.5833]
    """
    q = np.asarray(q, dtype=np.float64)
    n = len(q)
    if m <= 0 or n == 0:
        return np.zeros(n)
    if m >= n:
        return np.ones(n)
    if np.allclose(q, q[0]):
        return np.full(n, m / n)
    if n > 12:
        raise ValueError(f"exact inclusion probabilities need at most 12 options, got {n}")
    p = q / q.sum()
    # prob[S]: probability that the first |S| draws are the set S (in some order)
    prob = {0: 1.0}
    for _ in range(m):
        nxt: dict[int, float] = {}
        for mask, pr in prob.items():
            # the odds left, summed (1 - the drawn ones' cancels to 0 when one dominates)
            rest = sum(p[i] for i in range(n) if not mask >> i & 1)
            for i in range(n):
                if not mask >> i & 1:
                    key = mask | 1 << i
                    nxt[key] = nxt.get(key, 0.0) + pr * p[i] / rest
        prob = nxt
    out = np.zeros(n)
    for mask, pr in prob.items():
        for i in range(n):
            if mask >> i & 1:
                out[i] += pr
    return out


def _rounding(x: float) -> list[tuple[int, float]]:
    """Randomised rounding of ``x``: ``[(floor, 1 - frac), (floor + 1, frac)]`` (zero terms dropped)."""
    lo = math.floor(x)
    frac = x - lo
    return [(m, p) for m, p in ((lo, 1.0 - frac), (lo + 1, frac)) if p > 0]


class Policy(abc.ABC):
    """Base class of every exploration policy.

    Subclasses implement :meth:`_select` (the slate when ``explore > 0``) and may extend
    :meth:`_fit`, :meth:`_served`, :meth:`_learn` and, where they learn per user,
    :meth:`_forget`; id handling, seen-item exclusion, the greedy short cut at
    ``explore = 0``, request bookkeeping, feedback and forgetting a user live here.

    Online learning shared by the policies that do not model rewards themselves: each
    item's rewards against the average reward per impression shift its exploitation
    score by ``feedback_weight`` times the z-statistic of its excess reward (see
    :meth:`_feedback_shift`), so items that keep earning rise and items shown often
    without reward sink.

    Parameters
    ----------
    ranker
        A :class:`~interestlens.models.Recommender` (fitted, or fitted by :meth:`fit`).
    explore
        Exploration level of requests that do not give one.
    n_candidates
        The ranker's top items among which the policy re-ranks (where it re-ranks).
    feedback_weight
        Weight of the per-item feedback shift (0 turns it off).
    max_pending
        Slates remembered for feedback; feedback for older ones raises ``KeyError``.
    random_state
        Seed of every random draw (request ids are random UUIDs regardless).
    """

    #: Registry name of the policy.
    name: ClassVar[str] = ""
    #: Parameters holding runtime components, not hyperparameters.
    _components: ClassVar[tuple[str, ...]] = ("ranker",)
    #: Name of the default exploration level among the parameters.
    _explore_name: ClassVar[str] = "explore"
    #: Shrinkage (in impressions) of the per-item feedback shift.
    _PRIOR_IMPRESSIONS: ClassVar[float] = 10.0

    def __init__(
        self,
        ranker: Recommender,
        *,
        explore: float = 0.1,
        n_candidates: int = 100,
        feedback_weight: float = 1.0,
        max_pending: int = 100_000,
        random_state: int = 0,
    ) -> None:
        self.ranker = ranker
        self.explore = explore
        self.n_candidates = n_candidates
        self.feedback_weight = feedback_weight
        self.max_pending = max_pending
        self.random_state = random_state

    # ----- fitting ----------------------------------------------------------------
    def fit(
        self,
        dataset: Dataset,
        *,
        item_vectors: np.ndarray | None = None,
        taxonomy: Any = None,
    ) -> Policy:
        """Prepare the policy for a dataset; returns the policy.

        Parameters
        ----------
        dataset
            The data the ranker learned from (it is fitted here if it is not yet).
        item_vectors
            Language-model embeddings of the ranker's items, in ``ranker.item_ids_`` order
            (the linear policies need them; they encode the item text when omitted).
        taxonomy
            A fitted :class:`~interestlens.interests.InterestTaxonomy` (the interest
            explorer needs one; it fits one when omitted).
        """
        check_unit(self._explore_name, self.explore)
        check_positive("n_candidates", self.n_candidates, integer=True)
        check_positive("max_pending", self.max_pending, integer=True)
        check_non_negative("feedback_weight", self.feedback_weight)
        if not isinstance(self.ranker, Recommender):
            raise ValueError(
                f"ranker must be an interestlens Recommender, got {type(self.ranker).__name__}"
            )
        if not hasattr(self.ranker, "item_ids_"):
            self.ranker.fit(dataset)
        self.item_ids_ = pd.Index(self.ranker.item_ids_, dtype=object)
        n = len(self.item_ids_)
        self.shown_ = np.zeros(n)
        self.rewards_ = np.zeros(n)
        self.reward_sq_ = 0.0
        self.pending_: OrderedDict[str, _Served] = OrderedDict()
        self.rng_ = np.random.default_rng(self.random_state)
        self._fit(dataset, item_vectors, taxonomy)
        return self

    def _fit(self, dataset: Dataset, item_vectors: np.ndarray | None, taxonomy: Any) -> None:
        """Learn what the policy needs beyond the ranker (nothing by default)."""
        return None

    # ----- serving ----------------------------------------------------------------
    def recommend(
        self,
        user_id: str,
        k: int = 10,
        *,
        explore: float | None = None,
        exclude_seen: bool = True,
        scores: np.ndarray | None = None,
        context: Mapping[str, Any] | None = None,
        now: pd.Timestamp | None = None,
    ) -> Slate:
        """A slate of up to ``k`` items for one user.

        Parameters
        ----------
        user_id
            Any user; one the ranker has not seen gets its cold-start scores.
        k
            Slate length (shorter only when fewer items are eligible).
        explore
            Exploration level in [0, 1] (default: the policy's ``explore``); 0 returns
            the ranker's top-``k`` with propensity 1.
        exclude_seen
            Leave out items the ranker saw the user engage with.
        scores
            Scores of every item in :attr:`item_ids_` order to use instead of the
            ranker's (``-inf`` or NaN: not eligible), e.g. a cold-start model's.
        context
            Extra summary fields logged with the slate.
        now
            The request time (default: the clock), for age cut-offs and the log.
        """
        user_id, level, now, s, greedy = self._request(
            user_id, k, explore, exclude_seen, scores, now
        )
        with self._lock:
            if level == 0.0 or len(greedy) == 0:
                cols, props, method = greedy, np.ones(len(greedy)), EXACT
            else:
                cols, props, method = self._select(user_id, s, greedy, level, now)
            rid = str(uuid.uuid4())
            served = _Served(user_id, np.asarray(cols, dtype=np.int64))
            served.extra = self._served(served, s)
            self.pending_[rid] = served
            while len(self.pending_) > self.max_pending:
                self.pending_.popitem(last=False)
            self.shown_[served.cols] += 1
        in_greedy = set(greedy.tolist())
        # beyond the ranker's top candidates its number is only an order (the hybrid
        # puts them at about -1e6), not a score to show: NaN, with the explored flag
        scored = set(self._pool(s, len(greedy)).tolist()) if level > 0 else in_greedy
        summary = {
            "n_eligible": int(np.isfinite(s).sum()),
            "user_known": bool(self._known_row(user_id) >= 0),
            **(context or {}),
        }
        return Slate(
            request_id=rid,
            user_id=user_id,
            item_ids=tuple(str(self.item_ids_[c]) for c in cols),
            scores=tuple(float(s[c]) if c in scored else math.nan for c in cols),
            propensities=tuple(float(p) for p in props),
            explored=tuple(bool(c not in in_greedy) for c in cols),
            policy=self.name,
            params=self.get_params(),
            explore=level,
            propensity_method=method,
            context=summary,
            timestamp=now,
        )

    def _request(
        self,
        user_id: str,
        k: int,
        explore: float | None,
        exclude_seen: bool,
        scores: np.ndarray | None,
        now: pd.Timestamp | None,
    ) -> tuple[str, float, pd.Timestamp, np.ndarray, np.ndarray]:
        """A request's checked arguments: user id, level, UTC time, scores, greedy columns."""
        self._check_fitted()
        level = check_unit("explore", self.explore if explore is None else explore)
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        user_id = str(user_id)
        now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
        now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
        s = self._user_scores(user_id, scores, exclude_seen)
        greedy = top_k(s[None, :], int(k))[0]
        return user_id, level, now, s, greedy[np.isfinite(s[greedy])]

    def slate_distribution(
        self,
        user_id: str,
        k: int = 10,
        *,
        explore: float | None = None,
        n_draws: int = 1000,
        random_state: int | np.random.Generator | None = 0,
        exclude_seen: bool = True,
        scores: np.ndarray | None = None,
        now: pd.Timestamp | None = None,
    ) -> SlateDistribution:
        """The probability of each item at each position of the slate :meth:`recommend` would serve.

        Nothing about the policy changes: no slate is remembered or counted, nothing is
        learned, and the policy's own random generator is left where it was, so the next
        :meth:`recommend` is the same as without this call. The distribution is the
        policy's as it is now (after all feedback so far).

        ``explore = 0``, and any request whose slate is certain (the policy reports
        propensity 1 at every position, as LinUCB does), is exact. Otherwise it is a
        Monte-Carlo estimate: the policy's own slate selection is run ``n_draws`` times
        with a generator seeded by ``random_state``, and each entry is the share of those
        slates that put the item at the position (standard error about
        ``sqrt(p (1 - p) / n_draws)``). It suits every policy, Thompson sampling and
        Plackett–Luce slates included; its limit is that an item shown with a probability
        well below ``1 / n_draws`` (one of thousands of uniformly random picks under
        epsilon-greedy, say) mostly gets 0. Each draw costs one slate selection (for
        Softmax and LinTS that includes their own propensity estimate).

        Parameters
        ----------
        user_id, k, explore, exclude_seen, scores, now
            As in :meth:`recommend`.
        n_draws
            Simulated slates behind a Monte-Carlo estimate.
        random_state
            Seed (or generator) of the simulated slates.

        Returns
        -------
        SlateDistribution

        Examples
        --------
        >>> from interestlens.data import Dataset, Event
        >>> from interestlens.models import Popularity
        >>> from interestlens.explore import EpsilonGreedy
        >>> ds = Dataset.from_records([Event(f"u{u}", f"i{i}", "click")
        ...                            for u in range(6) for i in range(u + 2)])
        >>> policy = EpsilonGreedy(Popularity()).fit(ds)
        >>> dist = policy.slate_distribution("new user", k=2, explore=0.5, n_draws=4000)
        >>> dist.method, dist.probabilities.shape, dist.probabilities.sum(axis=1).tolist()
        ('monte-carlo:4000', (2, 7), [1.0, 1.0])
        >>> round(dist.probability("i0", 0), 1), round(dist.probability("i2", 1), 2)  # 0.5, 0.5 / 5
        (0.5, 0.1)
        >>> policy.slate_distribution("new user", k=2, explore=0.0).probabilities[:, :3].tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
        >>> len(policy.pending_), int(policy.shown_.sum())  # nothing served, nothing counted
        (0, 0)
        """
        check_positive("n_draws", n_draws, integer=True)
        user_id, level, now, s, greedy = self._request(
            user_id, k, explore, exclude_seen, scores, now
        )
        if level == 0.0 or len(greedy) == 0:
            slates, method = greedy[None, :], EXACT
        else:
            rng = np.random.default_rng(random_state)
            with self._lock:
                slates, method = self._sample_slates(user_id, s, greedy, level, now, n_draws, rng)
        probs = np.zeros((int(k), len(self.item_ids_)))
        positions = np.broadcast_to(np.arange(slates.shape[1]), slates.shape)
        np.add.at(probs, (positions, slates), 1.0)
        return SlateDistribution(self.item_ids_, probs / len(slates), method)

    def _sample_slates(
        self,
        user_id: str,
        scores: np.ndarray,
        greedy: np.ndarray,
        explore: float,
        now: pd.Timestamp,
        n_draws: int,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, str]:
        """Slates :meth:`_select` draws with ``rng`` (one per row) and the method they give.

        Called under the lock. The policy's generator is swapped for ``rng`` for the
        duration and put back, so its stream is untouched. A first slate with propensity
        1 everywhere is certain: it is returned alone, as exact.
        """
        own = self.rng_
        self.rng_ = rng
        try:
            cols, props, method = self._select(user_id, scores, greedy, explore, now)
            if method == EXACT and np.all(np.asarray(props) == 1.0):
                return np.asarray(cols, dtype=np.int64)[None, :], EXACT
            draws = [np.asarray(cols, dtype=np.int64)]
            for _ in range(n_draws - 1):
                draws.append(np.asarray(self._select(user_id, scores, greedy, explore, now)[0]))
        finally:
            self.rng_ = own
        return np.vstack(draws).astype(np.int64), f"monte-carlo:{n_draws}"

    @abc.abstractmethod
    def _select(
        self,
        user_id: str,
        scores: np.ndarray,
        greedy: np.ndarray,
        explore: float,
        now: pd.Timestamp,
    ) -> tuple[np.ndarray, np.ndarray, str]:
        """Columns of the slate (``len(greedy)`` of them), their propensities and the method."""

    def _served(self, served: _Served, scores: np.ndarray) -> Any:
        """Called under the lock for every served slate; returns what :meth:`_learn` needs."""
        return None

    def _learn(self, served: _Served, position: int, old: float, new: float) -> None:
        """Fold the reward change ``old -> new`` at ``position`` of ``served`` into the model."""
        return None

    def update(self, request_id: str, item_id: str, reward: float) -> None:
        """Feedback for an item of a served slate: its reward (a click is 1).

        Shown items without feedback count as reward 0; a second feedback for the same
        item replaces the first (a click later upgraded to a purchase, say).

        Raises
        ------
        KeyError
            The request id is unknown (never served here, or older than the last
            ``max_pending`` slates), or the item was not in that slate.
        ValueError
            The reward is not a finite number.
        """
        self._check_fitted()
        r = check_reward(reward)
        with self._lock:
            served = self.pending_.get(str(request_id))
            if served is None:
                raise KeyError(
                    f"unknown request_id {request_id!r}: not served by this {self.name} policy, "
                    f"or older than its last {self.max_pending} slates"
                )
            col = self.item_ids_.get_indexer([str(item_id)])[0]
            where = np.flatnonzero(served.cols == col) if col >= 0 else []
            if len(where) == 0:
                raise KeyError(f"item {item_id!r} was not in slate {request_id!r}")
            pos = int(where[0])
            old = served.rewards.get(pos, 0.0)
            served.rewards[pos] = r
            self.rewards_[col] += r - old
            self.reward_sq_ += r * r - old * old
            self._learn(served, pos, old, r)

    def forget_user(self, user_id: str) -> bool:
        """Erase what the policy holds about one user; returns whether it held anything.

        The user's pending slates are dropped, so feedback for them raises ``KeyError``
        like any unknown request, and the policy's own per-user learned state goes (see
        :meth:`_forget`): afterwards the policy treats the user as one it never saw.
        What the user's feedback taught about items and about everyone (impression and
        reward counts per item, a linear policy's reward model, an interest transition
        table) stays until the next :meth:`fit`: it names no user. The ranker is not
        touched: it may be shared by several policies and has its own
        :meth:`~interestlens.models.Recommender.forget_user`.

        Examples
        --------
        >>> from interestlens.data import Dataset, Event
        >>> from interestlens.models import Popularity
        >>> from interestlens.explore import EpsilonGreedy
        >>> ds = Dataset.from_records([Event(f"u{u}", f"i{i}", "click")
        ...                            for u in range(6) for i in range(u + 2)])
        >>> policy = EpsilonGreedy(Popularity()).fit(ds)
        >>> slate = policy.recommend("u1", k=2)
        >>> policy.forget_user("u1"), policy.forget_user("u1"), len(policy.pending_)
        (True, False, 0)
        """
        self._check_fitted()
        user_id = str(user_id)
        with self._lock:
            served = [rid for rid, s in self.pending_.items() if s.user_id == user_id]
            for rid in served:
                del self.pending_[rid]
            learned = self._forget(user_id)
        return bool(served) or learned

    def _forget(self, user_id: str) -> bool:
        """Erase the subclass's per-user learned state (called under the lock); whether there was any."""
        return False

    # ----- shared pieces ------------------------------------------------------------
    def _item_vectors(self, dataset: Dataset, item_vectors: np.ndarray | None) -> np.ndarray:
        """Language-model embeddings of :attr:`item_ids_`: given, the ranker's, or encoded here."""
        n = len(self.item_ids_)
        if item_vectors is not None:
            vecs = np.asarray(item_vectors, dtype=np.float64)
            if vecs.ndim != 2 or len(vecs) != n:
                raise ValueError(
                    f"item_vectors must be an (n_items, dim) array with {n} rows "
                    f"(one per ranker item), got shape {vecs.shape}"
                )
            return vecs
        if callable(getattr(self.ranker, "item_vectors", None)):
            return np.asarray(self.ranker.item_vectors(list(self.item_ids_)), dtype=np.float64)
        from interestlens.text import Encoder, compose_item_text

        cat = dataset.catalogue().set_index("item_id")
        items = cat.reindex(self.item_ids_).rename_axis("item_id").reset_index()
        text = compose_item_text(items, dataset.events)
        return np.asarray(Encoder().encode(text.tolist()), dtype=np.float64)

    def _known_row(self, user_id: str) -> int:
        r = self.ranker.user_rows([user_id])[0]
        return int(r) if r >= 0 and self.ranker.active_[r] else -1

    def _user_scores(
        self, user_id: str, scores: np.ndarray | None, exclude_seen: bool
    ) -> np.ndarray:
        n = len(self.item_ids_)
        if scores is not None:
            s = np.array(scores, dtype=np.float64).ravel()
            if s.shape != (n,):
                raise ValueError(f"scores has {s.size} entries, expected one per item ({n})")
        else:
            s = self.ranker.score_all([user_id])[0].astype(np.float64)
        if exclude_seen:
            r = self.ranker.user_rows([user_id])[0]
            if r >= 0:
                seen = self.ranker.seen_
                s[seen.indices[seen.indptr[r] : seen.indptr[r + 1]]] = -np.inf
        s[np.isnan(s)] = -np.inf
        return s

    def _pool(self, scores: np.ndarray, k: int) -> np.ndarray:
        """The ranker's top eligible items the policy re-ranks (at least ``k``), best first."""
        pool = top_k(scores[None, :], max(self.n_candidates, k))[0]
        return pool[np.isfinite(scores[pool])]

    def _feedback_shift(self, cols: np.ndarray) -> np.ndarray:
        """Per-item shift of the exploitation score from the rewards seen so far.

        The item's excess reward over the average, as a z-statistic
        ``(R_i - n_i * mean) / (sd * sqrt(n_i + prior))``: it grows with the evidence, so an
        item that keeps earning (or keeps failing) moves steadily, one shown twice hardly.
        """
        total = self.shown_.sum()
        if self.feedback_weight == 0 or total == 0:
            return np.zeros(len(cols))
        mean = self.rewards_.sum() / total
        sd = math.sqrt(max(self.reward_sq_ / total - mean * mean, 0.0))
        n = self.shown_[cols]
        return (
            self.feedback_weight
            * (self.rewards_[cols] - n * mean)
            / (max(sd, 0.05) * np.sqrt(n + self._PRIOR_IMPRESSIONS))
        )

    def _exploit(self, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The candidate pool ordered by exploitation score (ranker plus feedback), and the scores."""
        pool = self._pool(scores, k)
        value = robust_z(scores[pool]) + self._feedback_shift(pool)
        order = np.argsort(-value, kind="stable")
        return pool[order], value[order]

    def _share_slate(
        self,
        lead: np.ndarray,
        options: np.ndarray,
        odds: np.ndarray,
        share: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Give a random share of the slate to ``options``, at random positions.

        ``round(share * k)`` slots (randomised rounding) are drawn: that many options
        without replacement with odds ``odds``, placed at a uniformly random set of
        positions in random order; ``lead`` (the exploitation slate, ``k`` long) fills the
        other positions in its order. Every propensity is exact.
        """
        k = len(lead)
        draws = _rounding(share * k)
        drawn = draws[int(self.rng_.choice(len(draws), p=[p for _, p in draws]))][0]
        m = min(drawn, len(options), k)
        picked: list[int] = []
        if m:
            p = odds / odds.sum()
            remaining = np.ones(len(options), dtype=bool)
            for _ in range(m):
                w = np.where(remaining, p, 0.0)
                j = int(self.rng_.choice(len(options), p=w / w.sum()))
                remaining[j] = False
                picked.append(j)
        slots = np.sort(self.rng_.choice(k, size=m, replace=False)) if m else np.array([], int)
        order = self.rng_.permutation(m)
        cols = np.empty(k, dtype=np.int64)
        explored_at = np.zeros(k, dtype=bool)
        explored_at[slots] = True
        cols[slots] = options[np.asarray(picked, dtype=np.int64)[order]] if m else []
        cols[~explored_at] = lead[: k - m]
        props = np.zeros(k)
        for mm, pm in draws:
            mm = min(mm, len(options), k)
            # a draw of no exploration slots cannot have put an option anywhere
            incl = inclusion_probabilities(odds, mm) if mm else np.zeros(len(options))
            for j in range(k):
                if explored_at[j]:
                    idx = int(np.flatnonzero(options == cols[j])[0])
                    props[j] += pm * incl[idx] / k
                else:
                    r = int(np.flatnonzero(lead == cols[j])[0])
                    props[j] += pm * _lead_at(r, j, k, mm)
        return cols, props

    # ----- plumbing -----------------------------------------------------------------
    @property
    def _lock(self) -> threading.RLock:
        lock = self.__dict__.get("_lock_")
        if lock is None:
            lock = self.__dict__.setdefault("_lock_", threading.RLock())
        return lock

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_lock_"}

    def _check_fitted(self) -> None:
        if not hasattr(self, "item_ids_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(dataset) first")

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters: the ``__init__`` arguments of the class and its bases but the ranker."""
        return {p: getattr(self, p) for p in _param_names(type(self)) if p not in self._components}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


def _lead_at(r: int, j: int, k: int, m: int) -> float:
    """Probability that the lead item of rank ``r`` lands at position ``j``.

    ``m`` of the ``k`` positions, chosen uniformly, go to other items; the lead item of
    rank ``r`` takes the ``r``-th free position.
    """
    if r >= k - m:
        return 0.0
    before = j - r  # explored positions needed in front of j
    if before < 0 or before > m:
        return 0.0
    return math.comb(j, before) * math.comb(k - 1 - j, m - before) / math.comb(k, m)


def slate_frequencies(slates: Sequence[Slate]) -> pd.Series:
    """Share of slates that showed each ``(item_id, position)``: the empirical propensities.

    Examples
    --------
    >>> s = Slate("r", "u", ("a", "b"), (1.0, 0.5), (1.0, 1.0), (False, False), "p", {}, 0.0, "exact")
    >>> slate_frequencies([s, s]).to_dict()
    {('a', 0): 1.0, ('b', 1): 1.0}
    """
    pairs = [(i, p) for s in slates for p, i in enumerate(s.item_ids)]
    counts = pd.Series(pairs, dtype=object).value_counts(sort=False)
    counts.index = pd.MultiIndex.from_tuples(counts.index, names=["item_id", "position"])
    return (counts / len(slates)).sort_index()


@functools.cache
def _param_names(cls: type[Policy]) -> tuple[str, ...]:
    """Keyword-only ``__init__`` parameters of a policy class and its bases.

    Read once per class: every served slate logs the parameters.
    """
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" in vars(klass) and issubclass(klass, Policy):
            params = inspect.signature(klass.__init__).parameters.values()
            names += [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in names]
    return tuple(names)


__all__ = [
    "EXACT",
    "Policy",
    "Slate",
    "SlateDistribution",
    "check_unit",
    "inclusion_probabilities",
    "robust_z",
    "slate_frequencies",
]
