"""`EvaluationReport`: per-user results of several models on the same users, summarised.

Intervals come from a paired bootstrap over users (see
:mod:`interestlens.evaluate.stats`): one seeded set of resamples serves every model
and metric, so the report is deterministic and differences keep their pairing.
Catalogue metrics (coverage, Gini) are one number per model and get no interval:
resampling users biases them (fewer distinct users cover fewer items).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from interestlens.evaluate.stats import (
    paired_bootstrap,
    percentile_ci,
    sign_flip_test,
    wilcoxon_p,
)

__all__ = ["Comparison", "EvaluationReport"]

_COMPARED = ("ndcg", "hr")


def _num(x: Any) -> float | None:
    """A float for JSON: NaN becomes ``None``."""
    x = float(x)
    return None if math.isnan(x) else x


@dataclass(frozen=True)
class Comparison:
    """Paired difference ``a - b`` of one metric over the same users.

    Attributes
    ----------
    difference
        Mean of ``a`` minus mean of ``b``.
    ci_low, ci_high
        Paired bootstrap percentile interval of the difference.
    p_value
        Two-sided p-value of the paired sign-flip permutation test.
    wilcoxon_p
        Two-sided p-value of the Wilcoxon signed-rank test (zero differences dropped).
    n_users
        Users with both values.
    """

    a: str
    b: str
    metric: str
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    wilcoxon_p: float
    n_users: int
    confidence: float

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether the permutation test rejects "no difference" at level ``alpha``."""
        return self.p_value < alpha

    def to_dict(self) -> dict[str, Any]:
        """Plain types, NaN as ``None``."""
        return {k: (_num(v) if isinstance(v, float) else v) for k, v in asdict(self).items()}


