from __future__ import annotations

from functools import lru_cache

import numpy as np

from interestlens.data import Dataset, Event, Item
from interestlens.models.content_lm import ContentLM
from interestlens.text import Encoder
from tests.models.contract import RecommenderContract


@lru_cache(maxsize=1)
def _encoder() -> Encoder:
    return Encoder(progress=False)


class TestContentLM(RecommenderContract):
    def make_model(self, random_state: int = 0):
        return ContentLM(encoder=_encoder(), random_state=random_state)


def _catalogue():
    return [
        Item("s1", "Star Wars", text="space opera with starships and aliens"),
        Item("s2", "Alien", text="an alien hunts the crew of a spaceship"),
        Item("s3", "Interstellar", text="astronauts travel through a wormhole in space"),
        Item("r1", "Amelie", text="a shy waitress in Paris finds love"),
        Item("r2", "Notting Hill", text="a romance between a bookseller and a film star"),
        Item("r3", "Before Sunrise", text="two strangers fall in love on a train to Vienna"),
    ]


def test_one_event_is_enough_and_new_items_with_text_are_served():
    events = [Event("fan", "s1", "click"), Event("x", "r1", "click"), Event("x", "r2", "click")]
    ds = Dataset.from_records(events, _catalogue())
    model = ContentLM(encoder=_encoder(), popularity_weight=0.0).fit(ds)
    top2 = model.recommend("fan", k=2)["item_id"].tolist()
    assert set(top2) == {"s2", "s3"}  # s2 and s3 were never touched by anyone


def test_a_user_with_only_a_search_gets_matching_items():
    events = [
        Event("searcher", None, "search", text="movies about space travel"),
        Event("x", "r1", "click"),
    ]
    ds = Dataset.from_records(events, _catalogue())
    model = ContentLM(encoder=_encoder(), popularity_weight=0.0).fit(ds)
    assert model.recommend("searcher", k=2)["item_id"].str.startswith("s").all()


def test_score_text_for_users_known_only_by_words():
    ds = Dataset.from_records([Event("x", "r1", "click")], _catalogue())
    model = ContentLM(encoder=_encoder(), popularity_weight=0.0).fit(ds)
    s = model.score_text(["a love story"])[0]
    best = model.item_ids_[int(np.argmax(s))]
    assert best.startswith("r")


def test_encoder_is_not_saved_with_the_model(tmp_path):
    ds = Dataset.from_records([Event("x", "r1", "click")], _catalogue())
    model = ContentLM(encoder=_encoder()).fit(ds)
    model.save(tmp_path / "m.pkl")
    assert (tmp_path / "m.pkl").stat().st_size < 200_000
    loaded = ContentLM.load(tmp_path / "m.pkl")
    assert loaded.encoder is None
    np.testing.assert_array_equal(loaded.score_all(["x"]), model.score_all(["x"]))
