from __future__ import annotations

import pytest

from interestlens.evaluate import evaluate, make_split
from interestlens.models import Popularity
from tests.evaluate.fakes import RandomRecommender


@pytest.fixture(scope="session")
def loo(ml_small):
    """Temporal leave-last-out of ml-latest-small, ratings as the held-out events."""
    return make_split(ml_small, "loo", target_types="rating")


@pytest.fixture(scope="session")
def pop_vs_random(ml_small, loo):
    """Popularity and a random recommender evaluated on the same LOO split."""
    return evaluate(
        {"popularity": Popularity(), "random": RandomRecommender()},
        ml_small,
        split=loo,
        n_bootstrap=500,
    )
