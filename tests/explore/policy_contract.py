"""The behaviour every exploration policy must show; each policy's tests subclass `PolicyContract`."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from interestlens.data import Dataset
from interestlens.explore import Policy, Slate
from interestlens.explore.base import slate_frequencies
from interestlens.models import EASE

NOW = pd.Timestamp("2024-03-01", tz="UTC")
USER = "u3"
#: A user the forget tests serve online: distinctive, so its bytes in a pickled policy can
#: only mean the policy kept the id.
FORGET_ME = "forget-me-online-9d1e"


def draws(policy: Policy, n: int, user: str = USER, k: int = 4, explore: float = 0.5):
    """``n`` slates, each from a copy of the policy's current state with its own seed."""
    snapshot = pickle.dumps(policy)
    out = []
    for seed in range(n):
        p = pickle.loads(snapshot)
        p.rng_ = np.random.default_rng(10_000 + seed)
        out.append(p.recommend(user, k=k, explore=explore, now=NOW))
    return out


def exposure(slates: list[Slate], item: str) -> float:
    """Mean over slates of (k - position) where the item is shown, 0 where not."""
    return float(
        np.mean([len(s) - s.item_ids.index(item) if item in s.item_ids else 0 for s in slates])
    )


def held_ids(policy: Policy) -> list[str]:
    """Whether :data:`FORGET_ME` is anywhere in the pickled policy (UTF-8 or UTF-32)."""
    blob = pickle.dumps(policy)
    return [u for u in (FORGET_ME,) if u.encode() in blob or u.encode("utf-32-le") in blob]


