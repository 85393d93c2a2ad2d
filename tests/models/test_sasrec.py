from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from interestlens.data import Dataset, Event
from interestlens.models.base import History
from interestlens.models.sasrec import SASRec, _torch_parts, _windows
from interestlens.text.local import cpu_has_amx
from tests.models.contract import T0, RecommenderContract, tiny_dataset


def small(**kw) -> SASRec:
    params = dict(
        max_len=8,
        dim=16,
        n_layers=1,
        n_heads=1,
        epochs=3,
        patience=None,
        text_init=False,
        threads=1,
    )
    params = {**params, **kw}
    params.setdefault("holdout_last", params["patience"] is not None)
    return SASRec(**params)


class TestSASRec(RecommenderContract):
    def make_model(self, random_state: int = 0):
        return small(random_state=random_state)


def chain_dataset(n_items: int = 12, n_users: int = 60, length: int = 6) -> Dataset:
    """Each user walks the items in order from a random start: item i is always followed by i+1."""
    rng = np.random.default_rng(0)
    events = []
    for u in range(n_users):
        start = int(rng.integers(0, n_items))
        for k in range(length):
            item = f"i{(start + k) % n_items}"
            events.append(Event(f"u{u}", item, "click", timestamp=T0 + timedelta(minutes=k)))
    return Dataset.from_records(events)


@pytest.mark.parametrize(
    ("loss", "precision"), [("ce", "fp32"), ("ce", "bf16"), ("sampled_ce", "auto")]
)
def test_learns_that_item_i_is_followed_by_i_plus_1(loss, precision):
    ds = chain_dataset()
    model = SASRec(
        max_len=8,
        dim=32,
        n_heads=2,
        epochs=30,
        patience=None,
        loss=loss,
        precision=precision,
        n_negatives=8,
        batch_size=32,
        learning_rate=5e-3,
        text_init=False,
        threads=1,
    ).fit(ds)
    ev = ds.sorted_events()
    last = ev.groupby("user_id", sort=False)["item_id"].last()
    expected = [f"i{(int(i[1:]) + 1) % 12}" for i in last]
    top = model.recommend(list(last.index), k=1)["item_id"].tolist()
    assert np.mean([a == b for a, b in zip(top, expected, strict=True)]) >= 0.95
    amx = "bf16" if cpu_has_amx() else "fp32"
    assert model.precision_ == (amx if precision == "auto" else precision)
    assert model.item_vectors_.dtype == np.float32


@pytest.mark.parametrize("bf16", [False, True])
def test_catalogue_softmax_matches_logsumexp_and_its_gradients(bf16):
    torch.manual_seed(0)
    h = (torch.randn(300, 16) * 0.5).requires_grad_()
    items = (torch.randn(500, 16) * 0.5).requires_grad_()
    mean_log_sum_exp = _torch_parts().mean_log_sum_exp
    mean_log_sum_exp.apply(h, items, bf16).backward()
    h2, items2 = h.detach().clone().requires_grad_(), items.detach().clone().requires_grad_()
    loss = torch.logsumexp(h2 @ items2.T, dim=1).mean()
    loss.backward()
    reference = float(loss.detach())
    tol = 1e-2 if bf16 else 1e-5  # bf16 keeps 8 bits of mantissa in the products
    value = mean_log_sum_exp.apply(h.detach(), items.detach(), bf16)
    assert abs(float(value) - reference) < tol * abs(reference)
    for got, want in ((h.grad, h2.grad), (items.grad, items2.grad)):
        assert float((got - want).norm() / want.norm()) < tol


