"""The fold-in's fast path (``History`` views, dictionary columns) scores exactly as the generic one.

The generic path is what ``score_history`` did before: build a one-user ``Dataset`` from
the events, take its interaction matrix and time order, and map its item ids to the
model's columns with ``Index.get_indexer``. ``DatasetHistory`` gives a model those views,
so each model's scores from both must be equal to the bit.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
import torch

from interestlens.data import Dataset, Event
from interestlens.data.schema import EVENT_COLUMNS
from interestlens.models import ALS, BPR, EASE, ItemKNN, Popularity, UserKNN
from interestlens.models.base import History, Recommender
from interestlens.models.content_lm import ContentLM
from interestlens.models.hybrid import Hybrid, _predict
from interestlens.models.sasrec import SASRec, _item_sequences
from interestlens.text import Encoder
from tests.models.contract import T0, tiny_dataset


@lru_cache(maxsize=1)
def _encoder() -> Encoder:
    return Encoder(progress=False)


def one_user_dataset(events: pd.DataFrame) -> Dataset:
    """The generic path's dataset: the events, every column present, as user "history"."""
    ev = events.copy()
    for c in EVENT_COLUMNS:
        if c not in ev.columns:
            ev[c] = None
    ev["user_id"] = "history"
    return Dataset(ev, Dataset().items, Dataset().users)


class DatasetHistory(History):
    """A history whose views come from the one-user ``Dataset``, as the generic path's did."""

    def __init__(self, events: pd.DataFrame) -> None:
        super().__init__(events)
        self.ds = one_user_dataset(events)

    def interactions(self) -> tuple:
        ds = self.ds
        return ds.interactions(user_ids=ds.user_ids, item_ids=ds.item_ids).matrix, ds.item_ids

    def sorted_events(self) -> pd.DataFrame:
        return self.ds.sorted_events()


def dataset_with_words() -> Dataset:
    """:func:`tiny_dataset` plus tags and searches with text, some on items, some not."""
    ds = tiny_dataset()
    extra = [
        Event("u0", "i0", "tag", text="space aliens", timestamp=T0 + timedelta(days=50)),
        Event("u1", None, "search", text="romance in Paris", timestamp=T0 + timedelta(days=51)),
        Event("u2", "i3", "review", text="a lovely film", timestamp=T0 + timedelta(days=52)),
    ]
    more = Dataset.from_records(extra).events
    return Dataset(pd.concat([ds.events, more], ignore_index=True), ds.items, ds.users)


def histories(ds: Dataset) -> dict[str, pd.DataFrame]:
    """One-user histories covering what requests bring: known users, unknown items, words."""
    ev = ds.events
    u0 = ev[ev["user_id"] == "u0"]
    u1 = ev[ev["user_id"] == "u1"]
    new = Dataset.from_records(
        [
            Event("x", "i1", "click", timestamp=T0 + timedelta(days=60)),
            Event("x", "i1", "view", timestamp=T0 + timedelta(days=60)),  # a tie, a repeat
            Event("x", "no-such-item", "click", timestamp=T0 + timedelta(days=61)),
            Event("x", "i4", "rating", 2.0, T0 + timedelta(days=62)),
            Event("x", None, "search", text="space adventure", timestamp=T0 + timedelta(days=63)),
            Event("x", "i5", "tag", text="aliens again", timestamp=T0 + timedelta(days=59)),
            Event("x", "i4", "purchase", timestamp=T0 + timedelta(days=64)),
        ]
    ).events
    return {
        "training user": u0.assign(user_id="someone"),
        "training user with a search and later clicks": pd.concat([u1, new], ignore_index=True),
        "new user with unknown items, ties and words": new,
        "only unknown items and a search": new[
            new["item_id"].isna() | (new["item_id"] == "no-such-item")
        ],
        "shuffled, columns missing": new.sample(frac=1.0, random_state=1)[
            ["item_id", "type", "timestamp"]
        ],
        "empty": u0.iloc[:0],
    }


def small_sasrec(**kw) -> SASRec:
    params = dict(
        dim=16,
        n_heads=2,
        n_layers=1,
        max_len=10,
        epochs=2,
        batch_size=16,
        text_init=True,
        encoder=_encoder(),
        threads=1,
        precision="fp32",
        progress=False,
    )
    params.update(kw)
    return SASRec(**params)


