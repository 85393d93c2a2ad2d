"""Long-run exploration on simulated users built from real data.

Offline metrics score one list against what a user happened to do next; they cannot say
what a policy would have found had it shown something else. A simulation can, once each
user's preference over *every* item is known. Here it comes from the data:

- **Truth.** A recommender fitted on every event of every user (EASE by default) scores
  the whole catalogue for each user; :class:`ClickModel` turns those scores into click
  probabilities. A user's **true interests** are the fine interests of the taxonomy that
  hold a meaningful share of the click probability of their best items.
- **Starting view.** The policy under test knows only the first part of each user's
  history (``start_fraction`` of their events in time order): its ranker, the item text
  and the interest taxonomy are all fitted on that view, so nothing it starts from has
  seen the rest.
- **Play.** Each round one user, drawn at random from the simulated users, gets a slate of
  ``k`` items at a given ``explore``; clicks are drawn from the true probabilities and the
  clicked items go back to the policy online (:meth:`~interestlens.explore.Policy.update`).
  Items in the starting view, and items already shown to that user, are never shown to
  them again.

Every run of one seed sees the same users in the same order and the same uniform draws
(common random numbers), so the differences between policies are not luck of the draw.

References
----------
Eugene Ie, Chih-wei Hsu, Martin Mladenov, et al. 2019. RecSim: A Configurable Simulation
Platform for Recommender Systems. arXiv:1909.04847.

Zihan Wang, et al. 2024. LLMs for User Interest Exploration in Large-scale Recommendation
Systems. RecSys '24.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit, logit, ndtri
from scipy.stats import rankdata

from interestlens.data import Dataset
from interestlens.explore import POLICIES, Policy, build_policy
from interestlens.interests.taxonomy import InterestTaxonomy, label_terms
from interestlens.models import ALS, EASE, Recommender, top_k
from interestlens.text import Encoder, compose_item_text

#: Names of the two reference runs of every seed.
ORACLE, EXPLOIT = "oracle", "exploit"


@dataclass(frozen=True)
class ClickModel:
    r"""How a user's true preference scores become click probabilities.

    Scores are first standardised by rank within the user: the item of rank ``r`` (1 the
    lowest of ``n``, ties averaged) gets Blom's normal score
    :math:`z = \Phi^{-1}((r - 3/8) / (n + 1/4))`. Every user's scores then share the
    standard normal shape, whatever the model's scale and however long its tail (EASE's
    raw scores are heavily right-skewed). The click probability of an item shown at
    position ``j`` (0 first) is

    .. math:: p = \sigma(\operatorname{logit}(b) + s z) \cdot (j + 1)^{-\eta}

    with ``b = base_rate``, ``s = slope`` and ``eta = position_bias``.

    Parameters
    ----------
    base_rate
        Click probability of the user's median item (``z = 0``).
    slope
        Log-odds per standard deviation of preference. With the defaults, an item in the
        user's best 1% (``z = 2.33``) is clicked 25% of the time, and the best ten of
        10,000 items about 60%: clicks are likely on what the user likes most and rare
        elsewhere, as on a real service.
    position_bias
        Exponent ``eta`` of the examination probability; 0 (the default) means every
        position is examined. With a position bias the oracle's slate is still the best
        slate of each round, but no longer necessarily the best over a whole run.

    Examples
    --------
    >>> cm = ClickModel()
    >>> cm.probabilities(np.array([[0.0, 1.0, 2.0]])).astype(float).round(4).tolist()
    [[0.0027, 0.01, 0.0359]]
    >>> ClickModel(position_bias=1.0).examination(3).round(3).tolist()
    [1.0, 0.5, 0.333]
    """

    base_rate: float = 0.01
    slope: float = 1.5
    position_bias: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.base_rate < 1.0:
            raise ValueError(f"base_rate must be in (0, 1), got {self.base_rate!r}")
        if not self.slope > 0:
            raise ValueError(f"slope must be positive, got {self.slope!r}")
        if not self.position_bias >= 0:
            raise ValueError(f"position_bias must be >= 0, got {self.position_bias!r}")

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        """Click probabilities at an examined position: one row of scores per user in, float32 out."""
        s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
        n = s.shape[1]
        ranks = rankdata(np.nan_to_num(s, nan=-np.inf), method="average", axis=1)
        z = ndtri((ranks - 0.375) / (n + 0.25))
        return expit(logit(self.base_rate) + self.slope * z).astype(np.float32)

    def examination(self, k: int) -> np.ndarray:
        """Probability that each of ``k`` positions is looked at."""
        return (np.arange(1, k + 1, dtype=np.float64)) ** -self.position_bias


def starting_view(dataset: Dataset, fraction: float) -> Dataset:
    """Each user's first ``fraction`` of item events, in time order (at least one).

    Events without an item (searches) are kept when they come before the user's first
    left-out item event. The items table is the whole catalogue, so models fitted on the
    view know every item (and score the ones nobody engaged with in the view).

    Examples
    --------
    >>> from interestlens.data import Event
    >>> ds = Dataset.from_records([Event("u", f"i{n}", "click") for n in range(4)])
    >>> starting_view(ds, 0.5).events["item_id"].tolist()
    ['i0', 'i1']
    >>> starting_view(ds, 0.5).n_items
    4
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"start_fraction must be in (0, 1], got {fraction!r}")
    ev = dataset.sorted_events()
    has_item = ev["item_id"].notna().to_numpy()
    user = dataset.user_index(ev["user_id"])
    new_user = np.r_[True, user[1:] != user[:-1]]
    group = np.cumsum(new_user) - 1
    cum_items = np.cumsum(has_item)
    start = np.flatnonzero(new_user)
    # item events of the user strictly before each row, and the user's total
    before = cum_items - has_item - (cum_items - has_item)[start][group]
    total = np.bincount(group, weights=has_item).astype(np.int64)
    keep_n = np.maximum(1, np.floor(fraction * total + 0.5).astype(np.int64))
    keep = before < keep_n[group]
    kept = ev[keep].sort_index()  # back to arrival order
    return Dataset(
        kept.reset_index(drop=True),
        dataset.catalogue(),
        dataset.users,
        name=f"{dataset.name}/start" if dataset.name else "start",
    )


