from __future__ import annotations

import implicit.nearest_neighbours as implicit_nn  # required: a broken install fails, never skips
import numpy as np
import pytest
import scipy.sparse as sp

from interestlens.models.item_knn import ItemKNN, bm25_weight, nearest_neighbours
from tests.models.contract import RecommenderContract, tiny_dataset


class TestItemKNN(RecommenderContract):
    def make_model(self, random_state: int = 0):
        return ItemKNN(k=10, random_state=random_state)


class TestItemKNNBM25(RecommenderContract):
    def make_model(self, random_state: int = 0):
        return ItemKNN(k=10, similarity="bm25", shrinkage=5.0, random_state=random_state)


@pytest.mark.filterwarnings("ignore:Method expects CSR input")
@pytest.mark.parametrize(
    ("similarity", "peer"),
    [
        ("cosine", implicit_nn.CosineRecommender),
        ("bm25", lambda K: implicit_nn.BM25Recommender(K=K, K1=100, B=0.8)),
    ],
)
def test_scores_match_implicit_item_item_recommenders(similarity, peer):
    ds = tiny_dataset()
    model = ItemKNN(k=ds.n_items, similarity=similarity, shrinkage=0.0).fit(ds)
    X = model.user_items_.astype(np.float64)
    reference = peer(K=ds.n_items + 1)
    reference.fit(X, show_progress=False)
    users = np.arange(ds.n_users)
    ids, scores = reference.recommend(
        users, sp.csr_matrix(X), N=10, filter_already_liked_items=True
    )
    ours = np.take_along_axis(model.score_all(list(model.user_ids_)), ids, axis=1)
    scored = scores > 0  # implicit pads a short list with seen items at 0
    assert scored.sum(axis=1).min() >= 5
    np.testing.assert_allclose(ours[scored], scores[scored], rtol=1e-5)
    # implicit keeps each item among its own neighbours; we never do
    theirs = sp.csr_matrix(reference.similarity)
    theirs.setdiag(0)
    np.testing.assert_allclose(model.similarity_.toarray(), theirs.toarray(), rtol=1e-5, atol=1e-7)


def test_k_neighbours_are_the_k_most_similar_other_items():
    rng = np.random.default_rng(0)
    W = sp.random(60, 40, density=0.3, random_state=rng, format="csr")
    W = sp.csr_matrix(W @ sp.diags(1 / np.sqrt(np.asarray(W.multiply(W).sum(axis=0)).ravel())))
    ours = nearest_neighbours(W, k=5)
    # unit columns: an item is its own nearest neighbour in implicit's all-pairs search
    theirs = sp.csr_matrix(implicit_nn.all_pairs_knn(W, 6, show_progress=False))
    assert np.allclose(theirs.diagonal(), 1.0)
    theirs.setdiag(0)
    theirs.eliminate_zeros()
    assert (ours.getnnz(axis=1) == 5).all()
    np.testing.assert_allclose(ours.toarray(), theirs.toarray(), rtol=1e-6)


def test_bm25_weight_is_implicits():
    X = sp.random(30, 20, density=0.2, random_state=1, format="csr")
    X.data = np.ceil(X.data * 5)
    theirs = implicit_nn.bm25_weight(X.T.tocsr(), K1=100, B=0.8).T
    np.testing.assert_allclose(bm25_weight(X, 100, 0.8).toarray(), theirs.toarray())


def test_shrinkage_damps_similarities_with_few_common_users():
    ds = tiny_dataset()
    plain = ItemKNN(k=ds.n_items, shrinkage=0.0).fit(ds).similarity_.toarray()
    shrunk = ItemKNN(k=ds.n_items, shrinkage=3.0).fit(ds).similarity_.toarray()
    B = (ItemKNN().interaction_matrix(ds) != 0).astype(np.float64)
    common = (B.T @ B).toarray()
    np.fill_diagonal(common, 0)
    np.testing.assert_allclose(shrunk, plain * common / (common + 3.0), rtol=1e-6, atol=1e-7)


def test_rejects_unknown_similarity():
    with pytest.raises(ValueError, match="similarity"):
        ItemKNN(similarity="jaccard").fit(tiny_dataset())
