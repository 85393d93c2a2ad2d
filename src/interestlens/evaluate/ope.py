r"""Off-policy evaluation: what a new policy would earn, estimated from another policy's log.

A log of (context, action, position, reward, propensity) rows, collected by a *logging*
policy that recorded the probability of each shown action, is enough to estimate the value
(expected reward per row) of a different *evaluation* policy without showing it to anyone.
The estimators follow the position-wise (slot) setting of Open Bandit Pipeline 0.5
(Saito et al. 2021): each logged row is one slot of a slate, and the evaluation policy is an
``action_dist`` array of shape ``(n_rows, n_actions, len_list)`` giving, for every row, its
probability of each action at each position; only each row's own position is used.

With :math:`w_i = \pi_e(a_i \mid x_i, k_i) / \pi_b(a_i \mid x_i, k_i)` the importance weight,
:math:`\hat q` an estimated reward and :math:`\hat q(x_i, \pi_e) = \sum_a \pi_e(a \mid x_i,
k_i)\, \hat q(x_i, a, k_i)`:

- DM (direct method): :math:`\frac1n \sum_i \hat q(x_i, \pi_e)`;
- IPS (inverse propensity scoring): :math:`\frac1n \sum_i w_i r_i`;
- SNIPS (self-normalised IPS, Swaminathan & Joachims 2015):
  :math:`\sum_i w_i r_i / \sum_i w_i`;
- DR (doubly robust, Dudík, Langford & Li 2011):
  :math:`\frac1n \sum_i [\hat q(x_i, \pi_e) + w_i (r_i - \hat q(x_i, a_i, k_i))]`;
- SNDR (self-normalised DR): DM plus :math:`\sum_i w_i (r_i - \hat q_i) / \sum_i w_i`;
- Switch-DR (Wang, Agarwal & Dudík 2017): DR where :math:`w_i \le \tau`, DM elsewhere.

Every estimate comes with a percentile bootstrap interval. :func:`evaluate_policy` runs any
of them; :func:`cross_fit_rewards` supplies :math:`\hat q` for DM, DR, SNDR and Switch-DR;
:data:`TARGET_POLICIES` names built-in evaluation policies and :func:`empirical_policy` turns
another log into one; :func:`explore_action_dist` (for a policy object) and
:func:`engine_action_dist` (for a policy of a fitted engine, seen through
:class:`PolicySource`) evaluate one of
:mod:`interestlens.explore`'s policies on a log that names each row's user, such as the
product's own slate log; :func:`read_log` reads a log file.

References: Y. Saito, S. Aihara, M. Matsutani and Y. Narita. 2021. Open Bandit Dataset and
Pipeline. NeurIPS Datasets and Benchmarks. M. Dudík, J. Langford and L. Li. 2011. Doubly
Robust Policy Evaluation and Learning. ICML. A. Swaminathan and T. Joachims. 2015. The
Self-Normalized Estimator for Counterfactual Learning. NeurIPS. Y.-X. Wang, A. Agarwal and
M. Dudík. 2017. Optimal and Adaptive Off-policy Evaluation in Contextual Bandits. ICML.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, NamedTuple, Protocol

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import expit

from interestlens.data.bandit import BanditLog
from interestlens.registry import Registry

if TYPE_CHECKING:
    from interestlens.explore import Policy as ExplorePolicy

__all__ = [
    "DEFAULT_ESTIMATORS",
    "ESTIMATORS",
    "OTHER_ITEMS",
    "SNDR",
    "SNIPS",
    "TARGET_POLICIES",
    "DirectMethod",
    "DoublyRobust",
    "Estimator",
    "InverseProbabilityScoring",
    "OPEResult",
    "PolicySource",
    "RowInputs",
    "RowTerms",
    "SwitchDR",
    "TargetPolicy",
    "cross_fit_rewards",
    "empirical_policy",
    "engine_action_dist",
    "evaluate_policy",
    "explore_action_dist",
    "logging_policy",
    "policy_action_dist",
    "read_log",
    "uniform_policy",
]

#: Allowed gap between 1 and the sum of an action distribution over the actions.
_SUM_TOLERANCE = 1e-6
#: Bootstrap resamples are drawn in blocks of about this many row indices.
_BOOTSTRAP_BLOCK = 2_000_000


@dataclass(frozen=True)
class OPEResult:
    """An estimated policy value and its bootstrap confidence interval.

    Attributes
    ----------
    estimate
        The estimator on the whole log.
    ci_low, ci_high
        Percentile bootstrap bounds of the ``1 - alpha`` interval.
    """

    estimate: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, float]:
        """``{"estimate", "ci_low", "ci_high"}``, the CLI's JSON shape."""
        return {"estimate": self.estimate, "ci_low": self.ci_low, "ci_high": self.ci_high}