MODELS = {
    "popularity": lambda: Popularity(),
    "itemknn": lambda: ItemKNN(k=10),
    "ease": lambda: EASE(l2=1.0),
    "als": lambda: ALS(factors=4, regularization=0.05, iterations=3),
    "bpr": lambda: BPR(factors=4, iterations=5),
    "userknn cosine": lambda: UserKNN(k=5),
    "userknn pearson values": lambda: UserKNN(k=5, similarity="pearson", weighting="value"),
    "contentlm": lambda: ContentLM(encoder=_encoder()),
    "sasrec": lambda: small_sasrec(),
    "hybrid lambdarank": lambda: Hybrid(
        [small_sasrec(), ItemKNN(k=10), ContentLM(encoder=_encoder())],
        candidates=10,
        ranker="lambdarank",
        n_estimators=20,
        threads=1,
        progress=False,
    ),
    "hybrid linear": lambda: Hybrid(
        [ALS(factors=4, regularization=0.05, iterations=3), EASE(l2=1.0)],
        candidates=10,
        ranker="linear",
        threads=1,
        progress=False,
    ),
}


@pytest.fixture(scope="module")
def words() -> Dataset:
    return dataset_with_words()


@pytest.fixture(scope="module", params=list(MODELS))
def model(request, words) -> Recommender:
    return MODELS[request.param]().fit(words)


def test_the_fast_fold_in_equals_the_generic_one_exactly(model, words):
    for name, events in histories(words).items():
        fast = model.score_history(events)
        generic = model._fold_in(DatasetHistory(events))
        np.testing.assert_array_equal(fast, generic, err_msg=name)
        assert fast.dtype == np.float32 and fast.shape == (len(model.item_ids_),)


def test_a_history_views_equal_the_one_user_dataset(words):
    for name, events in histories(words).items():
        ds = one_user_dataset(events)
        M, ids = History(events).interactions()
        want = ds.interactions(user_ids=ds.user_ids, item_ids=ds.item_ids).matrix
        assert list(ids) == list(ds.item_ids), name
        if not len(events):  # the dataset has no user, hence no row; the history keeps its one
            assert M.shape == (1, 0) and want.shape == (0, 0)
            continue
        assert M.shape == want.shape, name
        for part in ("indptr", "indices", "data"):  # a rating without a value is NaN in both
            np.testing.assert_array_equal(getattr(M, part), getattr(want, part), name)
        got, want = History(events).sorted_events(), ds.sorted_events()
        for c in ("item_id", "type", "value", "timestamp", "text"):
            np.testing.assert_array_equal(got[c].to_numpy(), want[c].to_numpy(), f"{name}: {c}")


def test_columns_equal_get_indexer_and_are_rebuilt_for_a_new_catalogue(words):
    model = ItemKNN(k=5).fit(words)
    ids = np.array(["i3", "i25", "no-such-item", None, np.nan, "i-new", "i3", ""], dtype=object)
    want = model.item_ids_.get_indexer(pd.Index(pd.Series(ids).fillna(""), dtype=object))
    np.testing.assert_array_equal(model._columns(ids), want)
    assert want[1] >= 0
    model.fit(tiny_dataset(n_items=20))  # refitted on a catalogue without i25
    want = model.item_ids_.get_indexer(pd.Index(pd.Series(ids).fillna(""), dtype=object))
    assert want[1] == -1
    np.testing.assert_array_equal(model._columns(ids), want)


def test_user_rows_equal_get_indexer_and_follow_a_forget(words):
    model = ItemKNN(k=5).fit(words)
    users = ["u3", "nobody", "u0", "u3"]
    want = model.user_ids_.get_indexer(pd.Index(users, dtype=object))
    np.testing.assert_array_equal(model._positions("user_ids_", users), want)
    model.forget_user("u3")  # replaces user_ids_: the lookup must not keep the old one
    assert model._positions("user_ids_", users).tolist() == [-1, -1, want[2], -1]


def test_derived_lookups_are_not_saved(words, tmp_path):
    model = small_sasrec().fit(words)
    events = histories(words)["new user with unknown items, ties and words"]
    before = model.score_history(events)
    assert hasattr(model, "_lookups") and hasattr(model, "_input_vectors")
    model.save(tmp_path / "m.pkl")
    loaded = SASRec.load(tmp_path / "m.pkl")
    assert not hasattr(loaded, "_lookups") and not hasattr(loaded, "_input_vectors")
    np.testing.assert_array_equal(loaded.score_history(events), before)


def test_sasrec_fold_in_equals_its_sequence_of_the_one_user_dataset(words):
    """The SASRec fold-in's item sequence is the one ``_item_sequences`` gives the generic path."""
    model = small_sasrec().fit(words)
    for name, events in histories(words).items():
        row = model._history_row(History(events))
        if not row.nnz:  # no known item: the fold-in gives cold scores before reaching here
            continue
        ds = one_user_dataset(events)
        items, bounds = _item_sequences(ds, ds.user_ids, model.item_ids_)
        vectors = torch.cat([torch.zeros(1, model.dim), torch.from_numpy(model.item_vectors_)])
        state = model._states(
            model.network_,
            torch.from_numpy(items),
            bounds[:1],
            bounds[1:],
            np.zeros(1, np.int64),
            vectors=vectors,
        )
        want = (state.numpy() @ model.item_vectors_.T)[0]
        got = model._history_scores(History(events), row)
        np.testing.assert_array_equal(got, want, err_msg=name)


