"""SASRec: a causal transformer over each user's item sequence, with items that start from text."""

from __future__ import annotations

import copy
import functools
import logging
import math
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from interestlens.data import Dataset
from interestlens.models.base import History, Recommender
from interestlens.progress import Bar, progress_bar
from interestlens.threads import limit

if TYPE_CHECKING:
    import torch

    from interestlens.text import Encoder


log = logging.getLogger(__name__)

#: Most users whose last item the early stopping scores each epoch.
_HOLDOUT_USERS = 10_000


def _item_sequences(
    dataset: Dataset, user_ids: Any, item_ids: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Every user's item events in time order as one flat array of item columns plus row bounds.

    Consecutive events of one user on the same item (a rating then a tag) count once.
    """
    ev = dataset.sorted_events()
    ev = ev[ev["item_id"].notna()]
    users = user_ids.get_indexer(ev["user_id"].to_numpy(dtype=object))
    items = item_ids.get_indexer(ev["item_id"].to_numpy(dtype=object))
    keep = (users >= 0) & (items >= 0)
    users, items = users[keep], items[keep]
    repeat = np.r_[False, (users[1:] == users[:-1]) & (items[1:] == items[:-1])]
    users, items = users[~repeat], items[~repeat]
    order = np.argsort(users, kind="stable")
    users, items = users[order], items[order]
    bounds = np.searchsorted(users, np.arange(len(user_ids) + 1))
    return items.astype(np.int64), bounds.astype(np.int64)


def _windows(
    starts: np.ndarray,
    n_pairs: np.ndarray,
    max_len: int,
    stride: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One epoch's training windows over each user's (item, next item) pairs.

    A user's pairs ``0..m-1`` are cut at ``m - o``, ``m - o - stride``, ... for a random
    phase ``o``; each window holds the ``max_len`` pairs before its cut and is scored on
    its last ``stride`` pairs, so every pair is a target exactly once per epoch, with at
    least ``max_len - stride`` items of context where the history allows, and the cuts
    move from epoch to epoch. The last piece, of ``o`` pairs, is scored inside the full
    window of the ``max_len`` pairs that end the history.

    Parameters
    ----------
    starts
        Flat position of each user's first item.
    n_pairs
        Number of pairs each user trains on.
    max_len
        Longest window.
    stride
        Pairs scored per window, at most ``max_len``.
    rng
        Draws the phases.

    Returns
    -------
    first, length, n_loss
        Per window: flat position of its first input item, its length, and how many of
        its last positions are targets.
    """
    m = n_pairs
    offset = np.minimum(rng.integers(0, stride, size=len(m)), m)
    n_windows = (offset > 0).astype(np.int64) + -(-(m - offset) // stride)
    user = np.repeat(np.arange(len(m)), n_windows)
    k = np.arange(len(user)) - np.repeat(np.cumsum(n_windows) - n_windows, n_windows)
    head = np.repeat(offset > 0, n_windows) & (k == 0)
    shift = k - np.repeat(offset > 0, n_windows).astype(np.int64)
    end = np.where(head, m[user], m[user] - offset[user] - stride * shift)
    window_start = np.maximum(end - max_len, 0)
    length = end - window_start
    n_loss = np.minimum(np.where(head, offset[user], stride), length)
    return starts[user] + window_start, length, n_loss


class SASRec(Recommender):
    """Self-attentive sequential recommendation with text-initialised item vectors.

    A causal transformer reads each user's most recent ``max_len`` items in time order and
    predicts the next one at every position (Kang & McAuley, 2018), trained with softmax
    cross-entropy over the whole catalogue, which beats the original binary cross-entropy
    with one negative by a wide margin (Klenitskiy & Vasilev, 2023), or over sampled items
    for large catalogues. An item's vector is a learned id embedding plus a learned linear
    projection of its frozen language-model text embedding, so an item nobody has
    interacted with still gets a vector from its text, near items with similar text.

    Parameters
    ----------
    max_len
        Items of history the model reads (the most recent ones).
    dim
        Width of item vectors and hidden states.
    n_layers, n_heads
        Transformer blocks and attention heads per block (pre-layer-norm, GELU, 4x
        feed-forward width).
    dropout
        Dropout on the input embeddings and on each block's attention and feed-forward
        outputs; not on attention weights, which would take CPU attention off its fused
        kernel (measured 35 % slower transformer passes).
    learning_rate
        Adam step size at the start; it falls linearly to zero over ``epochs``.
    batch_size
        Training windows per step (each window predicts up to ``max_len`` next items).
    epochs
        Most passes over the training data; each pass cuts every user's history into
        windows at a new random phase and predicts every item once.
    stride
        Items predicted per window of ``max_len``: each prediction reads at least
        ``max_len - stride`` items of context where the history has them, as at serving
        time, at the cost of ``max_len / stride`` times the transformer work of
        predicting every position of disjoint windows (``None``, or more than
        ``max_len``: ``max_len``).
    holdout_last
        Hold out each user's last item inside ``fit`` (for at most 10,000 users drawn at
        random; the rest train on it) and score it after every epoch (:attr:`history_`).
        The held-out items are what :meth:`without_last_items` serves, so that
        :class:`Hybrid` can train its ranker on this one fit.
    patience
        Early stopping on the held-out items (needs ``holdout_last``): stop after
        ``patience`` epochs without a better NDCG@10 and keep the best epoch's weights.
        ``None`` trains every epoch and keeps the last, where the learning rate has
        fallen to zero. Measured on ml-latest-small, a patience of 3 stopped at epoch 13
        on a noisy peak of the 610 held-out items and scored 0.052 on validation, where
        all 20 epochs scored 0.070 to 0.076.
    loss
        ``"ce"``: softmax over all items; ``"sampled_ce"``: softmax over the target and
        ``n_negatives`` items drawn by training frequency (shared by a batch), with the
        log-frequency correction of sampled softmax, for catalogues too large for ``"ce"``.
    n_negatives
        Negatives per batch for ``"sampled_ce"``.
    text_init
        Add the projected text embedding to each item's vector.
    text_fields
        Item fields the text is composed from (see
        :func:`~interestlens.text.compose_item_text`).
    encoder
        The :class:`~interestlens.text.Encoder` to embed item text with; ``None`` builds
        the bundled one (caching under ``$INTERESTLENS_CACHE_DIR`` when set) on first use.
        It is not saved with the model.
    threads
        Threads of every pool while fitting (torch, OpenMP, BLAS; see
        :func:`interestlens.threads.limit`); ``None``: those of the enclosing limit (a
        :class:`Hybrid`'s), else ``$INTERESTLENS_THREADS``, else
        :data:`interestlens.threads.DEFAULT_THREADS` (1). On an idle 2-core machine two
        threads train 1.6 times faster than one; beside busy processes, two threads whose
        OpenMP runtime spins while waiting (torch imported before interestlens, or
        ``OMP_WAIT_POLICY`` set otherwise) took over 5 times as long as one in the
        median run (see :mod:`interestlens.threads`). Results are deterministic for a
        given thread count, and differ by about 1e-5 between thread counts.
    progress
        Show each epoch, with its mean training loss, on a progress bar on stderr;
        ``None`` shows it when stderr is a terminal. Each epoch is also logged at INFO
        level (logger ``interestlens.models.sasrec``), whatever this says.
    precision
        Arithmetic of the large matrix products in training (the text projection and the
        softmax over the catalogue): ``"bf16"`` multiplies in bfloat16 while weights,
        gradients, the softmax and the optimiser stay in float32; ``"fp32"`` keeps all
        of it in float32; ``"auto"`` picks bf16 on CPUs with AMX-BF16 tiles, where those
        products run 4 to 6 times faster, and float32 elsewhere. Scoring is always
        float32. On ml-latest-small, bf16 trained to the same validation NDCG@10 as
        float32 (0.0756 against 0.075).
    random_state
        Seed of initialisation, dropout, window phases and batch order.

    Attributes
    ----------
    network_
        The trained torch module (CPU, eval mode), built from :attr:`weights_` when
        first asked for: fitted users score without it, and without importing torch.
    weights_
        The network's state dict as numpy arrays, the form it is saved in.
    item_vectors_
        ``(n_items, dim)`` float32 item vectors, in :attr:`item_ids_` order.
    user_states_
        ``(n_users, dim)`` float32 final hidden state of each user's history.
    history_
        NDCG@10 of the held-out last items after each epoch (empty without
        ``holdout_last``).
    losses_
        Mean training loss of each epoch.
    best_epoch_
        The epoch whose weights were kept (1-based).
    precision_
        The precision training used (``"bf16"`` or ``"fp32"``).

    Notes
    -----
    Measured on ml-latest-small (temporal leave-last-out over ratings, full ranking,
    training items excluded; settings chosen on validation): NDCG@10 on validation of
    0.065 with disjoint windows (``stride=None``) and 12 epochs, 0.068 with
    ``stride=10``, 0.067 to 0.076 with ``stride=10`` and 16 to 20 epochs (one run each;
    one standard error is about 0.008, so these do not differ). The defaults take
    16 epochs of about 7.5 s each on two idle cores with AMX-BF16 (``threads=2``), 1.6
    times that on one. Stride 25, batch 32
    and sampled softmax scored 0.066, 0.067 and 0.070, inside the same noise; the test
    figure is in ``benchmarks/results/accuracy.json`` (RecBole's SASRec: 0.0648).
    Post-layer-norm blocks with BERT's initialisation, as in RecBole, gave 0.066.
    Without ``text_init`` an earlier setting lost a third of its validation NDCG. Scoring reads cached user
    states, so a user's scores are one (1 x dim) by (dim x n_items) product.

    Limits: :meth:`score_history` scores a user's later events through the fitted
    network, but items and weights stay those of ``fit``. Users without item events get popularity. Items outside the dataset's catalogue at
    fit time are unknown. Text only helps where items have informative text; an item
    without interactions scores by its projected text plus an id part that the full
    softmax has pushed away from every user. Full softmax costs time in proportion to
    the catalogue size, so use ``"sampled_ce"`` above some tens of thousands of items.

    References
    ----------
    Wang-Cheng Kang, Julian McAuley. 2018. Self-Attentive Sequential Recommendation.
    ICDM 2018.

    Anton Klenitskiy, Alexey Vasilev. 2023. Turning Dross Into Gold Loss: is BERT4Rec
    really better than SASRec? RecSys 2023.

    Sébastien Jean, Kyunghyun Cho, Roland Memisevic, Yoshua Bengio. 2015. On Using Very
    Large Target Vocabulary for Neural Machine Translation. ACL 2015.

    Examples
    --------
    >>> from datetime import datetime, timedelta
    >>> from interestlens.data import Dataset, Event
    >>> t0 = datetime(2024, 1, 1)
    >>> ds = Dataset.from_records([
    ...     Event(f"u{u}", f"i{(u + k) % 6}", "click", timestamp=t0 + timedelta(hours=k))
    ...     for u in range(30) for k in range(5)])
    >>> model = SASRec(dim=16, n_heads=1, epochs=40, holdout_last=False, text_init=False).fit(ds)
    >>> model.recommend("u0", k=1)["item_id"].tolist()  # u0 saw i0..i4 in order
    ['i5']
    """

    _user_state = ("user_states_", "inner_states_", "has_history_", "held_out_")
    _derived = (*Recommender._derived, "_input_vectors", "_network")

    def __init__(
        self,
        max_len: int = 50,
        dim: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        dropout: float = 0.2,
        learning_rate: float = 1e-3,
        batch_size: int = 16,
        epochs: int = 16,
        stride: int | None = 10,
        holdout_last: bool = True,
        patience: int | None = None,
        loss: Literal["ce", "sampled_ce"] = "ce",
        n_negatives: int = 2048,
        text_init: bool = True,
        text_fields: Sequence[str] = ("title", "categories", "text", "tags"),
        encoder: Encoder | None = None,
        threads: int | None = None,
        precision: Literal["auto", "bf16", "fp32"] = "auto",
        progress: bool | None = None,
        *,
        random_state: int = 0,
    ) -> None:
        super().__init__(random_state=random_state)
        self.max_len = max_len
        self.dim = dim
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.stride = stride
        self.holdout_last = holdout_last
        self.patience = patience
        self.loss = loss
        self.n_negatives = n_negatives
        self.text_init = text_init
        self.text_fields = text_fields
        self.encoder = encoder
        self.threads = threads
        self.precision = precision
        self.progress = progress

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["encoder"] = None
        state.pop("_encoder", None)
        return state

    # ----- fitting --------------------------------------------------------------
    def _text_vectors(self, dataset: Dataset) -> np.ndarray:
        from interestlens.text import Encoder, compose_item_text

        encoder = self.encoder
        if encoder is None:
            encoder = getattr(self, "_encoder", None)
            if encoder is None:
                encoder = Encoder(cache_dir=os.environ.get("INTERESTLENS_CACHE_DIR"))
                self._encoder = encoder
        texts = compose_item_text(
            dataset.catalogue(), dataset.events, fields=tuple(self.text_fields)
        )
        return np.asarray(encoder.encode(texts.tolist()), dtype=np.float32)

    def _check_params(self) -> None:
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', not {self.precision!r}")
        if self.loss not in ("ce", "sampled_ce"):
            raise ValueError(f"loss must be 'ce' or 'sampled_ce', not {self.loss!r}")
        if self.dim % self.n_heads:
            raise ValueError(f"dim ({self.dim}) must be a multiple of n_heads ({self.n_heads})")
        if self.max_len < 1 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError("max_len, epochs and batch_size must be at least 1")
        if self.stride is not None and self.stride < 1:
            raise ValueError(f"stride must be at least 1 or None, not {self.stride}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be at least 1 or None, not {self.patience}")
        if self.patience is not None and not self.holdout_last:
            raise ValueError("early stopping (patience) needs holdout_last=True")

    def _fit(self, dataset: Dataset, X: sp.csr_matrix) -> None:
        self._check_params()
        self.precision_ = self.precision
        if self.precision == "auto":
            from interestlens.text.local import cpu_has_amx

            self.precision_ = "bf16" if cpu_has_amx() else "fp32"
        import torch

        with limit(self.threads):
            text = self._text_vectors(dataset) if self.text_init else None
            items, bounds = _item_sequences(dataset, self.user_ids_, self.item_ids_)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.random_state)
                self._train(items, bounds, text)

    def _train(self, items: np.ndarray, bounds: np.ndarray, text: np.ndarray | None) -> None:
        import torch

        rng = np.random.default_rng(self.random_state)
        n_items = len(self.item_ids_)
        net = _torch_parts().network(
            n_items,
            self.dim,
            self.max_len,
            self.n_layers,
            self.n_heads,
            self.dropout,
            None if text is None else torch.from_numpy(text),
        )
        net.bf16 = self.precision_ == "bf16"
        optimizer = torch.optim.Adam(net.parameters(), lr=self.learning_rate, fused=True)
        starts, ends = bounds[:-1], bounds[1:]
        length = ends - starts
        stride = min(self.stride or self.max_len, self.max_len)
        holdout = bool(self.holdout_last)
        val_users = np.flatnonzero(length >= 2) if holdout else np.zeros(0, dtype=np.int64)
        if len(val_users) > _HOLDOUT_USERS:
            val_users = np.sort(rng.choice(val_users, _HOLDOUT_USERS, replace=False))
        held_out = np.zeros(len(length), dtype=np.int64)
        held_out[val_users] = 1
        n_pairs = np.maximum(length - 1 - held_out, 0)
        seq = torch.from_numpy(items)

        proposal = None
        if self.loss == "sampled_ce":
            trained = np.ones(len(items), dtype=bool)
            trained[ends[val_users] - 1] = False
            counts = np.bincount(items[trained], minlength=n_items) + 1.0
            proposal = torch.from_numpy(counts / counts.sum()).float()
        n_negatives = None if self.loss == "ce" else self.n_negatives

        self.history_: list[float] = []
        self.losses_: list[float] = []
        best, best_state, best_epoch, waited = -1.0, None, 0, 0
        with progress_bar("SASRec: epoch 1", total=self.epochs, enabled=self.progress) as bar:
            for epoch in range(1, self.epochs + 1):
                started = time.perf_counter()
                net.train()
                first, size, n_loss = _windows(starts, n_pairs, self.max_len, stride, rng)
                order = rng.permutation(len(first))
                n_batches = -(-len(order) // self.batch_size)
                total = torch.zeros(())
                for k in range(n_batches):
                    progress = (epoch - 1 + k / n_batches) / self.epochs
                    for group in optimizer.param_groups:
                        group["lr"] = self.learning_rate * (1.0 - progress)
                    idx = order[k * self.batch_size : (k + 1) * self.batch_size]
                    inputs, targets = _batch(seq, first[idx], size[idx], n_loss[idx])
                    loss = net.loss(inputs, targets, n_negatives, proposal)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total += loss.detach()
                    bar.advance(1 / n_batches)
                self.losses_.append(float(total) / max(n_batches, 1))
                if holdout:
                    self.history_.append(self._holdout_ndcg(net, seq, starts, ends, val_users))
                self._report_epoch(bar, epoch, time.perf_counter() - started)
                if self.patience is None:
                    best_epoch = epoch  # train every epoch, keep the annealed last one
                    continue
                if self.history_[-1] > best:
                    best, best_epoch, waited = self.history_[-1], epoch, 0
                    best_state = copy.deepcopy(net.state_dict())
                else:
                    waited += 1
                    if waited >= self.patience:
                        log.info(
                            "SASRec: no better held-out NDCG@10 for %d epochs, stopping", waited
                        )
                        break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        net._text_bf16 = None
        self.best_epoch_ = best_epoch
        self.weights_ = {k: v.numpy().copy() for k, v in net.state_dict().items()}
        self._network = net
        with torch.inference_mode():
            vectors = net.item_matrix()[1:]
            self.item_vectors_ = vectors.numpy().copy()
            self.user_states_ = self._states(net, seq, starts, ends, np.arange(len(starts))).numpy()
            self.inner_states_ = self.user_states_.copy()
            self.inner_states_[val_users] = self._states(
                net, seq, starts, ends - 1, val_users
            ).numpy()
        self.has_history_ = length > 0
        self.held_out_ = held_out.astype(bool)

    def _report_epoch(self, bar: Bar, epoch: int, seconds: float) -> None:
        """Log the epoch just trained and show it on the bar."""
        text = f"SASRec: epoch {epoch}/{self.epochs}, loss {self.losses_[-1]:.4f}"
        if self.history_:
            text += f", held-out NDCG@10 {self.history_[-1]:.4f}"
        log.info("%s (%.1f s)", text, seconds)
        bar.describe(text)

    def without_last_items(self) -> tuple[SASRec, pd.Index]:
        """The model as it scores users before their last item, and the users this holds for.

        With ``holdout_last``, each held-out user's last item was neither an input nor a
        target in training, so the returned copy (sharing the weights) scores those users
        as a model fitted without their last item would, at no extra fit: :class:`Hybrid`
        uses it to train its ranker. With early stopping the epoch kept was chosen on
        those items, which flatters the copy slightly on them.

        Returns
        -------
        model, users
            A shallow copy whose user states end before each held-out user's last item,
            and the ids of the held-out users (empty without ``holdout_last``).
        """
        self._check_fitted()
        inner = copy.copy(self)
        inner.user_states_ = self.inner_states_
        if "_network" in vars(self):  # copying leaves derived attributes out: share it
            inner._network = self._network
        return inner, self.user_ids_[self.held_out_]

    def _states(
        self,
        net: torch.nn.Module,
        seq: torch.Tensor,
        starts: np.ndarray,
        ends: np.ndarray,
        users: np.ndarray,
        chunk: int = 1024,
        vectors: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Final hidden state after each user's items ``[starts, ends)`` (the last max_len).

        ``vectors`` are the network's item vectors if already at hand.
        """
        import torch

        out = torch.zeros(len(users), self.dim)
        for b in range(0, len(users), chunk):
            u = users[b : b + chunk]
            first = np.maximum(starts[u], ends[u] - self.max_len)
            size = ends[u] - first
            ok = size > 0
            if not ok.any():
                continue
            inputs, _ = _batch(seq, first[ok], size[ok], np.zeros(ok.sum(), np.int64))
            with torch.inference_mode():
                h = net(inputs, vectors)
                last = h[torch.arange(len(inputs)), torch.from_numpy(size[ok] - 1)]
            out[b + np.flatnonzero(ok)] = last
        return out

    def _holdout_ndcg(
        self,
        net: torch.nn.Module,
        seq: torch.Tensor,
        starts: np.ndarray,
        ends: np.ndarray,
        users: np.ndarray,
    ) -> float:
        """NDCG@10 of each user's last item, ranked over all items but the user's earlier ones."""
        import torch

        if not len(users):
            return 0.0
        net.eval()
        with torch.inference_mode():
            vectors = net.item_matrix()[1:]
        states = self._states(net, seq, starts, ends - 1, users)
        total = 0.0
        chunk = max(1, 2**24 // len(vectors))
        for b in range(0, len(users), chunk):
            u = users[b : b + chunk]
            scores = states[b : b + chunk] @ vectors.T
            rows = np.repeat(np.arange(len(u)), ends[u] - 1 - starts[u])
            cols = np.concatenate(
                [seq.numpy()[s : e - 1] for s, e in zip(starts[u], ends[u], strict=True)]
            )
            target = torch.from_numpy(seq.numpy()[ends[u] - 1])
            own = scores[torch.arange(len(u)), target].clone()
            scores[torch.from_numpy(rows), torch.from_numpy(cols)] = -torch.inf
            rank = (scores > own[:, None]).sum(1)
            total += float(torch.where(rank < 10, 1.0 / torch.log2(rank + 2.0), 0.0).sum())
        return total / len(users)

    @property
    def network_(self) -> torch.nn.Module:
        """The trained torch module (CPU, eval mode), rebuilt from :attr:`weights_` on first use."""
        net = getattr(self, "_network", None)
        if net is None:
            self._check_fitted()
            net = self._network = self._rebuild_network()
        return net

    def warm(self) -> None:
        """Import torch and rebuild the network now, not on the first fold-in (about a second)."""
        if hasattr(self, "weights_"):
            self.network_  # noqa: B018 (built and kept on first access)

    def _rebuild_network(self) -> torch.nn.Module:
        import torch

        weights = {
            name: torch.from_numpy(np.require(w, requirements=["C", "W"]))
            for name, w in self.weights_.items()
        }
        text = weights.get("text")
        net = _torch_parts().network(
            len(self.item_ids_),
            self.dim,
            self.max_len,
            self.n_layers,
            self.n_heads,
            self.dropout,
            None if text is None else text[1:],
        )
        net.load_state_dict(weights)
        return net.eval()

    # ----- scoring --------------------------------------------------------------
    def _scores(self, rows: np.ndarray) -> np.ndarray:
        out = self.user_states_[rows] @ self.item_vectors_.T
        cold = ~self.has_history_[rows]
        if cold.any():
            out[cold] = self.popularity_.astype(np.float32)
        return out.astype(np.float32, copy=False)

    def _history_scores(self, history: History, X: sp.csr_matrix) -> np.ndarray:
        import torch

        items = history.sorted_columns(self)
        items = items[items >= 0]
        # as in _item_sequences: consecutive events on the same item count once
        first_of_run = np.ones(len(items), dtype=bool)
        first_of_run[1:] = items[1:] != items[:-1]
        items = items[first_of_run]
        fitted, vectors = getattr(self, "_input_vectors", (None, None))
        if fitted is not self.item_vectors_:
            # the item vectors as fitted (row 0: padding), not the text projection again
            vectors = torch.cat([torch.zeros(1, self.dim), torch.from_numpy(self.item_vectors_)])
            self._input_vectors = (self.item_vectors_, vectors)
        bounds, user = np.array([0, len(items)]), np.zeros(1, np.int64)
        state = self._states(
            self.network_, torch.from_numpy(items), bounds[:1], bounds[1:], user, vectors=vectors
        )
        return (state.numpy() @ self.item_vectors_.T)[0]


def _batch(
    seq: torch.Tensor, first: np.ndarray, size: np.ndarray, n_loss: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded input windows (item column + 1, 0 = padding) and next-item targets.

    Targets are item columns, and -100 (ignored) outside each window's last ``n_loss``
    positions.
    """
    import torch

    width = int(size.max())
    pos = np.arange(width)
    valid = pos[None, :] < size[:, None]
    flat = np.where(valid, first[:, None] + pos[None, :], 0)
    t = torch.from_numpy(flat)
    inputs = torch.where(torch.from_numpy(valid), seq[t] + 1, 0)
    scored = valid & (pos[None, :] >= (size - n_loss)[:, None])
    targets = torch.where(
        torch.from_numpy(scored), seq[torch.from_numpy(np.where(scored, flat + 1, 0))], -100
    )
    return inputs, targets


class _TorchParts(NamedTuple):
    """SASRec's torch classes (see :func:`_torch_parts`)."""

    network: type[Any]
    mean_log_sum_exp: type[Any]


@functools.cache
def _torch_parts() -> _TorchParts:
    """SASRec's network and its loss, defined (and torch imported) on first use.

    A fitted model scores its users with numpy alone, and keeps its network as arrays
    (:attr:`SASRec.weights_`): loading and serving it never pays torch's second of
    import time. Only fitting and folding in a new history build the network.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    class _Dropout(nn.Module):
        """Dropout with a byte-sized random draw per element.

        ``nn.Dropout`` draws a double-precision Bernoulli variable per element, which took
        a tenth of a training step here; one random byte per element takes 40 % of that.
        The drop probability is ``p`` rounded to a multiple of 1/256.
        """

        def __init__(self, p: float) -> None:
            super().__init__()
            self.cut = round(p * 256)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not self.training or self.cut == 0:
                return x
            keep = torch.empty(x.shape, dtype=torch.uint8).random_() >= self.cut
            return x * keep * (256 / (256 - self.cut))

    class _Block(nn.Module):
        """Pre-layer-norm transformer block with causal self-attention."""

        def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
            super().__init__()
            self.n_heads = n_heads
            self.norm1 = nn.LayerNorm(dim)
            self.qkv = nn.Linear(dim, 3 * dim)
            self.out = nn.Linear(dim, dim)
            self.norm2 = nn.LayerNorm(dim)
            self.ff = nn.Sequential(
                nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), _Dropout(dropout)
            )
            self.drop = _Dropout(dropout)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, n, d = x.shape
            q, k, v = (
                self.qkv(self.norm1(x)).view(b, n, 3, self.n_heads, d // self.n_heads).unbind(2)
            )
            a = F.scaled_dot_product_attention(
                q.transpose(1, 2),
                k.transpose(1, 2),
                v.transpose(1, 2),
                is_causal=True,
            )
            x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, n, d)))
            return x + self.ff(self.norm2(x))

    class _Network(nn.Module):
        """Item vectors (id embedding + projected text) and the causal transformer over them."""

        def __init__(
            self,
            n_items: int,
            dim: int,
            max_len: int,
            n_layers: int,
            n_heads: int,
            dropout: float,
            text: torch.Tensor | None,
        ) -> None:
            super().__init__()
            self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
            nn.init.normal_(self.item.weight, std=0.02)
            with torch.no_grad():
                self.item.weight[0].zero_()
            self.proj: nn.Linear | None = None
            if text is not None:
                self.register_buffer("text", torch.cat([torch.zeros(1, text.shape[1]), text]))
                self.proj = nn.Linear(text.shape[1], dim, bias=False)
            self.position = nn.Embedding(max_len, dim)
            nn.init.normal_(self.position.weight, std=0.02)
            self.drop = _Dropout(dropout)
            self.blocks = nn.ModuleList(_Block(dim, n_heads, dropout) for _ in range(n_layers))
            self.norm = nn.LayerNorm(dim)
            #: In training mode, compute the big matrix products (text projection, loss) in
            #: bf16, keeping weights, sums and gradients in float32.
            self.bf16 = False

        def item_matrix(self) -> torch.Tensor:
            """``(n_items + 1, dim)`` item vectors; row 0 is padding."""
            if self.proj is None:
                return self.item.weight
            if self.bf16 and self.training:
                if getattr(self, "_text_bf16", None) is None:
                    self._text_bf16 = self.text.to(torch.bfloat16)
                weight = self.proj.weight.to(torch.bfloat16)
                return self.item.weight + F.linear(self._text_bf16, weight).float()
            return self.item.weight + self.proj(self.text)

        def forward(
            self, inputs: torch.Tensor, vectors: torch.Tensor | None = None
        ) -> torch.Tensor:
            """Hidden state at every position of right-padded ``inputs`` (B, L)."""
            if vectors is None:
                vectors = self.item_matrix()
            x = vectors[inputs] + self.position.weight[: inputs.shape[1]]
            x = self.drop(x)
            for block in self.blocks:
                x = block(x)
            return self.norm(x)

        def loss(
            self,
            inputs: torch.Tensor,
            targets: torch.Tensor,
            n_negatives: int | None = None,
            proposal: torch.Tensor | None = None,
        ) -> torch.Tensor:
            """Mean softmax cross-entropy of the next item.

            Over all items, or, given ``n_negatives``, over the target and that many items
            drawn (shared by the batch) from ``proposal`` (item probabilities; uniform when
            ``None``), with every logit corrected by minus the log of its expected count
            (sampled softmax, Jean et al., 2015).
            """
            vectors = self.item_matrix()
            h = self(inputs, vectors)
            scored = targets >= 0
            h, y = h[scored], targets[scored]
            items = vectors[1:]
            pos = (h * items[y]).sum(-1)
            if n_negatives is None:
                return _MeanLogSumExp.apply(h, items, self.bf16) - pos.mean()
            if proposal is None:
                negatives = torch.randint(0, items.shape[0], (n_negatives,))
                neg = h @ items[negatives].T
            else:
                negatives = torch.multinomial(proposal, n_negatives, replacement=True)
                log_count = torch.log(proposal * n_negatives)
                pos = pos - log_count[y]
                neg = h @ items[negatives].T - log_count[negatives]
            neg = neg.masked_fill(negatives[None, :] == y[:, None], -math.inf)
            logits = torch.cat([pos[:, None], neg], 1)
            return F.cross_entropy(logits, torch.zeros(len(y), dtype=torch.long))

    class _MeanLogSumExp(torch.autograd.Function):
        """``logsumexp(h @ items.T, dim=1).mean()``, a few rows at a time, gradients included.

        Full cross-entropy over a catalogue is memory-bound on CPU. This never holds all the
        logits: each chunk stays in cache, and since the loss is a mean its gradient (softmax
        over the rows) is known in the forward pass and accumulated there, so each logit is
        computed and exponentiated once. Measured over twice as fast as ``F.cross_entropy`` on
        the full logit matrix, equal to 1e-6.
        """

        chunk = 256

        @staticmethod
        def forward(ctx: Any, h: torch.Tensor, items: torch.Tensor, bf16: bool) -> torch.Tensor:
            n = h.shape[0]
            total = torch.zeros((), dtype=h.dtype)
            grad_h = torch.empty_like(h)
            grad_items = torch.zeros_like(items)
            low = torch.bfloat16 if bf16 else h.dtype
            h_low, items_low = h.to(low), items.to(low)
            for s in range(0, n, _MeanLogSumExp.chunk):
                rows = slice(s, s + _MeanLogSumExp.chunk)
                # Products in ``low`` precision; the softmax itself in float32, where CPU
                # elementwise kernels are faster than in bf16.
                p = (h_low[rows] @ items_low.T).to(h.dtype)
                top = p.amax(1, keepdim=True)
                p.sub_(top).exp_()
                norm = p.sum(1, keepdim=True)
                total += (top + norm.log()).sum()
                p.div_(norm * n)
                if bf16:
                    p_low = p.to(low)
                    grad_h[rows] = p_low @ items_low
                    grad_items += p_low.T @ h_low[rows]
                else:
                    torch.mm(p, items, out=grad_h[rows])
                    grad_items.addmm_(p.T, h[rows])
            ctx.save_for_backward(grad_h, grad_items)
            return total / n

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
            grad_h, grad_items = ctx.saved_tensors
            return grad_h * grad, grad_items * grad, None

    return _TorchParts(_Network, _MeanLogSumExp)
