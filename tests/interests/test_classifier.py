from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from interestlens.interests.classifier import InterestClassifier


def _data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 10))
    labels = []
    for x in X:
        lab = []
        if x[0] > 0.3:
            lab.append("action")
        if x[1] + 0.5 * x[2] > 0.8:
            lab.append("comedy")
        if x[3] > 1.6:  # rare label
            lab.append("noir")
        labels.append(lab)
    return X, labels


def test_learns_separable_labels_with_tuned_threshold():
    X, y = _data(1500, 0)
    Xt, yt = _data(500, 1)
    clf = InterestClassifier(random_state=0).fit(X, y)
    assert clf.classes_ == ["action", "comedy", "noir"]
    scores = clf.evaluate(Xt, yt)
    assert scores["micro_f1"] > 0.9
    assert scores["per_class_f1"]["noir"] > 0.7
    assert 0.05 <= clf.threshold_ <= 0.95 and clf.C_ in (0.1, 0.3, 1.0, 3.0, 10.0)
    pred = clf.predict(Xt[:5])
    assert all(set(p) <= {"action", "comedy", "noir"} for p in pred)


def test_fixed_hyperparameters_are_kept_and_validation_set_is_used():
    X, y = _data(600, 2)
    Xv, yv = _data(200, 3)
    clf = InterestClassifier(C=1.0, threshold=0.5).fit(X, y, Xv, yv)
    assert (clf.C_, clf.threshold_) == (1.0, 0.5)


def test_constant_labels_and_shape_errors():
    X = np.random.default_rng(0).normal(size=(50, 3))
    y = [["always"] + (["sometimes"] if x[0] > 0 else []) for x in X]
    clf = InterestClassifier().fit(X, y)
    assert all("always" in p for p in clf.predict(X))
    with pytest.raises(ValueError, match="50 vectors for 49 label lists"):
        InterestClassifier().fit(X, y[:-1])


def test_sparse_text_hstacked_with_dense_behaviour_is_used_whole():
    """benchmarks/interests.py gives TF-IDF the behaviour SVD as sp.hstack([tfidf, dense])."""
    rng = np.random.default_rng(4)
    n = 800
    words = sp.random(n, 40, density=0.2, random_state=4, format="csr")
    behaviour = rng.normal(size=(n, 4))
    labels = [
        (["word"] if w > 0 else []) + (["taste"] if b > 0.5 else [])
        for w, b in zip(words[:, 0].toarray().ravel(), behaviour[:, 0], strict=True)
    ]
    tr, te = np.arange(600), np.arange(600, n)
    joint = sp.hstack([words, behaviour])  # COO, as sp.hstack returns by default
    y_tr, y_te = [labels[i] for i in tr], [labels[i] for i in te]

    tuned = {"C_grid": (1.0, 10.0), "random_state": 0}  # threshold tuned on validation
    text_only = InterestClassifier(**tuned).fit(words[tr], y_tr).evaluate(words[te], y_te)
    both = InterestClassifier(**tuned).fit(joint.tocsr()[tr], y_tr)
    scores = both.evaluate(joint.tocsr()[te], y_te)
    assert scores["per_class_f1"]["word"] > 0.8 and scores["per_class_f1"]["taste"] > 0.8
    assert text_only["per_class_f1"]["taste"] < 0.6  # behaviour is what finds "taste"

    fixed = {"C": 1.0, "threshold": 0.3, "random_state": 0}
    sparse = InterestClassifier(**fixed).fit(joint, labels)
    dense = InterestClassifier(**fixed).fit(joint.toarray(), labels)
    np.testing.assert_allclose(sparse.predict_proba(joint), dense.predict_proba(joint), atol=1e-3)
