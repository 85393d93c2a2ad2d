"""`Engine`: the one facade that wires the layers together.

It fits the interest model on a dataset (item text → embeddings → interest taxonomy →
user profiles), answers questions about users and interests, takes new events online,
serves recommendations through an exploration policy (every slate logged with its
propensities, rewards fed back online), and saves and loads itself. Everything a fit
produces lives in one immutable state object that is swapped in whole, so a server can
keep answering from the old state while a refit runs.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from interestlens import __version__
from interestlens.data import Dataset, Event
from interestlens.engine.config import Config
from interestlens.explore import Policy, build_policy
from interestlens.interests.audience import TextMatcher, resolve_interests
from interestlens.interests.audience import audience as _audience
from interestlens.interests.profile import InterestProfile, InterestProfiler
from interestlens.interests.sentiment import SentimentAnalyzer
from interestlens.interests.taxonomy import Interest, InterestTaxonomy, label_terms
from interestlens.models import ContentLM, Recommender, build_model
from interestlens.store import EventStore, open_store
from interestlens.text import Encoder, compose_item_text

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover
    pass

log = logging.getLogger(__name__)
_FORMAT = 1


@dataclass(frozen=True)
class _State:
    """Everything one fit produced, swapped in whole by :meth:`Engine.fit`.

    Only the profiles, the observed events, the exploration policies and ``derived``
    (what is computed from the fit on first use: the items' label terms, the text
    matcher of :meth:`Engine.resolve`) change between fits: :meth:`Engine.observe` folds events into the profiles and keeps them per user
    (the recommender folds them in at the user's next request), and each policy (fitted
    on first use) learns from :meth:`Engine.feedback`, in place. A refit starts the
    policies afresh: what they learned was about the old ranker's candidates (the slate
    log keeps every slate and reward).
    """

    dataset: Dataset
    item_ids: pd.Index
    item_text: pd.Series
    item_vectors: np.ndarray
    taxonomy: InterestTaxonomy
    profiler: InterestProfiler
    recommender: Recommender | None = None
    content: ContentLM | None = None
    item_users: sp.csc_matrix | None = None
    observed: list[pd.DataFrame] = field(default_factory=list)
    observed_by_user: dict[str, list[pd.DataFrame]] = field(default_factory=dict)
    policies: dict[str, Policy] = field(default_factory=dict)
    derived: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def user_rows(self) -> dict[str, np.ndarray]:
        """Each user's rows in ``dataset.events`` (built on first use)."""
        return self.dataset.events.groupby("user_id", sort=False).indices


def _index_by_user(by_user: dict[str, list[pd.DataFrame]], frame: pd.DataFrame) -> None:
    """Add each user's rows of ``frame`` to their list in ``by_user``."""
    for user, mine in frame.groupby(frame["user_id"].astype(str), sort=False):
        by_user.setdefault(str(user), []).append(mine)


class NotFittedError(RuntimeError):
    """The engine was asked something before :meth:`Engine.fit`."""