class RowInputs(NamedTuple):
    r"""What an estimator sees of each logged row.

    Attributes
    ----------
    weight
        :math:`w_i`: the evaluation policy's probability of the logged action at the logged
        position, over the logging propensity.
    reward
        :math:`r_i`, the logged reward.
    q_policy
        :math:`\hat q(x_i, \pi_e)`: the estimated reward expected under the evaluation
        policy at the row's position (zeros when no estimator needs :math:`\hat q`).
    residual
        :math:`r_i - \hat q(x_i, a_i, k_i)`: the reward minus the logged action's estimated
        reward (zeros likewise).
    """

    weight: np.ndarray
    reward: np.ndarray
    q_policy: np.ndarray
    residual: np.ndarray


class RowTerms(NamedTuple):
    """Per-row pieces of an estimator: value = mean(direct) + sum(correction) / sum(normaliser).

    A plain (not self-normalised) estimator has ``normaliser`` all ones, so the second
    term is the mean of ``correction``. When every normaliser of a sample is 0 (no row has
    weight under the evaluation policy) the second term counts as 0.
    """

    direct: np.ndarray
    correction: np.ndarray
    normaliser: np.ndarray


class Estimator(ABC):
    r"""An off-policy estimator, written as per-row terms so it can be bootstrapped.

    Subclasses set ``name`` and ``needs_rewards`` (whether they use the estimated reward
    :math:`\hat q`) and implement :meth:`terms`. Run them with :func:`evaluate_policy`.
    """

    name: ClassVar[str]
    needs_rewards: ClassVar[bool] = True

    @abstractmethod
    def terms(self, rows: RowInputs) -> RowTerms:
        """Per-row terms of the estimator from the log's :class:`RowInputs`."""


def _ones(a: np.ndarray) -> np.ndarray:
    return np.ones_like(a, dtype="float64")


def _zeros(a: np.ndarray) -> np.ndarray:
    return np.zeros_like(a, dtype="float64")


@dataclass(frozen=True)
class DirectMethod(Estimator):
    r"""Direct method: the mean estimated reward of the evaluation policy's actions.

    Low variance, but biased as far as :math:`\hat q` is wrong; its bootstrap interval
    holds :math:`\hat q` fixed, so it reflects the spread of contexts, not the error of
    the reward model. Follows ``obp.ope.DirectMethod`` (Saito et al. 2021).
    """

    name: ClassVar[str] = "dm"

    def terms(self, rows: RowInputs) -> RowTerms:
        """The mean of ``q_policy``; no correction."""
        return RowTerms(rows.q_policy, _zeros(rows.weight), _ones(rows.weight))


@dataclass(frozen=True)
class InverseProbabilityScoring(Estimator):
    """Inverse propensity scoring: rewards reweighted by the importance weight.

    Unbiased when the propensities are right and the logging policy gives every action the
    evaluation policy may choose a positive probability; high variance when the weights are
    large. Follows ``obp.ope.InverseProbabilityWeighting`` without clipping.
    """

    name: ClassVar[str] = "ips"
    needs_rewards: ClassVar[bool] = False

    def terms(self, rows: RowInputs) -> RowTerms:
        """No direct part; the correction is ``weight * reward``."""
        return RowTerms(_zeros(rows.weight), rows.weight * rows.reward, _ones(rows.weight))


@dataclass(frozen=True)
class SNIPS(Estimator):
    """Self-normalised IPS (Swaminathan & Joachims 2015): IPS divided by the mean weight.

    Slightly biased but consistent, and always within the range of the observed rewards.
    Follows ``obp.ope.SelfNormalizedInverseProbabilityWeighting``.
    """

    name: ClassVar[str] = "snips"
    needs_rewards: ClassVar[bool] = False

    def terms(self, rows: RowInputs) -> RowTerms:
        """IPS's correction, normalised by the sum of the weights."""
        return RowTerms(_zeros(rows.weight), rows.weight * rows.reward, rows.weight)


@dataclass(frozen=True)
class DoublyRobust(Estimator):
    r"""Doubly robust (Dudík, Langford & Li 2011): DM plus an importance-weighted residual.

    Unbiased when either the propensities or :math:`\hat q` are right. Follows
    ``obp.ope.DoublyRobust`` without clipping.
    """

    name: ClassVar[str] = "dr"

    def terms(self, rows: RowInputs) -> RowTerms:
        """``q_policy`` plus ``weight * (reward - q_factual)``."""
        return RowTerms(rows.q_policy, rows.weight * rows.residual, _ones(rows.weight))


@dataclass(frozen=True)
class SNDR(Estimator):
    """Self-normalised doubly robust: DR whose residual term is divided by the mean weight.

    Follows ``obp.ope.SelfNormalizedDoublyRobust``.
    """

    name: ClassVar[str] = "sndr"

    def terms(self, rows: RowInputs) -> RowTerms:
        """DR's terms, the correction normalised by the sum of the weights."""
        return RowTerms(rows.q_policy, rows.weight * rows.residual, rows.weight)


