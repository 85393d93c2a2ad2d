"""The behaviour every recommender must show; each model's tests subclass `RecommenderContract`."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from interestlens.data import Dataset, Event, Item, User
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


#: The training user the forget tests erase (u3 of :func:`tiny_dataset`, renamed): long and
#: distinctive, so its bytes in a pickled model can only mean the model kept the id.
FORGET_ME = "forget-me-7f3a9c"
#: A user of the users table without a single event, whom the model still lists.
LISTED_ONLY = "listed-only-5b2e81"


def forget_dataset() -> Dataset:
    """:func:`tiny_dataset` with u3 renamed :data:`FORGET_ME`, plus :data:`LISTED_ONLY`."""
    ds = tiny_dataset()
    events = ds.events.copy()
    events.loc[events["user_id"] == "u3", "user_id"] = FORGET_ME
    users = Dataset.from_records([], users=[User(LISTED_ONLY)]).users
    return Dataset(events, ds.items, users)


def pickled_ids(model: Recommender) -> list[str]:
    """Which of the forget tests' ids appear in the pickled model (UTF-8 or UTF-32)."""
    blob = pickle.dumps(model, protocol=5)
    return [
        u for u in (FORGET_ME, LISTED_ONLY) if u.encode() in blob or u.encode("utf-32-le") in blob
    ]


def fitted_models(model: Recommender, path: str = "") -> list[tuple[str, Recommender]]:
    """The model and, recursively, the fitted models among its attributes, with their paths."""
    out = [(path, model)]
    for name, value in vars(model).items():
        inner = value if isinstance(value, list | tuple) else [value]
        for j, m in enumerate(inner):
            if isinstance(m, Recommender) and hasattr(m, "user_ids_"):
                out += fitted_models(m, f"{path}{name}[{j}].")
    return out


def user_rows(model: Recommender, positions: dict[str, int]) -> dict[str, object]:
    """Row ``positions[path]`` of every fitted array with one row per user, per (inner) model.

    Arrays are found by shape (first axis as long as ``user_ids_``), so a per-user array a
    model did not declare is found too.
    """
    out: dict[str, object] = {}
    for path, m in fitted_models(model):
        for name, value in vars(m).items():
            shape = getattr(value, "shape", ())
            if name != "user_ids_" and len(shape) and shape[0] == len(m.user_ids_):
                out[path + name] = value[positions[path]]
    return out


def is_empty(row: object) -> bool:
    """Whether a row taken by :func:`user_rows` holds nothing: all zeros, no stored entry."""
    if hasattr(row, "nnz"):
        return row.nnz == 0
    return not np.any(np.asarray(row))


class RecommenderContract:
    """Subclass and implement `make_model`; pytest collects the tests below for the model.

    The fixtures `ds` (a tiny dataset) and `fitted` (the model fitted on it, once per
    class) come from tests/models/conftest.py.
    """

    #: Least rank correlation between a training user's folded-in and fitted scores.
    fold_in_agreement = 0.99
    #: Whether forgetting a user leaves every other user's scores exactly as they were
    #: (``False`` where users' scores read other users' rows, as in user-kNN).
    forget_keeps_others = True

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

    def test_warm_after_loading_changes_no_score(self, fitted, ds, tmp_path):
        fitted.save(tmp_path / "m.pkl")
        loaded = type(fitted).load(tmp_path / "m.pkl")
        loaded.warm()
        users = ["u0", "u3", "nobody"]
        np.testing.assert_array_equal(loaded.score_all(users), fitted.score_all(users))
        mine = ds.events[ds.events["user_id"] == "u0"]
        np.testing.assert_array_equal(loaded.score_history(mine), fitted.score_history(mine))

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

    # ----- forgetting a user --------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def forget_fitted(cls):
        """The model fitted on :func:`forget_dataset`, once per class."""
        return cls().make_model().fit(forget_dataset())

    @pytest.fixture
    def forgetting(self, forget_fitted):
        """A private copy of :meth:`forget_fitted` that a test may change."""
        return pickle.loads(pickle.dumps(forget_fitted))

    def test_forget_user_leaves_a_stranger_and_other_users_as_they_were(self, forgetting):
        model = forgetting
        others = [u for u in model.user_ids_ if u != FORGET_ME]
        before = model.score_all(others)
        stranger = model.score_all(["nobody"])
        stranger_recs = model.recommend("nobody", k=5)
        assert (
            model.recommend(FORGET_ME, k=5)["item_id"].tolist() != stranger_recs["item_id"].tolist()
        )
        assert pickled_ids(model) == [FORGET_ME, LISTED_ONLY]
        n_users = len(model.user_ids_)
        positions = {p: m.user_ids_.get_loc(FORGET_ME) for p, m in fitted_models(model)}
        held = user_rows(model, positions)
        assert not is_empty(held["seen_"]) and not is_empty(held["active_"])

        assert model.forget_user(FORGET_ME) is True
        assert FORGET_ME not in model.user_ids_ and len(model.user_ids_) == n_users
        np.testing.assert_array_equal(model.score_all([FORGET_ME]), stranger)
        recs = model.recommend(FORGET_ME, k=5)
        assert recs["item_id"].tolist() == stranger_recs["item_id"].tolist()
        np.testing.assert_array_equal(recs["score"], stranger_recs["score"])
        after = model.score_all(others)
        if self.forget_keeps_others:
            np.testing.assert_array_equal(after, before)
        else:
            assert after.shape == before.shape and np.isfinite(after).all()
        assert pickled_ids(model) == [LISTED_ONLY]
        # each per-user row stays in its place, emptied
        rows = user_rows(model, positions)
        assert rows.keys() == held.keys()
        assert [p for p, r in rows.items() if not is_empty(r)] == []

    def test_forget_user_listed_without_events(self, forgetting):
        stranger = forgetting.score_all(["nobody"])
        assert forgetting.forget_user(LISTED_ONLY) is True
        assert LISTED_ONLY not in forgetting.user_ids_ and pickled_ids(forgetting) == [FORGET_ME]
        np.testing.assert_array_equal(forgetting.score_all([LISTED_ONLY]), stranger)

    def test_forgetting_an_unknown_user_changes_nothing(self, forgetting, forget_fitted):
        users = [*forgetting.user_ids_, "nobody"]
        assert forgetting.forget_user("nobody") is False
        assert forgetting.forget_user(FORGET_ME.upper()) is False
        assert forgetting.user_ids_.equals(forget_fitted.user_ids_)
        np.testing.assert_array_equal(forgetting.score_all(users), forget_fitted.score_all(users))

    def test_forgetting_twice_is_safe(self, forgetting):
        assert forgetting.forget_user(FORGET_ME) is True
        users = [*forgetting.user_ids_, FORGET_ME]
        once = forgetting.score_all(users)
        assert forgetting.forget_user(FORGET_ME) is False
        np.testing.assert_array_equal(forgetting.score_all(users), once)
        # a forgotten user's later history still folds in, as any new user's does
        mine = forget_dataset().events.query("user_id == @FORGET_ME")
        assert np.isfinite(forgetting.score_history(mine)).all()

    def test_forget_user_needs_a_fitted_model(self):
        with pytest.raises(RuntimeError, match="not fitted"):
            self.make_model().forget_user(FORGET_ME)
