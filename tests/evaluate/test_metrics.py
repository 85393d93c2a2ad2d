"""Every metric against a hand computation, to 1e-12."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from interestlens.evaluate import metrics as M

TOL = 1e-12

# user 0: relevant {1, 4, 9}, list [3, 1, 4, 7]  -> hits at ranks 2 and 3
# user 1: relevant {5},       list [5, 0, 2, 8]  -> hit at rank 1
# user 2: relevant {6, 7},    list [0, 1, 2, -1] -> no hit, one empty slot
REC = np.array([[3, 1, 4, 7], [5, 0, 2, 8], [0, 1, 2, -1]])
REL = [np.array([1, 4, 9]), np.array([5]), np.array([7, 6])]
L2 = math.log2


def close(got, want):
    np.testing.assert_allclose(np.asarray(got, dtype=float), want, rtol=0, atol=TOL)


def test_hits_and_relevance_forms_agree():
    h = M.hits(REC, REL)
    assert h.tolist() == [
        [False, True, True, False],
        [True, False, False, False],
        [False, False, False, False],
    ]
    dense = np.zeros((3, 12), dtype=bool)
    for u, r in enumerate(REL):
        dense[u, r] = True
    assert (M.hits(REC, sp.csr_matrix(dense)) == h).all()
    assert (M.hits(REC, sp.csr_array(dense.astype(float))) == h).all()


def test_accuracy_metrics_by_hand():
    close(M.hr(REC, REL), [1, 1, 0])
    close(M.precision(REC, REL), [2 / 4, 1 / 4, 0])
    close(M.recall(REC, REL), [2 / 3, 1, 0])
    p0, r0 = 2 / 4, 2 / 3
    close(M.f1(REC, REL), [2 * p0 * r0 / (p0 + r0), 2 * 0.25 * 1 / 1.25, 0])
    dcg0 = 1 / L2(3) + 1 / L2(4)
    idcg0 = 1 + 1 / L2(3) + 1 / L2(4)  # min(|R|, K) = 3 ideal hits
    idcg2 = 1 + 1 / L2(3)
    close(M.ndcg(REC, REL), [dcg0 / idcg0, 1.0, 0 / idcg2])
    close(M.mrr(REC, REL), [1 / 2, 1, 0])
    close(M.average_precision(REC, REL), [(1 / 2 + 2 / 3) / 3, 1.0, 0])


def test_ap_denominator_is_min_of_relevant_and_k():
    rec = np.array([[0, 1]])
    rel = [np.arange(5)]  # 5 relevant, K = 2: a perfect list scores 1
    close(M.average_precision(rec, rel), [1.0])
    close(M.ndcg(rec, rel), [1.0])
    close(M.recall(rec, rel), [2 / 5])


def test_user_without_relevant_items_is_nan():
    rec = np.array([[0, 1]])
    for fn in (M.hr, M.precision, M.recall, M.f1, M.ndcg, M.mrr, M.average_precision):
        assert np.isnan(fn(rec, [np.array([], dtype=int)])[0]), fn.__name__


def test_auc_by_hand_with_ties_and_non_candidates():
    s = np.array(
        [
            [0.9, 0.5, np.nan, 0.1, 0.5],  # rel {1}: beats 0.1, ties 0.5, loses to 0.9
            [0.2, 0.8, 0.4, 0.6, 0.0],  # rel {1, 3}: negatives 0.2, 0.4, 0.0
            [0.3, np.nan, 0.1, 0.2, 0.4],  # rel {1 (not scorable), 4}
        ]
    )
    rel = [np.array([1]), np.array([1, 3]), np.array([1, 4])]
    # user 2: negatives {0, 2, 3}; item 4 beats all 3, item 1 counts as ranked last
    close(M.auc(s, rel), [1.5 / 3, 6 / 6, 3 / 6])


def test_auc_matches_brute_force_and_ignores_chunking():
    rng = np.random.default_rng(3)
    s = rng.integers(0, 5, size=(30, 40)).astype(float)  # many ties
    s[rng.random(s.shape) < 0.2] = np.nan
    rel = [rng.choice(40, size=rng.integers(1, 6), replace=False) for _ in range(30)]
    want = []
    for u in range(30):
        pos = [s[u, i] for i in rel[u]]
        neg = [s[u, j] for j in range(40) if j not in set(rel[u]) and not np.isnan(s[u, j])]
        total = 0.0
        for p in pos:
            if np.isnan(p):
                continue
            total += sum(1.0 if p > q else 0.5 if p == q else 0.0 for q in neg)
        want.append(total / (len(pos) * len(neg)))
    close(M.auc(s, rel), want)
    close(M.auc(s, rel, chunk=7), want)


def test_auc_full_ranking_single_item_is_rank_based():
    n = 1000
    s = -np.arange(n, dtype=float)[None, :]  # item j ranks j + 1
    close(M.auc(s, [np.array([250])]), [1 - 250 / (n - 1)])


def test_novelty_and_average_popularity_by_hand():
    counts = np.array([8, 4, 2, 0])
    rec = np.array([[0, 1], [2, 3], [3, -1]])
    # shares 1, 1/2, 1/4, and 1/16 for the never-seen item (counted as one user)
    close(M.novelty(rec, counts, n_users=16), [(L2(2) + L2(4)) / 2, (L2(8) + L2(16)) / 2, 4.0])
    close(M.average_popularity(rec, counts, n_users=16), [12 / 32, 2 / 32, 0.0])


def test_intra_list_diversity_by_hand():
    v = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    # pairs (0,1): cos 0; (0,2), (1,2): cos 1/sqrt(2)
    want0 = 1 - (0 + 2 / math.sqrt(2)) / 3
    rec = np.array([[0, 1, 2], [0, 3, -1], [2, 2, -1]])
    got = M.intra_list_diversity(rec, v)
    close(got[:1], [want0])
    assert np.isnan(got[1])  # item 3 has no vector: fewer than two usable items
    close(got[2:], [0.0])


def test_serendipity_by_hand():
    rec = np.array([[3, 1, 4, 5], [0, 1, 2, 3]])
    rel = [np.array([1, 4]), np.array([0])]
    expected = [np.array([1, 2]), np.array([0, 1])]
    close(M.serendipity(rec, rel, expected), [1 / 4, 0.0])


def test_coverage_and_gini_by_hand():
    rec = np.array([[0, 1], [0, -1], [0, 2]])
    assert M.coverage(rec, n_items=6) == pytest.approx(3 / 6, abs=TOL)
    # counts over 6 items, ascending: 0 0 0 1 1 3, total 5
    x = np.array([0, 0, 0, 1, 1, 3.0])
    i = np.arange(1, 7)
    want = ((2 * i - 7) * x).sum() / (6 * 5)
    assert M.gini(rec, n_items=6) == pytest.approx(want, abs=TOL)
    assert M.gini(np.array([[0], [1], [2]]), n_items=3) == pytest.approx(0.0, abs=TOL)
