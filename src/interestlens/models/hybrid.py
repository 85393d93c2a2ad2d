"""Hybrid: candidates from several recommenders, re-ranked by a learned ranker.

Each base model proposes its top items; a learned ranker (logistic regression, or
LightGBM LambdaRank where there are enough users to learn it) orders the pooled
candidates from features that no single model has at once: every model's score and
rank, the match between the item's text and the user's interests, popularity, recency,
and how active the user is. The ranker learns on one
interaction per user (the most recent by default), held out of the base models'
training data inside :meth:`Hybrid.fit`; the base models are then refitted on all the
data for serving.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from interestlens.data import Dataset
from interestlens.models.base import History, Recommender, top_k
from interestlens.progress import Stages, stages
from interestlens.registry import clone
from interestlens.threads import limit, resolve

if TYPE_CHECKING:
    from interestlens.text import Encoder

log = logging.getLogger(__name__)


def last_item_holdout(dataset: Dataset, min_events: int = 3) -> tuple[Dataset, pd.DataFrame]:
    """Split off each user's latest item event (users with at least ``min_events`` of them).

    Returns the dataset without those events and a frame ``user_id, item_id`` of the
    held-out items. Later non-item events of those users are dropped too, so nothing
    after the held-out event leaks into training.
    """
    ev = dataset.sorted_events()
    has_item = ev["item_id"].notna().to_numpy()
    users = ev["user_id"].to_numpy(dtype=object)
    n_items = pd.Series(has_item).groupby(users).transform("sum").to_numpy()
    item_pos_from_end = pd.Series(has_item[::-1]).groupby(users[::-1]).cumsum().to_numpy()[::-1]
    # item_pos_from_end == 1 marks the last item event and any later non-item events
    held = has_item & (item_pos_from_end == 1) & (n_items >= min_events)
    after = ~has_item & (item_pos_from_end == 0)
    held_users = set(users[held])
    drop = held | (after & np.isin(users, list(held_users)))
    keep_index = ev.index[~drop]
    mask = np.zeros(len(dataset.events), dtype=bool)
    mask[keep_index] = True
    holdout = ev.loc[held, ["user_id", "item_id"]].reset_index(drop=True)
    return dataset.subset(mask), holdout


def random_item_holdout(
    dataset: Dataset, min_events: int = 3, random_state: int = 0
) -> tuple[Dataset, pd.DataFrame]:
    """Split off one item event per user, drawn at random (users with ``min_events`` or more).

    Returns the dataset without those events and a frame ``user_id, item_id`` of the
    held-out items, like :func:`last_item_holdout`; the user's other events stay, later
    ones included.
    """
    ev = dataset.events
    has_item = ev["item_id"].notna().to_numpy()
    users = ev["user_id"].to_numpy(dtype=object)
    n_items = pd.Series(has_item).groupby(users).transform("sum").to_numpy()
    key = np.random.default_rng(random_state).random(len(ev))
    key[~has_item | (n_items < min_events)] = np.inf
    first = pd.Series(key).groupby(users).transform("min").to_numpy()
    held = np.isfinite(key) & (key == first)
    holdout = ev.loc[held, ["user_id", "item_id"]].reset_index(drop=True)
    return dataset.subset(~held), holdout


def _reusable(model: Recommender | None) -> bool:
    """Whether a fitted model held some users' last items out of its own training."""
    return (
        model is not None
        and hasattr(model, "without_last_items")
        and bool(
            len(model.without_last_items()[1])  # type: ignore[attr-defined]
        )
    )


