"""Cross-validation, tuning on validation only, the model registry and the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import interestlens.evaluate.tuning as tuning
from interestlens.evaluate import FloatRange, cross_validate, parse_models, tune
from interestlens.models import EASE, Popularity
from interestlens.registry import Registry
from tests.evaluate.fakes import RandomRecommender

BIN = Path(sys.executable).with_name("interestlens")


def test_cross_validate_runs_every_fold(ml_small):
    cv = cross_validate(
        {"popularity": Popularity(), "random": RandomRecommender()},
        ml_small,
        k_folds=3,
        metrics=["hr", "ndcg", "coverage"],
        target_types="rating",
    )
    assert sorted(cv.per_fold["fold"].unique()) == [1, 2, 3]
    assert len(cv.per_fold) == 3 * 2 * 3
    s = cv.summary()
    assert (s["n_folds"] == 3).all() and (s["std"] >= 0).all()
    assert s.loc[("popularity", "ndcg"), "mean"] > 5 * s.loc[("random", "ndcg"), "mean"]
    doc = json.loads(cv.to_json())
    assert doc["k_folds"] == 3 and len(doc["results"]["popularity"]["hr"]["folds"]) == 3
    assert "± " in cv.to_markdown()


def test_grid_search_respects_the_budget(loo):
    calls = []

    def make(params):
        calls.append(params)
        return Popularity(**params)

    space = {"window_days": [None, 30.0, 180.0, 720.0], "random_state": [0, 1, 2]}
    res = tune(make, space, loo, budget=5, metric="hr", method="grid", random_state=0)
    assert len(res.trials) == 5 and len(calls) == 5
    assert len({repr(sorted(c.items())) for c in calls}) == 5  # distinct grid points
    assert res.best_value == res.trials["value"].max()
    again = tune(popularity_from, space, loo, budget=5, metric="hr", random_state=0)
    assert again.trials[["window_days", "random_state"]].equals(
        res.trials[["window_days", "random_state"]]
    )
    full = tune(popularity_from, {"window_days": [None, 30.0]}, loo, budget=20, metric="hr")
    assert len(full.trials) == 2


def popularity_from(params):
    return Popularity(**params)


def test_tuning_scores_validation_and_never_reads_test(loo, monkeypatch):
    scored = []
    real = tuning._held_out

    def spy(split, item_ids, users):
        scored.append(split.test)
        return real(split, item_ids, users)

    monkeypatch.setattr(tuning, "_held_out", spy)
    no_test = dataclasses.replace(loo, test=None)  # reading test would fail
    res = tune(popularity_from, {"window_days": [None, 90.0]}, no_test, budget=2, metric="ndcg")
    assert scored and all(s is loo.validation for s in scored)
    assert res.best_params["window_days"] in (None, 90.0)
    with pytest.raises(ValueError, match="no validation"):
        tune(popularity_from, {"window_days": [None]}, dataclasses.replace(loo, validation=None))


def test_optuna_search_is_seeded_and_bounded(loo):
    space = {"window_days": FloatRange(1.0, 5000.0, log=True)}
    a = tune(popularity_from, space, loo, budget=6, metric="ndcg", method="optuna")
    b = tune(popularity_from, space, loo, budget=6, metric="ndcg", method="optuna")
    assert len(a.trials) == 6 and a.method == "optuna"
    assert a.best_params == b.best_params and a.trials["value"].equals(b.trials["value"])
    with pytest.raises(ValueError, match="optuna"):
        tune(popularity_from, space, loo, budget=2, method="grid")


def test_parse_models_builds_by_name_and_explains_missing_models(monkeypatch):
    import interestlens.models as models

    got = parse_models(" popularity , EASE,")
    assert list(got) == ["popularity", "ease"]
    assert isinstance(got["popularity"], Popularity) and isinstance(got["ease"], EASE)
    ghostly = Registry(
        "model", {"popularity": Popularity, "ghost": "interestlens.models.ghost:Ghost"}
    )
    monkeypatch.setattr(models, "MODELS", ghostly)
    with pytest.raises(ValueError, match="model 'ghost' is not available"):
        parse_models("popularity,ghost")
    with pytest.raises(ValueError, match="unknown model 'nosuchmodel'; known: popularity, ghost"):
        parse_models("nosuchmodel")
    with pytest.raises(ValueError, match="no model named"):
        parse_models(" , ")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "INTERESTLENS_DEBUG"}
    return subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def test_cli_evaluate_json_and_files(tmp_path):
    out = tmp_path / "eval"
    p = run(
        "evaluate",
        "--models",
        "popularity",
        "--json",
        "--bootstrap",
        "200",
        "--target-types",
        "rating",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert {"protocol", "k", "results"} <= set(doc)
    assert doc["protocol"] == "leave_last_out" and doc["k"] == 10
    ndcg = doc["results"]["popularity"]["ndcg"]
    assert 0.01 < ndcg["value"] < 0.03 and len(ndcg["ci"]) == 2
    assert sorted(f.name for f in out.iterdir()) == ["report.json", "report.md", "report.png"]
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_evaluate_unknown_model_is_one_clear_line(tmp_path):
    p = run("evaluate", "--models", "nosuchmodel", "--json", cwd=tmp_path)
    assert p.returncode == 2 and p.stdout == ""
    assert "unknown model 'nosuchmodel'" in p.stderr
