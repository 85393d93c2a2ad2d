"""Offline evaluation: metrics, protocols, paired statistics, reports, tuning, off-policy, simulation.

Full-catalogue ranking by default (never sampled negatives unless asked), the same
users for every model, paired bootstrap intervals and paired significance tests.

Examples
--------
>>> from interestlens import datasets
>>> from interestlens.evaluate import evaluate
>>> from interestlens.models import Popularity
>>> report = evaluate({"popularity": Popularity()}, datasets.load("ml-latest-small"),
...                   "loo", k=10, target_types="rating", metrics=["ndcg", "hr"])
>>> report.n_users, round(float(report.summary().loc[("popularity", "ndcg"), "value"]), 4)
(609, 0.0182)

One of the 610 test users is left out: they tagged their held-out movie before rating
it, so it is among their training items and can never be recommended.
"""

from interestlens.evaluate import metrics, ope
from interestlens.evaluate.cross_validation import CrossValidationResult, cross_validate
from interestlens.evaluate.ope import (
    OPEResult,
    cross_fit_rewards,
    empirical_policy,
    evaluate_policy,
    policy_action_dist,
)
from interestlens.evaluate.protocol import (
    PROTOCOLS,
    evaluate,
    evaluate_split,
    make_split,
    parse_models,
)
from interestlens.evaluate.report import Comparison, EvaluationReport
from interestlens.evaluate.simulate import (
    ClickModel,
    SimulationResult,
    UserSimulator,
    simulate,
)
from interestlens.evaluate.tuning import FloatRange, IntRange, TuningResult, tune

__all__ = [
    "PROTOCOLS",
    "ClickModel",
    "Comparison",
    "CrossValidationResult",
    "EvaluationReport",
    "FloatRange",
    "IntRange",
    "OPEResult",
    "SimulationResult",
    "TuningResult",
    "UserSimulator",
    "cross_fit_rewards",
    "cross_validate",
    "empirical_policy",
    "evaluate",
    "evaluate_policy",
    "evaluate_split",
    "make_split",
    "metrics",
    "ope",
    "parse_models",
    "policy_action_dist",
    "simulate",
    "tune",
]