class Hybrid(Recommender):
    """Learned re-ranking of candidates pooled from several recommenders.

    Parameters
    ----------
    models
        Base recommenders (unfitted templates; the hybrid fits its own copies).
    candidates
        Items each base model proposes per user.
    ranker
        ``"linear"``: logistic regression on standardised features (pointwise), kept as
        a :class:`LinearRanker`;
        ``"lambdarank"``: LightGBM LambdaRank (Burges 2010; Ke et al. 2017), kept as a
        :class:`LightGBMRanker`;
        ``"auto"``: whichever ranks the held-out items better in a 3-fold
        cross-validation over the users. The linear ranker needs far fewer examples: on
        ml-latest-small (about 450 users whose held-out item was a candidate) it
        scored 0.129 NDCG@10 in that cross-validation against LambdaRank's 0.063,
        which overfits; LambdaRank can learn interactions once there are many users.
    holdout
        Which item of each user the ranker learns to find: ``"last"``, the latest (the
        next-item task, which serving faces), or ``"random"``, one drawn at random (the
        task of a random per-user holdout, where the order of events matters less).
        Tune it on validation like any hyperparameter: ``benchmarks/accuracy.py`` does,
        and on ml-latest-small chooses ``"last"`` under leave-last-out and ``"random"``
        under a random 80/20 holdout, where a ranker taught the latest item leans on
        SASRec's sequence signal that a random holdout lacks.
    C
        Inverse L2 strength of the linear ranker.
    n_estimators, learning_rate, num_leaves
        LightGBM LambdaRank settings.
    threads
        Threads of every pool while fitting, the base models' fits included (see
        :func:`interestlens.threads.limit`); ``None``: ``$INTERESTLENS_THREADS``, else
        :data:`interestlens.threads.DEFAULT_THREADS`. A base model's own ``threads``
        setting wins inside its fit.
    progress
        Show each stage of the fit (each base model's fits, candidate generation, the
        ranker's training) on a progress bar on stderr; ``None`` shows it when stderr is
        a terminal. Each stage is also logged at INFO level (logger
        ``interestlens.models.hybrid``), with its duration, whatever this says.
    random_state
        Seed of the ranker and of the cross-validation folds.

    Notes
    -----
    Fitting costs two fits of most base models (one on the data without each user's
    latest item, for the ranker's training examples, and one on everything, for
    serving). A SASRec with ``holdout_last`` (its default) is fitted once: it held each
    user's latest item out of its training anyway, so the ranker learns on its held-out
    users from that one fit (:meth:`~interestlens.models.SASRec.without_last_items`).
    Items outside every model's candidates score below every candidate.
    """

    _user_state = ("activity_",)

    def __init__(
        self,
        models: Sequence[Recommender] = (),
        candidates: int = 100,
        ranker: Literal["auto", "linear", "lambdarank"] = "auto",
        holdout: Literal["last", "random"] = "last",
        C: float = 0.1,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        threads: int | None = None,
        progress: bool | None = None,
        *,
        random_state: int = 0,
    ) -> None:
        super().__init__(random_state=random_state)
        self.models = list(models)
        self.candidates = candidates
        self.ranker = ranker
        self.holdout = holdout
        self.C = C
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.threads = threads
        self.progress = progress

    # ----- features -------------------------------------------------------------
    def feature_names(self) -> list[str]:
        """Names of the ranker's features, in column order."""
        names = []
        for m in self.models_:
            n = type(m).__name__.lower()
            names += [f"{n}_score", f"{n}_rank", f"{n}_zscore"]
        return [*names, "n_models", "item_popularity", "item_recency", "user_activity"]

    def _item_stats(self, dataset: Dataset, X: sp.csr_matrix) -> np.ndarray:
        pop = np.log1p(np.asarray((X != 0).sum(axis=0)).ravel())
        ev = dataset.events[dataset.events["item_id"].notna()]
        last = ev.groupby("item_id")["timestamp"].max().reindex(self.item_ids_)
        end = ev["timestamp"].max()
        if pd.isna(end):
            recency = np.zeros(len(dataset.item_ids))
        else:
            days = (end - last).dt.total_seconds().to_numpy() / 86400.0
            recency = np.log1p(np.nan_to_num(days, nan=1e4))
        return np.column_stack([pop, recency]).astype(np.float32)

    def _candidates_and_features(
        self,
        per_model: list[np.ndarray],
        seen: list[np.ndarray],
        activity: np.ndarray,
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per user: candidate item columns and their feature rows.

        ``per_model`` holds each base model's scores of every item for the users (rows);
        the users' ``seen`` items are set to ``-inf`` in them, in place.
        """
        for s in per_model:
            for j, cols in enumerate(seen):
                s[j, cols] = -np.inf
        cands, feats = [], []
        for j in range(len(seen)):
            pools = [top_k(s[j : j + 1], self.candidates)[0] for s in per_model]
            cand = np.unique(np.concatenate(pools))
            cols = []
            in_top = np.zeros(len(cand))
            for s in per_model:
                row = s[j]
                finite = np.isfinite(row)
                vals = row[finite]
                mu, sd = (vals.mean(), vals.std() or 1.0) if len(vals) else (0.0, 1.0)
                c = row[cand]
                # rank = 1 + items scored strictly higher (ties share a rank)
                ordered = np.sort(np.where(finite, row, -np.inf))
                r = (len(row) - np.searchsorted(ordered, c, side="right") + 1).astype(np.float32)
                in_top += r <= self.candidates
                cols += [
                    np.where(np.isfinite(c), c, -1e3),
                    np.log1p(r),
                    np.where(np.isfinite(c), (c - mu) / sd, -10),
                ]
            item = self.item_stats_[cand]
            f = np.column_stack(
                [
                    *cols,
                    in_top,
                    item[:, 0],
                    item[:, 1],
                    np.full(len(cand), activity[j], dtype=np.float32),
                ]
            )
            cands.append(cand)
            feats.append(f.astype(np.float32))
        return cands, feats

    def _fit_bases(
        self, dataset: Dataset, inner: Dataset, st: Stages
    ) -> tuple[list[Recommender | None], list[Recommender]]:
        """Base models for the ranker's examples, and those already fitted for serving.

        With ``holdout="last"``, a model that can score users as before their last item
        without having trained on it (:meth:`SASRec.without_last_items`) is fitted once,
        on everything; every other model is fitted on ``inner`` now and on everything
        after the ranker.
        """
        full: list[Recommender | None] = []
        views: list[Recommender] = []
        for template in self.models:
            name = type(template).__name__
            model = None
            if self.holdout == "last" and hasattr(template, "without_last_items"):
                with st.stage(f"fitting {name} on all the data, for the ranker and serving"):
                    model = clone(template).fit(dataset)
                    reusable = _reusable(model)
                if reusable:
                    full.append(model)
                    views.append(model.without_last_items()[0])  # type: ignore[attr-defined]
                    continue
            full.append(model)
            with st.stage(f"fitting {name} without each user's held-out item"):
                views.append(clone(template).fit(inner))
        return full, views

    def _seen_cols(self, X: sp.csr_matrix, rows: np.ndarray) -> list[np.ndarray]:
        return [X.indices[X.indptr[r] : X.indptr[r + 1]] for r in rows]

    # ----- fitting --------------------------------------------------------------
    def _fit(self, dataset: Dataset, X: sp.csr_matrix) -> None:
        # each base model is fitted twice, or once when it can be reused (then its second
        # stage says so): its fits, candidates with their features, and the ranker
        n_stages = 2 * len(self.models) + 2
        with limit(self.threads), stages("Hybrid", n_stages, log, self.progress) as st:
            self._fit_stages(dataset, X, st)

    def _fit_stages(self, dataset: Dataset, X: sp.csr_matrix, st: Stages) -> None:
        if not self.models:
            raise ValueError("Hybrid needs at least one base model")
        if self.holdout not in ("last", "random"):
            raise ValueError(f"holdout must be 'last' or 'random', not {self.holdout!r}")
        if self.ranker not in ("auto", "linear", "lambdarank"):
            raise ValueError(
                f"ranker must be 'auto', 'linear' or 'lambdarank', not {self.ranker!r}"
            )
        if self.holdout == "last":
            inner, held = last_item_holdout(dataset)
        else:
            inner, held = random_item_holdout(dataset, random_state=self.random_state)
        full_models, inner_models = self._fit_bases(dataset, inner, st)
        # only holdout="last" keeps full models that scored their users before the last item
        reused = [
            set(m.without_last_items()[1])  # type: ignore[union-attr]
            for m in full_models
            if _reusable(m)
        ]
        if reused:
            held = held[held["user_id"].isin(set.intersection(*reused))]
        self.models_ = inner_models  # feature_names() reads the model types
        users = held["user_id"].tolist()
        X_inner = inner.interactions(user_ids=self.user_ids_, item_ids=self.item_ids_).matrix
        # the examples see popularity and recency as they were before the held-out items
        self.item_stats_ = self._item_stats(inner, X_inner)
        rows = self.user_ids_.get_indexer(pd.Index(users, dtype=object))
        activity = np.log1p(np.diff(X_inner.indptr))[rows].astype(np.float32)
        with st.stage(f"candidates and features of {len(users)} held-out items"):
            cands, feats = self._candidates_and_features(
                [m.score_all(users) for m in inner_models],
                self._seen_cols(sp.csr_matrix(X_inner), rows),
                activity,
            )
        target = self.item_ids_.get_indexer(pd.Index(held["item_id"], dtype=object))
        labels = [(c == t).astype(np.int32) for c, t in zip(cands, target, strict=True)]
        useful = [k for k, lab in enumerate(labels) if lab.any()]
        self.candidate_recall_ = len(useful) / max(len(labels), 1)
        if not useful:
            raise ValueError(
                "no held-out item was among any base model's candidates; raise `candidates`"
            )
        X_train = [feats[k] for k in useful]
        y_train = [labels[k] for k in useful]
        self.ranker_cv_ = {}
        choice = self.ranker
        what = (
            "choosing and training the ranker"
            if choice == "auto"
            else f"training the {choice} ranker"
        )
        with st.stage(f"{what} on {len(useful)} users"):
            if choice == "auto":
                self.ranker_cv_ = {
                    kind: self._cross_validate(kind, X_train, y_train)
                    for kind in ("linear", "lambdarank")
                }
                choice = max(self.ranker_cv_, key=self.ranker_cv_.__getitem__)
                log.info("Hybrid: ranker cross-validation NDCG@10 %s", self.ranker_cv_)
            self.ranker_kind_ = choice
            self.ranker_ = self._train_ranker(choice, X_train, y_train)
        self.item_stats_ = self._item_stats(dataset, X)
        self.models_ = []
        for model, template in zip(full_models, self.models, strict=True):
            name = type(template).__name__
            if model is not None:
                with st.stage(f"{name} is already fitted on all the data"):
                    self.models_.append(model)
                continue
            with st.stage(f"fitting {name} on all the data, for serving"):
                self.models_.append(clone(template).fit(dataset))
        self.activity_ = np.log1p(np.diff(X.indptr)).astype(np.float32)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        users = [str(u) for u in self.user_ids_[rows]]
        per_model = [m.score_all(users) for m in self.models_]
        return self._ranked(
            per_model, self._seen_cols(sp.csr_matrix(self.seen_), rows), self.activity_[rows]
        )

    def _history_scores(self, history: History, X: sp.csr_matrix) -> np.ndarray:
        per_model = [m._fold_in(history)[None, :] for m in self.models_]
        activity = np.log1p(np.array([X.nnz], dtype=np.float32))
        return self._ranked(per_model, [X.indices], activity)[0]

    def _ranked(
        self, per_model: list[np.ndarray], seen: list[np.ndarray], activity: np.ndarray
    ) -> np.ndarray:
        """The ranker's scores of each user's candidates; every other item below them."""
        # items outside every candidate pool rank below them, in the first model's order
        base = per_model[0]
        out = np.where(np.isfinite(base), -1e6 + base, -1e6).astype(np.float32)
        cands, feats = self._candidates_and_features(per_model, seen, activity)
        for j, (c, f) in enumerate(zip(cands, feats, strict=True)):
            out[j, c] = _predict(self.ranker_, f)
        return out

    def forget_user(self, user_id: str) -> bool:
        """Erase the user from the hybrid and from each of its fitted base models.

        The hybrid's own rows (seen items, activity) are erased as
        :meth:`Recommender.forget_user` does, and each base model forgets the user as it
        forgets anyone; the ranker holds no user's data (it weighs features of
        candidates), so it stays.

        Returns
        -------
        bool
            Whether the hybrid or any of its base models had a row for the user.
        """
        known = super().forget_user(user_id)
        for model in self.models_:
            known = model.forget_user(user_id) or known
        return known

    def warm(self) -> None:
        """Warm every fitted base model (see :meth:`Recommender.warm`)."""
        for model in getattr(self, "models_", ()):
            model.warm()

    def attach_encoder(self, encoder: Encoder) -> None:
        """Attach ``encoder`` to every base model, templates and fitted ones (see :meth:`Recommender.attach_encoder`)."""
        for model in (*self.models, *getattr(self, "models_", ())):
            model.attach_encoder(encoder)

    # ----- the ranker -----------------------------------------------------------
    def _train_ranker(
        self, kind: str, X: list[np.ndarray], y: list[np.ndarray]
    ) -> LinearRanker | LightGBMRanker:
        """A ranker fitted on per-user groups of candidate features and 0/1 labels."""
        if kind == "linear":
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            pipeline = make_pipeline(
                StandardScaler(), LogisticRegression(C=self.C, max_iter=2000)
            ).fit(np.vstack(X), np.concatenate(y))
            return LinearRanker.from_pipeline(pipeline)
        import lightgbm as lgb

        ranker = lgb.LGBMRanker(
            objective="lambdarank",
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=10,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            random_state=self.random_state,
            deterministic=True,
            force_row_wise=True,
            n_jobs=resolve(self.threads),
            verbose=-1,
        ).fit(
            np.vstack(X),
            np.concatenate(y),
            group=[len(g) for g in y],
            feature_name=self.feature_names(),
        )
        return LightGBMRanker(ranker.booster_.model_to_string())

    def _cross_validate(
        self, kind: str, X: list[np.ndarray], y: list[np.ndarray], folds: int = 3
    ) -> float:
        """Mean NDCG@10 of the held-out item among its user's candidates, over user folds."""
        fold = np.random.default_rng(self.random_state).permutation(len(X)) % folds
        total = 0.0
        for f in range(min(folds, len(X))):
            train = np.flatnonzero(fold != f)
            if not len(train):
                continue
            model = self._train_ranker(kind, [X[k] for k in train], [y[k] for k in train])
            for k in np.flatnonzero(fold == f):
                scores = _predict(model, X[k])
                rank = int((scores > scores[np.argmax(y[k])]).sum())
                total += 1.0 / np.log2(rank + 2.0) if rank < 10 else 0.0
        return total / len(X)

    def feature_importance(self) -> pd.Series:
        """Weight of each ranker feature, largest first.

        LambdaRank: total gain of the feature's splits; linear: the absolute coefficient
        of the standardised feature.
        """
        self._check_fitted()
        if self.ranker_kind_ == "linear":
            weight = np.abs(self.ranker_.coef_[0])
        else:
            weight = self.ranker_.booster_.feature_importance(importance_type="gain")
        return pd.Series(weight, index=self.feature_names()).sort_values(ascending=False)


