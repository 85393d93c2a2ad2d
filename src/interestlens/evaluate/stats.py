"""Paired bootstrap intervals and paired significance tests over users.

Every model of one report is scored on the same users, so uncertainty is estimated by
resampling *users* (with replacement) and applying the same resample to every model:
differences between models then keep their pairing. Intervals are bootstrap
percentile intervals (Efron & Tibshirani 1993). The test of a difference is a paired
randomisation (sign-flip permutation) test, which Smucker, Allan & Carterette (2007)
found the most reliable of the common IR significance tests; the Wilcoxon signed-rank
test is reported beside it.

References
----------
Bradley Efron and Robert J. Tibshirani. 1993. An Introduction to the Bootstrap.
Chapman & Hall.

Mark D. Smucker, James Allan and Ben Carterette. 2007. A Comparison of Statistical
Significance Tests for Information Retrieval Evaluation. CIKM '07.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["paired_bootstrap", "percentile_ci", "sign_flip_test", "wilcoxon_p"]

_CELLS = 4_000_000  # resampled users held in memory at once


def _chunk(n: int, total: int) -> int:
    return max(1, min(total, _CELLS // max(n, 1)))


def paired_bootstrap(
    values: np.ndarray, n_bootstrap: int = 1000, random_state: int = 0
) -> np.ndarray:
    """Means of each column over ``n_bootstrap`` resamples of the rows (users).

    Parameters
    ----------
    values
        ``(n_users, n_series)`` per-user values (one column per model and metric);
        NaN values are left out of a resample's mean.
    n_bootstrap
        Number of resamples.
    random_state
        Seed. The resamples depend only on the seed, ``n_users`` and ``n_bootstrap``,
        so two calls on different columns of the same users are paired.

    Returns
    -------
    numpy.ndarray
        ``(n_bootstrap, n_series)`` resample means.

    Examples
    --------
    >>> v = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    >>> b = paired_bootstrap(v, n_bootstrap=200, random_state=0)
    >>> b.shape, bool((b[:, 0] >= b[:, 1]).all())  # paired: column 0 never below column 1
    ((200, 2), True)
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    n = v.shape[0]
    if n == 0:
        return np.full((n_bootstrap, v.shape[1]), np.nan)
    present = ~np.isnan(v)
    filled = np.where(present, v, 0.0)
    rng = np.random.default_rng(random_state)
    out = np.empty((n_bootstrap, v.shape[1]))
    step = _chunk(n, n_bootstrap)
    for start in range(0, n_bootstrap, step):
        c = min(step, n_bootstrap - start)
        idx = rng.integers(0, n, size=(c, n))
        weights = np.bincount((idx + np.arange(c)[:, None] * n).ravel(), minlength=c * n).reshape(
            c, n
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + c] = (weights @ filled) / (weights @ present)
    return out


def percentile_ci(boot: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper percentile bounds of bootstrap values, per column.

    Examples
    --------
    >>> lo, hi = percentile_ci(np.arange(101.0)[:, None], 0.9)
    >>> round(float(lo[0]), 6), round(float(hi[0]), 6)
    (5.0, 95.0)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    a = (1 - confidence) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanquantile(np.asarray(boot, dtype=np.float64), [a, 1 - a], axis=0)
    return lo, hi


def sign_flip_test(
    differences: np.ndarray, n_permutations: int = 10_000, random_state: int = 0
) -> float:
    """Two-sided p-value of a paired randomisation test that the mean difference is 0.

    Under the null hypothesis each user's difference is as likely to have the
    opposite sign, so the observed ``|mean|`` is compared with the means of randomly
    sign-flipped differences; ``p = (1 + #{as extreme}) / (1 + n_permutations)``,
    which is never 0. NaN differences are left out; no difference at all gives 1.

    Examples
    --------
    >>> sign_flip_test(np.zeros(50))
    1.0
    >>> sign_flip_test(np.ones(50), n_permutations=999) < 0.01
    True
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[~np.isnan(d)]
    n = len(d)
    if n == 0 or not d.any():
        return 1.0
    observed = abs(d.mean())
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))
    rng = np.random.default_rng(random_state)
    extreme = 0
    step = _chunk(n, n_permutations)
    for start in range(0, n_permutations, step):
        c = min(step, n_permutations - start)
        signs = rng.integers(0, 2, size=(c, n)) * 2 - 1
        extreme += int((np.abs(signs @ d) / n >= observed - tol).sum())
    return (1 + extreme) / (1 + n_permutations)


def wilcoxon_p(differences: np.ndarray) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test (zero differences dropped).

    Returns 1 when every difference is zero or NaN.

    Examples
    --------
    >>> wilcoxon_p(np.zeros(10))
    1.0
    >>> wilcoxon_p(np.arange(1.0, 21.0)) < 0.001
    True
    """
    from scipy.stats import wilcoxon

    d = np.asarray(differences, dtype=np.float64)
    d = d[~np.isnan(d) & (d != 0)]
    if len(d) == 0:
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
