from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from interestlens.data import Dataset, Event, Item
from interestlens.explore import ColdStartBoost
from interestlens.models import Popularity
from tests.explore.policy_contract import NOW, USER, PolicyContract, draws

#: Items of the tiny world without a single event (the last three of each interest).
NEVER_SEEN = {f"i{g * 15 + j}" for g in range(4) for j in (12, 13, 14)}


class TestColdStartBoost(PolicyContract):
    def make(self, ranker, **params):
        return ColdStartBoost(ranker, **params)

    def test_cold_items_are_young_and_rarely_shown(self, policy, tiny_world):
        # by June every item with events is older than 30 days: only the never seen are cold
        assert set(policy.cold_items(now=pd.Timestamp("2024-06-01", tz="UTC"))) == NEVER_SEEN
        recent = set(policy.cold_items(now=NOW)) - NEVER_SEEN  # first seen in the last 30 days
        first = policy.first_seen_[policy.item_ids_.get_indexer(list(recent))]
        assert recent and ((NOW - first) <= pd.Timedelta(days=30)).all()
        # within a year every item is young: the rarely engaged ones are cold
        p = ColdStartBoost(policy.ranker, max_age=365, min_impressions=8).fit(tiny_world[0])
        counts = tiny_world[0].events["item_id"].value_counts()
        rare = {i for i, c in counts.items() if c < 8}
        assert rare and set(p.cold_items(now=NOW)) == NEVER_SEEN | rare

    def test_explored_items_are_cold_and_graduate_after_enough_impressions(
        self, tiny_world, tiny_ranker
    ):
        ds, _ = tiny_world
        p = ColdStartBoost(tiny_ranker, weight=0.5, min_impressions=4, n_cold=12).fit(ds)
        shown = [
            i
            for _ in range(40)
            for s in [p.recommend(USER, k=4, now=NOW)]
            for i, e in zip(s.item_ids, s.explored, strict=True)
            if e
        ]
        assert shown and set(shown) <= NEVER_SEEN
        assert not p.cold_items(now=NOW)  # 40 slates x 2 cold slots = 80 impressions over 12 items
        assert not any(any(p.recommend(USER, k=4, now=NOW).explored) for _ in range(5))

    def test_weight_is_the_default_share_and_explore_overrides_it(self, tiny_world, tiny_ranker):
        ds, _ = tiny_world
        p = ColdStartBoost(tiny_ranker, weight=0.25, n_cold=12).fit(ds)
        assert "explore" not in p.get_params() and p.get_params()["weight"] == 0.25
        assert np.mean(
            [sum(s.explored) for s in draws(p, 100, k=4, explore=None)]
        ) == pytest.approx(1.0)
        assert np.mean([sum(s.explored) for s in draws(p, 100, k=4, explore=0.5)]) == pytest.approx(
            2.0
        )
        with pytest.raises(TypeError, match="as `weight`"):
            ColdStartBoost(tiny_ranker, explore=0.2)
        with pytest.raises(ValueError, match="weight must be in"):
            ColdStartBoost(tiny_ranker, weight=2.0).fit(ds)

    def test_created_at_counts_as_first_seen(self):
        day = lambda d: pd.Timestamp(d, tz="UTC")  # noqa: E731
        events = [
            Event(f"u{u}", f"i{i}", "click", timestamp=day("2024-01-01"))
            for u in range(3)
            for i in range(3)
        ]
        items = [
            Item("new", created_at=day("2024-02-20")),
            Item("old", created_at=day("2023-01-01")),
        ]
        p = ColdStartBoost(Popularity(), max_age=30).fit(Dataset.from_records(events, items))
        assert p.cold_items(now=day("2024-03-01")) == ["new"]
        assert p.cold_items(now=day("2024-04-01")) == []