def test_an_item_without_interactions_gets_a_vector_from_its_text(encoder):
    ds = tiny_dataset()
    model = SASRec(
        max_len=8, dim=32, n_heads=2, epochs=10, patience=None, encoder=encoder, threads=1
    ).fit(ds)

    def margin(fitted: SASRec) -> float:
        """Mean cosine of the new item to the space films minus that to the romances."""
        v = fitted.item_vectors_ / np.linalg.norm(fitted.item_vectors_, axis=1, keepdims=True)
        new = v[fitted.item_ids_.get_loc("i-new")]
        space = fitted.item_ids_.get_indexer([f"i{i}" for i in range(0, 30, 2)])
        romance = fitted.item_ids_.get_indexer([f"i{i}" for i in range(1, 30, 2)])
        return float((v[space] @ new).mean() - (v[romance] @ new).mean())

    assert margin(model) > 1.0
    assert abs(margin(small(epochs=10, dim=32, n_heads=2).fit(ds))) < 0.5
    # u0 likes the space films (even items), u1 the romances (odd items)
    scores = model.score(["u0", "u1"], ["i-new", *(f"i{i}" for i in range(1, 30, 2))])
    assert np.isfinite(scores).all()
    assert scores[0, 0] > scores[0, 1:].max() and scores[1, 0] < scores[1, 1:].min()


def test_encoder_is_not_saved_and_scores_survive_a_round_trip(encoder, tmp_path):
    ds = tiny_dataset()
    model = SASRec(max_len=8, dim=16, n_heads=1, epochs=2, patience=None, encoder=encoder).fit(ds)
    model.save(tmp_path / "m.pkl")
    loaded = SASRec.load(tmp_path / "m.pkl")
    assert loaded.encoder is None and model.encoder is encoder
    assert b"Encoder" not in pickle.dumps(model)
    users = ["u0", "u9", "nobody"]
    np.testing.assert_array_equal(loaded.score_all(users), model.score_all(users))


