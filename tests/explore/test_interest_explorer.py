from __future__ import annotations

import json
import re
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pytest

from interestlens.explore import InterestExplorer, llm_transitions
from tests.explore.conftest import N_INTERESTS, interest_of
from tests.explore.policy_contract import NOW, USER, PolicyContract, draws


class TestInterestExplorer(PolicyContract):
    learns_per_user = True

    def make(self, ranker, **params):
        return InterestExplorer(ranker, **params)

    def cluster_of(self, policy, item: str) -> int:
        return int(policy.clusters_[policy.item_ids_.get_loc(item)])

    def test_transition_table_counts_moves_to_new_interests(self, policy):
        # every user starts in interest g and moves on to g + 1: one transition each
        col = {interest_of(i): self.cluster_of(policy, i) for i in ("i0", "i15", "i30", "i45")}
        expected = np.zeros((N_INTERESTS, N_INTERESTS))
        for g in range(N_INTERESTS):
            expected[col[g], col[(g + 1) % N_INTERESTS]] = 48 / N_INTERESTS
        np.testing.assert_array_equal(policy.transitions_, expected)
        assert policy.starts_.tolist() == [12.0] * 4
        assert policy.user_interests_[USER] == [col[3], col[0]]  # u3: interest 3, then 0

    def test_explored_items_come_from_the_likeliest_novel_interest(
        self, tiny_world, tiny_ranker, tiny_taxonomy
    ):
        policy = self.fresh(tiny_world, tiny_ranker, tiny_taxonomy, affinity=0.0)
        novel = policy.novel_interests(USER)
        held = set(policy.user_interests_[USER])
        tax = policy.taxonomy_
        assert not held & {int(np.flatnonzero(tax.fine_ids_ == i)[0]) for i in novel.index}
        # users who reached interest 0 went on to interest 1
        best = int(np.flatnonzero(tax.fine_ids_ == novel.index[0])[0])
        assert best == self.cluster_of(policy, "i15")
        share = self.explored_share(policy, best, draws(policy, 100, explore=0.25))
        assert share > 0.6

    def explored_share(self, policy, cluster: int, slates) -> float:
        explored = [i for s in slates for i, e in zip(s.item_ids, s.explored, strict=True) if e]
        assert explored
        return float(np.mean([self.cluster_of(policy, i) == cluster for i in explored]))

    def test_affinity_steers_exploration_to_the_interest_the_ranker_rates_highest(
        self, tiny_world, tiny_ranker, tiny_taxonomy
    ):
        # the table says interest 1 (i15...) comes next; these scores rate interest 2 best
        shares = {}
        for affinity in (0.0, 5.0):
            policy = self.fresh(tiny_world, tiny_ranker, tiny_taxonomy, affinity=affinity)
            favourite = self.cluster_of(policy, "i30")
            scores = np.where(policy.clusters_ == favourite, 2.0, 0.0)
            scores = scores + 0.01 * np.arange(len(policy.item_ids_))
            slates = []
            for seed in range(100):
                policy.rng_ = np.random.default_rng(seed)
                slates.append(policy.recommend(USER, k=4, explore=0.25, scores=scores, now=NOW))
            shares[affinity] = self.explored_share(policy, favourite, slates)
        assert shares[0.0] < 0.3 < 0.6 < shares[5.0]

    def test_a_steep_affinity_keeps_propensities_finite_and_exact(
        self, tiny_world, tiny_ranker, tiny_taxonomy
    ):
        # a newcomer has all four interests ahead; the ranker rates one far above the rest,
        # so at affinity 50 the others weigh ~1e-50 of it. Two slots are drawn without
        # replacement: the favourite always, and one of the others (whose inclusion
        # probabilities divided by 1 - 1 = 0 before)
        policy = self.fresh(tiny_world, tiny_ranker, tiny_taxonomy, affinity=50.0)
        favourite = self.cluster_of(policy, "i30")
        scores = np.where(policy.clusters_ == favourite, 2.0, 0.0)
        scores = scores + 0.01 * np.arange(len(policy.item_ids_))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            slates = [
                policy.recommend("newcomer", k=4, explore=0.5, scores=scores, now=NOW)
                for _ in range(50)
            ]
        for s in slates:
            assert all(0 < p <= 1 for p in s.propensities)
            explored = {
                self.cluster_of(policy, i): p
                for i, e, p in zip(s.item_ids, s.explored, s.propensities, strict=True)
                if e
            }
            assert len(explored) == 2 and explored[favourite] == pytest.approx(0.25)
            # the other one: its share of the second draw, over the four positions
            (other,) = set(explored) - {favourite}
            assert 0 < explored[other] < 0.25

    def test_share_of_the_slate_follows_explore(self, policy):
        for explore, k in ((0.2, 5), (0.5, 4)):
            n = np.mean([sum(s.explored) for s in draws(policy, 200, k=k, explore=explore)])
            assert n == pytest.approx(explore * k, abs=0.25)

    def test_a_share_below_one_slot_explores_sometimes_with_exact_propensities(self, policy):
        # explore * k = 0.2: no slot four times in five, one slot otherwise
        slates = draws(policy, 200, k=4, explore=0.05)
        n = np.array([sum(s.explored) for s in slates])
        assert set(n) == {0, 1} and n.mean() == pytest.approx(0.2, abs=0.1)
        assert all(0 < p <= 1 for s in slates for p in s.propensities)

    def test_positive_feedback_makes_the_interest_the_users_own(self, policy):
        s = policy.recommend(USER, k=4, explore=0.25, now=NOW)
        while not any(s.explored):
            s = policy.recommend(USER, k=4, explore=0.25, now=NOW)
        item = next(i for i, e in zip(s.item_ids, s.explored, strict=True) if e)
        cluster = self.cluster_of(policy, item)
        before = policy.transitions_.copy()
        policy.update(s.request_id, item, 1.0)
        assert policy.user_interests_[USER][-1] == cluster
        assert policy.transitions_.sum() == pytest.approx(before.sum() + 1)
        next_best = policy.novel_interests(USER).index[0]
        assert int(np.flatnonzero(policy.taxonomy_.fine_ids_ == next_best)[0]) != cluster

    def test_n_interests_is_bounded_for_exact_propensities(
        self, tiny_world, tiny_ranker, tiny_taxonomy
    ):
        with pytest.raises(ValueError, match="n_interests must be at most 12"):
            self.fresh(tiny_world, tiny_ranker, tiny_taxonomy, n_interests=13)

    def test_fits_its_own_taxonomy_when_none_is_given(self, tiny_world, tiny_ranker):
        ds, vecs = tiny_world
        p = InterestExplorer(tiny_ranker).fit(ds, item_vectors=vecs)
        assert len(p.taxonomy_.fine()) >= 2 and p.transitions_.sum() > 0


