"""Hyperparameter search on the validation part of a split, within a stated budget.

The budget is the number of *trials*: each trial proposes one setting, fits a fresh
model on ``split.train`` and scores it on ``split.validation``. The test part is never
read, so a tuned model's test figure stays an honest estimate. A setting proposed a
second time (Optuna's sampler may repeat one) reuses the first result: it still counts
as a trial but costs no fit, so the number of fits never exceeds the budget.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from interestlens.data.splits import Split
from interestlens.evaluate.protocol import _held_out, _HeldOut, _metric_names, _score
from interestlens.models.base import Recommender

__all__ = ["FloatRange", "IntRange", "TuningResult", "tune"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntRange:
    """Integers from ``low`` to ``high`` inclusive (Optuna only), on a log scale if ``log``."""

    low: int
    high: int
    log: bool = False


@dataclass(frozen=True)
class FloatRange:
    """Floats from ``low`` to ``high`` (Optuna only), on a log scale if ``log``."""

    low: float
    high: float
    log: bool = False


Space = Mapping[str, Sequence[Any] | IntRange | FloatRange]


@dataclass(frozen=True)
class TuningResult:
    """What a search found.

    Attributes
    ----------
    best_params
        The setting with the best validation value (the earliest among ties).
    best_value
        Its validation value of ``metric``.
    trials
        One row per trial in order: ``trial``, one column per parameter, ``value``,
        ``seconds`` (fit and score; 0 for a repeated setting) and ``repeated``.
    metric, method, budget
        What was optimised, how, and the trial budget.
    """

    best_params: dict[str, Any]
    best_value: float
    trials: pd.DataFrame
    metric: str
    method: str
    budget: int


def _grid(space: Space, budget: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    for name, values in space.items():
        if isinstance(values, IntRange | FloatRange) or isinstance(values, str):
            raise ValueError(
                f"grid search needs a list of values for {name!r}; ranges need method='optuna'"
            )
        if len(values) == 0:
            raise ValueError(f"no values for {name!r}")
    names = list(space)
    sizes = [len(space[n]) for n in names]  # type: ignore[arg-type]
    total = math.prod(sizes)
    if total <= budget:
        picks = range(total)
    else:
        picks = sorted(rng.choice(total, size=budget, replace=False).tolist())
    out = []
    for flat in picks:
        point, rest = {}, flat
        for name, size in zip(reversed(names), reversed(sizes), strict=True):
            rest, j = divmod(rest, size)
            point[name] = space[name][j]  # type: ignore[index]
        out.append({n: point[n] for n in names})
    return out


def _primitive(v: Any) -> bool:
    return v is None or isinstance(v, bool | int | float | str)


def tune(
    make_model: Callable[[dict[str, Any]], Recommender],
    space: Space,
    split: Split,
    *,
    budget: int = 20,
    metric: str = "ndcg",
    k: int = 10,
    method: Literal["grid", "optuna"] = "grid",
    random_state: int = 0,
    direction: Literal["maximize", "minimize"] = "maximize",
) -> TuningResult:
    """Search hyperparameters on ``split.validation`` with at most ``budget`` trials.

    Parameters
    ----------
    make_model
        Builds an unfitted model from one setting (a dict of the parameters in
        ``space``).
    space
        Parameter name to a list of values, or (Optuna only) an :class:`IntRange` or
        :class:`FloatRange`.
    split
        A split with a validation part (e.g. from
        :func:`~interestlens.evaluate.make_split`); models fit on ``split.train``
        and are scored on ``split.validation``. ``split.test`` is never read.
    budget
        Number of trials (see the module notes).
    metric
        A per-user metric (its mean) or a catalogue metric to optimise.
    k
        List length.
    method
        ``"grid"``: the full grid when it has at most ``budget`` points, else a
        seeded random sample of ``budget`` distinct points (in grid order).
        ``"optuna"``: ``budget`` trials of Optuna's TPE sampler, seeded.
    random_state
        Seed of the grid sample or of the TPE sampler.
    direction
        Whether larger (accuracy) or smaller (say, ``arp``) values are better.

    Returns
    -------
    TuningResult

    Examples
    --------
    >>> from interestlens.data import Dataset, Event
    >>> from interestlens.evaluate import make_split
    >>> from interestlens.models import Popularity
    >>> ds = Dataset.from_records(
    ...     [Event(f"u{u}", f"i{(u + j) % 7}", "click") for u in range(30) for j in range(5)]
    ... )
    >>> res = tune(lambda p: Popularity(**p), {"window_days": [None, 30.0]},
    ...            make_split(ds, "loo"), budget=5, metric="hr", k=3)
    >>> len(res.trials), sorted(res.best_params)
    (2, ['window_days'])
    """
    if budget < 1:
        raise ValueError(f"budget must be at least 1 trial, got {budget}")
    if split.validation is None:
        raise ValueError(
            f"split {split.name!r} has no validation part; tune on a split made with one "
            "(make_split always makes one)"
        )
    if not space:
        raise ValueError("the search space is empty")
    names = _metric_names([metric], with_vectors=False)
    validation = dataclasses.replace(split, test=split.validation, validation=None)
    sign = 1.0 if direction == "maximize" else -1.0
    held: list[_HeldOut] = []
    records: list[dict[str, Any]] = []
    cache: dict[str, float] = {}

    def run(params: dict[str, Any]) -> float:
        key = repr(sorted(params.items()))
        repeated = key in cache
        t0 = time.perf_counter()
        if not repeated:
            model = make_model(dict(params)).fit(split.train)
            if not held or not held[0].item_ids.equals(model.item_ids_):
                held[:] = [_held_out(validation, model.item_ids_, None)]
            frame = _score(
                model,
                held[0],
                k,
                names,
                item_vectors=None,
                n_negatives=None,
                random_state=random_state,
                batch_size=1024,
                split_name=validation.name,
            )
            cache[key] = float(
                frame.attrs["aggregate"][metric]
                if metric in frame.attrs["aggregate"]
                else frame[metric].mean()
            )
        value = cache[key]
        records.append(
            {
                "trial": len(records),
                **params,
                "value": value,
                "seconds": round(time.perf_counter() - t0, 4),
                "repeated": repeated,
            }
        )
        log.info("trial %d %s: %s = %.5f", len(records) - 1, params, metric, value)
        return value

    if method == "grid":
        for point in _grid(space, budget, np.random.default_rng(random_state)):
            run(point)
    elif method == "optuna":
        _optuna(run, space, budget, random_state, direction)
    else:
        raise ValueError(f"unknown method {method!r}; use 'grid' or 'optuna'")
    trials = pd.DataFrame.from_records(records)
    scored = trials["value"].to_numpy(dtype=np.float64) * sign
    best = int(np.nanargmax(scored)) if not np.isnan(scored).all() else 0
    return TuningResult(
        best_params={n: records[best][n] for n in space},
        best_value=float(records[best]["value"]),
        trials=trials,
        metric=metric,
        method=method,
        budget=budget,
    )


def _optuna(
    run: Callable[[dict[str, Any]], float],
    space: Space,
    budget: int,
    random_state: int,
    direction: str,
) -> None:
    import optuna

    def objective(trial: optuna.Trial) -> float:
        params: dict[str, Any] = {}
        for name, dom in space.items():
            if isinstance(dom, IntRange):
                params[name] = trial.suggest_int(name, dom.low, dom.high, log=dom.log)
            elif isinstance(dom, FloatRange):
                params[name] = trial.suggest_float(name, dom.low, dom.high, log=dom.log)
            elif all(_primitive(v) for v in dom):
                params[name] = trial.suggest_categorical(name, list(dom))
            else:  # values Optuna cannot store: choose by position
                params[name] = dom[trial.suggest_categorical(name, list(range(len(dom))))]
        value = run(params)
        return value if math.isfinite(value) else float("nan")

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            direction=direction, sampler=optuna.samplers.TPESampler(seed=random_state)
        )
        study.optimize(objective, n_trials=budget)
    finally:
        optuna.logging.set_verbosity(verbosity)