def _default_encoder() -> Encoder:
    return Encoder(
        cache_dir=os.environ.get("INTERESTLENS_CACHE_DIR") or Path(".interestlens") / "cache"
    )


class UserSimulator:
    """Simulated users with known preferences and interests, built from a real dataset.

    Parameters
    ----------
    truth
        Recommender fitted on *all* events; its scores are the users' true preferences
        (default :class:`~interestlens.models.EASE` with ``l2=500``, the strongest
        classical model on MovieLens, see ANCHORS.md).
    click_model
        How scores become click probabilities (:class:`ClickModel`).
    start_fraction
        Share of each user's item events, earliest first, that the policy under test
        starts from; the rest of their history is theirs to find.
    interest_top, interest_share
        A user's **true interests** are the fine interests holding at least
        ``interest_share`` of the click probability of the user's ``interest_top`` most
        preferred items (each item counting for its closest interest). With the defaults
        an interest needs about five of a user's best hundred items: on ml-latest-small
        users have 4 to 7 (10th to 90th percentile) of 99 fine interests.
    taxonomy
        Configured :class:`~interestlens.interests.InterestTaxonomy`, fitted here on the
        starting view (default: the engine's defaults).
    text_fields
        Item fields composed into the text that is embedded.
    random_state
        Seed of the taxonomy's clustering.

    Attributes
    ----------
    start_
        The starting view (:func:`starting_view`): what policies are fitted on.
    user_ids_, item_ids_
        Simulated users (every user with an item event) and the catalogue.
    click_prob_
        True click probabilities at an examined position, ``(users, items)`` float32.
    start_items_
        Items of each user's starting view, a ``(users, items)`` boolean CSR matrix.
    item_vectors_
        Language-model embeddings of the item text (text and tags of the starting view).
    taxonomy_
        The interest taxonomy of the starting view.
    item_interest_
        Column of each item's closest fine interest in ``taxonomy_.fine()``.
    true_interests_, known_interests_
        ``(users, fine interests)`` booleans: the true interests, and the interests of
        the items in the starting view.

    Notes
    -----
    Limits: preferences are fixed for the whole run (no drift, no fatigue, no boredom),
    and a user who skips a slate is not lost. The truth model sees the users' own later
    items, so it knows them better than any policy can; and where the policy's ranker is
    the same kind of model as the truth, exploitation has the advantage of a well-matched
    model, which makes the comparison harder for exploring policies, not easier.

    Examples
    --------
    >>> from interestlens.data import Event
    >>> pairs = [(u, f"{g}{i}") for u in range(8) for g in "ab"[u % 2] for i in range(4)]
    >>> ds = Dataset.from_records([Event(f"u{u}", i, "click") for u, i in pairs])
    >>> vecs = np.array([[1.0, 0.0] if i.startswith("a") else [0.0, 1.0] for i in ds.item_ids])
    >>> sim = UserSimulator(EASE(l2=1.0), start_fraction=0.5, interest_top=2,
    ...                     taxonomy=InterestTaxonomy(n_fine=2, n_broad=1))
    >>> sim = sim.fit(ds, item_vectors=vecs)
    >>> sim.click_prob_.shape, int(sim.true_interests_.sum(axis=1).max())
    ((8, 8), 1)
    """

    def __init__(
        self,
        truth: Recommender | None = None,
        *,
        click_model: ClickModel | None = None,
        start_fraction: float = 0.3,
        interest_top: int = 100,
        interest_share: float = 0.05,
        taxonomy: InterestTaxonomy | None = None,
        text_fields: tuple[str, ...] = ("title", "categories", "text", "tags"),
        random_state: int = 0,
    ) -> None:
        self.truth = truth
        self.click_model = click_model
        self.start_fraction = start_fraction
        self.interest_top = interest_top
        self.interest_share = interest_share
        self.taxonomy = taxonomy
        self.text_fields = text_fields
        self.random_state = random_state

    def fit(
        self,
        dataset: Dataset,
        *,
        encoder: Encoder | None = None,
        item_vectors: np.ndarray | None = None,
    ) -> UserSimulator:
        """Build the truth, the starting view and the interests from ``dataset``.

        Parameters
        ----------
        dataset
            Events of real users (ratings, clicks, views...), with item text.
        encoder
            Encoder of the item text (default: the bundled model, caching under
            ``$INTERESTLENS_CACHE_DIR``).
        item_vectors
            Item embeddings in ``dataset.item_ids`` order, instead of encoding the text.
        """
        if not 0.0 < self.interest_share <= 1.0:
            raise ValueError(f"interest_share must be in (0, 1], got {self.interest_share!r}")
        if self.interest_top < 1:
            raise ValueError(f"interest_top must be at least 1, got {self.interest_top!r}")
        click_model = self.click_model or ClickModel()
        self.dataset_ = dataset
        self.start_ = starting_view(dataset, self.start_fraction)
        self.item_ids_ = dataset.item_ids
        if not self.start_.item_ids.equals(self.item_ids_):
            raise ValueError("the starting view does not keep the dataset's item order")
        with_items = dataset.events.loc[dataset.events["item_id"].notna(), "user_id"]
        self.user_ids_ = dataset.user_ids[dataset.user_ids.isin(with_items.unique())]

        truth = self.truth if self.truth is not None else EASE(l2=500.0)
        truth.fit(dataset)
        self.truth_ = truth
        self.click_prob_ = click_model.probabilities(truth.score_all(list(self.user_ids_)))
        self.click_model_ = click_model

        start = self.start_.interactions(user_ids=self.user_ids_, item_ids=self.item_ids_).matrix
        self.start_items_ = sp.csr_matrix(start != 0, dtype=np.bool_)

        catalogue = self.start_.catalogue()
        if item_vectors is None:
            text = compose_item_text(catalogue, self.start_.events, fields=self.text_fields)
            item_vectors = (encoder or _default_encoder()).encode(text.tolist())
        self.item_vectors_ = np.asarray(item_vectors, dtype=np.float32)
        if len(self.item_vectors_) != len(self.item_ids_):
            raise ValueError(
                f"{len(self.item_vectors_)} item vectors for {len(self.item_ids_)} items"
            )
        taxonomy = self.taxonomy or InterestTaxonomy(random_state=self.random_state)
        item_user = self.start_.interactions(
            user_ids=self.start_.user_ids, item_ids=self.item_ids_
        ).matrix.T.tocsr()
        self.taxonomy_ = taxonomy.fit(
            list(self.item_ids_),
            self.item_vectors_,
            item_user=item_user,
            terms=label_terms(catalogue, self.start_.events),
            titles=catalogue["title"].tolist(),
        )
        self.item_interest_ = np.asarray(self.taxonomy_.fine_of_item_, dtype=np.int64)
        self.n_interests_ = len(self.taxonomy_.fine())
        self.true_interests_ = self._true_interests()
        one_hot = sp.csr_matrix(
            (
                np.ones(len(self.item_ids_)),
                (np.arange(len(self.item_ids_)), self.item_interest_),
            ),
            shape=(len(self.item_ids_), self.n_interests_),
        )
        self.known_interests_ = (
            np.asarray((self.start_items_.astype(np.float64) @ one_hot).todense()) > 0
        )
        return self

    def _true_interests(self) -> np.ndarray:
        p = self.click_prob_
        top = top_k(p, self.interest_top)
        w = np.take_along_axis(p, top, axis=1).astype(np.float64)
        rows = np.repeat(np.arange(p.shape[0]), top.shape[1])
        mass = sp.csr_matrix(
            (w.ravel(), (rows, self.item_interest_[top].ravel())),
            shape=(p.shape[0], self.n_interests_),
        ).toarray()
        return mass >= self.interest_share * w.sum(axis=1, keepdims=True)

    def _check_fitted(self) -> None:
        if not hasattr(self, "click_prob_"):
            raise RuntimeError("UserSimulator is not fitted: call fit(dataset) first")

    def oracle(self, row: int, eligible: np.ndarray, k: int) -> np.ndarray:
        """The true best ``k`` eligible items of the user at ``row``, best first."""
        p = np.where(eligible, self.click_prob_[row], -np.inf)
        cols = top_k(p[None, :], k)[0]
        return cols[np.isfinite(p[cols])]


