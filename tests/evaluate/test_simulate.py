"""Simulated users: the click model, the starting view, the truth, discovery and the runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from interestlens.data import Dataset, Event
from interestlens.evaluate import ClickModel, SimulationResult, UserSimulator, simulate
from interestlens.evaluate.simulate import _play, _RankerView, starting_view
from interestlens.explore import POLICIES
from interestlens.interests import InterestTaxonomy
from interestlens.models import EASE, Recommender

T0 = datetime(2024, 1, 1)
GROUPS = "abc"


class Preference(Recommender):
    """A known truth: scores read from a ``{user: {item: score}}`` table (0 elsewhere)."""

    def __init__(self, table: dict[str, dict[str, float]] | None = None, *, random_state=0):
        super().__init__(random_state=random_state)
        self.table = table

    def _fit(self, dataset: Dataset, X: sp.csr_matrix) -> None:
        self.matrix_ = np.zeros(X.shape, dtype=np.float32)
        for user, scores in (self.table or {}).items():
            r = self.user_ids_.get_loc(user)
            for item, value in scores.items():
                self.matrix_[r, self.item_ids_.get_loc(item)] = value

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return self.matrix_[rows]


def group_vectors(ds: Dataset) -> np.ndarray:
    """One-hot text vectors by the item's group (its first letter)."""
    return np.array([np.eye(len(GROUPS))[GROUPS.index(i[0])] for i in ds.item_ids])


def tiny(n_users: int = 12) -> Dataset:
    """Each user engages first with four items of one group, then three of the next group."""
    events = []
    for u in range(n_users):
        first, second = GROUPS[u % 3], GROUPS[(u + 1) % 3]
        items = [f"{first}{(u + j) % 6}" for j in range(4)] + [
            f"{second}{(u + j) % 6}" for j in range(3)
        ]
        events += [
            Event(f"u{u}", item, "click", timestamp=T0 + timedelta(days=n))
            for n, item in enumerate(items)
        ]
    return Dataset.from_records(events)


def fitted_tiny(**params) -> UserSimulator:
    ds = tiny()
    params.setdefault("taxonomy", InterestTaxonomy(n_fine=3, n_broad=2))
    sim = UserSimulator(EASE(l2=1.0), start_fraction=0.3, interest_top=6, **params)
    return sim.fit(ds, item_vectors=group_vectors(ds))


@pytest.fixture(scope="module")
def sim() -> UserSimulator:
    return fitted_tiny()


def interest_of(sim: UserSimulator, group: str) -> int:
    cols = [sim.item_interest_[k] for k, i in enumerate(sim.item_ids_) if i[0] == group]
    assert len(set(cols)) == 1, "the taxonomy should put each group in one interest"
    return int(cols[0])


# ----- click model ---------------------------------------------------------------


