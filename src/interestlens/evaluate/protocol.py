"""Offline evaluation protocols: split, fit, rank every item, score each user.

The ranking is over the whole catalogue (every item the model knows) minus the user's
training items, never over sampled negatives unless ``n_negatives`` asks for them:
sampled metrics can reverse the order of models (Krichene & Rendle 2020). A user's
held-out items that are also among their training items are left out of the
relevant set, since the protocol never lets them be recommended (repeat consumption
is not measured here); a user left with no relevant item is not evaluated.

References
----------
Walid Krichene and Steffen Rendle. 2020. On Sampled Metrics for Item Recommendation.
KDD '20.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from interestlens.data import Dataset
from interestlens.data.splits import Split, leave_last_out, random_holdout, temporal_cut
from interestlens.evaluate import metrics as M
from interestlens.evaluate.report import EvaluationReport
from interestlens.models import build_model
from interestlens.models.base import Recommender, top_k
from interestlens.registry import clone

__all__ = ["PROTOCOLS", "ModelSpec", "evaluate", "evaluate_split", "make_split", "parse_models"]

log = logging.getLogger(__name__)

#: Protocol names :func:`make_split` accepts, and the split each one makes.
PROTOCOLS = {
    "loo": "leave_last_out: each user's last event to test, the one before to validation",
    "random": "random_holdout: 20% of each user's events to test, 10% of the rest to validation",
    "temporal": "temporal_cut: events after the 80% time quantile to test, 70-80% to validation",
}
_ALIASES = {
    "loo": "loo",
    "leave_last_out": "loo",
    "random": "random",
    "random_holdout": "random",
    "temporal": "temporal",
    "temporal_cut": "temporal",
}

ModelSpec = Recommender | Callable[[], Recommender]


def make_split(
    dataset: Dataset,
    protocol: str = "loo",
    *,
    target_types: str | Iterable[str] | None = None,
    random_state: int = 0,
) -> Split:
    """Split a dataset by a protocol name, always with a validation part for tuning.

    Parameters
    ----------
    dataset
        The events to split.
    protocol
        ``"loo"`` (temporal leave-last-out, the protocol of ``ANCHORS.md``),
        ``"random"`` or ``"temporal"`` (see :data:`PROTOCOLS`); the long names of
        :mod:`interestlens.data.splits` work too.
    target_types
        Event types that may be held out (say ``"rating"``); ``None``: every item event.
    random_state
        Seed of the random holdout.

    Examples
    --------
    >>> from interestlens.data import Dataset, Event
    >>> ds = Dataset.from_records([Event("a", f"i{k}", "click") for k in range(4)])
    >>> s = make_split(ds, "loo")
    >>> s.name, len(s.train.events), len(s.validation.events), len(s.test.events)
    ('leave_last_out', 2, 1, 1)
    """
    key = _ALIASES.get(protocol)
    if key is None:
        raise ValueError(f"unknown protocol {protocol!r}; use one of {sorted(PROTOCOLS)}")
    if key == "loo":
        return leave_last_out(dataset, validation=True, target_types=target_types)
    if key == "random":
        return random_holdout(
            dataset,
            test_ratio=0.2,
            validation_ratio=0.1,
            random_state=random_state,
            target_types=target_types,
        )
    return temporal_cut(dataset, quantile=0.8, validation_quantile=0.7, target_types=target_types)


@dataclass(frozen=True)
class _HeldOut:
    """What one split holds out, laid out on one model's item columns."""

    users: pd.Index
    item_ids: pd.Index
    relevant: sp.csr_matrix  # users x (items + unknown held-out items)
    seen: sp.csr_matrix  # users x items: training items, excluded from the ranking
    item_counts: np.ndarray  # training users per item
    n_train_users: int
    n_items: int
    skipped_users: int


def _pairs(ds: Dataset) -> pd.DataFrame:
    ev = ds.events
    return ev.loc[ev["item_id"].notna(), ["user_id", "item_id"]].drop_duplicates()


