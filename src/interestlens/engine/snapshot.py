"""`Snapshot`: everything one fit produced, built by one function and never changed after.

A snapshot is what readers share: the dataset it was fitted on, the item text and
vectors, the interest taxonomy, the fitted profiler and recommenders. What arrives
after it lives in the engine's :class:`~interestlens.engine.ledger.Ledger`, so a
refit builds the next snapshot aside while readers keep answering from this one.

The one exception is erasure: :meth:`Snapshot.forget_user` removes a user's rows from
the fitted components in place (copying a 400 MB model per erasure is not an option),
and returns a snapshot whose dataset no longer holds the user.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from interestlens.data import Dataset
from interestlens.engine.config import Config
from interestlens.interests.profile import InterestProfiler
from interestlens.interests.sentiment import SentimentAnalyzer
from interestlens.interests.taxonomy import InterestTaxonomy, label_terms
from interestlens.models import ContentLM, Recommender, build_model
from interestlens.progress import stages
from interestlens.text import Encoder, compose_item_text
from interestlens.threads import limit

log = logging.getLogger(__name__)


@dataclass
class _Derived:
    """What is computed from a snapshot on first use (the text matcher), under a lock of its own."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    values: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, build: Callable[[], Any]) -> Any:
        """The value ``name``, built once; only readers asking for a value not yet built wait."""
        value = self.values.get(name)
        if value is None:
            with self.lock:
                value = self.values.get(name)
                if value is None:
                    value = self.values[name] = build()
        return value

    def __getstate__(self) -> dict[str, Any]:
        return {}  # rebuilt on first use after loading

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.lock = threading.Lock()
        self.values = {}


@dataclass(frozen=True)
class Snapshot:
    """One fit's results (see the module docstring).

    Attributes
    ----------
    generation
        1 for the first fit, one more for each refit.
    watermark
        The event store's sequence number of the newest event the snapshot holds:
        :meth:`Engine.open <interestlens.engine.Engine.open>` replays every stored event
        after it.
    created
        When the fit finished (Unix seconds).
    """

    generation: int
    watermark: int
    created: float
    dataset: Dataset
    item_ids: pd.Index
    item_text: pd.Series
    item_vectors: np.ndarray
    item_terms: dict[str, frozenset[str]]
    taxonomy: InterestTaxonomy
    profiler: InterestProfiler
    recommender: Recommender | None = None
    content: ContentLM | None = None
    #: users x items: who engaged with what (for the co-engagement in reasons)
    item_users: sp.csc_matrix | None = None
    #: the rows of ``item_users``
    user_ids: pd.Index | None = None
    derived: _Derived = field(default_factory=_Derived, compare=False)

    @cached_property
    def user_rows(self) -> dict[str, np.ndarray]:
        """Each user's rows in ``dataset.events``."""
        return self.dataset.events.groupby("user_id", sort=False).indices

    @cached_property
    def titles(self) -> dict[str, str]:
        """Each item's title."""
        items = self.dataset.items
        return dict(zip(items["item_id"].astype(str), items["title"].astype(str), strict=True))

    def user_events(self, user_id: str) -> pd.DataFrame:
        """One user's events in the fitted dataset (empty for a user it does not hold)."""
        rows = self.user_rows.get(str(user_id), np.zeros(0, dtype=np.int64))
        return self.dataset.events.iloc[rows]

    def components(self) -> dict[str, Any]:
        """The fitted components that hold per-user state, by name."""
        out: dict[str, Any] = {"profiler": self.profiler}
        if self.recommender is not None:
            out["recommender"] = self.recommender
        if self.content is not None and self.content is not self.recommender:
            fitted = getattr(self.recommender, "models_", [])
            if not any(m is self.content for m in fitted):
                out["content"] = self.content
        return out

    def forget_user(self, user_id: str) -> tuple[Snapshot, dict[str, bool]]:
        """Erase a user from every component (in place) and from the dataset (in the copy returned).

        Returns the snapshot without the user's events, and per component whether it held
        the user. Item-side statistics the user contributed (popularity, similarities,
        item factors, the taxonomy) stay until the next refit.
        """
        user_id = str(user_id)
        held = {name: bool(c.forget_user(user_id)) for name, c in self.components().items()}
        ev = self.dataset.events
        mine = (ev["user_id"] == user_id).to_numpy()
        held["dataset"] = bool(mine.any())
        if not mine.any():
            return self, held
        ds = self.dataset
        users = ds.users[ds.users["user_id"] != user_id]
        keep = Dataset(ev[~mine], ds.items, users, name=ds.name)
        item_users, user_ids = self.item_users, self.user_ids
        if item_users is not None and user_ids is not None and user_id in user_ids:
            row = user_ids.get_loc(user_id)
            item_users = item_users.tocsr(copy=True)
            item_users.data[item_users.indptr[row] : item_users.indptr[row + 1]] = 0
            item_users.eliminate_zeros()
            item_users = item_users.tocsc()
            user_ids = user_ids.delete(row).insert(row, f"\x00forgotten:{row}")
        return replace(
            self, dataset=keep, item_users=item_users, user_ids=user_ids, derived=_Derived()
        ), held