class PolicyContract:
    """Subclass, implement `make`, and pytest runs these tests for the policy."""

    #: Propensity tolerance beyond sampling noise (Monte-Carlo policies need some).
    mc_slack = 0.0
    #: Slates drawn for the frequency check.
    n_draws = 300
    explore = 0.5

    def make(self, ranker, **params) -> Policy:
        raise NotImplementedError

    @pytest.fixture
    def policy(self, tiny_world, tiny_ranker, tiny_taxonomy) -> Policy:
        ds, vecs = tiny_world
        return self.make(tiny_ranker, random_state=7).fit(
            ds, item_vectors=vecs, taxonomy=tiny_taxonomy
        )

    def fresh(self, tiny_world, tiny_ranker, tiny_taxonomy, **params) -> Policy:
        ds, vecs = tiny_world
        return self.make(tiny_ranker, **params).fit(ds, item_vectors=vecs, taxonomy=tiny_taxonomy)

    # ----- explore = 0 ----------------------------------------------------------------
    def test_explore_zero_is_the_rankers_top_k(self, policy, tiny_ranker):
        for user in ("u0", "u5", "someone new"):
            slate = policy.recommend(user, k=5, explore=0.0)
            expected = tiny_ranker.recommend(user, k=5)["item_id"].tolist()
            assert list(slate.item_ids) == expected
            assert slate.propensities == (1.0,) * 5 and slate.explored == (False,) * 5
            assert slate.propensity_method == "exact" and slate.user_id == user

    # ----- propensities ---------------------------------------------------------------
    def test_propensities_match_empirical_frequencies(self, policy):
        slates = draws(policy, self.n_draws, explore=self.explore)
        assert all(0 < p <= 1 for s in slates for p in s.propensities)
        assert all(len(s) == 4 and len(set(s.item_ids)) == 4 for s in slates)
        freq = slate_frequencies(slates)
        rows = pd.DataFrame(
            [
                (i, pos, p)
                for s in slates
                for pos, (i, p) in enumerate(zip(s.item_ids, s.propensities, strict=True))
            ],
            columns=["item_id", "position", "propensity"],
        )
        reported = rows.groupby(["item_id", "position"])["propensity"].mean()
        gap = (reported - freq.reindex(reported.index)).abs()
        noise = 4 * np.sqrt(reported * (1 - reported) / self.n_draws) + 1e-9
        bad = gap[gap > noise + self.mc_slack]
        assert bad.empty, (
            f"propensities off their frequencies:\n{pd.concat([reported, freq], axis=1).loc[bad.index]}"
        )
        # at each position the reported probabilities of the items seen add up to at most 1
        per_position = reported.groupby(level="position").sum()
        assert (per_position <= 1 + 0.05 + self.mc_slack * 5).all(), per_position

    def test_explored_means_outside_the_greedy_slate(self, policy):
        greedy = set(policy.recommend(USER, k=4, explore=0.0, now=NOW).item_ids)
        for s in draws(policy, 30):
            assert s.explored == tuple(i not in greedy for i in s.item_ids)

    # ----- determinism ----------------------------------------------------------------
    def test_deterministic_under_random_state(self, tiny_world, tiny_ranker, tiny_taxonomy):
        runs = []
        for _ in range(2):
            p = self.fresh(tiny_world, tiny_ranker, tiny_taxonomy, random_state=3)
            seq = []
            for r in range(6):
                s = p.recommend(f"u{r}", k=4, explore=0.6, now=NOW)
                p.update(s.request_id, s.item_ids[-1], 1.0)
                seq.append((s.item_ids, s.propensities, s.explored))
            runs.append(seq)
        assert runs[0] == runs[1]

    def test_pickle_round_trip_serves_the_same_next_slate(self, policy):
        twin = pickle.loads(pickle.dumps(policy))
        a = policy.recommend(USER, k=4, explore=0.5, now=NOW)
        b = twin.recommend(USER, k=4, explore=0.5, now=NOW)
        assert (a.item_ids, a.propensities) == (b.item_ids, b.propensities)
        assert a.request_id != b.request_id

    # ----- feedback -------------------------------------------------------------------
    def targets(self, policy) -> set[str]:
        """Items the policy shows outside the greedy slate: feedback should push them."""
        greedy = set(policy.recommend(USER, k=4, explore=0.0, now=NOW).item_ids)
        shown = {i for s in draws(policy, 20, explore=self.explore) for i in s.item_ids}
        return shown - greedy

    def test_feedback_raises_rewarded_items_exposure(self, tiny_world, tiny_ranker, tiny_taxonomy):
        """Rewarding the explored items whenever shown makes them more exposed than not."""
        results = []
        for rewarded in (True, False):
            p = self.fresh(tiny_world, tiny_ranker, tiny_taxonomy, random_state=1)
            target = self.targets(p)
            assert target
            for _ in range(40):
                s = p.recommend(USER, k=4, explore=self.explore, now=NOW)
                for item in s.item_ids:
                    p.update(s.request_id, item, 1.0 if rewarded and item in target else 0.0)
            results.append(sum(exposure(draws(p, 40, explore=self.explore), t) for t in target))
        assert results[0] > results[1], results

    def test_update_errors_name_what_is_wrong(self, policy):
        s = policy.recommend(USER, k=3, explore=0.5, now=NOW)
        with pytest.raises(KeyError, match="unknown request_id 'nope'"):
            policy.update("nope", s.item_ids[0], 1.0)
        with pytest.raises(KeyError, match="was not in slate"):
            policy.update(s.request_id, "no-such-item", 1.0)
        with pytest.raises(ValueError, match="reward must be a finite number"):
            policy.update(s.request_id, s.item_ids[0], float("nan"))
        policy.update(s.request_id, s.item_ids[0], 1.0)  # and again: the second replaces the first
        policy.update(s.request_id, s.item_ids[0], 2.0)

    def test_bad_requests_raise_naming_the_field(self, policy):
        with pytest.raises(ValueError, match="explore must be in"):
            policy.recommend(USER, explore=1.5)
        with pytest.raises(ValueError, match="k must be a positive integer"):
            policy.recommend(USER, k=0)
        with pytest.raises(ValueError, match="scores has 3 entries"):
            policy.recommend(USER, scores=np.zeros(3))

    def test_unknown_users_get_a_full_slate_and_scores_override(self, policy):
        s = policy.recommend("brand-new-user", k=4, explore=0.5, now=NOW)
        assert len(s) == 4 and not s.context["user_known"]
        scores = np.full(len(policy.item_ids_), -np.inf)
        scores[:6] = np.arange(6)
        s = policy.recommend("brand-new-user", k=4, explore=0.5, scores=scores, now=NOW)
        assert set(s.item_ids) <= set(policy.item_ids_[:6])
        assert s.context["n_eligible"] == 6
        greedy = policy.recommend(USER, k=4, explore=0.0, scores=scores, exclude_seen=False)
        assert greedy.item_ids == tuple(policy.item_ids_[[5, 4, 3, 2]])

    def test_slate_record_and_frame(self, policy):
        s = policy.recommend(USER, k=3, explore=0.5, now=NOW)
        frame = s.to_frame()
        assert frame["position"].tolist() == [0, 1, 2]
        assert frame["item_id"].tolist() == list(s.item_ids)
        rec = s.record()
        assert rec["policy"] == policy.name and rec["params"] == policy.get_params()
        assert rec["timestamp"] == NOW and rec["explore"] == 0.5

    # ----- forgetting a user ----------------------------------------------------------
    #: Whether the policy learns per user (user vectors, interests), so that a fitted user
    #: is served differently from a stranger before being forgotten.
    learns_per_user = False

    def test_forget_user_drops_their_slates_and_keeps_everyone_elses(self, policy):
        mine = [policy.recommend(FORGET_ME, k=4, explore=self.explore, now=NOW) for _ in range(3)]
        theirs = policy.recommend("u5", k=4, explore=self.explore, now=NOW)
        for s in mine:  # rewards teach the policy about the user (where it learns per user)
            for item in s.item_ids:
                policy.update(s.request_id, item, 1.0)
        assert held_ids(policy) == [FORGET_ME]
        shown, rewards = policy.shown_.copy(), policy.rewards_.copy()

        assert policy.forget_user(FORGET_ME) is True
        assert held_ids(policy) == []
        assert [s.user_id for s in policy.pending_.values()] == ["u5"]
        for s in mine:
            with pytest.raises(KeyError, match="unknown request_id"):
                policy.update(s.request_id, s.item_ids[0], 1.0)
        # what the user taught about items stays until the next fit
        np.testing.assert_array_equal(policy.shown_, shown)
        np.testing.assert_array_equal(policy.rewards_, rewards)
        policy.update(theirs.request_id, theirs.item_ids[0], 1.0)
        assert policy.rewards_.sum() == rewards.sum() + 1.0

    def served(self, policy: Policy, user: str, scores: np.ndarray) -> np.ndarray:
        """Where the policy would put each item for ``user`` given the ranker's ``scores``."""
        return policy.slate_distribution(
            user, k=4, explore=self.explore, scores=scores, exclude_seen=False, n_draws=100
        ).probabilities

    def test_forget_user_makes_a_fitted_user_a_stranger(self, policy):
        # the same ranker scores for both users: only the policy's own state can differ
        scores = policy.ranker.score_all([USER])[0]
        s = policy.recommend(USER, k=4, explore=self.explore, now=NOW)
        policy.update(s.request_id, s.item_ids[-1], 1.0)
        if self.learns_per_user:
            assert not np.array_equal(
                self.served(policy, USER, scores), self.served(policy, "never-seen", scores)
            )
        assert policy.forget_user(USER) is True
        np.testing.assert_array_equal(
            self.served(policy, USER, scores), self.served(policy, "never-seen", scores)
        )
        assert policy.forget_user(USER) is False

    def test_forget_user_after_the_ranker_forgot_them(self, tiny_world, tiny_taxonomy):
        # the engine forgets every component, in no promised order; here a fitted user
        # with a distinctive id, so that any trace of it in the policy (ranker included) shows
        ds, vecs = tiny_world
        events = ds.events.assign(user_id=ds.events["user_id"].replace(USER, FORGET_ME))
        ds = Dataset(events, ds.items, ds.users)
        ranker = EASE(l2=10.0).fit(ds)
        policy = self.make(ranker, random_state=7).fit(
            ds, item_vectors=vecs, taxonomy=tiny_taxonomy
        )
        scores = ranker.score_all([FORGET_ME])[0]
        s = policy.recommend(FORGET_ME, k=4, explore=self.explore, now=NOW)
        policy.update(s.request_id, s.item_ids[0], 1.0)
        assert held_ids(policy) == [FORGET_ME]
        assert ranker.forget_user(FORGET_ME) is True
        assert policy.forget_user(FORGET_ME) is True
        assert held_ids(policy) == []
        np.testing.assert_array_equal(
            self.served(policy, FORGET_ME, scores), self.served(policy, "never-seen", scores)
        )

    def test_forgetting_an_unknown_user_changes_nothing(self, policy):
        s = policy.recommend(USER, k=4, explore=self.explore, now=NOW)
        before = pickle.dumps(policy)
        assert policy.forget_user("nobody") is False
        assert pickle.dumps(policy) == before
        policy.update(s.request_id, s.item_ids[0], 1.0)

    def test_forget_user_needs_a_fitted_policy(self, tiny_ranker):
        with pytest.raises(RuntimeError, match="not fitted"):
            self.make(tiny_ranker).forget_user(USER)