@dataclass(frozen=True)
class SwitchDR(Estimator):
    """Switch doubly robust (Wang, Agarwal & Dudík 2017): DR up to a weight, DM beyond.

    Rows whose importance weight exceeds ``tau`` keep only their DM term, trading a little
    bias for less variance.

    Parameters
    ----------
    tau
        Importance-weight threshold, at least 0. ``0`` is DM on every row with a positive
        weight, ``np.inf`` is DR. The default, 5 (the evaluation policy showing an action
        five times as often as the logging policy did), is a rule of thumb, not tuned.

    Follows ``obp.ope.SwitchDoublyRobust``, whose ``lambda_`` is ``tau`` here.
    """

    tau: float = 5.0
    name: ClassVar[str] = "switch-dr"

    def __post_init__(self) -> None:
        if not (self.tau >= 0):
            raise ValueError(f"Switch-DR needs tau >= 0, got {self.tau!r}")

    def terms(self, rows: RowInputs) -> RowTerms:
        """DR's terms with the weights above ``tau`` set to 0 in the correction."""
        kept = np.where(rows.weight <= self.tau, rows.weight, 0.0)
        return RowTerms(rows.q_policy, kept * rows.residual, _ones(rows.weight))


#: Estimator name to class, for :func:`evaluate_policy` and the CLI's ``--estimators``.
ESTIMATORS: Registry[Estimator] = Registry(
    "estimator",
    {
        cls.name: cls
        for cls in (DirectMethod, InverseProbabilityScoring, SNIPS, DoublyRobust, SNDR, SwitchDR)
    },
)
DEFAULT_ESTIMATORS: tuple[str, ...] = tuple(ESTIMATORS)


def _resolve(estimators: Sequence[str | Estimator]) -> list[Estimator]:
    if isinstance(estimators, str):
        estimators = [estimators]
    resolved = [e if isinstance(e, Estimator) else ESTIMATORS.build(e) for e in estimators]
    names = [e.name for e in resolved]
    if len(set(names)) != len(names):
        raise ValueError(f"estimators named twice: {names}")
    if not resolved:
        raise ValueError("no estimators asked for")
    return resolved


def _check_array(name: str, a: np.ndarray, log: BanditLog) -> np.ndarray:
    """A float array of the OBP shape ``(n_rows, n_actions, len_list)``, all finite."""
    a = np.asarray(a, dtype="float64")
    want = (len(log), log.n_actions, log.len_list)
    if a.shape != want:
        raise ValueError(
            f"{name} has shape {a.shape}, expected (n_rows, n_actions, len_list) = {want}"
        )
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds values that are not finite")
    return a


def _check_action_dist(action_dist: np.ndarray, log: BanditLog) -> np.ndarray:
    a = _check_array("action_dist", action_dist, log)
    if (a < 0).any():
        raise ValueError("action_dist holds negative probabilities")
    rows = np.arange(len(log))
    sums = a[rows, :, log.position].sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > _SUM_TOLERANCE)
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"action_dist must sum to 1 over the actions at each row's position; "
            f"{len(bad)} rows do not (row {i}, position {int(log.position[i])} sums to {sums[i]:.6g})"
        )
    return a