class LinearRanker:
    """A fitted standardise-then-logistic-regression ranker, kept as its numbers.

    Scores are the pipeline's ``decision_function`` (the log-odds), computed as
    scikit-learn computes them, so a saved hybrid opens and scores without importing
    scikit-learn (half a second of a command-line question).

    Parameters
    ----------
    mean, scale
        The scaler's per-feature mean and scale.
    coef, intercept
        The logistic regression's ``(1, n_features)`` weights and ``(1,)`` intercept.

    Examples
    --------
    >>> r = LinearRanker(np.array([1.0, 0.0]), np.array([2.0, 1.0]), np.array([[1.0, -1.0]]), np.array([0.5]))
    >>> r.decision_function(np.array([[3.0, 1.0]], dtype=np.float32)).tolist()
    [0.5]
    """

    def __init__(
        self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray
    ) -> None:
        self.mean_ = mean
        self.scale_ = scale
        self.coef_ = coef
        self.intercept_ = intercept

    @classmethod
    def from_pipeline(cls, pipeline: Any) -> LinearRanker:
        """The ranker of a fitted ``make_pipeline(StandardScaler(), LogisticRegression())``."""
        scaler, regression = pipeline[0], pipeline[-1]
        return cls(scaler.mean_, scaler.scale_, regression.coef_, regression.intercept_)

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        """Log-odds of each row of ``features`` (as the pipeline's ``decision_function``)."""
        # in place and in the features' own float type, as StandardScaler.transform does
        z = np.array(features, dtype=np.result_type(features.dtype, np.float32))
        z -= self.mean_
        z /= self.scale_
        return (z @ self.coef_.T + self.intercept_).ravel()


