"""Exploration on simulated users of ml-latest-small (issue 5, "done when").

Simulated users come from :class:`interestlens.evaluate.UserSimulator` with its defaults:
each user's true click probabilities from EASE fitted on all of ml-latest-small (rank-
normal logistic link, 1% for the user's median item), true interests from the taxonomy,
and every policy starting from the first 30% of each user's history (ALS ranker, item
text, taxonomy all fitted on that view); the ranker folds each click into the user's
scores as it comes (``--static-ranker`` keeps the fit's). Each run plays ``--rounds``
slates of ``--k`` items to users drawn from ``--users`` users; every seed fixes the users,
their order and the click draws, shared by every policy (common random numbers).

Targets:

(a) some policy finds at least 1.5 times the true interests pure exploitation finds over
    the rounds while keeping at least 95% of its cumulative reward (medians over seeds of
    the per-seed ratios; checked for interests found and for *new* interests found);
(b) our LinUCB or LinTS reaches at least the cumulative reward of Vowpal Wabbit's
    ``--cb_explore_adf`` given the same features in the same simulation (median over
    seeds, best explore level of each; realised clicks and expected reward).

Vowpal Wabbit (a dev-only peer) runs as a policy adapter below: the ranker's same top 100
candidates, each an action with exactly the features our linear policies use
(``LinearPolicy.features``: the ranker's standardised score, item embedding, user vector and
their product), one ADF example per slate position over the candidates still unpicked, cost
-1 for a click and 0 otherwise, learnt before the next request. Two explorations:
``epsilon`` (``--epsilon explore``) and ``squarecb`` (``--squarecb --gamma_scale
1/explore``, so explore 0.1 is VW's default gamma scale of 10), with VW's default learning
rate, and a sensitivity run of each at learning rates 0.02, 0.1 and 2 (explore 0.1 and 0.2).

Our linear policies start from a prior weight on the ranker's score, so before any feedback
they rank as the ranker does; VW sees the same score as a feature but starts from zero
weights. So each VW setting runs twice: *cold* (zero weights, as before) and *warm*
(``_warm`` in the names): before its first request it learns ``--warm-rounds`` logged slates
of pure exploitation (the fitted ranker's top ``k`` for users drawn from all simulated users,
clicks drawn from the true probabilities on a stream of their own, propensity 1), the log a
service has from before exploration is switched on. Target (b) is reported against the best
cold and the best warm VW setting.
A reference beside the policies, ``interest_oracle``, explores interests with perfect
knowledge: it gives ``explore * k`` positions to the items likeliest to find a true interest
the user has not clicked into yet (several for one interest where that gains most). It is
not a policy anyone could run; it shows how far interest exploration could go in this
simulation. A second reference, ``interest_knowing``, knows only *which* interests are the
user's true ones and picks their items by the ranker, as the interest diversifier does: the
distance between the two references is what knowing the user's items is worth, the distance
from ``interest_knowing`` down to the real policies what knowing their interests is worth.

    python benchmarks/explore.py [--rounds 200] [--users 100] [--seeds 0,1,2,3,4]
        [--explore 0,0.1,0.2,0.3,0.5,1] [--k 10] [--static-ranker] [--ranker als|ease|itemknn]
        [--policies all|a,b,...] [--warm-rounds 200] [--out explore] [--vary PARAM=V1,V2,...]

Writes benchmarks/results/OUT.json and benchmarks/results/OUT_frontier.png (OUT: ``--out``,
default ``explore``). ``--ranker`` is what exploitation and every policy rank with (ALS by
default); ``--policies`` runs only the named ones (target (b) needs ``lin_ucb`` or ``lin_ts``
and a ``vw_`` policy, each VW policy brings its learning-rate runs). The other rankers'
figures of docs/simulate.md come from

    python benchmarks/explore.py --ranker ease --seeds 10,11,12 --explore 0.1,0.2,0.3,0.5,1 \
        --policies interest_diversifier,interest_knowing,interest_oracle --out explore_ease

and the same with ``--ranker itemknn --out explore_itemknn``. ``--vary`` plays each chosen
registered policy once per value of one parameter; the interest explorer's ``affinity`` was
chosen on held-out seeds with

    python benchmarks/explore.py --policies interest_explorer --vary affinity=1.5,3,6,12 \
        --seeds 10,11,12,13,14 --explore 0.2 --out explore_affinity
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import vowpalwabbit

from interestlens import datasets
from interestlens.evaluate import UserSimulator, simulate
from interestlens.evaluate.simulate import EXPLOIT, ORACLE, named_policies
from interestlens.explore import (
    POLICIES,
    InterestDiversifier,
    LinearPolicy,
    Policy,
    build_policy,
)
from interestlens.explore.base import EXACT, _Served, policy_parameters
from interestlens.models import Recommender, build_model, top_k

sys.path.insert(0, str(Path(__file__).parent))
from machine import Competition

RESULTS = Path(__file__).parent / "results"
LINEAR = ("lin_ucb", "lin_ts")
REFERENCES = (ORACLE, EXPLOIT, "interest_oracle", "interest_knowing")
#: Learning rates of the VW sensitivity runs (VW's default is 0.5), at explore 0.1 and 0.2.
VW_RATES = (0.02, 0.1, 2.0)
#: What ``--ranker`` may name: the ranker of exploitation and of every policy.
RANKERS = ("als", "ease", "itemknn")
#: What ``--policies`` may name.
KNOWN = (
    *POLICIES,
    "vw_epsilon",
    "vw_squarecb",
    "vw_epsilon_warm",
    "vw_squarecb_warm",
    "interest_oracle",
    "interest_knowing",
)


@dataclass(frozen=True)
class LoggedSlate:
    """One logged slate of pure exploitation: a warm start's example."""

    user_id: str
    scores: np.ndarray  # the ranker's scores of every item, -inf where not eligible
    cols: np.ndarray  # the items shown, best first
    rewards: np.ndarray  # 1.0 where clicked