def test_click_model_median_item_has_the_base_rate_and_order_is_kept():
    cm = ClickModel(base_rate=0.02, slope=2.0)
    scores = np.array([[5.0, -1.0, 3.0, 0.5, 100.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    p = cm.probabilities(scores)
    assert p.dtype == np.float32 and p.shape == (2, 5)
    assert p[0, 2] == pytest.approx(0.02, rel=1e-6)  # 3.0 is the median score
    assert list(np.argsort(p[0])) == list(np.argsort(scores[0]))
    assert np.allclose(p[1], 0.02)  # all tied: every item is the median
    # scale-free: a monotone transformation of the scores changes nothing
    assert np.array_equal(cm.probabilities(np.exp(scores[:1])), p[:1])


def test_click_model_examination_and_bad_parameters():
    assert ClickModel().examination(3).tolist() == [1.0, 1.0, 1.0]
    assert ClickModel(position_bias=2.0).examination(2).tolist() == [1.0, 0.25]
    for bad in ({"base_rate": 0.0}, {"base_rate": 1.0}, {"slope": 0.0}, {"position_bias": -1}):
        with pytest.raises(ValueError):
            ClickModel(**bad)


# ----- starting view ---------------------------------------------------------------


def test_starting_view_keeps_each_users_earliest_events():
    ds = Dataset.from_records(
        [
            Event("u", "late", "click", timestamp=T0 + timedelta(days=9)),
            Event("u", "early", "click", timestamp=T0),
            Event("u", None, "search", text="space", timestamp=T0 + timedelta(days=1)),
            Event("u", "mid", "click", timestamp=T0 + timedelta(days=2)),
            Event("u", None, "search", text="horses", timestamp=T0 + timedelta(days=5)),
            Event("v", "early", "click", timestamp=T0),
        ]
    )
    view = starting_view(ds, 0.5)
    kept = view.events[["user_id", "item_id", "text"]].fillna("").values.tolist()
    # u: 3 item events, half rounds to 2 (early, mid); the search before "late" stays,
    # the one after the cut does not; v keeps its only event
    assert kept == [["u", "early", ""], ["u", "", "space"], ["u", "mid", ""], ["v", "early", ""]]
    assert view.item_ids.equals(ds.item_ids)
    with pytest.raises(ValueError, match="start_fraction"):
        starting_view(ds, 0.0)


# ----- the simulator --------------------------------------------------------------


def test_truth_and_interests_on_tiny_data(sim):
    assert sim.click_prob_.shape == (12, 18)
    # each user starts from two items of their first group, all in one known interest
    assert sim.start_items_.sum(axis=1).A1.tolist() == [2] * 12
    for u in range(12):
        first, second = GROUPS[u % 3], GROUPS[(u + 1) % 3]
        assert np.flatnonzero(sim.known_interests_[u]).tolist() == [interest_of(sim, first)]
        # the truth, fitted on all events, holds both groups the user engaged with
        true = set(np.flatnonzero(sim.true_interests_[u]).tolist())
        assert true == {interest_of(sim, first), interest_of(sim, second)}
    # the user's own later items are among their most preferred
    later = sim.dataset_.interactions(user_ids=sim.user_ids_).matrix.toarray() > 0
    later &= ~sim.start_items_.toarray()
    assert sim.click_prob_[later].mean() > 3 * sim.click_prob_[~later].mean()


def test_discovery_counted_by_hand():
    items = [f"{g}{i}" for g in GROUPS for i in range(4)]
    ds = Dataset.from_records(
        [
            Event(u, i, "click", timestamp=T0 + timedelta(days=n))
            for u, seq in {"u0": ["a0", "a1", "b0", "b1"], "u1": ["c0", "c1", "a2", "a3"]}.items()
            for n, i in enumerate(seq)
        ],
        items=pd.DataFrame({"item_id": items}),
    )
    likes = {"u0": {"a": 5.0, "b": 4.0}, "u1": {"c": 5.0, "a": 4.0}}
    truth = Preference(
        {u: {i: g.get(i[0], 0.0) + int(i[1]) / 10 for i in items} for u, g in likes.items()}
    )
    sim = UserSimulator(
        truth,
        start_fraction=0.25,
        interest_top=8,
        interest_share=0.15,  # the second group holds about 17% of the top-8 mass
        taxonomy=InterestTaxonomy(n_fine=3, n_broad=2),
    ).fit(ds, item_vectors=group_vectors(ds))
    A, B, C = (interest_of(sim, g) for g in GROUPS)
    u0, u1 = sim.user_ids_.get_loc("u0"), sim.user_ids_.get_loc("u1")
    assert set(np.flatnonzero(sim.true_interests_[u0])) == {A, B}
    assert set(np.flatnonzero(sim.true_interests_[u1])) == {C, A}
    assert set(np.flatnonzero(sim.known_interests_[u0])) == {A}  # a0 only
    assert set(np.flatnonzero(sim.known_interests_[u1])) == {C}  # c0 only

    col = sim.item_ids_.get_loc
    script = iter([["b2", "c2"], ["a1", "c3"], ["b2", "b3"]])
    visits = np.array([u0, u0, u1])

    def scripted(row, eligible, scores):
        cols = np.array([col(i) for i in next(script)])
        assert eligible[cols].all()
        return cols, np.zeros(2, dtype=bool), None

    # uniform draws of 0 click every shown item: u0 clicks b2, c2, a1, c3 and u1 b2, b3
    result = _play(
        sim, _RankerView(sim, np.zeros_like(sim.click_prob_)), visits, np.zeros((3, 2)), scripted
    )
    assert result["interests_found"] == 2  # u0: A and B; u1 found neither C nor A
    assert result["new_interests_found"] == 1  # u0: B (A was known from a0)
    assert (result["true_interests"], result["new_true_interests"]) == (4, 2)
    assert result["coverage"] == pytest.approx(5 / 12)
    assert result["reward"] == 6.0
    # draws of 1 click nothing, so nothing is found
    script = iter([["b2", "c2"], ["a1", "c3"], ["b2", "b3"]])
    none = _play(
        sim, _RankerView(sim, np.zeros_like(sim.click_prob_)), visits, np.ones((3, 2)), scripted
    )
    assert (none["reward"], none["interests_found"]) == (0.0, 0)


def test_items_are_never_shown_twice_nor_from_the_starting_view(sim):
    shown: dict[int, set[int]] = {}

    def record(row, eligible, scores):
        cols = np.flatnonzero(eligible)[:3]
        seen = sim.start_items_[row].indices
        assert not set(cols) & shown.get(row, set()) and not set(cols) & set(seen)
        shown.setdefault(row, set()).update(cols.tolist())
        return cols, np.zeros(len(cols), dtype=bool), None

    visits = np.array([0, 0, 0, 1, 0, 0, 0])
    _play(
        sim, _RankerView(sim, np.zeros_like(sim.click_prob_)), visits, np.full((7, 3), 0.5), record
    )
    assert len(shown[0]) == 16  # 18 items, 2 in the starting view: the sixth visit runs dry


def test_an_online_ranker_folds_each_click_into_the_users_scores(sim):
    ranker = EASE(l2=1.0).fit(sim.start_)
    fitted = ranker.score_all(list(sim.user_ids_))
    seen: list[np.ndarray] = []
    start = sim.start_items_[0].indices

    def two_unseen(row, eligible, scores):
        seen.append(scores.copy())
        cols = np.flatnonzero(eligible)[:2]
        return cols, np.zeros(2, dtype=bool), None

    view = _RankerView(sim, fitted, ranker)
    _play(sim, view, np.array([0, 0, 1]), np.zeros((3, 2)), two_unseen)  # every item clicked
    np.testing.assert_array_equal(seen[0], fitted[0])
    clicked = [c for c in range(len(sim.item_ids_)) if c not in start][:2]
    user = sim.start_.events[sim.start_.events["user_id"] == sim.user_ids_[0]]
    again = pd.concat([user, user.iloc[:2].assign(item_id=[sim.item_ids_[c] for c in clicked])])
    np.testing.assert_allclose(seen[1], ranker.score_history(again), rtol=1e-6)
    assert not np.allclose(seen[1], fitted[0])
    np.testing.assert_array_equal(seen[2], fitted[1])  # the other user is untouched
    # a new run starts from the fit again, and a view without the ranker never learns
    _play(sim, view, np.array([0]), np.zeros((1, 2)), two_unseen)
    np.testing.assert_array_equal(seen[3], fitted[0])
    _play(sim, _RankerView(sim, fitted), np.array([0, 0]), np.zeros((2, 2)), two_unseen)
    np.testing.assert_array_equal(seen[5], fitted[0])


def test_simulation_is_deterministic_under_a_seed_and_the_oracle_is_best():
    a = simulate(fitted_tiny(), {}, ranker=EASE(l2=1.0), rounds=30, k=3, seeds=[0, 1], n_users=6)
    b = simulate(fitted_tiny(), {}, ranker=EASE(l2=1.0), rounds=30, k=3, seeds=[0, 1], n_users=6)
    cols = [c for c in a.runs.columns if c != "seconds"]
    pd.testing.assert_frame_equal(a.runs[cols], b.runs[cols])
    other = simulate(fitted_tiny(), {}, ranker=EASE(l2=1.0), rounds=30, k=3, seeds=[2], n_users=6)
    assert not np.array_equal(
        a.runs.loc[a.runs["seed"] == 0, "expected_reward"].to_numpy(),
        other.runs["expected_reward"].to_numpy(),
    )
    assert (a.runs["regret"] >= -1e-9).all()


def test_simulate_checks_its_arguments(sim):
    with pytest.raises(ValueError, match="explore"):
        simulate(sim, {}, explore=[1.5])
    with pytest.raises(ValueError, match="rounds"):
        simulate(sim, {}, rounds=0)
    with pytest.raises(RuntimeError, match="not fitted"):
        simulate(UserSimulator(), {})


def test_frontier_chart_is_written(sim, tmp_path):
    result = simulate(sim, {}, ranker=EASE(l2=1.0), rounds=10, k=2, seeds=[0], n_users=4)
    assert isinstance(result, SimulationResult)
    path = result.frontier(tmp_path / "sub" / "frontier.png", targets=(0.95, 1.5))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


@pytest.fixture(scope="module")
def every_policy(sim):
    return simulate(
        sim, list(POLICIES), ranker=EASE(l2=1.0), rounds=40, k=3, explore=[0.0, 0.5], seeds=[0, 1]
    )


def test_explore_zero_is_pure_exploitation(every_policy):
    runs = every_policy.runs.set_index(["policy", "explore", "seed"])
    measures = ["reward", "expected_reward", "interests_found", "coverage", "explored_share"]
    for name in POLICIES:
        for seed in (0, 1):
            assert runs.loc[(name, 0.0, seed), measures].tolist() == pytest.approx(
                runs.loc[("exploit", 0.0, seed), measures].tolist()
            ), name
    explored = runs.xs(0.5, level="explore")["explored_share"]
    assert (explored.drop(["oracle", "exploit"], errors="ignore") > 0).all()


def test_the_oracle_beats_every_policy_in_expectation(every_policy):
    runs = every_policy.runs
    oracle = runs[runs["policy"] == "oracle"].set_index("seed")["expected_reward"]
    assert (runs["expected_reward"].to_numpy() <= oracle.loc[runs["seed"]].to_numpy() + 1e-9).all()
    assert (runs.loc[runs["policy"] != "oracle", "regret"] > 0).all()


def test_summary_pairs_each_seed_with_pure_exploitation(every_policy):
    s = every_policy.summary()
    assert s.loc[("exploit", 0.0), ["reward_ratio", "discovery_ratio"]].tolist() == [1.0, 1.0]
    assert s.loc[("oracle", 0.0), "reward_ratio"] > 1.0
    assert (s["seeds"] == 2).all()
    doc = every_policy.to_dict()
    assert {r["policy"] for r in doc["summary"]} == {"oracle", "exploit", *POLICIES}
    assert doc["settings"]["explore"] == [0.0, 0.5]


# ----- command line ---------------------------------------------------------------

BIN = Path(sys.executable).with_name("interestlens")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "INTERESTLENS_DEBUG"}
    return subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def movielens_folder(path: Path) -> Path:
    """A MovieLens-layout folder of the tiny dataset: movies.csv and ratings.csv."""
    ds = tiny()
    path.mkdir()
    genre = {"a": "Western", "b": "Romance", "c": "Sci-Fi"}
    movies = pd.DataFrame(
        {
            "movieId": range(len(ds.item_ids)),
            "title": [f"{genre[i[0]]} story {i[1]} (1990)" for i in ds.item_ids],
            "genres": [genre[i[0]] for i in ds.item_ids],
        }
    )
    movies.to_csv(path / "movies.csv", index=False)
    ev = ds.events
    pd.DataFrame(
        {
            "userId": ev["user_id"].str[1:].astype(int),
            "movieId": ds.item_ids.get_indexer(ev["item_id"]),
            "rating": 4.0,
            "timestamp": ev["timestamp"].astype("int64") // 10**9,
        }
    ).to_csv(path / "ratings.csv", index=False)
    return path


def test_cli_simulate_json_and_files(tmp_path):
    data = movielens_folder(tmp_path / "tiny-ml")
    args = ["--dataset", str(data), "--policies", "softmax,lin_ucb", "--rounds", "20"]
    args += ["--users", "6", "--seeds", "0,1", "--explore", "0,0.5", "--k", "3"]
    p = run_cli("simulate", *args, "--out", str(tmp_path / "out"), "--json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["settings"]["rounds"] == 20 and doc["settings"]["seeds"] == [0, 1]
    assert doc["settings"]["online"] is True
    rows = {(r["policy"], r["explore"]) for r in doc["summary"]}
    assert rows == {("oracle", 0.0), ("exploit", 0.0)} | {
        (n, e) for n in ("softmax", "lin_ucb") for e in (0.0, 0.5)
    }
    assert len(doc["runs"]) == 2 * (2 + 2 * 2)
    assert (tmp_path / "out" / "frontier.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "out" / "simulate.json").read_text())["summary"] == doc["summary"]
    static = run_cli("simulate", *args, "--static-ranker", "--json", cwd=tmp_path)
    assert static.returncode == 0, static.stderr
    assert json.loads(static.stdout)["settings"]["online"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policies", "nope"], "unknown policy 'nope'"),
        (["--explore", "0,lots"], "--explore '0,lots' is not a comma-separated list"),
        (["--explore", "2"], "explore levels must be in [0, 1]"),
    ],
)
def test_cli_simulate_bad_arguments_are_one_line(tmp_path, args, message):
    p = run_cli("simulate", *args, "--dataset", str(movielens_folder(tmp_path / "d")), cwd=tmp_path)
    assert p.returncode == 2 and p.stdout == ""
    assert message in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