def _held_out(split: Split, item_ids: pd.Index, users: Sequence[str] | None) -> _HeldOut:
    test = _pairs(split.test)
    train = _pairs(split.train)
    repeat = pd.MultiIndex.from_frame(test).isin(pd.MultiIndex.from_frame(train))
    test = test[~repeat]
    eligible = pd.Index(pd.unique(test["user_id"]), dtype=object)
    n_asked = len(eligible)
    if users is not None:
        asked = pd.Index([str(u) for u in users], dtype=object).drop_duplicates()
        n_asked = len(asked)
        eligible = asked[asked.isin(eligible)]
    test = test[test["user_id"].isin(eligible)]
    n_items = len(item_ids)
    cols = item_ids.get_indexer(pd.Index(test["item_id"], dtype=object))
    unknown = cols < 0
    if unknown.any():
        codes, _ = pd.factorize(test["item_id"].to_numpy()[unknown])
        cols[unknown] = n_items + codes
    rows = eligible.get_indexer(pd.Index(test["user_id"], dtype=object))
    width = int(cols.max(initial=n_items - 1)) + 1
    relevant = M.relevance_matrix(
        sp.csr_matrix(
            (np.ones(len(rows), dtype=np.bool_), (rows, cols)), shape=(len(eligible), width)
        )
    )
    tr_cols = item_ids.get_indexer(pd.Index(train["item_id"], dtype=object))
    tr_rows = eligible.get_indexer(pd.Index(train["user_id"], dtype=object))
    mine = (tr_rows >= 0) & (tr_cols >= 0)
    seen = sp.csr_matrix(
        (np.ones(int(mine.sum()), dtype=np.bool_), (tr_rows[mine], tr_cols[mine])),
        shape=(len(eligible), n_items),
    )
    counts = np.bincount(tr_cols[tr_cols >= 0], minlength=n_items).astype(np.float64)
    return _HeldOut(
        users=eligible,
        item_ids=item_ids,
        relevant=relevant,
        seen=seen,
        item_counts=counts,
        n_train_users=int(train["user_id"].nunique()),
        n_items=n_items,
        skipped_users=n_asked - len(eligible),
    )


def _metric_names(metrics: Sequence[str] | None, with_vectors: bool) -> list[str]:
    known = (*M.ACCURACY, *M.BEYOND_ACCURACY, *M.CATALOGUE)
    if metrics is None:
        return [m for m in known if m != "ild" or with_vectors]
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    bad = [m for m in names if m not in known]
    if bad:
        raise ValueError(f"unknown metrics {bad}; choose from {list(known)}")
    if "ild" in names and not with_vectors:
        raise ValueError("intra-list diversity ('ild') needs item_vectors")
    return names


def _item_matrix(item_vectors: np.ndarray | pd.DataFrame, item_ids: pd.Index) -> np.ndarray:
    if isinstance(item_vectors, pd.DataFrame):
        return item_vectors.reindex(item_ids).to_numpy(dtype=np.float64)
    vec = np.asarray(item_vectors, dtype=np.float64)
    if vec.shape[0] != len(item_ids):
        raise ValueError(
            f"item_vectors has {vec.shape[0]} rows but the model has {len(item_ids)} items; "
            "give one row per model item (model.item_ids_ order) or a frame indexed by item id"
        )
    return vec


def _overrides_recommend(model: Any) -> bool:
    return getattr(type(model), "recommend_indices", None) is not Recommender.recommend_indices


def _sample_candidates(
    scores: np.ndarray, relevant: sp.csr_matrix, n_negatives: int, rng: np.random.Generator
) -> np.ndarray:
    """Keep each user's relevant items and ``n_negatives`` random other candidates."""
    n_items = scores.shape[1]
    draw = rng.random(scores.shape)
    draw[np.isnan(scores)] = np.inf
    rel = relevant[:, :n_items].tocoo()
    draw[rel.row, rel.col] = np.inf
    n = min(n_negatives, n_items)
    pick = np.argpartition(draw, n - 1, axis=1)[:, :n] if n else np.zeros((len(draw), 0), int)
    keep = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(keep, pick, True, axis=1)
    keep &= np.isfinite(draw)
    keep[rel.row, rel.col] = True
    return np.where(keep, scores, np.nan)


