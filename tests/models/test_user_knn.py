from __future__ import annotations

import math

import numpy as np
import pytest

from interestlens.data import Dataset, Event
from interestlens.models.user_knn import UserKNN
from tests.models.contract import FORGET_ME, RecommenderContract, forget_dataset


class TestUserKNN(RecommenderContract):
    forget_keeps_others = False

    def make_model(self, random_state: int = 0):
        return UserKNN(k=5, random_state=random_state)

    def test_a_forgotten_user_is_nobody_s_neighbour(self, forgetting):
        # every other trained user now scores as if the user had never trained the model
        # (cold users get popularity, which keeps the forgotten user until a refit)
        ds = forget_dataset()
        events = ds.events[ds.events["user_id"] != FORGET_ME]
        refit = self.make_model().fit(Dataset(events, ds.items, ds.users))
        others = events["user_id"].unique().tolist()
        before = forgetting.score_all(others)
        forgetting.forget_user(FORGET_ME)
        after = forgetting.score_all(others)
        assert not np.allclose(before, after)
        assert forgetting.item_ids_.equals(refit.item_ids_)
        np.testing.assert_allclose(after, refit.score_all(others), rtol=1e-6, atol=1e-7)


class TestUserKNNPearson(TestUserKNN):
    def make_model(self, random_state: int = 0):
        return UserKNN(
            k=5, similarity="pearson", weighting="value", normalize=True, random_state=random_state
        )


RATINGS = {
    "a": {"x": 4, "y": 2},
    "b": {"x": 5, "y": 1, "z": 3},
    "c": {"y": 4, "w": 5},
    "d": {"z": 1, "w": 2},
}


def ratings_dataset(ratings=RATINGS) -> Dataset:
    return Dataset.from_records(
        [Event(u, i, "rating", float(v)) for u, row in ratings.items() for i, v in row.items()]
    )


def scores_of_a(model, items=("x", "y", "z", "w")):
    return dict(
        zip(items, model.fit(ratings_dataset()).score(["a"], list(items))[0].tolist(), strict=True)
    )


def test_binary_cosine_by_hand():
    # cos(a, b) = 2 / sqrt(2 * 3), cos(a, c) = 1 / sqrt(2 * 2), cos(a, d) = 0
    ab, ac = 2 / math.sqrt(6), 0.5
    s = scores_of_a(UserKNN(k=1, shrinkage=0))
    # z: raters b, d -> the nearest is b; w: raters c, d -> c; y: raters b, c (never a itself)
    assert s == pytest.approx({"x": ab, "y": ab, "z": ab, "w": ac})
    s = scores_of_a(UserKNN(k=2, shrinkage=0))
    assert s == pytest.approx({"x": ab, "y": ab + ac, "z": ab, "w": ac})


def test_shrinkage_scales_by_common_items():
    ab, ac = 2 / math.sqrt(6) * 2 / (2 + 1), 0.5 * 1 / (1 + 1)
    s = scores_of_a(UserKNN(k=2, shrinkage=1.0))
    assert s == pytest.approx({"x": ab, "y": ab + ac, "z": ab, "w": ac})


def test_value_weighting_is_the_seed_formula_and_normalize_gives_a_weighted_mean():
    # cosine of the rating rows: a.b = 4*5 + 2*1 = 22, a.c = 2*4 = 8
    ab, ac = 22 / math.sqrt(20 * 35), 8 / math.sqrt(20 * 41)
    s = scores_of_a(UserKNN(k=2, shrinkage=0, weighting="value"), items=("z", "w"))
    assert s == pytest.approx({"z": ab * 3 + 0.0 * 1, "w": ac * 5})
    s = scores_of_a(UserKNN(k=2, shrinkage=0, weighting="value", normalize=True), items=("z", "w"))
    assert s == pytest.approx({"z": 3.0, "w": 5.0})


def brute_force(ratings, user, k, similarity, shrinkage):
    """R_ui = sum of w_uj r_ji over the k most similar raters j of i, by loops."""
    users = list(ratings)
    items = sorted({i for row in ratings.values() for i in row})
    mean = {u: np.mean(list(r.values())) for u, r in ratings.items()}

    def sim(u, v):
        common = set(ratings[u]) & set(ratings[v])
        if similarity == "cosine":
            num = sum(ratings[u][i] * ratings[v][i] for i in common)
            den = math.sqrt(
                sum(x * x for x in ratings[u].values()) * sum(x * x for x in ratings[v].values())
            )
        else:
            cu = {i: ratings[u][i] - mean[u] for i in common}
            cv = {i: ratings[v][i] - mean[v] for i in common}
            num = sum(cu[i] * cv[i] for i in common)
            den = math.sqrt(sum(x * x for x in cu.values()) * sum(x * x for x in cv.values()))
        w = num / den if den > 0 else 0.0
        return w * len(common) / (len(common) + shrinkage) if common else 0.0

    out = {}
    for i in items:
        raters = sorted(
            (sim(user, v), ratings[v][i]) for v in users if v != user and i in ratings[v]
        )
        out[i] = sum(w * r for w, r in raters[::-1][:k])
    return out


@pytest.mark.parametrize("k", [3, 20])
@pytest.mark.parametrize("similarity", ["cosine", "pearson"])
def test_matches_a_loop_over_neighbours(similarity, k):
    # every pair of users shares at least two items, so no two similarities tie
    rng = np.random.default_rng(1)
    ratings = {
        f"u{u}": {
            f"i{i}": float(rng.uniform(0.5, 5))
            for i in rng.choice(10, size=rng.integers(6, 10), replace=False)
        }
        for u in range(15)
    }
    model = UserKNN(k=k, similarity=similarity, shrinkage=2.0, weighting="value").fit(
        ratings_dataset(ratings)
    )
    for user in ("u0", "u7"):
        expected = brute_force(ratings, user, k, similarity, 2.0)
        got = model.score([user], list(expected))[0]
        np.testing.assert_allclose(got, list(expected.values()), rtol=1e-5, atol=1e-6)


def test_pearson_ignores_binary_weighting_for_the_similarities():
    binary = UserKNN(k=2, similarity="pearson", shrinkage=0).fit(ratings_dataset())
    valued = UserKNN(k=2, similarity="pearson", shrinkage=0, weighting="value").fit(
        ratings_dataset()
    )
    rows = np.arange(4)
    np.testing.assert_array_equal(binary._similarities(rows), valued._similarities(rows))
    assert np.abs(binary._similarities(rows)).max() > 0


def test_rejects_unknown_options():
    with pytest.raises(ValueError, match="similarity"):
        UserKNN(similarity="jaccard").fit(ratings_dataset())
    with pytest.raises(ValueError, match="weighting"):
        UserKNN(weighting="log").fit(ratings_dataset())
