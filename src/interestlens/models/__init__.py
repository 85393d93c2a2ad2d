"""Recommenders behind one base class, working on ids.

Build one by name with :func:`build_model`; :data:`MODELS` is the registry of names.
Each model class is imported on first use (``from interestlens.models import EASE``
works as usual), so opening a saved engine imports only the models it holds; SASRec
imports torch only to fit or fold in a history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interestlens.models.base import Recommender, top_k
from interestlens.registry import Registry

if TYPE_CHECKING:
    from interestlens.models.als import ALS
    from interestlens.models.bpr import BPR
    from interestlens.models.content_lm import ContentLM
    from interestlens.models.ease import EASE
    from interestlens.models.hybrid import Hybrid
    from interestlens.models.item_knn import ItemKNN
    from interestlens.models.popularity import Popularity
    from interestlens.models.sasrec import SASRec
    from interestlens.models.user_knn import UserKNN

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


def __getattr__(name: str) -> Any:
    # a model class by its own name, imported on first use through the registry
    if name.lower() in MODELS and MODELS[name.lower()].__name__ == name:
        return MODELS[name.lower()]
    raise AttributeError(f"module 'interestlens.models' has no attribute {name!r}")


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
    "SASRec",
    "UserKNN",
    "build_model",
    "top_k",
]
