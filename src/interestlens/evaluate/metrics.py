"""Per-user ranking metrics and beyond-accuracy measures, vectorised over users.

Every accuracy metric takes ``recommended``, an ``(n_users, K)`` integer matrix of item
columns best first (``-1`` marks an empty slot, e.g. when fewer than ``K`` items were
recommendable), and ``relevant``, each user's held-out items: a sparse matrix with one
row per user (non-zero = relevant) or a sequence of column arrays. Relevance is
binary. A list is assumed to hold no item twice. A user with no relevant item carries
no information: its accuracy metrics are NaN (the evaluation protocols never produce
such a user).

Definitions at cut-off ``K`` (``H_j`` = 1 when the item at rank ``j`` is relevant,
``R`` the user's relevant items):

============  ==============================================================
``hr``        1 if any of the top ``K`` is relevant (hit rate)
``precision`` ``sum(H) / K``
``recall``    ``sum(H) / |R|``
``f1``        harmonic mean of precision and recall (0 when both are 0)
``ndcg``      ``sum_j H_j / log2(j + 1)`` over the ideal value, whose list puts
              ``min(|R|, K)`` relevant items first (Järvelin & Kekäläinen 2002)
``mrr``       ``1 / rank`` of the first relevant item in the top ``K``, else 0
``map``       AP@K ``= sum_j P@j * H_j / min(|R|, K)``: the denominator is
              ``min(|R|, K)``, so a perfect list scores 1 even when ``|R| > K``
``auc``       over the full ranking: the share of (relevant, non-relevant)
              candidate pairs ranked in the right order, ties counting one half
============  ==============================================================

With one held-out item (leave-last-out), ``hr`` equals ``recall`` and ``mrr`` equals
``map``.

References
----------
Kalervo Järvelin and Jaana Kekäläinen. 2002. Cumulated Gain-Based Evaluation of IR
Techniques. ACM TOIS 20(4).

Mouzhi Ge, Carla Delgado-Battenfeld and Dietmar Jannach. 2010. Beyond Accuracy:
Evaluating Recommender Systems by Coverage and Serendipity. RecSys '10.

Marius Kaminskas and Derek Bridge. 2016. Diversity, Serendipity, Novelty, and Coverage:
A Survey and Empirical Analysis of Beyond-Accuracy Objectives in Recommender Systems.
ACM TiiS 7(1).

Himan Abdollahpouri, Robin Burke and Bamshad Mobasher. 2019. Managing Popularity Bias
in Recommender Systems with Personalized Re-ranking. FLAIRS-32.

Cai-Nicolas Ziegler, Sean M. McNee, Joseph A. Konstan and Georg Lausen. 2005. Improving
Recommendation Lists Through Topic Diversification. WWW '05.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

__all__ = [
    "ACCURACY",
    "BEYOND_ACCURACY",
    "CATALOGUE",
    "Relevance",
    "auc",
    "average_popularity",
    "average_precision",
    "coverage",
    "f1",
    "gini",
    "hits",
    "hr",
    "intra_list_diversity",
    "mrr",
    "ndcg",
    "novelty",
    "precision",
    "recall",
    "relevance_matrix",
    "serendipity",
]

#: Per-user accuracy metrics, by the names reports use.
ACCURACY = ("hr", "precision", "recall", "f1", "ndcg", "mrr", "map", "auc")
#: Per-user beyond-accuracy metrics (``ild`` needs item vectors).
BEYOND_ACCURACY = ("novelty", "arp", "serendipity", "ild")
#: Metrics of the whole set of lists, one value per model.
CATALOGUE = ("coverage", "gini")

Relevance = sp.spmatrix | sp.sparray | Sequence[np.ndarray]


def relevance_matrix(relevant: Relevance, n_items: int | None = None) -> sp.csr_matrix:
    """Each user's relevant items as a boolean CSR matrix with sorted, unique columns.

    Parameters
    ----------
    relevant
        A sparse matrix (non-zero = relevant) or one array of item columns per user.
    n_items
        Number of columns; by default the sparse matrix's width, or one more than the
        largest column named.

    Examples
    --------
    >>> relevance_matrix([np.array([2, 0, 2]), np.array([], dtype=int)]).toarray().astype(int)
    array([[1, 0, 1],
           [0, 0, 0]])
    """
    if sp.issparse(relevant):
        m = sp.csr_matrix(relevant, dtype=np.bool_)
        m.eliminate_zeros()
        if n_items is not None and n_items > m.shape[1]:
            m.resize((m.shape[0], n_items))
    else:
        rows = [np.unique(np.asarray(r, dtype=np.int64)) for r in relevant]
        width = max((int(r[-1]) + 1 for r in rows if len(r)), default=0)
        n = max(width, n_items or 0)
        indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
        indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        m = sp.csr_matrix(
            (np.ones(len(indices), dtype=np.bool_), indices, indptr), shape=(len(rows), n)
        )
    m.sum_duplicates()
    m.sort_indices()
    return m


def hits(recommended: np.ndarray, relevant: Relevance) -> np.ndarray:
    """Which recommended items are relevant, as an ``(n_users, K)`` boolean matrix.

    Examples
    --------
    >>> hits(np.array([[3, 1, -1]]), [np.array([1, 4])])
    array([[False,  True, False]])
    """
    rec = np.asarray(recommended, dtype=np.int64)
    rel = relevance_matrix(relevant)
    if rel.shape[0] != rec.shape[0]:
        raise ValueError(f"{rec.shape[0]} recommendation lists but {rel.shape[0]} relevance rows")
    width = max(rel.shape[1], int(rec.max(initial=-1)) + 1, 1)
    rows = np.repeat(np.arange(rel.shape[0], dtype=np.int64), np.diff(rel.indptr))
    keys = rows * width + rel.indices
    query = np.arange(rec.shape[0], dtype=np.int64)[:, None] * width + rec
    if len(keys) == 0:
        return np.zeros(rec.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return (rec >= 0) & (keys[pos] == query)


def _n_relevant(relevant: Relevance, n_users: int) -> np.ndarray:
    rel = relevance_matrix(relevant)
    if rel.shape[0] != n_users:
        raise ValueError(f"{n_users} recommendation lists but {rel.shape[0]} relevance rows")
    return np.diff(rel.indptr).astype(np.float64)


def _undefined_without_relevant(values: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    return np.where(n_rel > 0, values, np.nan)


def hr(recommended: np.ndarray, relevant: Relevance) -> np.ndarray:
    """Hit rate: 1 where any recommended item is relevant.

    Examples
    --------
    >>> hr(np.array([[3, 1], [0, 2]]), [np.array([1]), np.array([5])])
    array([1., 0.])
    """
    h = hits(recommended, relevant)
    return _undefined_without_relevant(
        h.any(axis=1).astype(np.float64), _n_relevant(relevant, h.shape[0])
    )


def precision(recommended: np.ndarray, relevant: Relevance) -> np.ndarray:
    """Share of the ``K`` slots holding a relevant item (empty slots count as misses).

    Examples
    --------
    >>> precision(np.array([[3, 1, 4, -1]]), [np.array([1, 4, 9])])
    array([0.5])
    """
    h = hits(recommended, relevant)
    k = max(h.shape[1], 1)
    return _undefined_without_relevant(h.sum(axis=1) / k, _n_relevant(relevant, h.shape[0]))


def recall(recommended: np.ndarray, relevant: Relevance) -> np.ndarray:
    """Share of the user's relevant items that were recommended.

    Examples
    --------
    >>> recall(np.array([[3, 1, 4, -1]]), [np.array([1, 4, 9])])
    array([0.66666667])
    """
    h = hits(recommended, relevant)
    n_rel = _n_relevant(relevant, h.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        return _undefined_without_relevant(h.sum(axis=1) / n_rel, n_rel)


def f1(recommended: np.ndarray, relevant: Relevance) -> np.ndarray:
    """Harmonic mean of precision and recall per user (0 when both are 0).

    Examples
    --------
    >>> f1(np.array([[3, 1, 4, -1]]), [np.array([1, 4, 9])])
    array([0.57142857])
    """
    p = precision(recommended, relevant)
    r = recall(recommended, relevant)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(p + r > 0, 2 * p * r / (p + r), np.where(np.isnan(p), np.nan, 0.0))


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def ndcg(recommended: np.ndarray, relevant: Relevance) -> np.ndarray:
    """Normalised discounted cumulative gain with binary relevance.

    Examples
    --------
    >>> ndcg(np.array([[3, 1]]), [np.array([1])])  # 1/log2(3)
    array([0.63092975])
    """
    h = hits(recommended, relevant)
    n_rel = _n_relevant(relevant, h.shape[0])
    k = h.shape[1]
    if k == 0:
        return _undefined_without_relevant(np.zeros(h.shape[0]), n_rel)
    disc = _discounts(k)
    ideal = np.cumsum(disc)[np.clip(np.minimum(n_rel, k).astype(np.int64) - 1, 0, k - 1)]
    return _undefined_without_relevant((h * disc).sum(axis=1) / ideal, n_rel)


def mrr(recommended: np.ndarray, relevant: Relevance) -> np.ndarray:
    """Reciprocal rank of the first relevant item within the top ``K`` (0 if none).

    Examples
    --------
    >>> mrr(np.array([[3, 1, 4], [0, 2, 5]]), [np.array([4, 1]), np.array([7])])
    array([0.5, 0. ])
    """
    h = hits(recommended, relevant)
    first = np.argmax(h, axis=1)
    rr = np.where(h.any(axis=1), 1.0 / (first + 1), 0.0)
    return _undefined_without_relevant(rr, _n_relevant(relevant, h.shape[0]))


def average_precision(recommended: np.ndarray, relevant: Relevance) -> np.ndarray:
    """AP@K with the ``min(|R|, K)`` denominator; its mean over users is MAP@K.

    Examples
    --------
    >>> average_precision(np.array([[3, 1, 4]]), [np.array([1, 4, 9])])  # (1/2 + 2/3) / 3
    array([0.38888889])
    """
    h = hits(recommended, relevant)
    n_rel = _n_relevant(relevant, h.shape[0])
    k = h.shape[1]
    prec = np.cumsum(h, axis=1) / np.arange(1, k + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (prec * h).sum(axis=1) / np.minimum(n_rel, k)
    return _undefined_without_relevant(ap, n_rel)


def auc(scores: np.ndarray, relevant: Relevance, *, chunk: int = 2048) -> np.ndarray:
    """Per-user area under the ROC curve over the full ranking, computed exactly.

    For each user, the share of (relevant, non-relevant) pairs among the *candidate*
    items in which the relevant item scores higher, ties counting one half (the
    Mann-Whitney statistic). No negatives are sampled.

    Parameters
    ----------
    scores
        ``(n_users, n_items)`` scores. NaN marks an item that is not a candidate (the
        user's training items, say): it is neither a positive nor a negative.
    relevant
        Relevant items per user. A relevant item that cannot be scored (NaN, or a
        column beyond ``scores``, e.g. an item the model never saw) still counts in
        ``|R|`` and ranks below every candidate.
    chunk
        Relevant pairs compared at once (bounds memory at ``chunk * n_items``).

    Returns
    -------
    numpy.ndarray
        One value per user in ``[0, 1]``; NaN without relevant items or without
        negatives.

    Notes
    -----
    Costs ``O(nnz(relevant) * n_items)`` comparisons and no sort; with one held-out
    item per user it is ``1 - (rank - 1) / n_negatives``, ties aside.

    Examples
    --------
    >>> s = np.array([[0.9, 0.5, np.nan, 0.1, 0.5]])
    >>> auc(s, [np.array([1])])  # beats 0.1, ties 0.5, loses to 0.9: 1.5 / 3
    array([0.5])
    """
    s = np.asarray(scores)
    n_users, n_items = s.shape
    rel = relevance_matrix(relevant)
    if rel.shape[0] != n_users:
        raise ValueError(f"{n_users} score rows but {rel.shape[0]} relevance rows")
    n_rel = np.diff(rel.indptr).astype(np.float64)
    rows = np.repeat(np.arange(n_users), np.diff(rel.indptr))
    cols = rel.indices.astype(np.int64)
    inside = cols < n_items
    rows, cols = rows[inside], cols[inside]
    val = s[rows, cols]
    scored = ~np.isnan(val)
    rows, cols, val = rows[scored], cols[scored], val[scored]
    above = np.zeros(len(rows))
    for start in range(0, len(rows), chunk):
        r = rows[start : start + chunk]
        v = val[start : start + chunk, None]
        block = s[r]
        above[start : start + chunk] = (block < v).sum(axis=1) + 0.5 * (
            (block == v).sum(axis=1) - 1
        )
    n_scored = np.bincount(rows, minlength=n_users).astype(np.float64)
    wins = np.bincount(rows, weights=above, minlength=n_users)
    # pairs among the relevant items add exactly one win per pair: take them out
    wins -= n_scored * (n_scored - 1) / 2
    n_neg = (~np.isnan(s)).sum(axis=1) - n_scored
    with np.errstate(invalid="ignore", divide="ignore"):
        out = wins / (n_rel * n_neg)
    return np.where((n_rel > 0) & (n_neg > 0), out, np.nan)


def _share(item_counts: np.ndarray, n_users: int) -> np.ndarray:
    counts = np.asarray(item_counts, dtype=np.float64)
    return np.maximum(counts, 1.0) / max(n_users, 1)


def _mean_over_list(recommended: np.ndarray, per_item: np.ndarray) -> np.ndarray:
    rec = np.asarray(recommended, dtype=np.int64)
    valid = rec >= 0
    vals = np.where(valid, per_item[np.where(valid, rec, 0)], 0.0)
    n = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, vals.sum(axis=1) / n, np.nan)


def novelty(recommended: np.ndarray, item_counts: np.ndarray, n_users: int) -> np.ndarray:
    """Mean self-information ``-log2(share)`` of the recommended items, in bits.

    ``share`` is the fraction of the ``n_users`` training users who interacted with the
    item; an item nobody interacted with counts as one user's (so its novelty is
    ``log2(n_users)``, the maximum). Zhou et al. (2010), Kaminskas & Bridge (2016).

    Examples
    --------
    >>> novelty(np.array([[0, 1]]), np.array([4, 1, 0]), n_users=8)  # (1 + 3) / 2
    array([2.])
    """
    return _mean_over_list(recommended, -np.log2(_share(item_counts, n_users)))


def average_popularity(
    recommended: np.ndarray, item_counts: np.ndarray, n_users: int
) -> np.ndarray:
    """Average recommended popularity (ARP): mean share of training users per listed item.

    The popularity-bias measure of Abdollahpouri et al. (2019), as a share in
    ``[0, 1]`` rather than a raw count so that datasets compare. Reported as ``arp``.

    Examples
    --------
    >>> average_popularity(np.array([[0, 1]]), np.array([4, 2, 0]), n_users=8)
    array([0.375])
    """
    counts = np.asarray(item_counts, dtype=np.float64)
    return _mean_over_list(recommended, counts / max(n_users, 1))


def intra_list_diversity(recommended: np.ndarray, item_vectors: np.ndarray) -> np.ndarray:
    """Mean pairwise cosine distance ``1 - cos`` between the recommended items' vectors.

    Ziegler et al. (2005), in embedding space (text or behaviour vectors). Empty slots
    and items whose vector is missing (a NaN or zero row) are left out; a list with
    fewer than two usable items is NaN. Reported as ``ild``.

    Examples
    --------
    >>> v = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> intra_list_diversity(np.array([[0, 1, -1]]), v)  # orthogonal: distance 1
    array([1.])
    """
    rec = np.asarray(recommended, dtype=np.int64)
    vec = np.asarray(item_vectors, dtype=np.float64)
    norm = np.linalg.norm(vec, axis=1)
    usable = np.isfinite(norm) & (norm > 0)
    unit = np.where(usable[:, None], vec / np.where(usable, norm, 1.0)[:, None], 0.0)
    valid = (rec >= 0) & (rec < len(vec))
    safe = np.where(valid, rec, 0)
    valid &= usable[safe]
    e = unit[safe] * valid[..., None]
    gram = e @ e.transpose(0, 2, 1)
    n = valid.sum(axis=1).astype(np.float64)
    off = gram.sum(axis=(1, 2)) - np.trace(gram, axis1=1, axis2=2)
    pairs = n * (n - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= 2, 1.0 - off / pairs, np.nan)


def serendipity(recommended: np.ndarray, relevant: Relevance, expected: Relevance) -> np.ndarray:
    """Share of the ``K`` slots holding an item both relevant and unexpected.

    Ge et al. (2010) call an item serendipitous when it is useful (here: held out,
    so relevant) and unexpected, meaning a primitive model would not have
    recommended it. The evaluation protocols take as ``expected`` the list a
    popularity recommender gives the same user (its top ``K`` unseen items), so the
    popularity baseline itself scores 0. Normalised by ``K`` (Ge et al. divide by the
    number of unexpected items instead) so that every list has a value and
    serendipity never exceeds precision.

    Examples
    --------
    >>> serendipity(np.array([[3, 1, 4, 5]]), [np.array([1, 4])], [np.array([1, 2])])
    array([0.25])
    """
    rel_hits = hits(recommended, relevant)
    exp_hits = hits(recommended, expected)
    k = max(rel_hits.shape[1], 1)
    value = (rel_hits & ~exp_hits).sum(axis=1) / k
    return _undefined_without_relevant(value, _n_relevant(relevant, rel_hits.shape[0]))


def coverage(recommended: np.ndarray, n_items: int) -> float:
    """Catalogue coverage: share of the ``n_items`` recommended to at least one user.

    Examples
    --------
    >>> coverage(np.array([[0, 1], [1, -1]]), n_items=4)
    0.5
    """
    rec = np.asarray(recommended, dtype=np.int64)
    return float(len(np.unique(rec[rec >= 0])) / n_items) if n_items else float("nan")


def gini(recommended: np.ndarray, n_items: int) -> float:
    """Gini index of how often each catalogue item is recommended (0 even, 1 all on one).

    Every one of the ``n_items`` counts, recommended or not:
    ``G = sum_i (2i - n - 1) x_(i) / (n sum_i x_i)`` with counts ``x`` in ascending
    order (Fleder & Hosanagar 2009; Kaminskas & Bridge 2016).

    Examples
    --------
    >>> gini(np.array([[0, 1], [0, -1]]), n_items=3)  # counts 0, 1, 2: (-2*0 + 0*1 + 2*2) / (3*3)
    0.4444444444444444
    """
    rec = np.asarray(recommended, dtype=np.int64)
    counts = np.sort(np.bincount(rec[rec >= 0], minlength=n_items)[:n_items]).astype(np.float64)
    total = counts.sum()
    if n_items == 0 or total == 0:
        return float("nan")
    i = np.arange(1, n_items + 1)
    return float(((2 * i - n_items - 1) * counts).sum() / (n_items * total))