def exploitation_log(
    sim: UserSimulator, ranker: Recommender, *, rounds: int, k: int, seed: int
) -> list[LoggedSlate]:
    """``rounds`` logged slates of pure exploitation, for a warm start.

    Each slate goes to a user drawn uniformly from all simulated users and shows the fitted
    ranker's top ``k`` (no fold-in), never an item of the user's starting view or one the
    log showed them before; clicks are drawn from the true probabilities. The draws come
    from a stream of their own (``[seed, 0x1065]``), not the run's.
    """
    rng = np.random.default_rng([int(seed), 0x1065])
    rows = rng.choice(len(sim.user_ids_), size=rounds)
    uniforms = rng.random((rounds, k))
    users = np.unique(rows)
    scores = ranker.score_all([str(sim.user_ids_[r]) for r in users])
    fitted = dict(zip(users.tolist(), scores, strict=True))
    exam = sim.click_model_.examination(k)
    start = sim.start_items_
    shown: dict[int, list[int]] = {}
    log = []
    for t, row in enumerate(rows.tolist()):
        s = np.array(fitted[row], dtype=np.float64)
        s[start.indices[start.indptr[row] : start.indptr[row + 1]]] = -np.inf
        s[shown.get(row, [])] = -np.inf
        cols = top_k(s[None, :], k)[0]
        cols = cols[np.isfinite(s[cols])]
        clicked = uniforms[t, : len(cols)] < sim.click_prob_[row, cols] * exam[: len(cols)]
        shown.setdefault(row, []).extend(cols.tolist())
        log.append(LoggedSlate(str(sim.user_ids_[row]), s, cols, clicked.astype(np.float64)))
    return log


