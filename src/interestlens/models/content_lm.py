"""Content-based recommendation with a pretrained language model.

Users and items meet in the embedding space of the text encoder: an item is the
embedding of its composed text; a user is a few vectors built from the items they
engaged with (long-term mean and most recent items, weighted by signal) and from the
words they wrote (searches, tags, reviews). Because everything is text, it serves users
with a single event or only a search, and items nobody has touched yet — the cold
starts collaborative models cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from interestlens.data import Dataset
from interestlens.models.base import History, Recommender
from interestlens.text import Encoder, compose_item_text


def _normalise(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n == 0, 1.0, n)


def _sum_rows(rows: np.ndarray, weights: np.ndarray, vectors: np.ndarray, n: int) -> np.ndarray:
    """``(n, dim)`` float32 sums of ``weights[j] * vectors[j]`` into row ``rows[j]``.

    One sparse product (a row per user, a column per vector), accumulated in float64 in
    the order of ``vectors`` and rounded once: each row's sum is computed alone, so a
    user folded in by themselves gets exactly the vectors the fit gave them among all.
    """
    order = np.argsort(rows, kind="stable")  # each row's vectors in their order
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))])
    M = sp.csr_matrix(
        (np.asarray(weights, dtype=np.float64)[order], order, indptr), shape=(n, len(rows))
    )
    return np.asarray(M @ vectors.astype(np.float64)).astype(np.float32)


class ContentLM(Recommender):
    """Recommend items whose text matches the user's interests.

    Parameters
    ----------
    recent
        Number of most recent items forming the short-term vector.
    recent_weight
        Weight of the short-term vector against the long-term one in the score.
    text_weight
        Weight of the user's own words (searches, tags, reviews) in the long-term vector.
    popularity_weight
        Weight of (log) popularity added to the cosine score; a small prior helps on
        catalogues where text says little.
    text_fields
        Item fields composed into the text (see :func:`~interestlens.text.compose_item_text`).
    encoder
        Text encoder to use (default: the bundled one, built on first use).
    random_state
        Unused: the model is deterministic; kept for the common signature.

    Examples
    --------
    >>> from interestlens.data import Dataset, Event, Item
    >>> items = [Item("a", "Star wars in space"), Item("b", "Aliens attack the spaceship"),
    ...          Item("c", "A romantic dinner in Paris")]
    >>> ds = Dataset.from_records([Event("u", "a", "click")], items)
    >>> ContentLM(popularity_weight=0).fit(ds).recommend("u", k=1)["item_id"].tolist()  # doctest: +SKIP
    ['b']
    """

    _components = ("encoder",)
    _reads_text = True
    _user_state = ("long_", "short_")

    def __init__(
        self,
        recent: int = 10,
        recent_weight: float = 0.5,
        text_weight: float = 0.3,
        popularity_weight: float = 0.05,
        text_fields: Sequence[str] = ("title", "categories", "text", "tags"),
        encoder: Encoder | None = None,
        *,
        random_state: int = 0,
    ) -> None:
        super().__init__(random_state=random_state)
        self.recent = recent
        self.recent_weight = recent_weight
        self.text_weight = text_weight
        self.popularity_weight = popularity_weight
        self.text_fields = tuple(text_fields)
        self.encoder = encoder

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["encoder"] = None  # the model is not part of the saved recommender
        return state

    def _encoder(self) -> Encoder:
        if self.encoder is None:
            self.encoder = Encoder()
        return self.encoder

    def _fit(self, dataset: Dataset, X: sp.csr_matrix) -> None:
        text = compose_item_text(dataset.catalogue(), dataset.events, fields=self.text_fields)
        self.item_vectors_ = _normalise(self._encoder().encode(text.tolist()).astype(np.float32))
        self.log_popularity_ = np.log1p(np.asarray(X.sum(axis=0)).ravel()).astype(np.float32)
        self.log_popularity_ /= max(float(self.log_popularity_.max()), 1.0)
        ev = dataset.events
        ratings = ev.loc[ev["type"] == "rating", "value"].to_numpy(dtype=np.float64)
        self.pivot_ = float(np.median(ratings)) if len(ratings) else 0.0
        self.long_, self.short_ = self._user_vectors(dataset)

    def _user_vectors(self, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """Long-term and short-term vectors of every user in ``dataset.user_ids`` order."""
        ev = dataset.sorted_events()
        cols = self._columns(ev["item_id"].to_numpy(dtype=object))
        return self._vectors(ev, cols, dataset.user_index(ev["user_id"]), len(dataset.user_ids))

    def _vectors(
        self, ev: pd.DataFrame, cols: np.ndarray, users: np.ndarray, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """User vectors from events sorted by user then time.

        ``cols`` holds each event's item column (-1: none) and ``users`` its user's row.
        """
        types = ev["type"].to_numpy(dtype=object)
        value = ev["value"].to_numpy(dtype=np.float64)
        weight = np.where(types == "rating", np.clip(value - self.pivot_ + 1.0, 0.0, None), 1.0)
        has_item = cols >= 0
        vectors = self.item_vectors_
        # long-term: signal-weighted sum of item vectors
        long_ = _sum_rows(users[has_item], weight[has_item], vectors[cols[has_item]], n)
        # short-term: the last `recent` items of each user
        if n == 1:
            pos_from_end = np.cumsum(has_item[::-1])[::-1]
        else:
            pos_from_end = pd.Series(has_item[::-1]).groupby(users[::-1]).cumsum().to_numpy()[::-1]
        last = has_item & (pos_from_end <= self.recent)
        short = _sum_rows(users[last], np.ones(int(last.sum())), vectors[cols[last]], n)
        # the user's own words
        text = ev["text"].to_numpy(dtype=object)
        wrote = ~pd.isna(text) & np.isin(types, ("search", "tag", "review"))
        if wrote.any():
            vecs = self._encoder().encode(text[wrote].tolist())
            words = _sum_rows(users[wrote], np.ones(len(vecs)), vecs, n)
            has_words = np.linalg.norm(words, axis=1) > 0
            blend = np.where(has_words, self.text_weight, 0.0)[:, None]
            long_ = _normalise(long_) * (1 - blend) + _normalise(words) * blend
        # float32 throughout: a float64 user against float32 items leaves BLAS (10x slower)
        return _normalise(long_).astype(np.float32), _normalise(short).astype(np.float32)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        user = (1 - self.recent_weight) * self.long_[rows] + self.recent_weight * self.short_[rows]
        s = user @ self.item_vectors_.T
        return (s + self.popularity_weight * self.log_popularity_).astype(np.float32)

    def _history_scores(self, history: History, X: sp.csr_matrix) -> np.ndarray:
        ev = history.sorted_events()
        cols = history.sorted_columns(self)
        long_, short = self._vectors(ev, cols, np.zeros(len(ev), dtype=np.int64), 1)
        user = (1 - self.recent_weight) * long_ + self.recent_weight * short
        if not np.any(user):
            return self._cold_scores(1)[0]
        return (user @ self.item_vectors_.T + self.popularity_weight * self.log_popularity_)[0]

    def score_text(self, texts: Sequence[str]) -> np.ndarray:
        """Scores of every item for users known only by what they wrote (one row per text)."""
        self._check_fitted()
        q = _normalise(self._encoder().encode(list(texts)))
        return (q @ self.item_vectors_.T + self.popularity_weight * self.log_popularity_).astype(
            np.float32
        )

    def item_vectors(self, item_ids: Sequence[str]) -> np.ndarray:
        """Text vectors of catalogue items (zeros for unknown ones)."""
        self._check_fitted()
        cols = self.item_ids_.get_indexer(pd.Index([str(i) for i in item_ids], dtype=object))
        out = np.zeros((len(cols), self.item_vectors_.shape[1]), dtype=np.float32)
        out[cols >= 0] = self.item_vectors_[cols[cols >= 0]]
        return out