def test_contentlm_fold_in_of_a_training_user_equals_the_fitted_scores(words):
    """One user's vectors (the one-user cumulative sum) equal the fit's (grouped by user)."""
    model = ContentLM(encoder=_encoder()).fit(words)
    for user in ("u0", "u1", "u2", "u7"):
        mine = words.events[words.events["user_id"] == user]
        np.testing.assert_array_equal(model.score_history(mine), model.score_all([user])[0])


def test_lightgbm_ranker_on_one_thread_predicts_as_on_all(words):
    model = MODELS["hybrid lambdarank"]().fit(words)
    assert model.ranker_kind_ == "lambdarank"
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, len(model.feature_names()))).astype(np.float32)
    np.testing.assert_array_equal(
        _predict(model.ranker_, features), model.ranker_.booster_.predict(features)
    )


def test_a_loaded_hybrid_gets_the_callers_encoder_in_every_model_that_reads_text(words, tmp_path):
    encoder = _encoder()
    model = Hybrid(
        [ContentLM(encoder=encoder), ItemKNN(k=10)], candidates=10, ranker="linear", threads=1
    ).fit(words)
    events = histories(words)["training user with a search and later clicks"]
    before = model.score_history(events)
    model.save(tmp_path / "h.pkl")
    loaded = Hybrid.load(tmp_path / "h.pkl")
    readers = [m for m in (*loaded.models, *loaded.models_) if isinstance(m, ContentLM)]
    assert len(readers) == 2 and all(m.encoder is None for m in readers)  # not saved
    loaded.attach_encoder(encoder)
    assert all(m.encoder is encoder for m in readers)
    assert all(not hasattr(m, "encoder") for m in loaded.models_ if isinstance(m, ItemKNN))
    np.testing.assert_array_equal(loaded.score_history(events), before)


def test_exclude_seen_gives_every_item_an_event_names_minus_infinity(model, words):
    """As the engine masked seen items before: ``get_indexer`` of the events' item ids."""
    for name, events in histories(words).items():
        want = model.score_history(events)
        seen = model.item_ids_.get_indexer(pd.Index(events["item_id"].dropna(), dtype=object))
        want[seen[seen >= 0]] = -np.inf
        np.testing.assert_array_equal(model.score_history(events, exclude_seen=True), want, name)


def test_catalogue_views_are_made_once_per_catalogue_index_and_rebuilt_for_a_new_one(words):
    events = histories(words)["training user with a search and later clicks"]
    history = History(events)
    a, b = ItemKNN(k=5).fit(words), EASE(l2=1.0).fit(words)
    b.item_ids_ = a.item_ids_  # the base models of a hybrid share one index
    row = a._history_row(history)
    assert b._history_row(history) is row and not row.data.flags.writeable
    cols = a.item_ids_.get_indexer(
        pd.Index(history.sorted_events()["item_id"].fillna(""), dtype=object)
    )
    np.testing.assert_array_equal(history.sorted_columns(a), cols)
    assert history.sorted_columns(b) is history.sorted_columns(a)
    a.fit(tiny_dataset(n_items=20))  # a new catalogue, without some of the history's items
    cols = a.item_ids_.get_indexer(
        pd.Index(history.sorted_events()["item_id"].fillna(""), dtype=object)
    )
    assert (cols == -1).sum() > (history.sorted_columns(b) == -1).sum()
    np.testing.assert_array_equal(history.sorted_columns(a), cols)
    assert a._history_row(history) is not row
    np.testing.assert_array_equal(
        a._history_row(history).toarray(), a._history_row(History(events)).toarray()
    )


def test_the_shared_binary_row_equals_the_models_cells_on_its_columns(words):
    """``History.binary_row`` is ``_catalogue_columns`` of ``_cells``, built in one step."""
    model = ItemKNN(k=5).fit(words)
    cases = dict(histories(words))
    zero = histories(words)["new user with unknown items, ties and words"].assign(value=0.0)
    cases["ratings of value 0 and other events"] = zero.assign(
        type=["rating", "rating", "click", "rating", "search", "tag", "rating"]
    )
    for name, events in cases.items():
        history = History(events)
        M, ids = history.interactions()
        want = model._catalogue_columns(ids, model._cells(M))
        got = history.binary_row(model)
        for part in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(getattr(got, part), getattr(want, part), name)
        assert got.dtype == want.dtype and got.shape == want.shape, name