class VowpalWabbit(LinearPolicy):
    """Vowpal Wabbit ``--cb_explore_adf`` over the candidates and features of our linear policies.

    ``warm_log`` (logged slates of pure exploitation) is learnt before the first request,
    each position as an ADF example over the candidates still unpicked with propensity 1;
    without it VW starts from zero weights.
    """

    name = "vowpal_wabbit"
    _components = ("ranker", "warm_log")

    def __init__(
        self,
        ranker: Recommender,
        *,
        algorithm: str = "epsilon",
        options: str = "",
        warm_log: list[LoggedSlate] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(ranker, **kwargs)
        self.algorithm = algorithm
        self.options = options
        self.warm_log = warm_log

    def arguments(self, explore: float) -> str:
        how = (
            f"--epsilon {explore:g}"
            if self.algorithm == "epsilon"
            else f"--squarecb --gamma_scale {1 / explore:g}"
        )
        return f"--cb_explore_adf {how} {self.options} --quiet --random_seed {self.random_state}"

    def _fit(self, dataset: Any, item_vectors: np.ndarray | None, taxonomy: Any) -> None:
        super()._fit(dataset, item_vectors, taxonomy)
        self.workspaces_: dict[float, vowpalwabbit.Workspace] = {}
        self.unlearnt_: list[tuple[_Served, float, list]] = []
        self.steps_: tuple[float, list] | None = None
        self.warm_examples_ = [
            ex for logged in self.warm_log or () for ex in self._examples(logged)
        ]

    @staticmethod
    def _lines(X: np.ndarray) -> list[str]:
        return ["|x " + " ".join(f"{j}:{v:.5g}" for j, v in enumerate(x) if v) for x in X]

    def _examples(self, logged: LoggedSlate) -> list[list[str]]:
        """The labelled ADF examples of a logged slate, one per position."""
        s = self._user_scores(logged.user_id, logged.scores, True)
        pool, X = self._candidates(logged.user_id, s, len(logged.cols))
        where = {int(c): i for i, c in enumerate(pool)}
        missing = [int(c) for c in logged.cols if int(c) not in where]
        if missing:
            raise ValueError(f"logged item columns {missing} are not among the candidates")
        lines = self._lines(X)
        remaining = list(range(len(pool)))
        examples = []
        for col, reward in zip(logged.cols, logged.rewards, strict=True):
            j = remaining.index(where[int(col)])
            shown = [lines[i] for i in remaining]
            shown[j] = f"0:{-reward:g}:1 {shown[j]}"
            examples.append(shown)
            remaining.pop(j)
        return examples

    def _workspace(self, explore: float) -> vowpalwabbit.Workspace:
        if explore not in self.workspaces_:
            vw = vowpalwabbit.Workspace(self.arguments(explore))
            for example in self.warm_examples_:
                vw.learn(example)
            self.workspaces_[explore] = vw
        return self.workspaces_[explore]

    def _learn_served(self) -> None:
        """Learn every slate served so far: its rewards are in by the next request."""
        for served, explore, steps in self.unlearnt_:
            vw = self._workspace(explore)
            for position, (lines, chosen, prob) in enumerate(steps):
                cost = -served.rewards.get(position, 0.0)
                labelled = list(lines)
                labelled[chosen] = f"0:{cost:g}:{prob:.6g} {lines[chosen]}"
                vw.learn(labelled)
        self.unlearnt_.clear()

    def _select(
        self, user_id: str, scores: np.ndarray, greedy: np.ndarray, explore: float, now: Any
    ) -> tuple[np.ndarray, np.ndarray, str]:
        self._learn_served()
        vw = self._workspace(explore)
        pool, X = self._candidates(user_id, scores, len(greedy))
        lines = self._lines(X)
        remaining = list(range(len(pool)))
        picked, props, steps = [], [], []
        for _ in range(len(greedy)):
            shown = [lines[i] for i in remaining]
            pmf = np.asarray(vw.predict(shown), dtype=np.float64)
            pmf /= pmf.sum()
            j = int(self.rng_.choice(len(remaining), p=pmf))
            steps.append((shown, j, float(pmf[j])))
            props.append(float(pmf[j]))
            picked.append(remaining.pop(j))
        self.steps_ = (explore, steps)
        # each position's probability given the positions before it
        return pool[picked], np.asarray(props), "sequential-conditional"

    def _served(self, served: _Served, scores: np.ndarray) -> np.ndarray:
        X = super()._served(served, scores)  # keeps the user vector as our policies do
        if self.steps_ is not None:
            self.unlearnt_.append((served, *self.steps_))
            self.steps_ = None
        return X


class KnowsTheTruth(Policy):
    """Base of the references: they read the simulator's truth, which no product policy may.

    Each keeps, per user, the interests a click of the run has found (``found_``).
    """

    _components = ("ranker", "simulator")

    def __init__(self, ranker: Recommender, *, simulator: UserSimulator, **kwargs: Any) -> None:
        super().__init__(ranker, **kwargs)
        self.simulator = simulator

    def _fit(self, dataset: Any, item_vectors: np.ndarray | None, taxonomy: Any) -> None:
        super()._fit(dataset, item_vectors, taxonomy)
        self.found_: dict[str, set[int]] = {}

    def _learn(self, served: _Served, position: int, old: float, new: float) -> None:
        super()._learn(served, position, old, new)
        if new > 0:
            interest = int(self.simulator.item_interest_[served.cols[position]])
            self.found_.setdefault(served.user_id, set()).add(interest)


class InterestOracle(KnowsTheTruth):
    """A reference, not a product policy: interest exploration with perfect knowledge.

    ``round(explore * k)`` positions go to the items with the largest gain in the
    probability of finding a true interest of the user that no click has found yet: an
    item's gain is its true click probability times the probability that no item of its
    interest already picked for the slate is clicked, so a hard-to-find interest can get
    several positions. The ranker's greedy slate fills the rest. It shows how many
    interests exploration could find, and at what reward, if it knew what the simulated
    user likes.
    """

    name = "interest_oracle"

    def _select(
        self, user_id: str, scores: np.ndarray, greedy: np.ndarray, explore: float, now: Any
    ) -> tuple[np.ndarray, np.ndarray, str]:
        sim = self.simulator
        row = sim.user_ids_.get_loc(user_id)
        k = len(greedy)
        m = round(explore * k)
        eligible = np.isfinite(scores)
        p = np.where(eligible, sim.click_prob_[row], 0.0)
        found = self.found_.get(user_id, set())
        cand, interest = [], []
        for c in np.flatnonzero(sim.true_interests_[row]):
            members = np.flatnonzero((sim.item_interest_ == c) & eligible)
            if c not in found and len(members):
                best = members[np.argsort(-p[members], kind="stable")[:m]]
                cand.extend(best.tolist())
                interest.extend([int(c)] * len(best))
        cand_a, interest_a = np.asarray(cand, dtype=np.int64), np.asarray(interest)
        miss = {c: 1.0 for c in set(interest)}
        free = np.ones(len(cand_a), dtype=bool)
        picks: list[int] = []
        for _ in range(min(m, len(cand_a))):
            gain = np.where(free, p[cand_a] * [miss[c] for c in interest_a], -1.0)
            j = int(np.argmax(gain))
            free[j] = False
            picks.append(int(cand_a[j]))
            miss[interest_a[j]] *= 1.0 - p[cand_a[j]]
        lead = [c for c in greedy if c not in picks][: k - len(picks)]
        return np.asarray(lead + picks, dtype=np.int64), np.ones(k), EXACT


class InterestKnowing(KnowsTheTruth, InterestDiversifier):
    """A reference, not a product policy: the interest diversifier told the true interests.

    The diversifier's greedy re-rank of the ranker's candidates, with the bonus
    ``explore * novelty * decay**n`` on every item of a true interest of the user that no
    click of this run has found yet, and the penalty ``explore * diversity * n`` on items
    of interests already found (``n``: items of that interest already in the slate). It
    knows which interests are the user's, not which of their items the user would click.
    """

    name = "interest_knowing"

    def _fit(self, dataset: Any, item_vectors: np.ndarray | None, taxonomy: Any) -> None:
        super()._fit(dataset, item_vectors, taxonomy)
        if not np.array_equal(self.clusters_, self.simulator.item_interest_):
            raise ValueError("the policy's taxonomy is not the simulator's")

    def _select(
        self, user_id: str, scores: np.ndarray, greedy: np.ndarray, explore: float, now: Any
    ) -> tuple[np.ndarray, np.ndarray, str]:
        k = len(greedy)
        pool, value = self._exploit(scores, k)
        slot = self.clusters_[pool]
        true = self.simulator.true_interests_[self.simulator.user_ids_.get_loc(user_id)]
        found = np.zeros(len(true), dtype=bool)
        found[list(self.found_.get(user_id, ()))] = True
        bonus = explore * self.novelty * (true & ~found)[slot]
        penalty = explore * self.diversity * found[slot]
        return pool[self._rerank(value, slot, bonus, penalty, k)[0]], np.ones(k), EXACT


def vw_factory(
    algorithm: str,
    options: str = "",
    *,
    warm: tuple[UserSimulator, int, int] | None = None,
):
    """A factory of :class:`VowpalWabbit`; ``warm = (simulator, rounds, k)`` warm-starts it.

    The warm log is drawn once per seed (:func:`exploitation_log`) and shared by every
    setting and explore level of that seed.
    """
    logs: dict[int, list[LoggedSlate]] = {}

    def factory(ranker: Recommender, seed: int) -> VowpalWabbit:
        log = None
        if warm is not None:
            sim, rounds, k = warm
            if seed not in logs:
                logs[seed] = exploitation_log(sim, ranker, rounds=rounds, k=k, seed=seed)
            log = logs[seed]
        return VowpalWabbit(
            ranker, algorithm=algorithm, options=options, warm_log=log, random_state=seed
        )

    return factory


def varied_factory(name: str, param: str, value: float):
    """A factory of the registered policy ``name`` with ``param=value``."""
    return lambda ranker, seed: build_policy(name, ranker, random_state=seed, **{param: value})


def best_level(summary: pd.DataFrame, policy: str, measure: str) -> tuple[float, float]:
    """The explore level (> 0) where ``policy``'s median ``measure`` is highest, and that median."""
    part = summary.loc[policy]
    part = part[part.index > 0]
    level = float(part[measure].idxmax())
    return level, float(part.loc[level, measure])


def target_a(summary: pd.DataFrame, ratio: str) -> dict[str, Any]:
    """Best discovery ratio among runs keeping >= 95% of exploitation's reward."""
    s = summary.reset_index()
    s = s[~s["policy"].isin(REFERENCES) & (s["explore"] > 0)]
    keeping = s[s["reward_ratio"] >= 0.95]
    best = keeping.loc[keeping[ratio].idxmax()] if len(keeping) else None
    return {
        "measure": ratio,
        "best_keeping_95pct_reward": None
        if best is None
        else {
            "policy": best["policy"],
            "explore": float(best["explore"]),
            ratio: float(best[ratio]),
            "reward_ratio": float(best["reward_ratio"]),
        },
        "best_at_any_reward": {
            "policy": s.loc[s[ratio].idxmax(), "policy"],
            "explore": float(s.loc[s[ratio].idxmax(), "explore"]),
            ratio: float(s[ratio].max()),
            "reward_ratio": float(s.loc[s[ratio].idxmax(), "reward_ratio"]),
        },
        "met": bool(len(keeping) and keeping[ratio].max() >= 1.5),
        **{
            key: [
                {
                    "explore": float(e),
                    ratio: float(r[ratio]),
                    "reward_ratio": float(r["reward_ratio"]),
                }
                for e, r in summary.loc[name].iterrows()
                if e > 0
            ]
            for key, name in (
                ("perfect_knowledge_reference", "interest_oracle"),
                ("interest_knowledge_reference", "interest_knowing"),
            )
            if name in summary.index.get_level_values("policy")
        },
    }


def progress(line: str) -> None:
    print(line, flush=True)


def linear_vs_vw(
    summary: pd.DataFrame, peers_all: pd.DataFrame, vw_names: list[str]
) -> dict[str, Any]:
    """Target (b): our best linear policy against the best of ``vw_names``, per measure."""
    out = {}
    for measure in ("reward", "expected_reward"):
        ours = {p: best_level(summary, p, measure) for p in LINEAR if p in summary.index}
        peers = {p: best_level(peers_all, p, measure) for p in vw_names}
        best_ours = max(ours.items(), key=lambda kv: kv[1][1])
        best_vw = max(peers.items(), key=lambda kv: kv[1][1])
        out[measure] = {
            "ours": {p: {"explore": e, measure: v} for p, (e, v) in ours.items()},
            "vowpal_wabbit": {p: {"explore": e, measure: v} for p, (e, v) in peers.items()},
            "best_ours": best_ours[0],
            "best_vw": best_vw[0],
            "ratio": best_ours[1][1] / best_vw[1][1],
            "met": best_ours[1][1] >= best_vw[1][1],
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--explore", default="0,0.1,0.2,0.3,0.5,1")
    ap.add_argument(
        "--static-ranker", action="store_true", help="keep the fit's scores (no fold-in of clicks)"
    )
    ap.add_argument("--ranker", choices=RANKERS, default="als", help="what every policy ranks with")
    ap.add_argument("--policies", default="all", help="comma-separated names, or all")
    ap.add_argument(
        "--warm-rounds", type=int, default=200, help="logged exploitation slates a warm VW learns"
    )
    ap.add_argument("--out", default="explore", help="name of the result files in results/")
    ap.add_argument(
        "--vary",
        metavar="PARAM=V1,V2,...",
        help="play each chosen registered policy once per value of one of its parameters",
    )
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    levels = [float(e) for e in args.explore.split(",")]
    if args.warm_rounds < 1:
        ap.error(f"--warm-rounds must be positive, got {args.warm_rounds}")
    chosen = [p.strip() for p in args.policies.split(",") if p.strip()]
    chosen = list(KNOWN) if args.policies == "all" else chosen
    unknown = [p for p in chosen if p not in KNOWN]
    if unknown or not chosen:
        ap.error(f"unknown policy {(unknown or [''])[0]!r}; known: {', '.join(KNOWN)}")
    vary: tuple[str, list[float]] | None = None
    if args.vary:
        param, _, values = args.vary.partition("=")
        try:
            vary = (param.strip(), [float(v) for v in values.split(",")])
        except ValueError:
            ap.error(f"--vary takes PARAM=V1,V2,... with numbers, got {args.vary!r}")
        varied = [p for p in chosen if p in POLICIES]
        refuse = [p for p in varied if vary[0] not in policy_parameters(POLICIES[p])]
        if not varied or refuse:
            ap.error(f"--vary {vary[0]!r} is not a parameter of {(refuse or chosen)[0]!r}")
    os.environ.setdefault("INTERESTLENS_CACHE_DIR", str(Path(".interestlens") / "cache"))

    machine = Competition().start()
    started = time.perf_counter()
    sim = UserSimulator().fit(datasets.load("ml-latest-small"))
    build_s = time.perf_counter() - started
    warm = (sim, args.warm_rounds, args.k)
    policies = {
        **named_policies(list(POLICIES)),
        "vw_epsilon": vw_factory("epsilon"),
        "vw_squarecb": vw_factory("squarecb"),
        "vw_epsilon_warm": vw_factory("epsilon", warm=warm),
        "vw_squarecb_warm": vw_factory("squarecb", warm=warm),
        "interest_oracle": lambda ranker, seed: InterestOracle(
            ranker, simulator=sim, random_state=seed
        ),
        "interest_knowing": lambda ranker, seed: InterestKnowing(
            ranker, simulator=sim, random_state=seed
        ),
    }
    policies = {p: policies[p] for p in chosen}
    if vary is not None:
        policies = {
            name: factory
            for p, f in policies.items()
            for name, factory in (
                [(f"{p}({vary[0]}={v:g})", varied_factory(p, vary[0], v)) for v in vary[1]]
                if p in POLICIES
                else [(p, f)]
            )
        }
    common = {
        "ranker": build_model(args.ranker),
        "rounds": args.rounds,
        "k": args.k,
        "seeds": seeds,
        "n_users": args.users,
        "online": not args.static_ranker,
    }
    started = time.perf_counter()
    result = simulate(sim, policies, explore=levels, progress=progress, **common)
    play_s = time.perf_counter() - started
    summary = result.summary()
    variants = {}
    for alg in ("epsilon", "squarecb"):
        for suffix, how in (("", None), ("_warm", warm)):
            if f"vw_{alg}{suffix}" in policies:
                for rate in VW_RATES:
                    variants[f"vw_{alg}_l{rate:g}{suffix}"] = vw_factory(
                        alg, f"-l {rate:g}", warm=how
                    )
    started = time.perf_counter()
    sensitivity = (
        simulate(sim, variants, explore=[0.1, 0.2], progress=progress, **common)
        if variants
        else None
    )
    sensitivity_s = time.perf_counter() - started
    vw_summary = (
        sensitivity.summary().drop([ORACLE, EXPLOIT], level="policy")
        if sensitivity is not None
        else summary.iloc[:0]
    )
    peers_all = pd.concat([summary, vw_summary])

    vs_vw = {}
    vw_all = [p for p in [*policies, *variants] if p.startswith("vw_")]
    for start, names in (
        ("cold", [p for p in vw_all if not p.endswith("_warm")]),
        ("warm", [p for p in vw_all if p.endswith("_warm")]),
    ):
        if names and any(p in policies for p in LINEAR):
            vs_vw[start] = linear_vs_vw(summary, peers_all, names)
    targets: dict[str, Any] = {}
    if any(p not in REFERENCES for p in summary.index.get_level_values("policy")):
        targets["a_interests_found"] = target_a(summary, "discovery_ratio")
        targets["a_new_interests_found"] = target_a(summary, "new_discovery_ratio")
    if vs_vw:
        targets["b_linear_vs_vowpal_wabbit"] = vs_vw
    load = machine.stop()
    doc = {
        "seconds": {
            "build_simulator": build_s,
            "play": play_s,
            "vw_sensitivity": sensitivity_s,
        },
        "machine": {
            **load,
            "note": "the figures are counts and ratios under common random numbers, which "
            "the machine's load does not change; only the seconds do",
        },
        "vowpal_wabbit": {
            "version": vowpalwabbit.__version__,
            "epsilon": VowpalWabbit(None, algorithm="epsilon").arguments(0.1),
            "squarecb": VowpalWabbit(None, algorithm="squarecb").arguments(0.1),
            "warm_rounds": args.warm_rounds,
            "sensitivity": vw_summary.reset_index().to_dict(orient="records"),
        },
        "targets": targets,
        **result.to_dict(),
    }
    doc["settings"] = {**result.settings, "policies": list(policies), "command": sys.argv[1:]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    result.frontier(RESULTS / f"{args.out}_frontier.png", targets=(0.95, 1.5))

    show = summary.reset_index()
    cols = ["policy", "explore", "reward", "expected_reward", "regret", "interests_found"]
    cols += ["new_interests_found", "coverage", "reward_ratio", "discovery_ratio"]
    cols += ["new_discovery_ratio"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(show[cols].round(3).to_string(index=False))
    for key, t in targets.items():
        if key.startswith("a_"):
            print(f"\n(a) {t['measure']}: best keeping 95% reward {t['best_keeping_95pct_reward']}")
            print(f"    best at any reward {t['best_at_any_reward']}; met: {t['met']}")
            for ref in ("perfect_knowledge_reference", "interest_knowledge_reference"):
                if ref in t:
                    print(f"    {ref}: {t[ref]}")
    for start, both in vs_vw.items():
        for measure, t in both.items():
            print(
                f"\n(b, VW {start}) {measure}: ours {t['ours']}\n    VW {t['vowpal_wabbit']}\n"
                f"    best ours / best VW = {t['ratio']:.3f}; met: {t['met']}"
            )
    print(
        f"\nsimulator {build_s:.0f} s, play {play_s:.0f} s, VW sensitivity {sensitivity_s:.0f} s; "
        f"load average {load['load_average_before'][0]:.2f} before, "
        f"{load['load_average_after'][0]:.2f} after; written to {RESULTS / args.out}.json"
    )


if __name__ == "__main__":
    main()
