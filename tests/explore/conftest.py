"""A small synthetic world for the policies: four interests, users who move between them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from interestlens.data import Dataset, Event, Item
from interestlens.interests import InterestTaxonomy
from interestlens.models import EASE

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
N_INTERESTS, PER_INTEREST, DIM = 4, 15, 16


def interest_of(item: str) -> int:
    return int(item[1:]) // PER_INTEREST


def world(seed: int = 0) -> tuple[Dataset, np.ndarray]:
    """60 items in 4 interests (embedding clusters); 48 users who start in interest g and
    move on to g + 1; 10 items have no events (new in the catalogue)."""
    rng = np.random.default_rng(seed)
    n_items = N_INTERESTS * PER_INTEREST
    centres = rng.normal(size=(N_INTERESTS, DIM))
    vecs = np.repeat(centres, PER_INTEREST, axis=0) + 0.3 * rng.normal(size=(n_items, DIM))
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    events = []
    for u in range(48):
        g = u % N_INTERESTS
        first = rng.choice(np.arange(g * PER_INTEREST, g * PER_INTEREST + 12), 5, replace=False)
        h = (g + 1) % N_INTERESTS
        then = rng.choice(np.arange(h * PER_INTEREST, h * PER_INTEREST + 12), 3, replace=False)
        for t, i in enumerate([*first, *then]):
            events.append(
                Event(f"u{u}", f"i{i}", "click", timestamp=T0 + timedelta(days=u, hours=t))
            )
    items = [Item(f"i{i}", title=f"item {i}") for i in range(n_items)]
    ds = Dataset.from_records(events, items)
    order = ds.item_ids.get_indexer([f"i{i}" for i in range(n_items)])
    aligned = np.empty_like(vecs)
    aligned[order] = vecs
    return ds, aligned


@pytest.fixture(scope="session")
def tiny_world() -> tuple[Dataset, np.ndarray]:
    return world()


@pytest.fixture(scope="session")
def tiny_ranker(tiny_world) -> EASE:
    ds, _ = tiny_world
    return EASE(l2=10.0).fit(ds)


@pytest.fixture(scope="session")
def tiny_taxonomy(tiny_world, tiny_ranker) -> InterestTaxonomy:
    _, vecs = tiny_world
    return InterestTaxonomy(n_fine=N_INTERESTS, n_broad=2).fit(list(tiny_ranker.item_ids_), vecs)
