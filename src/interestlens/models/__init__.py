"""Recommenders behind one base class, working on ids."""

from interestlens.models.base import Recommender, top_k
from interestlens.models.popularity import Popularity

__all__ = ["Popularity", "Recommender", "top_k"]