@dataclass(frozen=True)
class Recommendation:
    """One recommended item.

    Attributes
    ----------
    item_id, score, rank
        The item, the ranker's score and its 1-based position. The score is NaN for an
        item exploration drew from beyond the ranker's top candidates (``explored`` is
        then true), where the ranker gives only an order (:attr:`Slate.scores
        <interestlens.explore.Slate>`); :meth:`to_dict` gives it as ``None``.
    reason
        Why (with ``explain=True``): the interest it serves and the history behind it.
    explored
        Whether exploration, not the model's ranking, put it here.
    propensity
        Probability with which the serving policy chose this item at this position, in
        (0, 1]; an item epsilon-greedy drew uniformly from a whole catalogue has about
        ``explore / n_items`` (5e-5 on ml-latest-small at 0.5), so print it with
        significant digits (``f"{p:.3g}"``), not fixed ones.
    request_id
        The slate's id (the same for every item of one call of :meth:`Engine.recommend`),
        under which :meth:`Engine.feedback` takes rewards.
    """

    item_id: str
    score: float
    rank: int
    reason: str
    explored: bool
    propensity: float
    request_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (a NaN score, which JSON lacks, becomes ``None``)."""
        doc = asdict(self)
        if math.isnan(self.score):
            doc["score"] = None
        return doc


class Engine:
    """The user-interest engine.

    Parameters
    ----------
    config
        :class:`Config`; the defaults work.
    encoder, sentiment
        Components to share with other engines (by default built from the config on
        first use).

    Examples
    --------
    >>> from interestlens import Engine, datasets
    >>> engine = Engine().fit(datasets.load("ml-latest-small"))     # doctest: +SKIP
    >>> [i.label for i in engine.profile("42").interests[:2]]       # doctest: +SKIP
    ['...', '...']
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        encoder: Encoder | None = None,
        sentiment: SentimentAnalyzer | None = None,
    ) -> None:
        self.config = config or Config()
        self._state: _State | None = None
        self._lock = threading.RLock()
        self._encoder = encoder
        self._sentiment = sentiment
        self._store: EventStore | None = None

    @classmethod
    def from_config(cls, path: str | Path | None = None) -> Engine:
        """An engine configured from a TOML file (``None``: defaults)."""
        return cls(Config.from_toml(path) if path else Config())

    # ----- components ------------------------------------------------------------
    @property
    def encoder(self) -> Encoder:
        """The text encoder (loaded on first use)."""
        if self._encoder is None:
            self._encoder = Encoder(
                self.config.encoder,
                precision=self.config.precision,  # type: ignore[arg-type]
                cache_dir=self.config.cache_dir
                or os.environ.get("INTERESTLENS_CACHE_DIR")
                or Path(self.config.data_dir) / "cache",
            )
        return self._encoder

    @property
    def sentiment(self) -> SentimentAnalyzer:
        """The sentiment analyser for user texts."""
        if self._sentiment is None:
            self._sentiment = SentimentAnalyzer(self.config.sentiment, encoder=self.encoder)  # type: ignore[arg-type]
        return self._sentiment

    @property
    def state(self) -> _State:
        """The fitted state; raises :class:`NotFittedError` before :meth:`fit`."""
        if self._state is None:
            raise NotFittedError("the engine is not fitted: call fit(dataset) or Engine.load(path)")
        return self._state

    # ----- fitting ---------------------------------------------------------------
    def fit(self, dataset: Dataset) -> Engine:
        """Learn item embeddings, the interest taxonomy and every user's profile."""
        cfg = self.config
        ids = dataset.item_ids
        items = dataset.catalogue()
        log.info("composing and embedding the text of %d items", len(items))
        text = compose_item_text(items, dataset.events, fields=cfg.item_text_fields)
        vectors = self.encoder.encode(text.tolist())
        interactions = dataset.interactions(user_ids=dataset.user_ids, item_ids=ids)
        previous = self._state.taxonomy if self._state is not None else None
        log.info("clustering %d items into interests", len(ids))
        taxonomy = InterestTaxonomy(
            cfg.n_fine, cfg.n_broad, text_weight=cfg.text_weight, random_state=cfg.random_state
        ).fit(
            list(ids),
            vectors,
            item_user=interactions.matrix.T.tocsr(),
            terms=label_terms(items, dataset.events),
            titles=items["title"].tolist(),
            previous=previous,
        )
        log.info("building %d user profiles", dataset.n_users)
        profiler = InterestProfiler(taxonomy, self.encoder.encode, self.sentiment, cfg.profile).fit(
            dataset.events
        )
        recommender = content = None
        if cfg.recommender != "none":
            log.info("fitting the %s recommender", cfg.recommender)

            def model(name: str, **params: Any) -> Recommender:
                if name == "contentlm":
                    params["text_fields"] = cfg.item_text_fields
                if name == "sasrec":
                    params.update(precision=cfg.precision, threads=cfg.threads)
                return build_model(
                    name, encoder=self.encoder, random_state=cfg.random_state, **params
                )

            hybrid = cfg.recommender == "hybrid"
            bases = {"models": [model(m) for m in cfg.hybrid_models]} if hybrid else {}
            recommender = model(cfg.recommender, **bases).fit(dataset)
            # cold starts use ContentLM: the recommender's own when it has one
            fitted = [recommender, *getattr(recommender, "models_", [])]
            content = next((m for m in fitted if isinstance(m, ContentLM)), None)
            if content is None:
                content = ContentLM(text_fields=cfg.item_text_fields, encoder=self.encoder)
                content.fit(dataset)
        with self._lock:
            self._state = _State(
                dataset,
                ids,
                text,
                vectors,
                taxonomy,
                profiler,
                recommender,
                content,
                item_users=sp.csc_matrix(interactions.matrix != 0, dtype=np.float32),
            )
        return self

    # ----- online ----------------------------------------------------------------
    def observe(self, events: Event | Iterable[Event] | pd.DataFrame) -> int:
        """Take new events online: the next profile reflects them. Returns events taken."""
        if isinstance(events, Event):
            events = [events]
        frame = events if isinstance(events, pd.DataFrame) else Dataset.from_records(events).events
        with self._lock:
            st = self.state
            st.profiler.update(frame)
            st.observed.append(frame)
            _index_by_user(st.observed_by_user, frame)
        return len(frame)

    def events(self) -> pd.DataFrame:
        """Every event the engine knows: those it was fitted on, then those observed since."""
        st = self.state
        with self._lock:
            if st.observed:
                merged = pd.concat([st.dataset.events, *st.observed], ignore_index=True)
                st.observed[:] = [merged.iloc[len(st.dataset.events) :]]
                return merged
        return st.dataset.events

    def user_events(self, user_id: str) -> pd.DataFrame:
        """One user's events: those the engine was fitted on, then those observed since."""
        st = self.state
        user_id = str(user_id)
        mine = st.dataset.events.iloc[st.user_rows.get(user_id, np.zeros(0, dtype=np.int64))]
        with self._lock:
            later = list(st.observed_by_user.get(user_id, ()))
        return pd.concat([mine, *later], ignore_index=True) if later else mine

    # ----- questions -------------------------------------------------------------
    def profile(self, user_id: str) -> InterestProfile:
        """The interest profile of one user (empty for an unknown user)."""
        return self.state.profiler.profile(str(user_id))

    def interests(self, level: str = "all") -> list[Interest]:
        """The taxonomy: ``"broad"``, ``"fine"`` or ``"all"`` interests."""
        tax = self.state.taxonomy
        if level == "broad":
            return tax.broad()
        if level == "fine":
            return tax.fine()
        if level == "all":
            return tax.broad() + tax.fine()
        raise ValueError(f"level must be broad, fine or all, not {level!r}")

    def tag_text(self, text: str, top: int = 3) -> list[tuple[Interest, float]]:
        """Zero-shot: the interests a piece of text (a post, a query, a review) is about."""
        tax = self.state.taxonomy
        pairs = tax.tag_vectors(self.encoder.encode([text]), top=top, min_score=0.0)[0]
        return [(tax[i], s) for i, s in pairs]

    def audience(self, query: str | int, min_weight: float = 0.05) -> pd.DataFrame:
        """Users whose profile holds the interest named by ``query`` (id, label, term or free text).

        Raises
        ------
        ValueError
            The query is empty, or names no interest (see :meth:`resolve`).
        """
        return _audience(
            self.state.profiler,
            query,
            min_weight=min_weight,
            encode=self.encoder.encode,
            matcher=self.text_matcher(),
        )

    def resolve(self, query: str | int) -> list[Interest]:
        """The interests a query names (see :func:`~interestlens.interests.audience.resolve_interests`).

        Free text is matched through the terms the items carry, then their text, each
        only above a similarity floor measured on nonsense (:class:`TextMatcher`).

        Raises
        ------
        ValueError
            The query is empty or blank, or names no interest ("xyzzy qwerty").
        """
        tax = self.state.taxonomy
        resolved = resolve_interests(tax, query, self.encoder.encode, matcher=self.text_matcher())
        return [tax[i] for i in resolved.interest_ids]

    def item_terms(self) -> dict[str, frozenset[str]]:
        """Each item's label terms (categories and tags, as the taxonomy labels use them)."""
        st = self.state
        with self._lock:
            terms = st.derived.get("item_terms")
            if terms is None:
                items = st.dataset.catalogue()
                terms = {
                    str(i): frozenset(t)
                    for i, t in zip(
                        items["item_id"], label_terms(items, st.dataset.events), strict=True
                    )
                }
                st.derived["item_terms"] = terms
            return terms

    def text_matcher(self) -> TextMatcher:
        """The matcher of free-text queries to interests, fitted (and its floors measured) on first use."""
        st = self.state
        with self._lock:
            matcher = st.derived.get("text_matcher")
            if matcher is None:
                terms = self.item_terms()
                matcher = TextMatcher(random_state=self.config.random_state).fit(
                    st.taxonomy,
                    self.encoder.encode,
                    [sorted(terms.get(str(i), ())) for i in st.taxonomy.item_ids_],
                )
                st.derived["text_matcher"] = matcher
            return matcher

    def similar_items(self, item_id: str, k: int = 10) -> list[tuple[str, float]]:
        """Items closest to one item in text-embedding space, with their cosine similarity."""
        st = self.state
        pos = st.item_ids.get_indexer([str(item_id)])[0]
        if pos < 0:
            raise KeyError(f"unknown item {item_id!r}")
        sims = st.item_vectors @ st.item_vectors[pos]
        sims[pos] = -np.inf
        top = np.argsort(-sims)[:k]
        return [(str(st.item_ids[j]), float(sims[j])) for j in top]

    def interest_vectors(self, user_id: str, k: int = 3) -> tuple[list[Interest], np.ndarray]:
        """Several retrieval vectors of one user, one per strongest interest."""
        st = self.state
        mine = self.user_events(user_id)

        def vec(ids: Sequence[str]) -> np.ndarray:
            return st.item_vectors[st.item_ids.get_indexer(list(ids))]

        ids, vecs = st.profiler.interest_vectors(mine, vec, k=k)
        return [st.taxonomy[i] for i in ids], vecs

    def recommend(
        self,
        user_id: str,
        k: int = 10,
        *,
        explain: bool = False,
        exclude_seen: bool = True,
        explore: float = 0.0,
        policy: str | None = None,
    ) -> list[Recommendation]:
        """The ``k`` items the user most likely wants next, through an exploration policy.

        Known users with enough history get the configured recommender; users with
        fewer than ``cold_start_events`` events, or known only by what they searched
        or wrote, get ContentLM (their words and few items against item text); unknown
        users get the most popular items. The policy (``policy``, default the configured
        one) then explores at level ``explore`` in [0, 1]: 0 serves that ranking as is,
        with propensity 1. Every item carries the slate's ``request_id``, its propensity
        and whether exploration put it there; the slate is logged to the store (see
        :class:`ExploreConfig`). With ``explain`` each item carries its reason: the
        interest it serves and the user's history items that contributed most.
        """
        st = self.state
        if st.recommender is None or st.content is None:
            raise NotFittedError("this engine was fitted with recommender='none'")
        user_id = str(user_id)
        pol = self.policy(policy)
        source, n_events, scores = self.ranking_scores(user_id, pol, exclude_seen=exclude_seen)
        slate = pol.recommend(
            user_id,
            k,
            explore=explore,
            exclude_seen=exclude_seen,
            scores=scores,
            context={"source": source, "n_events": n_events},
        )
        if self.config.explore.log:
            self.slate_store.log_slate(**slate.record())
        out = [
            Recommendation(
                item_id=i,
                score=s,
                rank=n,
                reason="",
                explored=e,
                propensity=p,
                request_id=slate.request_id,
            )
            for n, (i, s, e, p) in enumerate(
                zip(slate.item_ids, slate.scores, slate.explored, slate.propensities, strict=True),
                1,
            )
        ]
        if explain:
            reasons = self._reasons(user_id, [r.item_id for r in out], source)
            out = [
                replace(r, reason=f"exploring something new: {why}" if r.explored else why)
                for r, why in zip(out, reasons, strict=True)
            ]
        return out

    def ranking_scores(
        self, user_id: str, policy: Policy, *, exclude_seen: bool = True
    ) -> tuple[str, int, np.ndarray | None]:
        """Where a user's ranking comes from, their event count, and any scores to use.

        A user with at least ``cold_start_events`` events is ranked by the recommender
        (``"personal"``): as fitted (scores ``None``: the policy asks its ranker) unless
        events of theirs were observed since the fit, or they are new to it; then from
        every event of theirs (:meth:`~interestlens.models.Recommender.score_history`),
        so what they just did counts at once. A cold or unknown user is ranked by content
        scores of what they did (``"content"``) or by popularity when they did nothing
        (``"popular"``). Scores are aligned to ``policy``'s items, with the user's own
        items at ``-inf`` when ``exclude_seen``.
        """
        st = self.state
        row = st.profiler._user_pos.get(user_id)
        n_events = 0 if row is None else int(st.profiler.n_events_[row])
        known = user_id in st.recommender.user_ids_ and user_id not in st.observed_by_user
        personal = n_events >= self.config.cold_start_events
        if personal and known:
            return "personal", n_events, None
        mine = self.user_events(user_id)
        if personal:
            model, source = st.recommender, "personal"
        else:
            model, source = st.content, "content" if len(mine) else "popular"
        scores = model.score_history(mine)
        if exclude_seen:
            seen = model.item_ids_.get_indexer(pd.Index(mine["item_id"].dropna(), dtype=object))
            scores[seen[seen >= 0]] = -np.inf
        scores = pd.Series(scores, index=model.item_ids_).reindex(policy.item_ids_).to_numpy()
        return source, n_events, scores

    def policy(self, name: str | None = None) -> Policy:
        """The exploration policy ``name`` (default: the configured one), fitted on first use."""
        st = self.state
        cfg = self.config.explore
        name = cfg.policy if name is None else str(name)
        with self._lock:
            pol = st.policies.get(name)
            if pol is None:
                if st.recommender is None:
                    raise NotFittedError("this engine was fitted with recommender='none'")
                params = dict(cfg.params) if name == cfg.policy else {}
                params.setdefault("random_state", self.config.random_state)
                pol = build_policy(name, st.recommender, **params)
                vectors = (
                    pd.DataFrame(st.item_vectors, index=st.item_ids)
                    .reindex(st.recommender.item_ids_)
                    .to_numpy()
                )
                pol.fit(st.dataset, item_vectors=vectors, taxonomy=st.taxonomy)
                st.policies[name] = pol
            return pol

    def feedback(self, request_id: str, item_id: str, reward: float) -> bool:
        """A reward for an item of a served slate (a click is 1; shown items without one count 0).

        The policy that served the slate learns from it at once, and the reward is logged
        with the slate. Returns whether a policy learned from it: ``False`` when the slate
        is only in the log (served before a refit or a restart, or forgotten by the
        policy), where the reward is still logged for off-policy evaluation.

        Raises
        ------
        KeyError
            No slate with this ``request_id`` showed ``item_id`` (neither a policy nor
            the log knows it).
        ValueError
            The reward is not a finite number.
        """
        request_id = str(request_id)
        st = self.state
        with self._lock:
            holder = next((p for p in st.policies.values() if request_id in p.pending_), None)
        if holder is not None:
            holder.update(request_id, item_id, reward)
        if self.config.explore.log:
            try:
                self.slate_store.log_feedback(request_id, str(item_id), reward)
            except KeyError:
                if holder is None:
                    raise KeyError(
                        f"unknown request_id {request_id!r}: no slate served with it"
                    ) from None
                raise
        elif holder is None:
            raise KeyError(f"unknown request_id {request_id!r}: no policy holds it")
        return holder is not None

    @property
    def slate_store(self) -> EventStore:
        """The store holding the slate log (opened on first use at ``config.store_url``)."""
        with self._lock:
            if self._store is None:
                self._store = open_store(self.config.store_url)
            return self._store

    def explain(
        self, user_id: str, item_id: str, *, source: str = "personal", n_items: int = 3
    ) -> str:
        """Why an item suits a user: the interest of the item they hold, and the history behind it.

        The interest named is one the item belongs to (its soft membership) and whose
        label describes it (the item carries one of the label's terms, where it carries
        any): "serves your interest in X" when the user holds X, "in X" otherwise. Then
        the user's liked items most like it ("like A, B"), or "popular with everyone"
        for a user with no history.
        """
        return self._reasons(str(user_id), [str(item_id)], source, n_items)[0]

    def item_reason_interests(self, item_id: str) -> list[tuple[int, float]]:
        """The interests a reason may name for an item: ``[(fine interest id, membership)]``.

        Those of the item's soft memberships whose label shares a term with the item
        (all of them for an item without terms); heaviest first.
        """
        tax = self.state.taxonomy
        memberships = tax.item_interests(item_id)
        mine = self.item_terms().get(str(item_id), frozenset())
        if not mine:
            return memberships
        return [(i, w) for i, w in memberships if mine & set(tax[i].terms)]

    def _reasons(
        self, user_id: str, item_ids: list[str], source: str, n_items: int = 3
    ) -> list[str]:
        """Reasons for several items of one user, preparing the user's history once."""
        st = self.state
        tax = st.taxonomy
        titles = st.dataset.items.set_index("item_id")["title"]
        weights = st.profiler.weights(user_id)
        col = {f: c for c, f in enumerate(tax.fine_ids_)}
        contributors = self._contributors(user_id, item_ids, n_items)
        reasons = []
        for item_id, history in zip(item_ids, contributors, strict=True):
            parts = ["popular with everyone"] if source == "popular" else []
            describing = self.item_reason_interests(item_id)
            if describing:
                best = max(describing, key=lambda p: (weights[col[p[0]]] * p[1], p[1]))
                held = weights[col[best[0]]] > 0
                parts.append(f"{'serves your interest in' if held else 'in'} {tax[best[0]].label}")
            if history:
                parts.append("like " + ", ".join(str(titles.get(i, i)) for i in history))
            reasons.append("; ".join(parts) if parts else "popular with everyone")
        return reasons

    def _contributors(self, user_id: str, item_ids: list[str], n: int) -> list[list[str]]:
        """Per item, the user's liked items most like it in text and co-engagement."""
        st = self.state
        mine = self.user_events(user_id)
        mine = mine[mine["item_id"].notna()]
        if len(mine):
            signal, _ = st.profiler._signals(mine)
            mine = mine[signal > 0]
        hist = pd.Index(mine["item_id"].drop_duplicates(), dtype=object)
        pos = st.item_ids.get_indexer(hist)
        hist, pos = hist[pos >= 0], pos[pos >= 0]
        targets = st.item_ids.get_indexer(pd.Index(item_ids, dtype=object))
        if len(pos) == 0:
            return [[] for _ in item_ids]
        ok = targets >= 0
        t = np.where(ok, targets, 0)
        text_sim = st.item_vectors[pos] @ st.item_vectors[t].T  # history x targets
        co_sim = np.zeros_like(text_sim)
        if st.item_users is not None:
            h, c = st.item_users[:, pos], st.item_users[:, t]
            co = np.asarray((h.T @ c).todense())
            counts_h = np.asarray(h.sum(axis=0)).ravel()
            counts_c = np.asarray(c.sum(axis=0)).ravel()
            norm = np.sqrt(np.outer(counts_h, np.maximum(counts_c, 1.0)))
            co_sim = co / np.where(norm == 0, 1.0, norm)
        score = 0.5 * text_sim + 0.5 * co_sim
        return [
            [str(hist[j]) for j in np.argsort(-score[:, k])[:n]] if ok[k] else []
            for k in range(len(item_ids))
        ]

    # ----- persistence -----------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the engine to a folder (atomically replacing an older save there).

        The file is a pickle: load only engines you saved yourself.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / "engine.pkl.tmp"
        with self._lock, open(tmp, "wb") as fh:
            pickle.dump(
                {
                    "format": _FORMAT,
                    "version": __version__,
                    "config": self.config,
                    "state": self._state,
                },
                fh,
                protocol=5,
            )
        tmp.replace(path / "engine.pkl")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Engine:
        """Read an engine written by :meth:`save`."""
        file = Path(path) / "engine.pkl"
        if not file.exists():
            raise FileNotFoundError(f"no saved engine in {path}: run `interestlens fit` first")
        with open(file, "rb") as fh:
            doc: dict[str, Any] = pickle.load(fh)
        if doc.get("format") != _FORMAT:
            raise ValueError(
                f"{file} was saved in format {doc.get('format')}, this interestlens reads {_FORMAT}"
            )
        engine = cls(doc["config"])
        state = doc["state"]
        if state is not None and not hasattr(state, "policies"):  # saved before policies
            object.__setattr__(state, "policies", {})
        if state is not None and not hasattr(state, "derived"):  # saved before derived
            object.__setattr__(state, "derived", {})
        if state is not None and not hasattr(state, "observed_by_user"):  # saved before fold-in
            object.__setattr__(state, "observed_by_user", {})
            for frame in state.observed:
                _index_by_user(state.observed_by_user, frame)
        engine._state = state
        if engine._state is not None:
            engine._state.profiler.attach(engine.encoder.encode, engine.sentiment)
        return engine