#: Builds an unfitted policy around the fitted ranker, with the run's seed.
PolicyFactory = Callable[[Recommender, int], Policy]
#: One round's choice: (user's row, eligible items, ranker scores) -> (columns, explored flags, learn).
_Choose = Callable[
    [int, np.ndarray, np.ndarray],
    tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], None] | None],
]


@dataclass
class _Tally:
    """Running totals of one run."""

    reward: float = 0.0
    expected: float = 0.0
    explored: int = 0
    shown: int = 0


class _RankerView:
    """The ranker's scores of each simulated user during one run.

    ``scores`` are every user's scores from the fit. Given the ``ranker``, each click is
    folded into the user's scores at once (:meth:`~interestlens.models.Recommender.score_history`
    over their starting view and their clicks so far), as :meth:`interestlens.Engine.observe`
    does for a served user; without it the scores stay those of the fit.
    """

    def __init__(
        self, sim: UserSimulator, scores: np.ndarray, ranker: Recommender | None = None
    ) -> None:
        self.sim, self.fitted, self.ranker = sim, scores, ranker
        if ranker is not None:
            self.start = dict(tuple(sim.start_.events.groupby("user_id", sort=False)))
            self.now = sim.start_.events["timestamp"].max()
            self.time_dtype = sim.start_.events["timestamp"].dtype
        self.reset()

    def reset(self) -> None:
        self.current: dict[int, np.ndarray] = {}
        self.clicks: dict[int, list[pd.DataFrame]] = {}

    def scores(self, row: int) -> np.ndarray:
        return self.current.get(row, self.fitted[row])

    def learn(self, row: int, cols: np.ndarray, t: int) -> None:
        if self.ranker is None:
            return
        user = str(self.sim.user_ids_[row])
        at = self.now + pd.Timedelta(seconds=t + 1) if pd.notna(self.now) else pd.NaT
        clicks = pd.DataFrame(
            {
                "user_id": user,
                "item_id": self.sim.item_ids_[cols].to_numpy(dtype=object),
                "type": "click",
                "value": 1.0,
                "timestamp": pd.Series([at] * len(cols), dtype=self.time_dtype),
            }
        )
        self.clicks.setdefault(row, []).append(clicks)
        own = self.start.get(user)
        history = pd.concat(([own] if own is not None else []) + self.clicks[row])
        self.current[row] = self.ranker.score_history(history)


