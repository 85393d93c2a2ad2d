"""The behaviour every recommender must show; each model's tests subclass `RecommenderContract`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from interestlens.data import Dataset, Event, Item
from interestlens.models import Recommender

T0 = datetime(2022, 1, 1, tzinfo=timezone.utc)


def tiny_dataset(seed: int = 0, n_users: int = 40, n_items: int = 30) -> Dataset:
    """Two taste groups over a small catalogue with text, plus timestamps in order."""
    rng = np.random.default_rng(seed)
    events = []
    for u in range(n_users):
        group = u % 2
        pool = [i for i in range(n_items) if i % 2 == group]
        picks = rng.choice(pool, size=8, replace=False)
        for k, i in enumerate(picks):
            events.append(
                Event(
                    f"u{u}",
                    f"i{i}",
                    "rating",
                    float(rng.integers(3, 6)),
                    T0 + timedelta(days=u, hours=k),
                )
            )
    topics = ["space adventure with aliens", "romantic comedy in Paris"]
    items = [
        Item(
            f"i{i}",
            title=f"Film {i}",
            text=topics[i % 2],
            categories=[["Sci-Fi"], ["Romance"]][i % 2],
        )
        for i in range(n_items)
    ]
    items.append(Item("i-new", title="A new space film", text="space adventure with aliens"))
    return Dataset.from_records(events, items)


class RecommenderContract:
    """Subclass and implement `make_model`; pytest collects the tests below for the model.

    The fixtures `ds` (a tiny dataset) and `fitted` (the model fitted on it, once per
    class) come from tests/models/conftest.py.
    """

    #: Least rank correlation between a training user's folded-in and fitted scores.
    fold_in_agreement = 0.99

    def make_model(self, random_state: int = 0) -> Recommender:
        raise NotImplementedError

    def test_fit_returns_self_and_init_stores_only_params(self, ds):
        model = self.make_model()
        assert not any(k.endswith("_") and not k.startswith("_") for k in vars(model))
        assert model.fit(ds) is model

    def test_recommend_excludes_seen_items(self, fitted, ds):
        ev = ds.events
        for u in ("u0", "u1", "u7"):
            seen = set(ev.loc[ev["user_id"] == u, "item_id"])
            recs = fitted.recommend(u, k=10)
            assert len(recs) == 10 and not seen & set(recs["item_id"])
            assert recs["rank"].tolist() == list(range(1, 11))
            assert recs["score"].is_monotonic_decreasing
            with_seen = fitted.recommend(u, k=len(fitted.item_ids_), exclude_seen=False)
            assert seen <= set(with_seen["item_id"])

    def test_unknown_users_and_items_do_not_raise(self, fitted):
        recs = fitted.recommend(["nobody", "u0"], k=5)
        assert set(recs["user_id"]) == {"nobody", "u0"} and (recs["user_id"] == "nobody").sum() == 5
        s = fitted.score(["u0", "nobody"], ["i0", "no-such-item"])
        assert s.shape == (2, 2) and np.isnan(s[:, 1]).all() and np.isfinite(s[:, 0]).all()

    def test_deterministic_under_a_seed(self, ds):
        a = self.make_model(random_state=3).fit(ds).score_all(["u0", "u5"])
        b = self.make_model(random_state=3).fit(ds).score_all(["u0", "u5"])
        np.testing.assert_array_equal(a, b)

    def test_save_load_round_trip_gives_identical_scores(self, fitted, tmp_path):
        fitted.save(tmp_path / "m.pkl")
        loaded = type(fitted).load(tmp_path / "m.pkl")
        users = ["u0", "u3", "nobody"]
        np.testing.assert_array_equal(loaded.score_all(users), fitted.score_all(users))
        assert repr(loaded) == repr(fitted)

    def test_scores_cover_the_whole_catalogue(self, fitted, ds):
        s = fitted.score_all(["u2"])
        assert s.shape == (1, ds.n_items) and s.dtype == np.float32

    def test_score_history_folds_in_a_history_without_refitting(self, fitted, ds):
        from scipy.stats import spearmanr

        mine = ds.events[ds.events["user_id"] == "u0"]
        folded = fitted.score_history(mine.assign(user_id="someone-new"))
        assert folded.shape == (ds.n_items,) and folded.dtype == np.float32
        # a training user's own events give the ranking the fit gave them
        unseen = ~fitted.item_ids_.isin(mine["item_id"])
        fit = fitted.score_all(["u0"])[0]
        assert spearmanr(folded[unseen], fit[unseen]).statistic > self.fold_in_agreement
        # items the model never saw add nothing: alone they leave the user cold
        unknown = mine.assign(item_id="no-such-item")
        cold = fitted.score_all(["nobody"])[0]
        np.testing.assert_array_equal(fitted.score_history(unknown), cold)
        np.testing.assert_array_equal(fitted.score_history(mine.iloc[:0]), cold)
        with pytest.raises(ValueError, match="item_id"):
            fitted.score_history(mine.drop(columns=["item_id"]))
        # a history holding the whole catalogue still gets a score for every item
        everything = ds.events.iloc[: ds.n_items].assign(item_id=list(ds.item_ids))
        assert np.isfinite(fitted.score_history(everything)).all()
