from __future__ import annotations

import pandas as pd
import pytest

from interestlens.data.dataset import items_frame
from interestlens.text import compose_item_text
from interestlens.text.compose import user_tags


@pytest.fixture
def items() -> pd.DataFrame:
    return items_frame(
        pd.DataFrame(
            {
                "item_id": ["1", "2", "3"],
                "title": ["Toy Story (1995)", "Heat (1995)", ""],
                "text": ["Toys come alive!", "", ""],
                "categories": [["Animation", "Comedy"], ["Crime", "Thriller"], []],
                "tags": [["Pixar"], [], []],
                "attributes": [
                    {"description": "A cowboy doll is threatened.", "cast": ["Hanks", "Allen"]},
                    {"description": "A heist"},
                    {},
                ],
            }
        )
    )


@pytest.fixture
def events() -> pd.DataFrame:
    rows = [
        ("1", "tag", "toys"),
        ("1", "tag", "pixar"),  # same tag as the item's own "Pixar"
        ("1", "tag", "Funny"),
        ("1", "tag", "funny"),
        ("1", "tag", "funny "),
        ("1", "tag", "toys"),
        ("1", "tag", "   "),
        ("1", "rating", None),
        ("2", "tag", "Al Pacino"),
        ("9", "tag", "unknown item"),
    ]
    return pd.DataFrame(rows, columns=["item_id", "type", "text"])


def test_default_fields_in_order(items, events):
    text = compose_item_text(items, events)
    assert list(text.index) == ["1", "2", "3"] and text.index.name == "item_id"
    assert text["1"] == "Toy Story (1995). Animation, Comedy. Toys come alive! Pixar, funny, toys"
    assert text["2"] == "Heat (1995). Crime, Thriller. Al Pacino"
    assert text["3"] == ""


def test_labels_stay_out_when_categories_are_not_asked_for(items, events):
    text = compose_item_text(items, events, fields=("title", "tags"))
    assert text["1"] == "Toy Story (1995). Pixar, funny, toys"
    assert "Crime" not in text["2"]


def test_attribute_fields(items):
    text = compose_item_text(items, fields=("title", "description", "cast"))
    assert text["1"] == "Toy Story (1995). A cowboy doll is threatened. Hanks, Allen"
    assert text["2"] == "Heat (1995). A heist"


def test_without_events_tags_are_the_items_own(items):
    assert compose_item_text(items, fields=("tags",)).tolist() == ["Pixar", "", ""]


def test_tags_are_capped(items, events):
    text = compose_item_text(items, events, fields=("tags",), max_tags=2)
    assert text["1"] == "Pixar, funny"
    assert compose_item_text(items, events, fields=("tags",), max_tags=0)["1"] == ""


def test_user_tags_by_frequency_with_case_merged(events):
    assert user_tags(events) == {
        "1": ["funny", "toys", "pixar"],
        "2": ["Al Pacino"],
        "9": ["unknown item"],
    }


def test_unknown_field_is_an_error(items):
    with pytest.raises(ValueError, match="titel"):
        compose_item_text(items, fields=("titel",))
    with pytest.raises(ValueError, match="max_tags"):
        compose_item_text(items, max_tags=-1)


def test_on_bundled_movielens_most_movies_have_only_a_title():
    from interestlens import datasets

    ds = datasets.load("ml-latest-small")
    text = compose_item_text(ds.items, ds.events, fields=("title", "tags"))
    assert len(text) == len(ds.items)
    with_tags = (text != ds.items.set_index("item_id")["title"]).mean()
    assert 0.10 < with_tags < 0.25  # 84% of the movies have no tag
    assert not any("Drama" in t for t in text[text.str.contains("Godfather")])