def _play(
    sim: UserSimulator,
    ranker: _RankerView,
    visits: np.ndarray,
    uniforms: np.ndarray,
    choose: _Choose,
) -> dict[str, Any]:
    """Play one run: ``visits[t]`` is the user row served at round ``t``."""
    ranker.reset()
    k = uniforms.shape[1]
    exam = sim.click_model_.examination(k)
    P = sim.click_prob_
    eligible: dict[int, np.ndarray] = {}
    found = np.zeros((P.shape[0], sim.n_interests_), dtype=bool)
    shown_any = np.zeros(P.shape[1], dtype=bool)
    tally = _Tally()
    started = time.perf_counter()
    for t, row in enumerate(visits):
        row = int(row)
        if row not in eligible:
            mask = np.ones(P.shape[1], dtype=bool)
            mask[
                sim.start_items_.indices[
                    sim.start_items_.indptr[row] : sim.start_items_.indptr[row + 1]
                ]
            ] = False
            eligible[row] = mask
        cols, explored, learn = choose(row, eligible[row], ranker.scores(row))
        n = len(cols)
        p = P[row, cols] * exam[:n]
        clicked = uniforms[t, :n] < p
        eligible[row][cols] = False
        shown_any[cols] = True
        found[row, sim.item_interest_[cols[clicked]]] = True
        if learn is not None:
            learn(cols[clicked])
        if clicked.any():
            ranker.learn(row, cols[clicked], t)
        tally.reward += float(clicked.sum())
        tally.expected += float(p.sum())
        tally.explored += int(np.sum(explored))
        tally.shown += n
    served = np.unique(visits)
    true = sim.true_interests_[served]
    new = true & ~sim.known_interests_[served]
    hit = found[served]
    return {
        "reward": tally.reward,
        "expected_reward": tally.expected,
        "interests_found": int((hit & true).sum()),
        "new_interests_found": int((hit & new).sum()),
        "true_interests": int(true.sum()),
        "new_true_interests": int(new.sum()),
        "coverage": float(shown_any.mean()),
        "explored_share": tally.explored / max(tally.shown, 1),
        "seconds": time.perf_counter() - started,
    }


