from __future__ import annotations

from datetime import timedelta

from interestlens.data import Dataset, Event
from interestlens.models import Popularity
from tests.models.contract import T0, RecommenderContract


class TestPopularity(RecommenderContract):
    def make_model(self, random_state: int = 0):
        return Popularity(random_state=random_state)


def test_counts_users_not_events_and_window_limits_time():
    ev = [Event("a", "old", "click", timestamp=T0) for _ in range(1)]
    ev += [
        Event(u, "old", "click", timestamp=T0 + timedelta(minutes=k)) for k, u in enumerate("bcd")
    ]
    ev += [
        Event("a", "new", "click", timestamp=T0 + timedelta(days=100, minutes=k)) for k in range(5)
    ]
    ev += [Event("b", "new", "click", timestamp=T0 + timedelta(days=100, hours=1))]
    ds = Dataset.from_records(ev)
    assert Popularity().fit(ds).recommend("z", k=2)["item_id"].tolist() == ["old", "new"]
    assert Popularity(window_days=30).fit(ds).recommend("z", k=2)["item_id"].tolist() == [
        "new",
        "old",
    ]