class _ChatHandler(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint whose "model" always proposes the next interest
    in the list (by number), one line of chatter, and a label that is not in the list."""

    requests: ClassVar[list[dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        prompt = body["messages"][0]["content"]
        n = len(re.findall(r"^\d+\. ", prompt, flags=re.M))
        a = int(re.search(r"enjoys interest (\d+)", prompt).group(1))
        nxt = a % n + 1
        content = f"Sure! Here you go:\n{nxt}. (label)\n- space opera for cats\n{a}. itself\n"
        doc = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
        data = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def chat_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatHandler)
    _ChatHandler.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_llm_proposals_are_constrained_to_the_taxonomy(chat_server, tiny_taxonomy):
    votes = llm_transitions(tiny_taxonomy, chat_server, model="tiny", api_key="k")
    n = len(tiny_taxonomy.fine())
    expected = np.zeros((n, n))
    # only the next interest counts: the unlisted label and the interest itself are dropped
    expected[np.arange(n), (np.arange(n) + 1) % n] = 1.0
    np.testing.assert_array_equal(votes, expected)
    reqs = _ChatHandler.requests
    assert len(reqs) == n and reqs[0]["path"] == "/v1/chat/completions"
    assert reqs[0]["body"]["model"] == "tiny" and reqs[0]["auth"] == "Bearer k"


def test_llm_proposals_join_the_table_at_fit_time(
    chat_server, tiny_world, tiny_ranker, tiny_taxonomy
):
    ds, _ = tiny_world
    plain = InterestExplorer(tiny_ranker).fit(ds, taxonomy=tiny_taxonomy)
    with_llm = InterestExplorer(tiny_ranker, llm_url=chat_server, llm_weight=2.0).fit(
        ds, taxonomy=tiny_taxonomy
    )
    n = len(tiny_taxonomy.fine())
    diff = with_llm.transitions_ - plain.transitions_
    assert (
        diff[np.arange(n), (np.arange(n) + 1) % n].tolist() == [2.0] * n and diff.sum() == 2.0 * n
    )
    served = len(_ChatHandler.requests)
    with_llm.recommend(USER, k=4, explore=0.5, now=NOW)  # no request waits on the model
    assert len(_ChatHandler.requests) == served


def test_llm_endpoint_failure_names_the_url(tiny_taxonomy):
    with pytest.raises(
        RuntimeError, match=r"chat endpoint http://127.0.0.1:9/v1/chat/completions failed"
    ):
        llm_transitions(tiny_taxonomy, "http://127.0.0.1:9/v1", timeout=2)