def _oracle_choice(sim: UserSimulator, k: int) -> _Choose:
    def choose(row: int, eligible: np.ndarray, scores: np.ndarray) -> Any:
        cols = sim.oracle(row, eligible, k)
        return cols, np.zeros(len(cols), dtype=bool), None

    return choose


def _greedy_choice(k: int) -> _Choose:
    def choose(row: int, eligible: np.ndarray, scores: np.ndarray) -> Any:
        s = np.where(eligible, scores, -np.inf)
        cols = top_k(s[None, :], k)[0]
        cols = cols[np.isfinite(s[cols])]
        return cols, np.zeros(len(cols), dtype=bool), None

    return choose


def _policy_choice(
    sim: UserSimulator, policy: Policy, k: int, explore: float, now: pd.Timestamp
) -> _Choose:
    ids = sim.item_ids_

    def choose(row: int, eligible: np.ndarray, scores: np.ndarray) -> Any:
        s = np.where(eligible, scores, -np.inf)
        slate = policy.recommend(str(sim.user_ids_[row]), k, explore=explore, scores=s, now=now)
        cols = ids.get_indexer(pd.Index(slate.item_ids, dtype=object))
        if (cols < 0).any() or not eligible[cols].all():
            raise RuntimeError(f"{type(policy).__name__} served an item that was not eligible")

        def learn(clicked: np.ndarray) -> None:
            for c in clicked:
                policy.update(slate.request_id, str(ids[c]), 1.0)

        return cols, np.asarray(slate.explored, dtype=bool), learn

    return choose


