"""Recommenders behind one base class, working on ids.

Build one by name with :func:`build_model`; :data:`MODELS` is the registry of names.
"""

from __future__ import annotations

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
from interestlens.registry import Registry

#: Model name -> class, imported on first use, so a model whose optional dependency is
#: missing (SASRec without torch) does not break the others.
MODELS: Registry[Recommender] = Registry(
    "model",
    {
        "popularity": "interestlens.models.popularity:Popularity",
        "userknn": "interestlens.models.user_knn:UserKNN",
        "itemknn": "interestlens.models.item_knn:ItemKNN",
        "als": "interestlens.models.als:ALS",
        "bpr": "interestlens.models.bpr:BPR",
        "ease": "interestlens.models.ease:EASE",
        "contentlm": "interestlens.models.content_lm:ContentLM",
        "sasrec": "interestlens.models.sasrec:SASRec",
        "hybrid": "interestlens.models.hybrid:Hybrid",
    },
)
#: Base models of the default pipeline (the Hybrid's candidate generators).
HYBRID_BASE = ("sasrec", "ease", "itemknn", "als", "contentlm")


def build_model(
    name: str, *, encoder: Any = None, random_state: int = 0, **params: Any
) -> Recommender:
    """A model by name with its default hyperparameters (``params`` override them).

    ``"hybrid"`` builds the default pipeline over :data:`HYBRID_BASE` unless ``models``
    is given. Models that read text share ``encoder`` when one is given, so one language
    model serves them all.

    Raises
    ------
    ValueError
        An unknown or unavailable model, or a parameter it does not take (see
        :meth:`~interestlens.registry.Registry.build`).

    Examples
    --------
    >>> build_model("popularity", window_days=30)
    Popularity(window_days=30, random_state=0)
    >>> build_model("popularity", window=30)
    Traceback (most recent call last):
    ...
    ValueError: model 'popularity' has no parameter 'window'; known: window_days, random_state
    """
    if name.lower() == "hybrid" and "models" not in params:
        params["models"] = [
            build_model(b, encoder=encoder, random_state=random_state) for b in HYBRID_BASE
        ]
    if encoder is not None and "encoder" in MODELS.parameters(name):
        params.setdefault("encoder", encoder)
    return MODELS.build(name, random_state=random_state, **params)


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
    "top_k",
]