class LightGBMRanker:
    """A trained LightGBM booster, kept as its model text; lightgbm loads when it first predicts.

    Importing lightgbm imports scikit-learn, together about a second: a saved hybrid
    whose ranker is linear never pays it, and one whose ranker is LambdaRank pays it at
    its first score rather than when it opens.

    Parameters
    ----------
    model
        The booster's ``model_to_string()``.
    """

    def __init__(self, model: str) -> None:
        self.model = model

    @property
    def booster_(self) -> Any:
        """The ``lightgbm.Booster``, loaded from :attr:`model` on first use."""
        booster = self.__dict__.get("_booster")
        if booster is None:
            import lightgbm as lgb

            booster = self._booster = lgb.Booster(model_str=self.model)
        return booster

    def __getstate__(self) -> dict[str, Any]:
        return {"model": self.model}


def _predict(ranker: LinearRanker | LightGBMRanker, features: np.ndarray) -> np.ndarray:
    """Ranking scores of a fitted linear or LightGBM ranker.

    LightGBM predicts on one thread: the rows here are one user's candidates (or a fold
    of users'), too few to pay for starting its threads (about 29 ms a call measured on
    a busy machine), and each row's score does not depend on the threads.
    """
    if isinstance(ranker, LightGBMRanker):
        return ranker.booster_.predict(features, num_threads=1)
    return ranker.decision_function(features)