def named_policies(names: Sequence[str]) -> dict[str, PolicyFactory]:
    """Factories of registered policies by name, each seeded with the run's seed.

    Examples
    --------
    >>> from interestlens.models import Popularity
    >>> named_policies(["softmax"])["softmax"](Popularity(), 3).random_state
    3
    >>> named_policies(["greedy"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown policy 'greedy'; known: epsilon_greedy, softmax, ...
    """
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ValueError(f"unknown policy {unknown[0]!r}; known: {', '.join(POLICIES)}")

    def factory(name: str) -> PolicyFactory:
        return lambda ranker, seed: build_policy(name, ranker, random_state=seed)

    return {n: factory(n) for n in names}


def explore_levels(explore: Sequence[float]) -> list[float]:
    """The exploration levels as floats, or ``ValueError`` unless each is in [0, 1].

    Examples
    --------
    >>> explore_levels([0, "0.3"])
    [0.0, 0.3]
    """
    levels = [float(e) for e in explore]
    if not levels or any(not 0.0 <= e <= 1.0 for e in levels):
        raise ValueError(f"explore levels must be in [0, 1], got {list(explore)}")
    return levels


def _ratio(a: pd.Series, b: pd.Series) -> pd.Series:
    return a / b.where(b != 0)


@dataclass
class SimulationResult:
    """Every run of a simulation, with summaries and the reward–discovery frontier.

    Attributes
    ----------
    runs
        One row per (policy, explore, seed): ``reward`` (clicks), ``expected_reward``
        (sum of the shown items' click probabilities), ``regret`` (the oracle's expected
        reward minus this run's), ``interests_found`` and ``new_interests_found`` (see
        :func:`simulate`), ``true_interests`` and ``new_true_interests`` (how many there
        were to find), ``coverage`` (share of the catalogue shown at least once),
        ``explored_share`` (share of shown items that exploration put there) and
        ``seconds``. The reference runs are named ``"oracle"`` and ``"exploit"``.
    settings
        Rounds, slate size, users, seeds, explore levels and the click model.
    """

    runs: pd.DataFrame
    settings: dict[str, Any]

    def paired(self) -> pd.DataFrame:
        """``runs`` with each run's ratios to pure exploitation of the same seed.

        ``reward_ratio`` compares expected rewards (the click probabilities summed, which
        are not subject to the luck of each click), ``discovery_ratio`` interests found,
        ``new_discovery_ratio`` new interests found.
        """
        base = self.runs[self.runs["policy"] == EXPLOIT].set_index("seed")
        r = self.runs.copy()
        ref = base.loc[r["seed"]]
        r["reward_ratio"] = _ratio(r["expected_reward"], ref["expected_reward"].set_axis(r.index))
        r["discovery_ratio"] = _ratio(
            r["interests_found"], ref["interests_found"].set_axis(r.index)
        )
        r["new_discovery_ratio"] = _ratio(
            r["new_interests_found"], ref["new_interests_found"].set_axis(r.index)
        )
        return r

    def summary(self) -> pd.DataFrame:
        """Median over seeds of every measure and ratio per (policy, explore), with the spread.

        Columns ``*_q25`` and ``*_q75`` hold the quartiles over seeds of the ratios.
        """
        r = self.paired()
        measures = [
            "reward",
            "expected_reward",
            "regret",
            "interests_found",
            "new_interests_found",
            "true_interests",
            "coverage",
            "explored_share",
            "reward_ratio",
            "discovery_ratio",
            "new_discovery_ratio",
        ]
        g = r.groupby(["policy", "explore"], sort=False)
        out = g[measures].median()
        for m in ("reward_ratio", "discovery_ratio", "new_discovery_ratio"):
            out[f"{m}_q25"] = g[m].quantile(0.25)
            out[f"{m}_q75"] = g[m].quantile(0.75)
        out["seeds"] = g.size()
        return out

    def frontier(self, path: str | Path, *, targets: tuple[float, float] | None = None) -> Path:
        """Draw the reward–discovery frontier as a PNG and return its path.

        One line per policy through its explore levels (medians over seeds): interests
        found against expected reward, both relative to pure exploitation; the oracle is
        marked for reference. ``targets = (reward share, discovery ratio)`` adds guide
        lines, e.g. ``(0.95, 1.5)``.
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        s = self.summary().reset_index()
        fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
        lines = s[~s["policy"].isin([ORACLE, EXPLOIT])].groupby("policy", sort=False)
        colours = plt.get_cmap("tab10" if lines.ngroups <= 10 else "tab20")
        for n, (name, part) in enumerate(lines):
            part = part.sort_values("explore")
            ax.plot(
                part["discovery_ratio"],
                part["reward_ratio"],
                marker="os^Dv"[n % 5],
                color=colours(n),
                label=name,
            )
            for _, row in part.iterrows():
                ax.annotate(
                    f"{row['explore']:g}",
                    (row["discovery_ratio"], row["reward_ratio"]),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=7,
                )
        ax.scatter(
            [1.0], [1.0], marker="*", s=200, color="black", zorder=5, label="pure exploitation"
        )
        oracle = s[s["policy"] == ORACLE]
        if len(oracle):
            ax.scatter(
                oracle["discovery_ratio"],
                oracle["reward_ratio"],
                marker="D",
                s=60,
                color="black",
                label="oracle (true best slate)",
            )
        if targets is not None:
            ax.axhline(targets[0], color="grey", linestyle=":", linewidth=1)
            ax.axvline(targets[1], color="grey", linestyle=":", linewidth=1)
        st = self.settings
        ax.set_xlabel("true interests found, relative to pure exploitation")
        ax.set_ylabel("expected cumulative reward, relative to pure exploitation")
        ax.set_title(
            f"{st['rounds']} rounds of {st['k']} items, {st['users']} users, "
            f"median of {len(st['seeds'])} seeds (labels: explore)",
            fontsize=10,
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        plt.close(fig)
        return path

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: settings, every run, and the summary rows."""
        s = self.summary().reset_index()
        return {
            "settings": self.settings,
            "runs": self.runs.to_dict(orient="records"),
            "summary": s.replace({np.nan: None}).to_dict(orient="records"),
        }


