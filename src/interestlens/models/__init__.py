"""Recommenders behind one base class, working on ids.

Build one by name with :func:`build_model`; :data:`MODELS` lists the names.
"""

from __future__ import annotations

import importlib
from typing import Any

from interestlens.models.als import ALS
from interestlens.models.base import Recommender, top_k
from interestlens.models.bpr import BPR
from interestlens.models.content_lm import ContentLM
from interestlens.models.ease import EASE
from interestlens.models.hybrid import Hybrid
from interestlens.models.item_knn import ItemKNN
from interestlens.models.popularity import Popularity
from interestlens.models.user_knn import UserKNN

#: Model name -> (module, class). Imported on first use, so a model whose optional
#: dependency is missing does not break the others.
MODELS: dict[str, tuple[str, str]] = {
    "popularity": ("interestlens.models.popularity", "Popularity"),
    "userknn": ("interestlens.models.user_knn", "UserKNN"),
    "itemknn": ("interestlens.models.item_knn", "ItemKNN"),
    "als": ("interestlens.models.als", "ALS"),
    "bpr": ("interestlens.models.bpr", "BPR"),
    "ease": ("interestlens.models.ease", "EASE"),
    "contentlm": ("interestlens.models.content_lm", "ContentLM"),
    "sasrec": ("interestlens.models.sasrec", "SASRec"),
    "hybrid": ("interestlens.models.hybrid", "Hybrid"),
}
#: Base models of the default pipeline (the Hybrid's candidate generators).
HYBRID_BASE = ("sasrec", "ease", "itemknn", "als", "contentlm")
_NEEDS_ENCODER = {"contentlm", "sasrec"}


def model_class(name: str) -> type[Recommender]:
    """The class registered under ``name``."""
    key = name.lower()
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    module, cls = MODELS[key]
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"model {name!r} is not available: {exc}") from exc


def build_model(
    name: str, *, encoder: Any = None, random_state: int = 0, **params: Any
) -> Recommender:
    """A model by name with its default hyperparameters (``params`` override them).

    ``"hybrid"`` builds the default pipeline over :data:`HYBRID_BASE`. Models that read
    text share ``encoder`` when one is given.

    Examples
    --------
    >>> build_model("popularity", window_days=30)
    Popularity(window_days=30, random_state=0)
    """
    key = name.lower()
    cls = model_class(key)
    if key == "hybrid" and "models" not in params:
        params["models"] = [
            build_model(b, encoder=encoder, random_state=random_state) for b in HYBRID_BASE
        ]
    if key in _NEEDS_ENCODER and encoder is not None:
        params.setdefault("encoder", encoder)
    return cls(random_state=random_state, **params)


__all__ = [
    "ALS",
    "BPR",
    "EASE",
    "HYBRID_BASE",
    "MODELS",
    "ContentLM",
    "Hybrid",
    "ItemKNN",
    "Popularity",
    "Recommender",
    "UserKNN",
    "build_model",
    "model_class",
    "top_k",
]