def _rank(
    model: Any,
    held: _HeldOut,
    k: int,
    *,
    need_scores: bool,
    n_negatives: int | None,
    rng: np.random.Generator,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Top-``k`` columns per user (``-1`` = empty slot) and, when asked, per-user AUC."""
    users = held.users.to_list()
    recs = np.full((len(users), k), -1, dtype=np.int64)
    aucs = np.full(len(users), np.nan) if need_scores else None
    own_lists = _overrides_recommend(model) and n_negatives is None
    for start in range(0, len(users), batch_size):
        stop = min(start + batch_size, len(users))
        batch = users[start:stop]
        seen = held.seen[start:stop].tocoo()
        scores = None
        if need_scores or not own_lists:
            scores = np.array(model.score_all(batch), dtype=np.float32)
            scores[seen.row, seen.col] = np.nan
            if n_negatives is not None:
                scores = _sample_candidates(scores, held.relevant[start:stop], n_negatives, rng)
            if aucs is not None:
                aucs[start:stop] = M.auc(scores, held.relevant[start:stop])
        if own_lists:
            cols, vals = model.recommend_indices(batch, k, exclude_seen=True)
            cols = np.asarray(cols, dtype=np.int64)
            vals = np.asarray(vals, dtype=np.float64)
        else:
            assert scores is not None
            cols = top_k(scores, k)
            vals = np.take_along_axis(scores, cols, axis=1)
        cols = np.where(np.isfinite(vals), cols, -1)[:, :k]
        # a training item in the list breaks the protocol: it counts as an empty slot
        cols[M.hits(cols, held.seen[start:stop])] = -1
        recs[start:stop, : cols.shape[1]] = cols
    return recs, aucs


def _popular_lists(held: _HeldOut, k: int, batch_size: int) -> np.ndarray:
    """What a popularity recommender lists for each user: the 'expected' items."""
    out = np.empty((len(held.users), min(k, held.n_items)), dtype=np.int64)
    for start in range(0, len(held.users), batch_size):
        stop = min(start + batch_size, len(held.users))
        s = np.tile(held.item_counts, (stop - start, 1))
        seen = held.seen[start:stop].tocoo()
        s[seen.row, seen.col] = -np.inf
        out[start:stop] = top_k(s, k)
    return out


def evaluate_split(
    model: Recommender,
    split: Split,
    k: int = 10,
    *,
    metrics: Sequence[str] | None = None,
    item_vectors: np.ndarray | pd.DataFrame | None = None,
    users: Sequence[str] | None = None,
    n_negatives: int | None = None,
    random_state: int = 0,
    batch_size: int = 1024,
) -> pd.DataFrame:
    """Per-user metrics of a model already fitted on ``split.train``, on ``split.test``.

    Nothing is fitted here. Each test user's relevant items are their ``split.test``
    items that are not among their ``split.train`` items; the model ranks every item
    it knows except the user's training items, and its top ``k`` are scored.

    Parameters
    ----------
    model
        A fitted recommender (``item_ids_``, ``score_all``, ``recommend_indices``).
        Lists come from ``score_all`` and :func:`~interestlens.models.base.top_k`,
        or from the model's own ``recommend_indices`` when it overrides it (say, a
        re-ranker); ``auc`` always comes from ``score_all``.
    split
        The split the model was fitted on. To score the validation part, pass
        ``dataclasses.replace(split, test=split.validation)``.
    k
        List length.
    metrics
        Names from :data:`~interestlens.evaluate.metrics.ACCURACY`,
        :data:`~interestlens.evaluate.metrics.BEYOND_ACCURACY` and
        :data:`~interestlens.evaluate.metrics.CATALOGUE`; default all (``ild`` only
        with ``item_vectors``).
    item_vectors
        Item embeddings for intra-list diversity: an array with one row per model
        item (``model.item_ids_`` order) or a frame indexed by item id.
    users
        Evaluate only these users (in this order); users without a relevant item are
        skipped and counted in ``attrs["skipped_users"]``.
    n_negatives
        Rank each user's relevant items among this many sampled non-relevant,
        unseen items instead of the whole catalogue. Only for comparison with papers
        that sample: sampled metrics are biased (Krichene & Rendle 2020).
    random_state
        Seed of the negative sampling.
    batch_size
        Users scored at once (memory ``batch_size * n_items`` floats).

    Returns
    -------
    pandas.DataFrame
        Index ``user_id``; one column per per-user metric. ``attrs`` holds ``k``,
        ``split``, ``n_items``, ``skipped_users``, ``n_negatives`` and
        ``aggregate`` (catalogue metrics: ``coverage``, ``gini``).

    Notes
    -----
    ``novelty``, ``arp`` and ``serendipity`` measure popularity on ``split.train``
    (distinct users per item). A held-out item the model does not know still counts
    as relevant; it can never be hit.

    Examples
    --------
    >>> from interestlens.data import Dataset, Event
    >>> from interestlens.models import Popularity
    >>> from interestlens.data.splits import leave_last_out
    >>> seqs = {"a": "xy", "b": "yx", "c": "xz", "d": "zyx", "e": "xz"}
    >>> ds = Dataset.from_records([Event(u, i, "click") for u, s in seqs.items() for i in s])
    >>> split = leave_last_out(ds, validation=False)  # train: the last item is held out
    >>> model = Popularity().fit(split.train)  # x: 3 users, y: 2, z: 1
    >>> df = evaluate_split(model, split, k=2, metrics=["hr", "ndcg"])
    >>> df.round(4).to_dict("index")
    {'a': {'hr': 1.0, 'ndcg': 1.0}, 'b': {'hr': 1.0, 'ndcg': 1.0}, 'c': {'hr': 1.0, 'ndcg': 0.6309}, 'd': {'hr': 1.0, 'ndcg': 1.0}, 'e': {'hr': 1.0, 'ndcg': 0.6309}}
    """
    if not hasattr(model, "item_ids_"):
        raise RuntimeError(f"{type(model).__name__} is not fitted: fit it on split.train first")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    names = _metric_names(metrics, item_vectors is not None)
    held = _held_out(split, model.item_ids_, users)
    return _score(
        model,
        held,
        k,
        names,
        item_vectors=item_vectors,
        n_negatives=n_negatives,
        random_state=random_state,
        batch_size=batch_size,
        split_name=split.name,
    )


def _score(
    model: Any,
    held: _HeldOut,
    k: int,
    names: list[str],
    *,
    item_vectors: np.ndarray | pd.DataFrame | None,
    n_negatives: int | None,
    random_state: int,
    batch_size: int,
    split_name: str,
) -> pd.DataFrame:
    rng = np.random.default_rng(random_state)
    recs, aucs = _rank(
        model,
        held,
        k,
        need_scores="auc" in names,
        n_negatives=n_negatives,
        rng=rng,
        batch_size=batch_size,
    )
    rel = held.relevant
    per_user: dict[str, Callable[[], np.ndarray]] = {
        "hr": lambda: M.hr(recs, rel),
        "precision": lambda: M.precision(recs, rel),
        "recall": lambda: M.recall(recs, rel),
        "f1": lambda: M.f1(recs, rel),
        "ndcg": lambda: M.ndcg(recs, rel),
        "mrr": lambda: M.mrr(recs, rel),
        "map": lambda: M.average_precision(recs, rel),
        "auc": lambda: aucs,  # type: ignore[return-value,arg-type]
        "novelty": lambda: M.novelty(recs, held.item_counts, held.n_train_users),
        "arp": lambda: M.average_popularity(recs, held.item_counts, held.n_train_users),
        "serendipity": lambda: M.serendipity(recs, rel, _popular_lists(held, k, batch_size)),
        "ild": lambda: M.intra_list_diversity(
            recs,
            _item_matrix(item_vectors, model.item_ids_),  # type: ignore[arg-type]
        ),
    }
    frame = pd.DataFrame(
        {m: per_user[m]() for m in names if m in per_user},
        index=pd.Index(held.users, name="user_id"),
    )
    aggregate = {
        "coverage": lambda: M.coverage(recs, held.n_items),
        "gini": lambda: M.gini(recs, held.n_items),
    }
    frame.attrs.update(
        k=k,
        split=split_name,
        n_items=held.n_items,
        skipped_users=held.skipped_users,
        n_negatives=n_negatives,
        aggregate={m: aggregate[m]() for m in names if m in aggregate},
    )
    return frame


def parse_models(text: str) -> dict[str, Recommender]:
    """Unfitted models, with their default hyperparameters, from comma-separated names.

    Every model is built here, so an unknown or unavailable name fails before anything
    is fitted. Pass the result to :func:`evaluate`, which clones each model per fit.

    Raises
    ------
    ValueError
        No name given, or a name that :data:`interestlens.models.MODELS` does not know
        or cannot import.

    Examples
    --------
    >>> parse_models("popularity, EASE")
    {'popularity': Popularity(window_days=None, random_state=0), 'ease': EASE(l2=500.0, max_items=30000, random_state=0)}
    """
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError("no model named; give --models popularity[,...]")
    return {name: build_model(name) for name in names}


def _build(spec: ModelSpec, fit: bool) -> Recommender:
    if isinstance(spec, Recommender):
        return clone(spec) if fit else spec
    if callable(spec):
        return spec()
    raise TypeError(f"a model must be a Recommender or a function returning one, got {spec!r}")


def evaluate(
    models: Mapping[str, ModelSpec],
    dataset: Dataset | None,
    protocol: str = "loo",
    k: int = 10,
    *,
    target_types: str | Iterable[str] | None = None,
    n_bootstrap: int = 1000,
    random_state: int = 0,
    item_vectors: np.ndarray | pd.DataFrame | None = None,
    fit: bool = True,
    metrics: Sequence[str] | None = None,
    split: Split | None = None,
    n_negatives: int | None = None,
    confidence: float = 0.95,
) -> EvaluationReport:
    """Split once, fit every model on the training part, score all on the same test users.

    Parameters
    ----------
    models
        Name to model: an unfitted :class:`~interestlens.models.Recommender` (it is
        cloned, so the caller's object stays unfitted) or a function returning one.
        With ``fit=False``, models already fitted on ``split.train`` of this very
        split (pass ``split``), used as they are.
    dataset
        The events; ignored when ``split`` is given.
    protocol
        ``"loo"``, ``"random"`` or ``"temporal"`` (see :func:`make_split`).
    k
        List length.
    target_types
        Event types that may be held out; ``None``: every item event.
    n_bootstrap
        Paired bootstrap resamples of users for the intervals.
    random_state
        Seed of the random split, the bootstrap and the tests.
    item_vectors
        Item embeddings for intra-list diversity (see :func:`evaluate_split`).
    fit
        Fit the models on ``split.train`` (default) or use them as given.
    metrics
        Metrics to compute (default all that apply).
    split
        Use this split instead of splitting ``dataset``.
    n_negatives
        Sampled-negatives ranking instead of the full catalogue (not recommended).
    confidence
        Level of the intervals.

    Returns
    -------
    EvaluationReport
        Per-user results of every model on the same users, with fitted models and
        timings.

    Examples
    --------
    >>> from interestlens.data import Dataset, Event
    >>> from interestlens.models import Popularity
    >>> ds = Dataset.from_records(
    ...     [Event(f"u{u}", f"i{(u + j) % 7}", "click") for u in range(30) for j in range(4)]
    ... )
    >>> report = evaluate({"pop": Popularity()}, ds, "loo", k=3, n_bootstrap=100)
    >>> report.protocol, sorted(report.per_user), len(report.per_user["pop"])
    ('leave_last_out', ['pop'], 30)
    """
    if split is None:
        if dataset is None:
            raise ValueError("give a dataset or a split")
        split = make_split(dataset, protocol, target_types=target_types, random_state=random_state)
    if not models:
        raise ValueError("no models to evaluate")
    names = _metric_names(metrics, item_vectors is not None)
    per_user: dict[str, pd.DataFrame] = {}
    fitted: dict[str, Recommender] = {}
    timings: dict[str, dict[str, float]] = {}
    held: _HeldOut | None = None
    for name, spec in models.items():
        model = _build(spec, fit)
        t0 = time.perf_counter()
        if fit:
            log.info("fitting %s on %s", name, split.name)
            model.fit(split.train)
        t1 = time.perf_counter()
        if not hasattr(model, "item_ids_"):
            raise RuntimeError(f"model {name!r} is not fitted; use fit=True or fit it first")
        if held is None or not held.item_ids.equals(model.item_ids_):
            held = _held_out(split, model.item_ids_, None if held is None else held.users)
            if len(held.users) == 0:
                raise ValueError(
                    f"the {split.name} split has no test user with a held-out item that is "
                    "not among their training items: nothing to evaluate"
                )
        per_user[name] = _score(
            model,
            held,
            k,
            names,
            item_vectors=item_vectors,
            n_negatives=n_negatives,
            random_state=random_state,
            batch_size=1024,
            split_name=split.name,
        )
        timings[name] = {
            "fit_seconds": round(t1 - t0, 3),
            "evaluate_seconds": round(time.perf_counter() - t1, 3),
        }
        fitted[name] = model
        log.info("%s: %s", name, timings[name])
    return EvaluationReport(
        per_user=per_user,
        protocol=split.name,
        k=k,
        n_bootstrap=n_bootstrap,
        random_state=random_state,
        confidence=confidence,
        models=fitted,
        split_summary=split.summary(),
        timings=timings,
    )