def simulate(
    simulator: UserSimulator,
    policies: Sequence[str] | Mapping[str, PolicyFactory],
    *,
    ranker: Recommender | None = None,
    rounds: int = 200,
    k: int = 10,
    explore: Sequence[float] = (0.0, 0.1, 0.3),
    seeds: Sequence[int] = (0, 1, 2),
    n_users: int | None = 100,
    online: bool = True,
    progress: Callable[[str], None] | None = None,
) -> SimulationResult:
    """Play every policy at every explore level for every seed, against the same users.

    Parameters
    ----------
    simulator
        A fitted :class:`UserSimulator`.
    policies
        Names of :data:`interestlens.explore.POLICIES` (each built with its defaults), or
        name -> factory building an unfitted policy around the ranker with a seed. Every
        policy is fitted on the starting view with the simulator's item vectors and
        taxonomy.
    ranker
        What the policies (and pure exploitation) rank with, fitted here on the starting
        view (default :class:`~interestlens.models.ALS`: fast, and not the truth's kind
        of model, as a production ranker is never the users' true taste).
    rounds
        Slates per run; each goes to one user drawn uniformly from the seed's users.
    k
        Slate size.
    explore
        Exploration levels in [0, 1] at which every policy plays.
    seeds
        One run of every policy per seed; a seed fixes the users, their order, the click
        draws and the policies' randomness.
    n_users
        Users drawn (without replacement) per seed from the simulated users; ``None``
        takes all of them.
    online
        Whether the ranker learns from the clicks as they come: each click is folded
        into that user's scores (:meth:`~interestlens.models.Recommender.score_history`),
        as :meth:`interestlens.Engine.observe` does in service. Pure exploitation then
        follows its own clicks, the loop that narrows what a user is shown. ``False``
        keeps every user's scores from the fit for the whole run.
    progress
        Called with a short line after each run.

    Returns
    -------
    SimulationResult
        Two reference runs per seed — ``"oracle"`` (each round the true best ``k`` items
        still eligible) and ``"exploit"`` (the ranker's top ``k``) — and one run per
        policy and explore level.

    Notes
    -----
    A **true interest is found** when the user clicked at least one item whose closest
    interest it is; no item of the starting view is ever shown, so every such click is
    on an item the policy did not start from. ``interests_found`` counts found true
    interests over the users served; ``new_interests_found`` counts only those that no
    item of the user's starting view belonged to, i.e. interests the system could not
    have known. **Regret** is the oracle run's expected reward minus the run's own: with
    no position bias the oracle shows each user their best remaining items, so no
    policy's expected reward exceeds it.
    """
    simulator._check_fitted()
    factories = named_policies(policies) if not isinstance(policies, Mapping) else policies
    levels = explore_levels(explore)
    if rounds < 1 or k < 1:
        raise ValueError(f"rounds and k must be positive, got rounds={rounds}, k={k}")
    if not seeds:
        raise ValueError("give at least one seed")
    ranker = ranker if ranker is not None else ALS()
    ranker.fit(simulator.start_)
    if not ranker.item_ids_.equals(simulator.item_ids_):
        raise ValueError("the ranker's items are not the simulator's catalogue")
    fitted = ranker.score_all(list(simulator.user_ids_))
    view = _RankerView(simulator, fitted, ranker if online else None)
    now = simulator.start_.events["timestamp"].max()
    now = pd.Timestamp.now(tz="UTC") if pd.isna(now) else pd.Timestamp(now)
    n_all = len(simulator.user_ids_)
    m = n_all if n_users is None else min(int(n_users), n_all)
    if m < 1:
        raise ValueError(f"n_users must be at least 1, got {n_users}")

    rows: list[dict[str, Any]] = []

    def record(name: str, level: float, seed: int, result: dict[str, Any]) -> None:
        rows.append({"policy": name, "explore": level, "seed": seed, **result})
        if progress is not None:
            progress(
                f"seed {seed} {name} explore={level:g}: reward {result['reward']:.0f}, "
                f"interests {result['interests_found']} ({result['seconds']:.1f} s)"
            )

    for seed in seeds:
        rng = np.random.default_rng([int(seed), 0x5EED])
        users = np.sort(rng.choice(n_all, size=m, replace=False))
        visits = rng.choice(users, size=rounds)
        uniforms = rng.random((rounds, k))
        args = (simulator, view, visits, uniforms)
        record(ORACLE, 0.0, seed, _play(*args, _oracle_choice(simulator, k)))
        record(EXPLOIT, 0.0, seed, _play(*args, _greedy_choice(k)))
        for name, factory in factories.items():
            for level in levels:
                policy = factory(ranker, int(seed))
                policy.fit(
                    simulator.start_,
                    item_vectors=simulator.item_vectors_,
                    taxonomy=simulator.taxonomy_,
                )
                choice = _policy_choice(simulator, policy, k, level, now)
                record(name, level, seed, _play(*args, choice))

    runs = pd.DataFrame(rows)
    oracle = runs[runs["policy"] == ORACLE].set_index("seed")["expected_reward"]
    runs["regret"] = oracle.loc[runs["seed"]].to_numpy() - runs["expected_reward"]
    settings = {
        "rounds": rounds,
        "k": k,
        "users": m,
        "seeds": [int(s) for s in seeds],
        "explore": levels,
        "ranker": repr(ranker),
        "online": online,
        "truth": repr(simulator.truth_),
        "click_model": {
            "base_rate": simulator.click_model_.base_rate,
            "slope": simulator.click_model_.slope,
            "position_bias": simulator.click_model_.position_bias,
        },
        "start_fraction": simulator.start_fraction,
        "interest_top": simulator.interest_top,
        "interest_share": simulator.interest_share,
        "fine_interests": simulator.n_interests_,
    }
    return SimulationResult(runs, settings)
