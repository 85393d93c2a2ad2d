"""Exploration policies that wrap a ranker; every slate carries propensities and a request id.

Build one by name with :func:`build_policy`; :data:`POLICIES` is the registry of names. See
:mod:`interestlens.explore.base` for the shared interface. Each policy's module is
imported when the policy is first asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from interestlens.explore.base import EXACT, Policy, Slate, inclusion_probabilities
from interestlens.models import Recommender
from interestlens.registry import Registry

if TYPE_CHECKING:
    from interestlens.explore.cold_start import ColdStartBoost
    from interestlens.explore.diversifier import InterestDiversifier
    from interestlens.explore.epsilon_greedy import EpsilonGreedy
    from interestlens.explore.interest_explorer import InterestExplorer, llm_transitions
    from interestlens.explore.lin_ucb import LinUCB
    from interestlens.explore.linear import LinearPolicy
    from interestlens.explore.softmax import Softmax
    from interestlens.explore.thompson import LinTS

#: Policy name (each class's ``name``) -> class, imported on first use.
POLICIES: Registry[Policy] = Registry(
    "policy",
    {
        "epsilon_greedy": "interestlens.explore.epsilon_greedy:EpsilonGreedy",
        "softmax": "interestlens.explore.softmax:Softmax",
        "lin_ucb": "interestlens.explore.lin_ucb:LinUCB",
        "lin_ts": "interestlens.explore.thompson:LinTS",
        "interest_explorer": "interestlens.explore.interest_explorer:InterestExplorer",
        "interest_diversifier": "interestlens.explore.diversifier:InterestDiversifier",
        "cold_start": "interestlens.explore.cold_start:ColdStartBoost",
    },
)

#: The classes and functions of this package imported on first use: name -> module.
_LAZY = {
    "ColdStartBoost": "cold_start",
    "EpsilonGreedy": "epsilon_greedy",
    "InterestDiversifier": "diversifier",
    "InterestExplorer": "interest_explorer",
    "LinTS": "thompson",
    "LinUCB": "lin_ucb",
    "LinearPolicy": "linear",
    "Softmax": "softmax",
    "llm_transitions": "interest_explorer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"interestlens.explore.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'interestlens.explore' has no attribute {name!r}")


def build_policy(name: str, ranker: Recommender, **params: Any) -> Policy:
    """An unfitted policy by name over ``ranker``; ``params`` are its parameters.

    Raises
    ------
    ValueError
        An unknown policy or a parameter it does not take (see
        :meth:`~interestlens.registry.Registry.build`).

    Examples
    --------
    >>> from interestlens.models import Popularity
    >>> build_policy("softmax", Popularity(), temperature=0.5)
    Softmax(temperature=0.5, n_draws=1000, explore=0.1, n_candidates=100, feedback_weight=1.0, max_pending=100000, random_state=0)
    >>> build_policy("greedy", Popularity())
    Traceback (most recent call last):
    ...
    ValueError: unknown policy 'greedy'; known: epsilon_greedy, softmax, lin_ucb, lin_ts, interest_explorer, interest_diversifier, cold_start
    """
    return POLICIES.build(name, ranker=ranker, **params)


__all__ = [
    "EXACT",
    "POLICIES",
    "ColdStartBoost",
    "EpsilonGreedy",
    "InterestDiversifier",
    "InterestExplorer",
    "LinTS",
    "LinUCB",
    "LinearPolicy",
    "Policy",
    "Slate",
    "Softmax",
    "build_policy",
    "inclusion_probabilities",
    "llm_transitions",
]