class EvaluationReport:
    """Per-user metrics of several models on the same users, with paired statistics.

    Parameters
    ----------
    per_user
        Model name to a frame indexed by ``user_id`` with one column per metric, as
        :func:`~interestlens.evaluate.evaluate_split` returns; every frame must
        hold the same users in the same order.
    protocol
        Name of the split protocol.
    k
        List length.
    n_bootstrap
        Bootstrap resamples of users.
    random_state
        Seed of the resamples and permutations.
    confidence
        Level of the intervals.
    models, split_summary, timings
        Fitted models, :meth:`Split.summary`, and fit/evaluate seconds per model,
        kept for the caller.

    Examples
    --------
    >>> a = pd.DataFrame({"hr": [1.0, 0.0, 1.0, 1.0]}, index=pd.Index(list("wxyz"), name="user_id"))
    >>> b = pd.DataFrame({"hr": [0.0, 0.0, 1.0, 0.0]}, index=a.index)
    >>> r = EvaluationReport({"a": a, "b": b}, "leave_last_out", k=10, n_bootstrap=200)
    >>> r.summary().loc[("a", "hr"), "value"]
    np.float64(0.75)
    >>> sorted(r.to_dict()["results"]["b"]["hr"])
    ['ci', 'value']
    """

    def __init__(
        self,
        per_user: Mapping[str, pd.DataFrame],
        protocol: str,
        k: int,
        *,
        n_bootstrap: int = 1000,
        random_state: int = 0,
        confidence: float = 0.95,
        models: Mapping[str, Any] | None = None,
        split_summary: dict[str, Any] | None = None,
        timings: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        if not per_user:
            raise ValueError("a report needs at least one model")
        frames = dict(per_user)
        first = next(iter(frames.values())).index
        for name, f in frames.items():
            if not f.index.equals(first):
                raise ValueError(
                    f"model {name!r} was scored on other users than the first model; "
                    "paired statistics need the same users in the same order"
                )
        self.per_user = frames
        self.protocol = protocol
        self.k = k
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state
        self.confidence = confidence
        self.models = dict(models or {})
        self.split_summary = split_summary
        self.timings = {m: dict(t) for m, t in (timings or {}).items()}
        self._summary: pd.DataFrame | None = None

    # ----- what is in it -------------------------------------------------------------
    @property
    def model_names(self) -> list[str]:
        """Models in the order given."""
        return list(self.per_user)

    @property
    def metrics(self) -> list[str]:
        """Per-user metrics, then catalogue metrics, in first-seen order."""
        names: list[str] = []
        for f in self.per_user.values():
            names += [c for c in f.columns if c not in names]
        for f in self.per_user.values():
            names += [c for c in f.attrs.get("aggregate", {}) if c not in names]
        return names

    @property
    def n_users(self) -> int:
        """Users every model was scored on."""
        return len(next(iter(self.per_user.values())))

    def summary(self) -> pd.DataFrame:
        """Mean and paired bootstrap interval of every metric of every model.

        Returns
        -------
        pandas.DataFrame
            Index ``(model, metric)``; columns ``value`` (mean over users, or the
            catalogue value), ``ci_low``, ``ci_high`` (NaN for catalogue metrics)
            and ``n_users`` (users with a value).
        """
        if self._summary is not None:
            return self._summary.copy()
        keys = [(m, c) for m, f in self.per_user.items() for c in f.columns]
        values = (
            np.column_stack([self.per_user[m][c].to_numpy(dtype=np.float64) for m, c in keys])
            if keys
            else np.zeros((self.n_users, 0))
        )
        boot = paired_bootstrap(values, self.n_bootstrap, self.random_state)
        lo, hi = percentile_ci(boot, self.confidence)
        rows = []
        for j, (m, c) in enumerate(keys):
            col = values[:, j]
            rows.append(
                (
                    m,
                    c,
                    float(np.nanmean(col)) if (~np.isnan(col)).any() else np.nan,
                    lo[j],
                    hi[j],
                    int((~np.isnan(col)).sum()),
                )
            )
        for m, f in self.per_user.items():
            for c, v in f.attrs.get("aggregate", {}).items():
                rows.append((m, c, float(v), np.nan, np.nan, len(f)))
        frame = pd.DataFrame(
            rows, columns=["model", "metric", "value", "ci_low", "ci_high", "n_users"]
        )
        order = {name: i for i, name in enumerate(self.metrics)}
        frame["_m"] = frame["model"].map({n: i for i, n in enumerate(self.model_names)})
        frame["_c"] = frame["metric"].map(order)
        frame = frame.sort_values(["_m", "_c"], kind="stable").drop(columns=["_m", "_c"])
        self._summary = frame.set_index(["model", "metric"])
        return self._summary.copy()

    def compare(
        self, a: str, b: str, metric: str = "ndcg", *, n_permutations: int = 10_000
    ) -> Comparison:
        """Paired difference ``a - b`` on ``metric``, its interval and significance tests.

        The interval uses the same bootstrap resamples as :meth:`summary`; the
        p-value is a paired sign-flip permutation test over users (seeded), and the
        Wilcoxon signed-rank p-value is given beside it. No correction is made for
        testing several pairs or metrics.

        Examples
        --------
        >>> idx = pd.Index(range(40), name="user_id")
        >>> good = pd.DataFrame({"hr": [1.0] * 30 + [0.0] * 10}, index=idx)
        >>> bad = pd.DataFrame({"hr": [0.0] * 36 + [1.0] * 4}, index=idx)
        >>> r = EvaluationReport({"good": good, "bad": bad}, "loo", k=10, n_bootstrap=500)
        >>> c = r.compare("good", "bad", "hr")
        >>> round(c.difference, 2), c.p_value < 0.05, r.compare("good", "good", "hr").p_value
        (0.65, True, 1.0)
        """
        for name in (a, b):
            if name not in self.per_user:
                raise KeyError(f"no model {name!r} in the report; it has {self.model_names}")
            if metric not in self.per_user[name].columns:
                raise KeyError(
                    f"model {name!r} has no per-user metric {metric!r} "
                    f"(catalogue metrics have no per-user values to compare)"
                )
        xa = self.per_user[a][metric].to_numpy(dtype=np.float64)
        xb = self.per_user[b][metric].to_numpy(dtype=np.float64)
        d = xa - xb
        boot = paired_bootstrap(d, self.n_bootstrap, self.random_state)
        lo, hi = percentile_ci(boot, self.confidence)
        both = ~np.isnan(d)
        return Comparison(
            a=a,
            b=b,
            metric=metric,
            mean_a=float(np.nanmean(xa[both])) if both.any() else math.nan,
            mean_b=float(np.nanmean(xb[both])) if both.any() else math.nan,
            difference=float(d[both].mean()) if both.any() else math.nan,
            ci_low=float(lo[0]),
            ci_high=float(hi[0]),
            p_value=sign_flip_test(d, n_permutations, self.random_state),
            wilcoxon_p=wilcoxon_p(d),
            n_users=int(both.sum()),
            confidence=self.confidence,
        )

    def comparisons(self) -> list[Comparison]:
        """Every other model minus the first, on NDCG and HR where present."""
        first, *others = self.model_names
        return [
            self.compare(other, first, m)
            for other in others
            for m in _COMPARED
            if m in self.per_user[first].columns and m in self.per_user[other].columns
        ]

    # ----- output ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The report as plain types.

        Shape: ``{"protocol", "k", "n_users", "confidence", "n_bootstrap",
        "random_state", "ci_method", "results": {model: {metric: {"value", "ci":
        [lo, hi] or None}}}, "comparisons": [...], "split", "timings"}``. NaN is
        ``None``.
        """
        s = self.summary()
        results: dict[str, dict[str, Any]] = {}
        for (model, metric), row in s.iterrows():
            ci = None if np.isnan(row["ci_low"]) else [_num(row["ci_low"]), _num(row["ci_high"])]
            results.setdefault(str(model), {})[str(metric)] = {
                "value": _num(row["value"]),
                "ci": ci,
            }
        return {
            "protocol": self.protocol,
            "k": self.k,
            "n_users": self.n_users,
            "confidence": self.confidence,
            "n_bootstrap": self.n_bootstrap,
            "random_state": self.random_state,
            "ci_method": "percentile interval of a paired bootstrap over users",
            "results": results,
            "comparisons": [c.to_dict() for c in self.comparisons()],
            "split": self.split_summary,
            "timings": self.timings,
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """The :meth:`to_dict` document as JSON text, also written to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=2, default=str, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def to_markdown(self, path: str | Path | None = None) -> str:
        """A Markdown report: one row per metric, one column per model, then comparisons."""
        s = self.summary()
        pct = round(self.confidence * 100)
        lines = [
            f"# Evaluation: {self.protocol}, K = {self.k}",
            "",
            f"{self.n_users:,} test users; ranking over the full catalogue minus each user's "
            f"training items. Intervals: {pct}% paired bootstrap over users "
            f"({self.n_bootstrap:,} resamples, seed {self.random_state}).",
            "",
            "| metric | " + " | ".join(self.model_names) + " |",
            "|---|" + "---|" * len(self.model_names),
        ]
        for metric in self.metrics:
            cells = []
            for model in self.model_names:
                if (model, metric) not in s.index:
                    cells.append("")
                    continue
                row = s.loc[(model, metric)]
                cell = f"{row['value']:.4f}"
                if not np.isnan(row["ci_low"]):
                    cell += f" [{row['ci_low']:.4f}, {row['ci_high']:.4f}]"
                cells.append(cell)
            lines.append(f"| {metric} | " + " | ".join(cells) + " |")
        comps = self.comparisons()
        if comps:
            lines += [
                "",
                "## Differences against " + self.model_names[0],
                "",
                f"| model | metric | difference | {pct}% interval | permutation p | Wilcoxon p |",
                "|---|---|---|---|---|---|",
            ]
            for c in comps:
                lines.append(
                    f"| {c.a} | {c.metric} | {c.difference:+.4f} | "
                    f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}] | {c.p_value:.4g} | {c.wilcoxon_p:.4g} |"
                )
        lines += [
            "",
            "Metrics: hr, precision, recall, f1, ndcg (binary gains), mrr and map (AP@K over "
            "min(|relevant|, K)) at K; auc over all candidate items; novelty in bits "
            "(-log2 of the share of training users per item); arp = average recommended "
            "popularity (share of training users); serendipity = relevant items a popularity "
            "list would not hold, over K; coverage = share of the catalogue recommended to "
            "anyone; gini of recommendation counts over the catalogue.",
            "",
        ]
        text = "\n".join(lines)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def plot(self, path: str | Path, metric: str = "ndcg") -> Path:
        """Write a PNG bar chart of ``metric`` per model with its interval as error bars.

        Uses matplotlib's Agg canvas directly, so no display and no global backend
        change are needed.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        s = self.summary()
        if metric not in s.index.get_level_values("metric"):
            raise KeyError(f"no metric {metric!r} in the report; it has {self.metrics}")
        models = [m for m in self.model_names if (m, metric) in s.index]
        rows = s.loc[[(m, metric) for m in models]]
        value = rows["value"].to_numpy()
        lo = np.nan_to_num(value - rows["ci_low"].to_numpy())
        hi = np.nan_to_num(rows["ci_high"].to_numpy() - value)
        fig = Figure(figsize=(max(4.5, 1.2 * len(models) + 2), 3.6), dpi=120)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.bar(models, value, yerr=np.vstack([lo, hi]), capsize=4, color="#4C72B0")
        ax.set_ylabel(f"{metric}@{self.k}")
        ax.set_title(
            f"{metric}@{self.k}, {self.protocol}\n"
            f"{round(self.confidence * 100)}% paired bootstrap intervals, {self.n_users:,} users",
            fontsize=9,
        )
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        out = Path(path)
        fig.savefig(out, format="png")
        return out