def _bootstrap(
    terms: dict[str, RowTerms], n: int, n_bootstrap: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Each estimator on ``n_bootstrap`` resamples of the rows, the same resamples for all."""
    out = {name: np.empty(n_bootstrap) for name in terms}
    block = max(1, _BOOTSTRAP_BLOCK // n)
    for start in range(0, n_bootstrap, block):
        m = min(block, n_bootstrap - start)
        idx = rng.integers(0, n, size=(m, n))
        for name, t in terms.items():
            out[name][start : start + m] = _value(
                t.direct[idx].mean(axis=1),
                t.correction[idx].sum(axis=1),
                t.normaliser[idx].sum(axis=1),
            )
    return out


def _value(
    direct_mean: np.ndarray, correction_sum: np.ndarray, normaliser_sum: np.ndarray
) -> np.ndarray:
    """mean(direct) + sum(correction) / sum(normaliser), with 0 / 0 counted as 0."""
    correction_sum = np.asarray(correction_sum, dtype="float64")
    normaliser_sum = np.asarray(normaliser_sum, dtype="float64")
    ratio = np.divide(
        correction_sum,
        normaliser_sum,
        out=np.zeros_like(correction_sum),
        where=normaliser_sum != 0,
    )
    return direct_mean + ratio


def evaluate_policy(
    log: BanditLog,
    action_dist: np.ndarray,
    estimators: Sequence[str | Estimator] = DEFAULT_ESTIMATORS,
    *,
    estimated_rewards: np.ndarray | None = None,
    n_bootstrap: int = 1000,
    alpha: float = 0.05,
    random_state: int | None = 0,
) -> dict[str, OPEResult]:
    r"""Estimate the value of an evaluation policy from a logging policy's log.

    Parameters
    ----------
    log
        Logged rows with their propensities (see
        :class:`~interestlens.data.bandit.BanditLog`; the product's served slates, one row
        per shown position, convert with ``BanditLog.from_frame``).
    action_dist
        The evaluation policy, shape ``(len(log), log.n_actions, log.len_list)``:
        ``action_dist[i, a, k]`` is its probability of action ``a`` at position ``k`` for
        row ``i``'s context. It must sum to 1 over the actions at each row's position.
        :func:`policy_action_dist` builds it for a named policy.
    estimators
        Names from :data:`ESTIMATORS` (``"dm"``, ``"ips"``, ``"snips"``, ``"dr"``,
        ``"sndr"``, ``"switch-dr"``) or :class:`Estimator` instances such as
        ``SwitchDR(tau=10)``; all six by default.
    estimated_rewards
        :math:`\hat q(x_i, a, k)` of the same shape as ``action_dist``, for DM, DR, SNDR
        and Switch-DR. By default :func:`cross_fit_rewards` fits it on ``log`` (seeded by
        ``random_state``); pass your own to use another reward model.
    n_bootstrap
        Resamples of the log's rows for the intervals. Every estimator sees the same
        resamples, so an estimator's interval does not depend on which others are asked.
    alpha
        The intervals cover ``1 - alpha`` (percentile bootstrap).
    random_state
        Seed of the bootstrap (and of the default reward model's folds).

    Returns
    -------
    dict
        Estimator name to :class:`OPEResult`, in the order asked.

    Raises
    ------
    ValueError
        An empty log, an array of the wrong shape or with non-finite values, an
        ``action_dist`` with negative entries or not summing to 1 at a row's position, an
        unknown estimator, ``n_bootstrap < 1`` or ``alpha`` outside (0, 1).

    Notes
    -----
    The point estimate follows Open Bandit Pipeline 0.5. The interval differs slightly:
    OBP resamples per-row rewards already divided by the whole log's mean weight, while
    here a self-normalised estimator is recomputed on each resample (its own mean weight).
    The estimated rewards are held fixed, so no interval includes the reward model's own
    fitting error.

    Examples
    --------
    A uniform logging policy over 2 actions and 1 position; the evaluation policy always
    shows action 1, whose rows earned 1 of 2.

    >>> import pandas as pd
    >>> log = BanditLog.from_frame(pd.DataFrame({
    ...     "item_id": ["a", "b", "a", "b"], "position": [0, 0, 0, 0],
    ...     "reward": [1, 1, 0, 0], "propensity": [0.5] * 4}))
    >>> always_b = np.zeros((4, 2, 1))
    >>> always_b[:, 1, 0] = 1.0
    >>> res = evaluate_policy(log, always_b, ["ips", "snips"], n_bootstrap=200)
    >>> res["ips"]
    OPEResult(estimate=0.5, ci_low=0.0, ci_high=1.5)
    >>> res["snips"].to_dict()
    {'estimate': 0.5, 'ci_low': 0.0, 'ci_high': 1.0}
    """
    if len(log) == 0:
        raise ValueError("the log has no rows to evaluate on")
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be at least 1, got {n_bootstrap}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    chosen = _resolve(estimators)
    pi = _check_action_dist(action_dist, log)
    n = len(log)
    rows = np.arange(n)
    pos = log.position
    weight = pi[rows, log.action, pos] / log.propensity
    q_policy = residual = np.zeros(n)
    if any(e.needs_rewards for e in chosen):
        if estimated_rewards is None:
            estimated_rewards = cross_fit_rewards(log, random_state=random_state)
        q = _check_array("estimated_rewards", estimated_rewards, log)
        q_policy = (pi[rows, :, pos] * q[rows, :, pos]).sum(axis=1)
        residual = log.reward - q[rows, log.action, pos]
    inputs = RowInputs(weight, log.reward, q_policy, residual)
    terms = {e.name: e.terms(inputs) for e in chosen}
    boot = _bootstrap(terms, n, n_bootstrap, np.random.default_rng(random_state))
    results: dict[str, OPEResult] = {}
    for name, t in terms.items():
        point = _value(t.direct.mean(), t.correction.sum(), t.normaliser.sum())
        low, high = np.quantile(boot[name], [alpha / 2, 1 - alpha / 2])
        results[name] = OPEResult(float(point), float(low), float(high))
    return results


def cross_fit_rewards(
    log: BanditLog,
    *,
    n_folds: int = 5,
    C: float = 1.0,
    random_state: int | None = 0,
) -> np.ndarray:
    """Estimated reward of every action at every position for each row, by cross-fitting.

    The rows are split into ``n_folds`` folds (shuffled, seeded); each fold is scored by
    a model fitted on the other folds only, so no row's estimate comes from a model that
    saw its reward (the cross-fitting of OBP's ``RegressionModel.fit_predict``).

    The model is linear in the standardised context, a one-hot of the action and a one-hot
    of the position: logistic regression when every reward is 0 or 1 (clicks), ridge
    regression otherwise, both with inverse regularisation strength ``C`` (ridge's penalty
    is ``1 / C``). The choice suits logs with few positive rewards (the Open Bandit samples
    hold about 40 clicks in 10,000 rows), where a flexible model mostly learns noise. Its
    honest limit: it ranks the actions the same way in every context; pass your own
    ``estimated_rewards`` to :func:`evaluate_policy` for a model with interactions.

    Parameters
    ----------
    log
        The logged rows.
    n_folds
        Folds, at least 2 (a log with fewer rows than folds gets one fold per row).
    C
        Inverse regularisation strength.
    random_state
        Seed of the fold assignment.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(log), log.n_actions, log.len_list)``, OBP's ``estimated_rewards_by_reg_model``.
        A fold whose training rows all share one reward predicts that reward.

    Examples
    --------
    >>> import pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"item_id": rng.choice(["a", "b"], 400), "position": 0,
    ...                       "propensity": 0.5})
    >>> frame["reward"] = (rng.random(400) < np.where(frame.item_id == "a", 0.8, 0.2)) * 1
    >>> log = BanditLog.from_frame(frame)
    >>> q = cross_fit_rewards(log)
    >>> q.shape, log.action_ids.tolist(), q.mean(axis=(0, 2)).round(2).tolist()
    ((400, 2, 1), ['b', 'a'], [0.18, 0.76])
    >>> frame.groupby("item_id")["reward"].mean().round(2).tolist()
    [0.77, 0.18]
    """
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import KFold

    n, n_actions, len_list = len(log), log.n_actions, log.len_list
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    if n < 2:
        raise ValueError("cross-fitting a reward model needs at least 2 rows")
    if not C > 0:
        raise ValueError(f"C must be positive, got {C}")
    y = log.reward
    binary = bool(np.isin(y, (0.0, 1.0)).all())
    one_hots = sparse.hstack(
        [
            sparse.csr_matrix((np.ones(n), (np.arange(n), log.action)), shape=(n, n_actions)),
            sparse.csr_matrix((np.ones(n), (np.arange(n), log.position)), shape=(n, len_list)),
        ]
    ).tocsr()
    q = np.empty((n, n_actions, len_list))
    folds = KFold(n_splits=min(n_folds, n), shuffle=True, random_state=random_state)
    for train, test in folds.split(np.zeros(n)):
        if np.ptp(y[train]) == 0:
            q[test] = y[train][0]
            continue
        mean = log.context[train].mean(axis=0)
        scale = log.context[train].std(axis=0)
        scale[scale == 0] = 1.0
        z = (log.context - mean) / scale
        design = sparse.hstack([sparse.csr_matrix(z[train]), one_hots[train]]).tocsr()
        if binary:
            model = LogisticRegression(C=C, max_iter=2000).fit(design, y[train])
        else:
            model = Ridge(alpha=1.0 / C).fit(design, y[train])
        coef = np.ravel(model.coef_)
        d = z.shape[1]
        w_ctx, w_act, w_pos = coef[:d], coef[d : d + n_actions], coef[d + n_actions :]
        base = z[test] @ w_ctx + float(np.ravel(model.intercept_)[0])
        eta = base[:, None, None] + w_act[None, :, None] + w_pos[None, None, :]
        q[test] = expit(eta) if binary else eta
    return q


#: An evaluation (target) policy: given a log, its ``action_dist`` over that log's rows.
#: Not to be confused with :class:`interestlens.explore.Policy`, a serving policy.
TargetPolicy = Callable[[BanditLog], np.ndarray]


def _context_free(log: BanditLog, per_position: np.ndarray) -> np.ndarray:
    """Broadcast a ``(len_list, n_actions)`` distribution to every row (read-only view)."""
    return np.broadcast_to(per_position.T[None, :, :], (len(log), log.n_actions, log.len_list))


def uniform_policy(log: BanditLog) -> np.ndarray:
    """Uniformly random over the log's actions at every position.

    Examples
    --------
    >>> import pandas as pd
    >>> log = BanditLog.from_frame(pd.DataFrame({"item_id": ["a", "b", "c"],
    ...     "position": [0, 1, 0], "reward": 0, "propensity": 0.5}))
    >>> uniform_policy(log)[0].tolist()
    [[0.3333333333333333, 0.3333333333333333], [0.3333333333333333, 0.3333333333333333], [0.3333333333333333, 0.3333333333333333]]
    """
    return _context_free(log, np.full((log.len_list, log.n_actions), 1.0 / log.n_actions))


def logging_policy(log: BanditLog) -> np.ndarray:
    """The log's own empirical action distribution at each position (context-free).

    Evaluating it on its own log should give about the log's mean reward.
    """
    return _context_free(log, log.empirical_action_dist())


def empirical_policy(source: BanditLog) -> TargetPolicy:
    """The context-free policy that ``source`` logged: its share of rows per (position, item).

    The returned policy maps a log to an ``action_dist`` aligned on item ids, so the two
    logs may number their actions differently. Positions ``source`` never filled get no
    probability (evaluating rows at such a position fails with ``ValueError``).

    Raises
    ------
    ValueError
        (When applied) if ``source`` showed items the target log cannot show: their value
        is not identified from that log.

    Examples
    --------
    >>> import pandas as pd
    >>> a = BanditLog.from_frame(pd.DataFrame({"item_id": ["x", "y", "y", "x"],
    ...     "position": [0, 0, 0, 0], "reward": [1, 0, 0, 1], "propensity": 0.5}))
    >>> b = BanditLog.from_frame(pd.DataFrame({"item_id": ["y", "y", "y", "x"],
    ...     "position": [0, 0, 0, 0], "reward": 0, "propensity": 1.0}))
    >>> a.action_ids.tolist(), empirical_policy(b)(a)[0, :, 0].tolist()
    (['x', 'y'], [0.25, 0.75])
    """

    def action_dist(log: BanditLog) -> np.ndarray:
        dist = source.empirical_action_dist()
        where = pd.Index(log.action_ids).get_indexer(pd.Index(source.action_ids))
        lost = [str(source.action_ids[j]) for j in np.flatnonzero(where < 0) if dist[:, j].any()]
        if lost:
            raise ValueError(
                f"the evaluation log shows {len(lost)} items the log never can "
                f"(e.g. {lost[:5]}); their value cannot be estimated from it"
            )
        aligned = np.zeros((log.len_list, log.n_actions))
        k = min(log.len_list, source.len_list)
        known = where >= 0
        aligned[:k, where[known]] = dist[:k, known]
        return _context_free(log, aligned)

    return action_dist


#: Evaluation policies by name, for the CLI's ``--policy``. Add one with
#: ``TARGET_POLICIES["name"] = fn`` where ``fn(log)`` returns the policy's ``action_dist``.
TARGET_POLICIES: dict[str, TargetPolicy] = {"uniform": uniform_policy, "logging": logging_policy}


def policy_action_dist(name: str, log: BanditLog) -> np.ndarray:
    """The ``action_dist`` of the policy named ``name`` in :data:`TARGET_POLICIES` over ``log``.

    Examples
    --------
    >>> import pandas as pd
    >>> log = BanditLog.from_frame(pd.DataFrame({"item_id": ["a", "b"],
    ...     "position": [0, 0], "reward": 0, "propensity": 0.5}))
    >>> policy_action_dist("logging", log).shape
    (2, 2, 1)
    >>> policy_action_dist("greedy", log)
    Traceback (most recent call last):
    ...
    ValueError: unknown policy 'greedy'; known: uniform, logging
    """
    if name not in TARGET_POLICIES:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(TARGET_POLICIES)}")
    return TARGET_POLICIES[name](log)


#: The extra action :func:`explore_action_dist` adds to a log: every item the log never
#: shows (and, at a position past the end of a shorter slate, no item at all).
OTHER_ITEMS = "(items not in the log)"


def explore_action_dist(
    log: BanditLog,
    policy: ExplorePolicy,
    *,
    explore: float | None = None,
    n_draws: int = 1000,
    user_scores: Callable[[str], np.ndarray | None] | None = None,
    exclude_seen: bool = True,
    random_state: int | None = 0,
) -> tuple[BanditLog, np.ndarray]:
    r"""The ``action_dist`` of one of our exploration policies over a log of served slates.

    For every logged slate (rows sharing a ``request_id``; without one, rows sharing user
    and time) the policy's :meth:`~interestlens.explore.Policy.slate_distribution` for
    that user, slate length (one past the slate's last logged position) and time gives
    each row the probability that the policy would put each item at each position. The
    policy is evaluated as it is now, after all the feedback it has learned from, and is
    not changed (nothing is served, counted or learned).

    ``explore = 0``, and policies whose slate is certain (LinUCB), are exact; otherwise
    each slate's distribution is a Monte-Carlo estimate from ``n_draws`` simulated
    slates, so the importance weight of an item the policy shows with a probability well
    below ``1 / n_draws`` is mostly 0 (see
    :meth:`~interestlens.explore.Policy.slate_distribution`).

    The policy can show items the log never did. Their probability is pooled into one
    extra action, :data:`OTHER_ITEMS`, so the returned log has one action more than
    ``log``; IPS and SNIPS never use it, and DM and DR score it with what the reward
    model learns from context and position alone. Items of the log the policy does not
    know get probability 0.

    Parameters
    ----------
    log
        Logged rows with :attr:`~interestlens.data.bandit.BanditLog.user_id` (and ideally
        ``request_id``), as ``read_log`` gives for a file exported from
        ``EventStore.slate_frame``.
    policy
        A fitted :class:`~interestlens.explore.Policy`.
    explore
        The exploration level evaluated (default: the policy's own).
    n_draws
        Simulated slates per logged slate where the distribution is estimated.
    user_scores
        The scores of every item (in ``policy.item_ids_`` order) to rank by for a user,
        or ``None`` for the policy's ranker; :func:`engine_action_dist` passes the
        engine's cold-start scores this way.
    exclude_seen
        As in :meth:`~interestlens.explore.Policy.recommend`.
    random_state
        Seed of the simulated slates.

    Returns
    -------
    (BanditLog, numpy.ndarray)
        ``log`` with :data:`OTHER_ITEMS` appended to its actions, and the action
        distribution of shape ``(len(log), log.n_actions + 1, log.len_list)``, both ready
        for :func:`evaluate_policy`. It takes ``8 * n_rows * n_actions * len_list`` bytes.

    Raises
    ------
    ValueError
        The log does not say who each row was shown to (an Open Bandit Dataset log, say).

    Examples
    --------
    >>> from interestlens.data import Dataset, Event
    >>> from interestlens.explore import EpsilonGreedy
    >>> from interestlens.models import Popularity
    >>> ds = Dataset.from_records([Event(f"u{u}", f"i{i}", "click")
    ...                            for u in range(6) for i in range(u + 2)])
    >>> policy = EpsilonGreedy(Popularity()).fit(ds)
    >>> log = BanditLog.from_frame(pd.DataFrame({"request_id": ["r1", "r1"],
    ...     "user_id": ["new user"] * 2, "item_id": ["i0", "i5"], "position": [0, 1],
    ...     "reward": [1, 0], "propensity": [0.5, 0.1]}))
    >>> log2, pi = explore_action_dist(log, policy, explore=0.0)
    >>> log2.action_ids.tolist(), pi[:, :, 1].tolist()  # i1 is greedy at position 1
    (['i0', 'i5', '(items not in the log)'], [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    >>> evaluate_policy(log2, pi, ["ips"], n_bootstrap=10)["ips"].estimate
    1.0
    """
    if log.user_id is None:
        raise ValueError(
            f"evaluating the {policy.name} policy needs each row's user, and this log has no "
            "user_id column (an Open Bandit Dataset log, say); evaluate a context-free policy "
            f"({', '.join(TARGET_POLICIES)}, or another log's) instead"
        )
    users = log.user_id
    lacking = np.flatnonzero(pd.isna(users))
    if len(lacking):
        raise ValueError(f"{len(lacking)} rows have no user_id (the first is row {lacking[0]})")
    if log.request_id is not None and not pd.isna(log.request_id).any():
        keys = pd.Series(log.request_id, dtype=object)
    else:
        keys = pd.Series(users, dtype=object) + "\x00" + pd.Series(log.timestamp.astype(str))
    request, _ = pd.factorize(keys)
    n_req = int(request.max()) + 1 if len(request) else 0
    first = np.full(n_req, len(log))
    np.minimum.at(first, request, np.arange(len(log)))
    length = np.zeros(n_req, dtype=np.int64)
    np.maximum.at(length, request, log.position + 1)
    n_actions = log.n_actions + 1
    column = pd.Index(log.action_ids).get_indexer(pd.Index(policy.item_ids_))
    known = column >= 0
    rng = np.random.default_rng(random_state)
    per_request = np.zeros((n_req, n_actions, log.len_list))
    last_user: str | None = None
    scores = np.empty(0)
    # requests by user, so each user is scored once
    for r in sorted(range(n_req), key=lambda r: (str(users[first[r]]), r)):
        user = str(users[first[r]])
        if user != last_user:
            given = None if user_scores is None else user_scores(user)
            scores = policy.ranker.score_all([user])[0] if given is None else given
            last_user = user
        when = log.timestamp[first[r]]
        dist = policy.slate_distribution(
            user,
            int(length[r]),
            explore=explore,
            n_draws=n_draws,
            random_state=rng,
            exclude_seen=exclude_seen,
            scores=scores,
            now=None if pd.isna(when) else when,
        )
        probs = dist.probabilities
        per_request[r, column[known], : length[r]] = probs[:, known].T
        per_request[r, -1, : length[r]] = 1.0 - probs[:, known].sum(axis=1)
    np.clip(per_request[:, -1, :], 0.0, 1.0, out=per_request[:, -1, :])
    items = pd.concat(
        [log.item_context, pd.DataFrame({"item_id": [OTHER_ITEMS]})], ignore_index=True
    )
    extended = replace(log, action_ids=[*log.action_ids, OTHER_ITEMS], item_context=items)
    return extended, per_request[request]


class PolicySource(Protocol):
    """What :func:`engine_action_dist` needs of an engine (an :class:`~interestlens.Engine`).

    Declared here so that evaluation depends on these two methods, not on the engine.
    """

    def policy(self, name: str | None = None) -> ExplorePolicy:
        """The fitted exploration policy ``name`` (``None``: the configured one)."""
        ...

    def ranking_scores(
        self, user_id: str, policy: ExplorePolicy, *, exclude_seen: bool = True
    ) -> tuple[str, int, np.ndarray | None]:
        """A user's ranking source, their event count, and their scores to rank by.

        The scores are in ``policy.item_ids_`` order; ``None`` lets the policy's ranker
        score the user.
        """
        ...


def engine_action_dist(
    log: BanditLog,
    engine: PolicySource,
    policy: str | None = None,
    *,
    explore: float | None = None,
    n_draws: int = 1000,
    random_state: int | None = 0,
) -> tuple[BanditLog, np.ndarray]:
    """:func:`explore_action_dist` for a policy of a fitted :class:`~interestlens.Engine`.

    The policy is ``engine.policy(policy)`` (the configured one by default; one the engine
    has not used yet is fitted with its defaults, as its first request would). Each user
    is scored the way ``Engine.recommend`` scores them: a known user with enough history
    by the engine's recommender, a cold or unknown user by content scores of what they
    did, or by popularity when they did nothing.

    Parameters
    ----------
    log
        Logged rows with user ids (see :func:`explore_action_dist`).
    engine
        A fitted ``Engine``, or anything else with its :class:`PolicySource` methods.
    policy
        Name of one of :data:`interestlens.explore.POLICIES`.
    explore, n_draws, random_state
        As in :func:`explore_action_dist`.
    """
    pol = engine.policy(policy)

    def scores(user_id: str) -> np.ndarray | None:
        return engine.ranking_scores(user_id, pol)[2]

    return explore_action_dist(
        log,
        pol,
        explore=explore,
        n_draws=n_draws,
        user_scores=scores,
        random_state=random_state,
    )


#: Column names read as ``reward`` / ``propensity`` in a generic log file.
_ALIASES = {"click": "reward", "propensity_score": "propensity", "action_prob": "propensity"}
#: Prefixes of the context columns of a generic log file.
_CONTEXT_PREFIXES = ("context_", "user_feature_", "user-item_affinity_")


def _holds_text(column: pd.Series) -> bool:
    """Whether a column has a filled cell that is not a number."""
    cells = column.astype("string").str.strip()
    cells = cells[cells.notna() & (cells != "")]
    return bool(pd.to_numeric(cells, errors="coerce").isna().any())


def read_log(path: str | Path) -> BanditLog:
    r"""Read a log of bandit feedback from an Open Bandit Dataset path or a generic table.

    Parameters
    ----------
    path
        An Open Bandit Dataset folder or log CSV (anything
        ``datasets.load(path)`` reads as a :class:`~interestlens.data.bandit.BanditLog`);
        or a CSV, TSV, Parquet or JSONL file with one row per shown position and columns
        ``item_id``, ``position`` (0-based), ``reward`` (or ``click``) and ``propensity``
        (or ``propensity_score`` / ``action_prob``), optionally ``timestamp``. Columns whose
        names start with ``context_``, ``user_feature_`` or ``user-item_affinity_`` form the
        context: numeric ones as numbers, others one-hot encoded.

    Returns
    -------
    BanditLog
        Refused rows (a missing propensity, say) are listed in its ``report``.

    Raises
    ------
    ValueError
        A table without a propensity column, or without the other required columns.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "served.csv"
    >>> _ = f.write_text("request_id,item_id,position,click,propensity,context_segment\n"
    ...                  "r1,i9,0,1,0.5,new\nr1,i4,1,0,0.25,new\nr2,i4,0,0,,old\n")
    >>> log = read_log(f)
    >>> len(log), log.context_names, [(r.row, r.reason) for r in log.report.rejections]
    (2, ('context_segment=new',), [(3, 'missing propensity')])
    """
    from interestlens.data.loaders import load
    from interestlens.data.readers import detect_format, read_raw_frame

    p = Path(path).expanduser()
    obd_header = False
    if p.is_file() and detect_format(p) == "csv" and not p.name.endswith(".gz"):
        header = pd.read_csv(p, nrows=0).columns
        obd_header = "propensity_score" in header or "action_prob" in header
    if p.is_dir() or obd_header:
        log = load(p)
        if not isinstance(log, BanditLog):
            raise ValueError(f"{p} holds events, not a bandit log with propensities")
        return log
    raw, rows, unparsable = read_raw_frame(p)
    raw = raw.rename(columns=_ALIASES)
    if "propensity" not in raw.columns:
        raise ValueError(
            f"{p}: no propensity column (or propensity_score, action_prob): off-policy "
            "evaluation needs the logging policy's probability of each shown item"
        )
    context = [c for c in raw.columns if str(c).startswith(_CONTEXT_PREFIXES)]
    categorical = [c for c in context if _holds_text(raw[c])]
    return BanditLog.from_frame(
        raw,
        context_columns=context,
        categorical=categorical,
        rows=rows,
        unparsable=unparsable,
        source=str(p),
    )
