"""Interest exploration: part of the slate goes to interests the user has not engaged with yet.

Which interests? The ones users with the same interests moved on to next. Following Wang
et al., "Large Language Models for User Interests Exploration in Recommender Systems"
(RecSys 2024), a user's history becomes the sequence of interest clusters in the order the
user first reached each one, and a transition table counts, over all users, how often
cluster ``a`` was followed by the new cluster ``b``. At request time the table, read from
the user's most recent interests, proposes novel interests; the ranker picks the best item
of each. Optionally a large language model behind an OpenAI-compatible chat endpoint
proposes transitions too (constrained to the taxonomy's labels), once, offline, into the
same table: no request waits on a language model.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from interestlens.data import Dataset
from interestlens.explore.base import (
    EXACT,
    Policy,
    _Served,
    check_non_negative,
    check_positive,
)
from interestlens.models import Recommender

if TYPE_CHECKING:
    from interestlens.interests import InterestTaxonomy

_NUMBERED = re.compile(r"^\s*(?:[-*•]\s*)?(\d+)\s*[.):\-]?\s*(.*)$")


def _norm(label: str) -> str:
    return " ".join(label.lower().replace("·", " ").split())


def llm_transitions(
    taxonomy: InterestTaxonomy,
    url: str,
    *,
    model: str | None = None,
    api_key: str | None = None,
    proposals: int = 3,
    timeout: float = 60.0,
) -> np.ndarray:
    """Ask a language model, for each fine interest, which interests its fans explore next.

    For every fine interest one chat completion lists the taxonomy's fine interests,
    numbered, and asks for up to ``proposals`` others a fan would enjoy next, one per line,
    by number or label. Answers that name no interest of the list (or the interest itself)
    are ignored, so proposals are always taxonomy interests.

    Parameters
    ----------
    taxonomy
        A fitted :class:`~interestlens.interests.InterestTaxonomy`.
    url
        Base URL of an OpenAI-compatible API (``http://host:port/v1``) or its full
        ``.../chat/completions`` URL.
    model
        Sent as ``"model"`` (left out when ``None``).
    api_key
        Sent as a bearer token when given.
    proposals
        Interests asked for per interest.
    timeout
        Seconds allowed per request.

    Returns
    -------
    numpy.ndarray
        ``(n_fine, n_fine)`` counts: row ``a``, column ``b`` is 1 where the model proposed
        ``b`` after ``a`` (columns in ``taxonomy.fine_ids_`` order).

    Raises
    ------
    RuntimeError
        The endpoint failed or answered something that is not a chat completion; the
        message names the URL.
    """
    import httpx  # only this offline step talks to an endpoint

    url = url.rstrip("/")
    if not url.endswith("/chat/completions"):
        url = f"{url}/chat/completions"
    fine = taxonomy.fine()
    labels = [i.label for i in fine]
    by_label = {_norm(lab): j for j, lab in enumerate(labels)}
    menu = "\n".join(f"{j + 1}. {lab}" for j, lab in enumerate(labels))
    votes = np.zeros((len(fine), len(fine)))
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(timeout=timeout, headers=headers) as client:
        for a, label in enumerate(labels):
            prompt = (
                f"These are the interests of a catalogue:\n{menu}\n\n"
                f"A user enjoys interest {a + 1} ({label}). Which {proposals} other interests "
                "of the list would they most likely enjoy exploring next? Answer with one "
                "interest per line, as its number and label, nothing else."
            )
            payload: dict[str, Any] = {
                "messages": [{"role": "user", "content": prompt}],
                "temperature": 0,
            }
            if model is not None:
                payload["model"] = model
            try:
                response = client.post(url, json=payload)
                response.raise_for_status()
                content = response.json()["choices"][0]["message"]["content"]
            except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
                raise RuntimeError(f"chat endpoint {url} failed: {exc}") from exc
            named: list[int] = []
            for line in str(content).splitlines():
                match = _NUMBERED.match(line)
                b = int(match.group(1)) - 1 if match else -1
                if not 0 <= b < len(labels):
                    b = by_label.get(_norm(match.group(2) if match else line), -1)
                if b >= 0 and b != a and b not in named:
                    named.append(b)
            votes[a, named[:proposals]] = 1.0
    return votes


class InterestPolicy(Policy):
    """Base of the policies that know each item's interest and each user's interests.

    Fitting maps every item to its fine interest of the taxonomy (given, or fitted on the
    item vectors) and reads, for every user, the interests in the order they first
    reached each one. A positive reward on an item of an interest new to the user makes
    it one of theirs. :meth:`~interestlens.explore.Policy.forget_user` drops the user's
    interests; what their reaches added to a table shared by all users stays until the
    next fit.
    """

    def _fit(self, dataset: Dataset, item_vectors: np.ndarray | None, taxonomy: Any) -> None:
        # imported here: serving a fitted policy needs none of interestlens.interests
        from interestlens.interests import InterestTaxonomy

        if taxonomy is None:
            taxonomy = InterestTaxonomy(random_state=self.random_state).fit(
                list(self.item_ids_),
                self._item_vectors(dataset, item_vectors),
                item_user=self.ranker.seen_.T.tocsr().astype(np.float32),
            )
        if not isinstance(taxonomy, InterestTaxonomy) or not hasattr(taxonomy, "fine_ids_"):
            raise ValueError("taxonomy must be a fitted InterestTaxonomy")
        self.taxonomy_ = taxonomy
        rows = taxonomy.item_rows(list(self.item_ids_))
        self.clusters_ = np.where(rows >= 0, taxonomy.fine_of_item_[np.maximum(rows, 0)], -1)
        ev = dataset.sorted_events()
        ev = ev[ev["item_id"].notna()]
        cluster = self.clusters_[self.item_ids_.get_indexer(ev["item_id"])] if len(ev) else []
        firsts = (
            pd.DataFrame({"user_id": ev["user_id"].to_numpy(), "cluster": cluster})
            .query("cluster >= 0")
            .drop_duplicates(["user_id", "cluster"])
        )
        self.user_interests_: dict[str, list[int]] = {
            u: list(g) for u, g in firsts.groupby("user_id", sort=False)["cluster"]
        }
        self._fit_reached(
            firsts["user_id"].to_numpy(dtype=object), firsts["cluster"].to_numpy(dtype=np.int64)
        )

    def _fit_reached(self, users: np.ndarray, clusters: np.ndarray) -> None:
        """Learn from every user's first reach of each interest, in time order (rows grouped by user)."""
        return None

    def _reach(self, history: list[int], cluster: int) -> None:
        """Called before ``cluster`` joins a user's interests ``history`` through feedback."""
        return None

    def _forget(self, user_id: str) -> bool:
        return self.user_interests_.pop(user_id, None) is not None

    def _learn(self, served: _Served, position: int, old: float, new: float) -> None:
        cluster = int(self.clusters_[served.cols[position]])
        if cluster < 0 or not old <= 0 < new:
            return
        history = self.user_interests_.setdefault(served.user_id, [])
        if cluster in history:
            return
        self._reach(history, cluster)
        history.append(cluster)


class InterestExplorer(InterestPolicy):
    """Gives a share of the slate to interests the user has not engaged with yet.

    The share is ``explore``: ``explore * k`` positions (randomised rounding), placed
    uniformly at random in the slate, each showing the ranker's best eligible item of a
    novel interest; the exploitation items fill the other positions in order. Novel
    interests are drawn without replacement among the ``n_interests`` most likely next
    interests, with odds from the transition table read at the user's ``n_recent`` most
    recently reached interests (a user without history reads the distribution of users'
    first interests). Every propensity is exact.

    Feedback: a positive reward on an item whose interest was new to the user makes it one
    of theirs (so exploration moves on to others) and counts as a transition from their
    recent interests into it.

    Parameters
    ----------
    ranker
        A :class:`~interestlens.models.Recommender`.
    n_interests
        Novel interests that may be drawn (at most 12, for exact propensities).
    n_recent
        Recent interests of the user the table is read at.
    smoothing
        Weight of the first-interest distribution mixed into each row of the table.
    affinity
        How much the ranker's view of the user reweights the table (0: the table alone).
        The default was chosen on held-out seeds 10-14 of the simulation of
        ``benchmarks/explore.py`` (explore 0.2, values 1.5, 3, 6 and 12; the most new
        interests among values keeping 90% of pure exploitation's expected reward): 6 found
        1.32 times the new interests exploitation found at 95% of its reward, against 1.23
        times at 94% for 3, the earlier default (``benchmarks/results/explore_affinity.json``).
    llm_url, llm_model, llm_api_key, llm_weight
        An OpenAI-compatible chat endpoint whose proposals (:func:`llm_transitions`) join
        the table at fit time, each counting as ``llm_weight`` observed transitions.
    **kwargs
        Shared parameters of :class:`~interestlens.explore.Policy`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from interestlens.data import Dataset, Event
    >>> from interestlens.interests import InterestTaxonomy
    >>> from interestlens.models import Popularity
    >>> items = [f"i{i}" for i in range(12)]  # interests A (i0-i3), B (i4-i7), C (i8-i11)
    >>> tax = InterestTaxonomy(n_fine=3, n_broad=1).fit(items, np.repeat(np.eye(3), 4, axis=0))
    >>> day = lambda d: pd.Timestamp(2024, 1, d, tz="UTC")
    >>> events = [Event(f"u{u}", f"i{u}", "click", timestamp=day(1)) for u in range(4)]
    >>> events += [Event(f"u{u}", f"i{4 + u}", "click", timestamp=day(2)) for u in range(4)]
    >>> events += [Event("v", f"i{8 + u}", "click", timestamp=day(3)) for u in range(4)]
    >>> events += [Event("fan", "i0", "click", timestamp=day(4))]  # a new fan of A
    >>> policy = InterestExplorer(Popularity()).fit(Dataset.from_records(events), taxonomy=tax)
    >>> odds = policy.novel_interests("fan")   # A's fans moved on to B; C only starts histories
    >>> [min(tax.members(i), key=lambda s: int(s[1:])) for i in odds.index], odds.round(3).tolist()
    (['i4', 'i8'], [0.8, 0.033])
    >>> slate = policy.recommend("fan", k=4, explore=0.25)   # one position explores
    >>> [(i, round(p, 3)) for i, e, p in zip(slate.item_ids, slate.explored, slate.propensities) if e]
    [('i5', 0.24)]
    """

    name = "interest_explorer"

    def __init__(
        self,
        ranker: Recommender,
        *,
        n_interests: int = 8,
        n_recent: int = 5,
        smoothing: float = 1.0,
        affinity: float = 6.0,
        llm_url: str | None = None,
        llm_model: str | None = None,
        llm_api_key: str | None = None,
        llm_weight: float = 5.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(ranker, **kwargs)
        self.n_interests = n_interests
        self.n_recent = n_recent
        self.smoothing = smoothing
        self.affinity = affinity
        self.llm_url = llm_url
        self.llm_model = llm_model
        self.llm_api_key = llm_api_key
        self.llm_weight = llm_weight

    def _fit(self, dataset: Dataset, item_vectors: np.ndarray | None, taxonomy: Any) -> None:
        check_positive("n_interests", self.n_interests, integer=True)
        check_positive("n_recent", self.n_recent, integer=True)
        if self.n_interests > 12:
            raise ValueError(f"n_interests must be at most 12, got {self.n_interests}")
        check_non_negative("smoothing", self.smoothing)
        super()._fit(dataset, item_vectors, taxonomy)
        if self.llm_url:
            self.transitions_ += self.llm_weight * llm_transitions(
                self.taxonomy_, self.llm_url, model=self.llm_model, api_key=self.llm_api_key
            )

    def _fit_reached(self, users: np.ndarray, clusters: np.ndarray) -> None:
        n = len(self.taxonomy_.fine_ids_)
        same = users[1:] == users[:-1]
        self.transitions_ = np.zeros((n, n))
        np.add.at(self.transitions_, (clusters[:-1][same], clusters[1:][same]), 1.0)
        first = clusters[np.r_[True, ~same]] if len(clusters) else clusters
        self.starts_ = np.bincount(first, minlength=n).astype(np.float64)

    def novel_interests(self, user_id: str) -> pd.Series:
        """Odds of each interest the user has not reached yet being their next, highest first.

        Indexed by fine interest id; interests with no odds are left out.
        """
        self._check_fitted()
        odds = self._odds(str(user_id))
        order = np.argsort(-odds, kind="stable")
        order = order[odds[order] > 0]
        return pd.Series(odds[order], index=self.taxonomy_.fine_ids_[order], name="odds")

    def _odds(self, user_id: str) -> np.ndarray:
        total = self.starts_.sum()
        start = self.starts_ / total if total else np.full(len(self.starts_), 1 / len(self.starts_))
        history = self.user_interests_.get(user_id, [])
        recent = history[-self.n_recent :]
        if recent:
            rows = self.transitions_[recent] + self.smoothing * start
            odds = (rows / rows.sum(axis=1, keepdims=True)).mean(axis=0)
        else:
            odds = start.copy()
        odds[history] = 0.0
        return odds

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
        odds = self._odds(user_id)
        free = np.isfinite(scores) & (self.clusters_ >= 0)
        free[lead] = False
        cand = np.flatnonzero(free)
        cand = cand[np.argsort(-scores[cand], kind="stable")]
        clusters, first = np.unique(self.clusters_[cand], return_index=True)
        best = cand[first]  # the ranker's best free item of each interest
        keep = odds[clusters] > 0
        clusters, best = clusters[keep], best[keep]
        weight = odds[clusters]
        if self.affinity and len(best) > 1:
            fit = scores[best]
            z = (fit - fit.mean()) / (fit.std() or 1.0)
            weight = weight * np.exp(self.affinity * (z - z.max()))
        top = np.argsort(-weight, kind="stable")[: self.n_interests]
        if len(top) == 0:
            return lead, np.ones(k), EXACT
        cols, props = self._share_slate(lead, best[top], weight[top], explore)
        return cols, props, EXACT

    def _reach(self, history: list[int], cluster: int) -> None:
        recent = history[-self.n_recent :]
        if recent:
            self.transitions_[recent, cluster] += 1.0 / len(recent)
        else:
            self.starts_[cluster] += 1.0
