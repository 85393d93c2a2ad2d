"""The one Registry (models, policies, OPE estimators) and the one clone."""

from __future__ import annotations

import subprocess
import sys

import pytest

from interestlens.evaluate.ope import ESTIMATORS, SwitchDR
from interestlens.explore import POLICIES, ColdStartBoost, LinUCB, build_policy
from interestlens.models import HYBRID_BASE, MODELS, ContentLM, Hybrid, Popularity, build_model
from interestlens.registry import Registry, clone
from interestlens.text import Encoder


def test_names_are_listed_without_importing_the_classes():
    code = (
        "import sys\n"
        "from interestlens.models import MODELS\n"
        "assert 'sasrec' in MODELS and 'SASRec' in MODELS and MODELS.names()[-2:] == "
        "['sasrec', 'hybrid']\n"
        "assert 'interestlens.models.sasrec' not in sys.modules\n"
        "cls = MODELS['sasrec']\n"
        "assert cls.__name__ == 'SASRec' and 'interestlens.models.sasrec' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_unknown_names_and_parameters_are_refused_naming_them():
    with pytest.raises(ValueError, match=r"unknown model 'knn'; known: popularity, userknn, "):
        MODELS.build("knn")
    with pytest.raises(KeyError, match="unknown policy 'greedy'"):
        POLICIES["greedy"]
    with pytest.raises(
        ValueError,
        match=r"model 'popularity' has no parameters 'window', 'seed'; "
        r"known: window_days, random_state$",
    ):
        MODELS.build("popularity", window=3, seed=1)
    with pytest.raises(ValueError, match=r"estimator 'dm' has no parameter 'tau'; known: $"):
        ESTIMATORS.build("dm", tau=1.0)
    assert ESTIMATORS.build("Switch-DR", tau=10.0) == SwitchDR(tau=10.0)


def test_parameters_follow_kwargs_to_the_base_class():
    # LinUCB passes **kwargs on to Policy, so the base's parameters are accepted too
    assert {"alpha", "explore", "n_candidates", "random_state"} <= set(
        POLICIES.parameters("lin_ucb")
    )
    pol = build_policy("lin_ucb", Popularity(), alpha=2.0, n_candidates=7)
    assert isinstance(pol, LinUCB) and (pol.alpha, pol.n_candidates) == (2.0, 7)
    with pytest.raises(
        ValueError, match=r"policy 'lin_ucb' has no parameter 'alpah'; known: ranker"
    ):
        build_policy("lin_ucb", Popularity(), alpah=2.0)
    # a constructor refusing a parameter its signature accepts says which policy it was
    with pytest.raises(ValueError, match=r"bad parameters for policy 'cold_start': .*`weight`"):
        build_policy("cold_start", Popularity(), explore=0.2)


def test_an_unavailable_class_fails_when_asked_for_and_names_itself():
    reg = Registry("model", {"popularity": Popularity, "ghost": "interestlens.models.ghost:Ghost"})
    assert reg.names() == ["popularity", "ghost"] and "ghost" in reg and len(reg) == 2
    with pytest.raises(ImportError, match="model 'ghost' is not available: No module named"):
        reg["ghost"]
    with pytest.raises(ValueError, match="model 'ghost' is not available"):
        reg.build("ghost")
    assert reg.build("popularity", window_days=3).window_days == 3


def test_registration_is_checked():
    reg = Registry("thing", {"a": "json:JSONDecoder"})
    with pytest.raises(ValueError, match="thing 'a' is registered already"):
        reg.register("a", "json:JSONEncoder")
    with pytest.raises(ValueError, match="must be a non-empty lowercase string"):
        reg.register("B", "json:JSONEncoder")
    with pytest.raises(ValueError, match="is not 'module:Class'"):
        reg.register("b", "json.JSONEncoder")
    assert None not in reg and 3 not in reg and "A" in reg
    assert ", ".join(reg) == "a" and dict(reg.items())["a"].__name__ == "JSONDecoder"


def test_build_model_shares_the_encoder_and_builds_the_default_hybrid():
    encoder = Encoder()
    content = build_model("contentlm", encoder=encoder)
    assert isinstance(content, ContentLM) and content.encoder is encoder
    assert build_model("popularity", encoder=encoder, random_state=4).random_state == 4
    hybrid = build_model("hybrid", encoder=encoder, random_state=2)
    assert isinstance(hybrid, Hybrid)
    assert [type(m).__name__.lower() for m in hybrid.models] == list(HYBRID_BASE)
    assert all(m.random_state == 2 for m in hybrid.models)
    assert [m.encoder is encoder for m in hybrid.models if hasattr(m, "encoder")] == [True, True]
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        build_model("nope", encoder=encoder)


def test_clone_copies_hyperparameters_and_shares_components():
    encoder = Encoder()
    model = ContentLM(recent=3, encoder=encoder)
    copy = clone(model)
    assert copy is not model and copy.get_params() == model.get_params()
    assert copy.encoder is encoder
    ranker = Popularity()
    policy = ColdStartBoost(ranker, weight=0.4, n_cold=3)
    twin = clone(policy)
    assert type(twin) is ColdStartBoost and twin.get_params() == policy.get_params()
    assert twin.ranker is ranker and twin is not policy


def test_clone_refuses_a_class_it_cannot_rebuild():
    class Forgetful(Popularity):
        def __init__(self, days: float, *, random_state: int = 0) -> None:
            super().__init__(window_days=days, random_state=random_state)

    with pytest.raises(
        TypeError, match=r"cannot clone Forgetful from its parameters \['random_state'\]"
    ):
        clone(Forgetful(3.0))