def _recommenders(dataset: Dataset, cfg: Config, encoder: Encoder) -> tuple[Recommender, ContentLM]:
    """The configured recommender, and the ContentLM that serves cold starts (its own where it has one)."""

    def model(name: str, **params: Any) -> Recommender:
        if name == "contentlm":
            params["text_fields"] = cfg.item_text_fields
        if name == "sasrec":
            params["precision"] = cfg.precision
        return build_model(name, encoder=encoder, random_state=cfg.random_state, **params)

    hybrid = cfg.recommender == "hybrid"
    bases = {"models": [model(m) for m in cfg.hybrid_models]} if hybrid else {}
    recommender = model(cfg.recommender, **bases).fit(dataset)
    fitted = [recommender, *getattr(recommender, "models_", [])]
    content = next((m for m in fitted if isinstance(m, ContentLM)), None)
    if content is None:
        content = ContentLM(text_fields=cfg.item_text_fields, encoder=encoder)
        content.fit(dataset)
    return recommender, content


def build_snapshot(
    dataset: Dataset,
    config: Config,
    encoder: Encoder,
    sentiment: SentimentAnalyzer,
    *,
    previous: Snapshot | None = None,
    watermark: int = 0,
) -> Snapshot:
    """Fit everything on ``dataset``: item text and vectors, taxonomy, profiles, recommenders.

    ``previous`` (the snapshot this one replaces) keeps interest ids stable across
    refits; the new snapshot's generation is one more than its. The work runs within
    ``config.threads`` threads (:func:`interestlens.threads.limit`); each stage shows on a
    progress bar on a terminal and is logged at INFO level with its duration.
    """
    cfg = config
    ids = dataset.item_ids
    items = dataset.catalogue()
    n_stages = 3 + (cfg.recommender != "none")
    with limit(cfg.threads), stages("fit", n_stages, log) as fit:
        with fit.stage(f"embedding the text of {len(items)} items"):
            text = compose_item_text(items, dataset.events, fields=cfg.item_text_fields)
            vectors = encoder.encode(text.tolist())
        interactions = dataset.interactions(user_ids=dataset.user_ids, item_ids=ids)
        terms = label_terms(items, dataset.events)
        with fit.stage(f"clustering {len(ids)} items into interests"):
            taxonomy = InterestTaxonomy(
                cfg.n_fine, cfg.n_broad, text_weight=cfg.text_weight, random_state=cfg.random_state
            ).fit(
                list(ids),
                vectors,
                item_user=interactions.matrix.T.tocsr(),
                terms=terms,
                titles=items["title"].tolist(),
                previous=previous.taxonomy if previous is not None else None,
            )
        with fit.stage(f"building {dataset.n_users} user profiles"):
            profiler = InterestProfiler(taxonomy, encoder.encode, sentiment, cfg.profile).fit(
                dataset.events
            )
        recommender = content = None
        if cfg.recommender != "none":
            with fit.stage(f"fitting the {cfg.recommender} recommender"):
                recommender, content = _recommenders(dataset, cfg, encoder)
    return Snapshot(
        generation=1 if previous is None else previous.generation + 1,
        watermark=int(watermark),
        created=time.time(),
        dataset=dataset,
        item_ids=ids,
        item_text=text,
        item_vectors=vectors,
        item_terms={str(i): frozenset(t) for i, t in zip(items["item_id"], terms, strict=True)},
        taxonomy=taxonomy,
        profiler=profiler,
        recommender=recommender,
        content=content,
        item_users=sp.csc_matrix(interactions.matrix != 0, dtype=np.float32),
        user_ids=dataset.user_ids,
    )
