"""Erasing one user's row of per-user state in place (the contract tests run it on every model)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from interestlens.models import base
from interestlens.models.base import FORGOTTEN, erase_user_row, without_id
from interestlens.models.item_knn import ItemKNN
from tests.models.contract import tiny_dataset


def random_matrix(n_users: int = 50, n_items: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) * (rng.random((n_users, n_items)) < 0.2)
    dense[7] = 0.0  # a user with no entries
    return dense.astype(np.float32)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("chunk", [3, 1 << 20])
def test_sparse_rows_are_removed_and_everything_else_kept(fmt, chunk, monkeypatch):
    monkeypatch.setattr(base, "_MOVE_CHUNK", chunk)  # small chunks: many moves, overlapping
    dense = random_matrix()
    M = sp.csr_matrix(dense) if fmt == "csr" else sp.csc_matrix(dense)
    buffer = M.data
    for row in (0, 13, 49, 7, 13):
        erase_user_row(M, row)
        dense[row] = 0.0
        np.testing.assert_array_equal(M.toarray(), dense)
        assert M.nnz == np.count_nonzero(dense) == len(M.data) == len(M.indices)
        assert M.has_sorted_indices
    # the same buffer, moved within, with the freed tail zeroed
    assert np.shares_memory(M.data, buffer) and not buffer[M.nnz :].any()


def test_dense_rows_are_zeroed_in_place():
    factors = np.arange(12, dtype=np.float32).reshape(4, 3)
    active = np.ones(4, dtype=bool)
    erase_user_row(factors, 2)
    erase_user_row(active, 2)
    assert factors[2].tolist() == [0, 0, 0] and factors[3].tolist() == [9, 10, 11]
    assert active.tolist() == [True, True, False, True]


def test_other_kinds_of_state_are_refused():
    with pytest.raises(TypeError, match="CSR/CSC matrix, not coo_matrix"):
        erase_user_row(sp.coo_matrix(random_matrix()), 0)
    with pytest.raises(TypeError, match="not list"):
        erase_user_row([[1.0]], 0)


def test_a_large_matrix_is_not_copied():
    # 2M entries (16 MB of data and indices): the move works in chunks of the same buffers
    rng = np.random.default_rng(0)
    n_users, per_user = 100_000, 20
    indptr = np.arange(0, n_users * per_user + 1, per_user, dtype=np.int32)
    indices = rng.integers(0, 5_000, n_users * per_user).astype(np.int32)
    indices.reshape(n_users, per_user).sort(axis=1)
    M = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), (n_users, 5_000))
    tracemalloc.start()
    try:
        erase_user_row(M, 3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert M.nnz == (n_users - 1) * per_user and M[3].nnz == 0
    assert peak < 0.5 * (M.data.nbytes + M.indices.nbytes), peak


def test_copy_on_write_memory_maps_are_written_in_memory_only(tmp_path):
    model = ItemKNN(k=5).fit(tiny_dataset())
    X = model.user_items_
    for name in ("data", "indices", "indptr"):
        np.save(tmp_path / f"{name}.npy", getattr(X, name))
    opened = {
        n: np.load(tmp_path / f"{n}.npy", mmap_mode="c") for n in ("data", "indices", "indptr")
    }
    model.user_items_ = sp.csr_matrix(
        (opened["data"], opened["indices"], opened["indptr"]), shape=X.shape, copy=False
    )
    assert np.shares_memory(model.user_items_.data, opened["data"])
    before = model.score_all(["u1", "u2"])
    assert model.forget_user("u0")
    assert model.user_items_[0].nnz == 0
    np.testing.assert_array_equal(model.score_all(["u1", "u2"]), before)
    on_disk = sp.csr_matrix(
        tuple(np.load(tmp_path / f"{n}.npy") for n in ("data", "indices", "indptr")),
        shape=X.shape,
    )
    assert (on_disk != X).nnz == 0  # the files are as they were


def test_without_id_keeps_positions_and_drops_the_id():
    ids = pd.Index(["a", "b", "c"], name="user_id")
    out = without_id(ids, 1)
    assert out.tolist() == ["a", f"{FORGOTTEN}1", "c"] and out.name == "user_id"
    assert out.dtype == ids.dtype and ids.tolist() == ["a", "b", "c"]
