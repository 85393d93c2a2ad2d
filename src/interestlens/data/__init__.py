"""Records, datasets, loaders and validation: the bottom layer, importing nothing else of ours."""

from interestlens.data.bandit import BanditLog
from interestlens.data.catalogue import read_items, read_users
from interestlens.data.dataset import Dataset, Interactions, InteractionWeights
from interestlens.data.schema import Event, EventType, Item, User
from interestlens.data.validation import (
    EventValidator,
    LoadReport,
    Rejection,
    ValidationOptions,
)

__all__ = [
    "BanditLog",
    "Dataset",
    "Event",
    "EventType",
    "EventValidator",
    "InteractionWeights",
    "Interactions",
    "Item",
    "LoadReport",
    "Rejection",
    "User",
    "ValidationOptions",
    "read_items",
    "read_users",
]
