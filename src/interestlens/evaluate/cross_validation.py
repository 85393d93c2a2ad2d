"""K-fold cross-validation of recommenders over :func:`interestlens.data.splits.kfold`."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from interestlens.data import Dataset
from interestlens.data.splits import kfold
from interestlens.evaluate.protocol import ModelSpec, _build, _held_out, _metric_names, _score

__all__ = ["CrossValidationResult", "cross_validate"]

log = logging.getLogger(__name__)


class CrossValidationResult:
    """Mean metrics of every model on every fold, and their mean and spread over folds.

    Attributes
    ----------
    per_fold
        Long frame with columns ``fold`` (from 1), ``model``, ``metric``, ``value``
        (the mean over the fold's test users, or the catalogue value).
    k_folds, k
        Number of folds and list length.
    """

    def __init__(self, per_fold: pd.DataFrame, k_folds: int, k: int) -> None:
        self.per_fold = per_fold
        self.k_folds = k_folds
        self.k = k

    def summary(self) -> pd.DataFrame:
        """Index ``(model, metric)``; columns ``mean``, ``std`` (over folds, ddof 1), ``n_folds``."""
        g = self.per_fold.groupby(["model", "metric"], sort=False)["value"]
        return pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "n_folds": g.count()})

    def to_dict(self) -> dict[str, Any]:
        """``{"protocol": "kfold", "k_folds", "k", "results": {model: {metric: {"value", "std", "folds"}}}}``."""
        results: dict[str, dict[str, Any]] = {}
        s = self.summary()
        for (model, metric), row in s.iterrows():
            folds = self.per_fold[
                (self.per_fold["model"] == model) & (self.per_fold["metric"] == metric)
            ]["value"]
            results.setdefault(str(model), {})[str(metric)] = {
                "value": _num(row["mean"]),
                "std": _num(row["std"]),
                "folds": [_num(v) for v in folds],
            }
        return {"protocol": "kfold", "k_folds": self.k_folds, "k": self.k, "results": results}

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON of :meth:`to_dict`, also written to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def to_markdown(self) -> str:
        """One row per metric, one ``mean ± std`` column per model."""
        s = self.summary()
        models = list(dict.fromkeys(self.per_fold["model"]))
        metrics = list(dict.fromkeys(self.per_fold["metric"]))
        lines = [
            f"# {self.k_folds}-fold cross-validation, K = {self.k}",
            "",
            "| metric | " + " | ".join(models) + " |",
            "|---|" + "---|" * len(models),
        ]
        for metric in metrics:
            cells = []
            for model in models:
                if (model, metric) in s.index:
                    r = s.loc[(model, metric)]
                    cells.append(f"{r['mean']:.4f} ± {r['std']:.4f}")
                else:
                    cells.append("")
            lines.append(f"| {metric} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


def _num(x: Any) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def cross_validate(
    models: Mapping[str, ModelSpec],
    dataset: Dataset,
    k_folds: int = 5,
    k: int = 10,
    *,
    metrics: Sequence[str] | None = None,
    target_types: str | Iterable[str] | None = None,
    random_state: int = 0,
    item_vectors: np.ndarray | pd.DataFrame | None = None,
) -> CrossValidationResult:
    """Fit and score every model on each of ``k_folds`` folds.

    Every target event is held out exactly once (see
    :func:`~interestlens.data.splits.kfold`); each fold trains a fresh copy of each
    model on the other folds and ranks the full catalogue minus the user's training
    items, as :func:`~interestlens.evaluate.evaluate_split` does.

    Parameters
    ----------
    models
        Name to an unfitted model (cloned per fold) or a function returning one.
    dataset
        The events.
    k_folds
        Number of folds, at least 2.
    k
        List length.
    metrics
        Metrics to compute (default all that apply).
    target_types
        Event types that may be held out; ``None``: every item event.
    random_state
        Seed of the fold assignment.
    item_vectors
        Item embeddings for intra-list diversity.

    Returns
    -------
    CrossValidationResult

    Notes
    -----
    Folds ignore time (a random per-user assignment), so a model may train on a
    user's later events than the ones it is tested on; leave-last-out measures
    prediction of the future. Fold means are not independent (the training parts
    overlap), so the standard deviation understates the uncertainty of the mean.

    Examples
    --------
    >>> from interestlens.data import Dataset, Event
    >>> from interestlens.models import Popularity
    >>> ds = Dataset.from_records(
    ...     [Event(f"u{u}", f"i{(u * j) % 9}", "click") for u in range(20) for j in range(1, 7)]
    ... )
    >>> cv = cross_validate({"pop": Popularity()}, ds, k_folds=3, k=5, metrics=["hr", "ndcg"])
    >>> sorted(cv.per_fold["fold"].unique().tolist()), list(cv.summary().columns)
    ([1, 2, 3], ['mean', 'std', 'n_folds'])
    """
    names = _metric_names(metrics, item_vectors is not None)
    rows: list[tuple[int, str, str, float]] = []
    for fold, split in enumerate(
        kfold(dataset, k=k_folds, random_state=random_state, target_types=target_types), start=1
    ):
        held = None
        for name, spec in models.items():
            model = _build(spec, fit=True).fit(split.train)
            if held is None or not held.item_ids.equals(model.item_ids_):
                held = _held_out(split, model.item_ids_, None)
            frame = _score(
                model,
                held,
                k,
                names,
                item_vectors=item_vectors,
                n_negatives=None,
                random_state=random_state,
                batch_size=1024,
                split_name=split.name,
            )
            rows += [(fold, name, c, float(frame[c].mean())) for c in frame.columns]
            rows += [(fold, name, c, float(v)) for c, v in frame.attrs["aggregate"].items()]
            log.info("%s: %s done", split.name, name)
    per_fold = pd.DataFrame(rows, columns=["fold", "model", "metric", "value"])
    return CrossValidationResult(per_fold, k_folds, k)