def _fold_in_histories(ds: Dataset) -> dict[str, object]:
    """Some users' histories, cut short or reordered, so the fold-in runs the network."""
    ev = ds.sorted_events()
    out = {}
    for u in ("u0", "u3", "u7"):
        mine = ev[ev["user_id"] == u]
        out[f"{u} first half"] = mine.head(len(mine) // 2 + 1)
        out[f"{u} reversed"] = mine.iloc[::-1].assign(timestamp=mine["timestamp"].to_numpy())
    return out


def test_fold_in_scores_survive_a_pickle_round_trip_and_the_network_is_rebuilt_lazily(
    encoder,
):
    ds = tiny_dataset()
    model = SASRec(max_len=8, dim=16, n_heads=1, epochs=2, patience=None, encoder=encoder).fit(ds)
    before = {name: model.score_history(h) for name, h in _fold_in_histories(ds).items()}
    data = pickle.dumps(model)
    assert b"torch" not in data  # the network travels as numpy arrays
    loaded = pickle.loads(data)
    assert "_network" not in vars(loaded)
    np.testing.assert_array_equal(loaded.score_all(["u0", "u9"]), model.score_all(["u0", "u9"]))
    assert "_network" not in vars(loaded)  # fitted users score without the network
    for name, history in _fold_in_histories(ds).items():
        np.testing.assert_array_equal(loaded.score_history(history), before[name], err_msg=name)
    assert "_network" in vars(loaded)
    for (name, got), want in zip(
        loaded.network_.state_dict().items(), model.network_.state_dict().values(), strict=True
    ):
        assert torch.equal(got, want), name


def test_fold_in_scores_survive_an_engine_artefact_round_trip(tmp_path, monkeypatch):
    from interestlens.engine import artefact

    monkeypatch.setattr(artefact, "MIN_MAPPED_BYTES", 1)  # map the network's small arrays too
    ds = chain_dataset(n_items=40, n_users=200, length=20)
    model = small(epochs=2, dim=32, n_heads=2, max_len=16).fit(ds)
    histories = {
        f"{u} then i{k}": History(ds.events[ds.events["user_id"] == u].iloc[:k])
        for u, k in (("u1", 5), ("u2", 12), ("u30", 20))
    }
    before = {
        name: model._history_scores(h, model._history_row(h)) for name, h in histories.items()
    }
    artefact.write_artefact({"model": model}, tmp_path, meta={})
    doc, _ = artefact.read_artefact(tmp_path)
    loaded = doc["model"]
    assert not loaded.weights_["item.weight"].flags.owndata  # read from its mapped file
    for name, history in histories.items():
        got = loaded._history_scores(history, loaded._history_row(history))
        np.testing.assert_array_equal(got, before[name], err_msg=name)


def test_early_stopping_keeps_the_best_epoch_and_leaves_threads_alone():
    threads = torch.get_num_threads()
    model = small(epochs=30, patience=2, learning_rate=3e-2).fit(chain_dataset())
    assert torch.get_num_threads() == threads
    history = model.history_
    assert 1 <= len(history) <= 30
    assert model.best_epoch_ == int(np.argmax(history)) + 1
    assert len(history) == 30 or len(history) == model.best_epoch_ + 2


def test_without_patience_every_epoch_runs_and_the_last_is_kept():
    ds = chain_dataset()
    model = small(epochs=4, holdout_last=True).fit(ds)
    assert len(model.history_) == 4 and model.best_epoch_ == 4
    assert model.held_out_.all()
    # the kept weights are the last epoch's: they reproduce its holdout score
    from interestlens.models.sasrec import _item_sequences

    items, bounds = _item_sequences(ds, model.user_ids_, model.item_ids_)
    users = np.arange(ds.n_users)
    score = model._holdout_ndcg(
        model.network_, torch.from_numpy(items), bounds[:-1], bounds[1:], users
    )
    assert score == pytest.approx(model.history_[-1], abs=1e-12)


def test_users_without_item_events_get_popularity():
    events = [
        Event("a", "x", "click", timestamp=T0),
        Event("a", "y", "click", timestamp=T0),
        Event("b", "x", "click", timestamp=T0),
        Event("c", None, "search", timestamp=T0, text="films"),
    ]
    ds = Dataset.from_records(events)
    model = small(epochs=1).fit(ds)
    np.testing.assert_array_equal(model.score_all(["c"])[0], model.popularity_.astype(np.float32))


@pytest.mark.parametrize(
    "params",
    [
        {"loss": "bpr"},
        {"precision": "fp16"},
        {"patience": 2, "holdout_last": False},
        {"dim": 10, "n_heads": 3},
        {"patience": 0},
        {"max_len": 0},
        {"stride": 0},
    ],
)
def test_bad_parameters_are_refused(params):
    with pytest.raises(ValueError):
        small(**params).fit(tiny_dataset())


@pytest.mark.parametrize("stride", [50, 10, 1])
def test_each_epoch_predicts_every_item_once_and_the_latest_with_full_context(stride):
    rng = np.random.default_rng(0)
    starts, n_pairs = np.array([0, 100, 103, 500, 900]), np.array([97, 2, 0, 300, 50])
    for _ in range(20):
        first, length, n_loss = _windows(starts, n_pairs, 50, stride, rng)
        assert ((1 <= n_loss) & (n_loss <= length) & (length <= 50) & (n_loss <= stride)).all()
        targets = np.concatenate(
            [np.arange(f + n - k, f + n) for f, n, k in zip(first, length, n_loss, strict=True)]
        )
        expected = np.concatenate([s + np.arange(m) for s, m in zip(starts, n_pairs, strict=True)])
        np.testing.assert_array_equal(np.sort(targets), expected)
        # each target reads max_len - stride + 1 items or all the items before it
        owner = starts[np.searchsorted(starts, first, "right") - 1]
        for f, n, k, s0 in zip(first, length, n_loss, owner, strict=True):
            t = np.arange(f + n - k, f + n)
            assert (t - f + 1 >= np.minimum(t - s0 + 1, 50 - stride + 1)).all()
        for s, m in zip(starts, n_pairs, strict=True):
            if m:
                assert length[first + length == s + m].tolist() == [min(50, m)]


def test_without_last_items_scores_as_before_each_users_last_item():
    ds = chain_dataset()
    model = small(epochs=2, patience=1).fit(ds)
    inner, users = model.without_last_items()
    assert len(users) == ds.n_users and model.held_out_.all()
    # the view's state for a user is the state of their history without its last item
    seq = model.network_
    assert not np.allclose(inner.user_states_, model.user_states_)
    np.testing.assert_array_equal(inner.item_vectors_, model.item_vectors_)
    assert inner.network_ is seq
    last_dropped = Dataset(ds.sorted_events().groupby("user_id").head(5), ds.items, ds.users)
    assert len(last_dropped.events) == len(ds.events) - ds.n_users
    u = ds.user_ids[:3]
    from interestlens.models.sasrec import _item_sequences

    items, bounds = _item_sequences(last_dropped, model.user_ids_, model.item_ids_)
    states = model._states(
        seq, torch.from_numpy(items), bounds[:-1], bounds[1:], np.arange(3)
    ).numpy()
    np.testing.assert_allclose(inner.score_all(list(u)), states @ model.item_vectors_.T, atol=1e-5)
    assert not len(small(epochs=1).fit(ds).without_last_items()[1])


def test_early_stopping_scores_a_sample_of_users_on_large_data(monkeypatch):
    import interestlens.models.sasrec as sasrec

    monkeypatch.setattr(sasrec, "_HOLDOUT_USERS", 5)
    model = small(epochs=2, patience=1).fit(chain_dataset())
    assert 1 <= len(model.history_) <= 2 and np.isfinite(model.user_states_).all()


def test_each_epoch_is_logged_with_its_mean_loss(caplog):
    with caplog.at_level(logging.INFO, logger="interestlens.models.sasrec"):
        model = small(epochs=3, holdout_last=True).fit(chain_dataset())
    lines = [r.getMessage() for r in caplog.records if r.name == "interestlens.models.sasrec"]
    assert len(lines) == 3 and len(model.losses_) == 3
    for epoch, (line, loss, ndcg) in enumerate(
        zip(lines, model.losses_, model.history_, strict=True), 1
    ):
        assert line.startswith(
            f"SASRec: epoch {epoch}/3, loss {loss:.4f}, held-out NDCG@10 {ndcg:.4f} ("
        )
    # the mean loss of an epoch is the training loss, which falls on this easy data
    assert model.losses_[-1] < model.losses_[0]


_FIT_SMALL = (
    "import sys\n"
    "from tests.models.test_sasrec import chain_dataset, small\n"
    "progress = {'on': True, 'off': False, 'auto': None}[sys.argv[1]]\n"
    "small(epochs=3, progress=progress).fit(chain_dataset())\n"
)


@pytest.mark.slow
@pytest.mark.parametrize(("progress", "shown"), [("on", True), ("auto", False), ("off", False)])
def test_the_epochs_and_their_loss_show_on_stderr_when_asked_or_on_a_terminal(progress, shown):
    # stderr is a pipe here: shown when asked for; by default only on a terminal
    p = subprocess.run(
        [sys.executable, "-c", _FIT_SMALL, progress],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "TTY_COMPATIBLE": "1"},  # rich draws the bar into the pipe
    )
    assert p.returncode == 0, p.stderr
    assert ("SASRec: epoch 3/3, loss " in p.stderr) is shown, p.stderr


class ThreadRecordingSASRec(SASRec):
    """Notes torch's threads and those of every OpenMP and BLAS pool as training starts."""

    seen: ClassVar[list[tuple[int, set[int]]]] = []

    def _train(self, *args):
        from threadpoolctl import threadpool_info

        pools = {p["num_threads"] for p in threadpool_info()}
        ThreadRecordingSASRec.seen.append((torch.get_num_threads(), pools))
        super()._train(*args)


def test_training_follows_the_thread_policy(monkeypatch):
    from interestlens.threads import ENV, limit

    ds, seen = chain_dataset(), ThreadRecordingSASRec.seen
    seen.clear()
    before = torch.get_num_threads()
    monkeypatch.setenv(ENV, "2")
    ThreadRecordingSASRec(**small(epochs=1, threads=None).get_params()).fit(ds)
    ThreadRecordingSASRec(**small(epochs=1, threads=1).get_params()).fit(ds)
    with limit(1):
        ThreadRecordingSASRec(**small(epochs=1, threads=None).get_params()).fit(ds)
    assert seen == [(2, {2}), (1, {1}), (1, {1})]
    assert torch.get_num_threads() == before
