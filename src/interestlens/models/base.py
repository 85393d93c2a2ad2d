"""The one base class every recommender follows.

Models work on ids: callers never see a matrix orientation (implicit's most reported
confusion). ``__init__`` stores hyperparameters only; :meth:`Recommender.fit` learns
from a :class:`~interestlens.data.Dataset` and returns the model; learned state ends in
``_``. A user the model has not seen gets cold-start scores (item popularity unless the
model knows better); an item it has not seen scores NaN and is never recommended.
"""

from __future__ import annotations

import abc
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from interestlens.data import Dataset
from interestlens.data.dataset import cell_values
from interestlens.data.schema import EVENT_COLUMNS

if TYPE_CHECKING:
    from interestlens.text import Encoder

_FORMAT = 1
#: Start of the id that replaces a forgotten user's in :attr:`Recommender.user_ids_`. Ingested
#: ids refuse control characters, so no real id can ever equal one of these.
FORGOTTEN = "\x00forgotten-"
#: Stored entries moved at once when a sparse matrix closes the gap of a forgotten user.
_MOVE_CHUNK = 1 << 20


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` highest scores per row, best first (NaN and -inf last)."""
    k = min(k, scores.shape[1])
    if k == 0:
        return np.zeros((scores.shape[0], 0), dtype=np.int64)
    s = np.where(np.isnan(scores), -np.inf, scores)
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(s, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def without_id(ids: pd.Index, row: int) -> pd.Index:
    r"""``ids`` with the id at ``row`` replaced by a tombstone (:data:`FORGOTTEN` and the row).

    Positions stay put, so every array aligned with ``ids`` stays aligned, and the old
    id is in none of the new index's data.

    Examples
    --------
    >>> without_id(pd.Index(["a", "b"]), 0).tolist()
    ['\x00forgotten-0', 'b']
    """
    new = ids.to_numpy(dtype=object, copy=True)
    new[row] = f"{FORGOTTEN}{row}"
    return pd.Index(new, dtype=ids.dtype, name=ids.name)


def erase_user_row(state: np.ndarray | sp.spmatrix | sp.sparray, row: int) -> None:
    """Erase user ``row`` of per-user ``state`` in place, keeping every other row's position.

    A dense array (users on the first axis) gets zeros in that row. A CSR or CSC matrix
    with users as rows loses the row's stored entries: the entries after them move up by
    chunks inside the same buffers and the freed tail is zeroed, so neither the values
    nor the item columns of the row stay reachable, and a user among 100k costs no copy
    of the matrix (a copy-on-write memory map is written in place).

    Examples
    --------
    >>> X = sp.csr_matrix(np.array([[1.0, 2.0], [3.0, 0.0], [0.0, 4.0]]))
    >>> erase_user_row(X, 1)
    >>> X.toarray().tolist(), X.nnz
    ([[1.0, 2.0], [0.0, 0.0], [0.0, 4.0]], 3)
    """
    if isinstance(state, np.ndarray):
        state[row] = 0
        return
    if not sp.issparse(state) or state.format not in ("csr", "csc"):
        raise TypeError(
            f"per-user state must be a numpy array or a CSR/CSC matrix, not {type(state).__name__}"
        )
    indptr = state.indptr
    if state.format == "csr":
        drop = np.arange(indptr[row], indptr[row + 1], dtype=np.int64)
    else:
        drop = np.flatnonzero(state.indices[: indptr[-1]] == row)
    if not len(drop):
        return
    nnz = int(indptr[-1])
    data, indices = state.data, state.indices
    write = int(drop[0])
    for start in range(write, nnz, _MOVE_CHUNK):
        stop = min(start + _MOVE_CHUNK, nnz)
        keep = np.ones(stop - start, dtype=bool)
        keep[drop[np.searchsorted(drop, start) : np.searchsorted(drop, stop)] - start] = False
        n = int(keep.sum())
        for a in (data, indices):
            a[write : write + n] = a[start:stop][keep]  # the fancy index copies one chunk first
        write += n
    data[write:nnz] = 0
    indices[write:nnz] = 0
    np.subtract(indptr, np.searchsorted(drop, indptr), out=indptr, casting="unsafe")
    state.data, state.indices = data[:write], indices[:write]


class History:
    """One user's events, as the models of a fold-in read them, each view computed once.

    :meth:`Recommender.score_history` wraps the events in one, and a
    :class:`~interestlens.models.Hybrid` hands the same one to each of its base models, so
    the interaction row and the time order are derived once per request, straight from
    the events, with no :class:`~interestlens.data.Dataset` built. Each view equals what
    the one-user dataset of these events gives. Views on a model's catalogue (item
    columns, the binary interaction row) are kept per catalogue index, so the base
    models of a hybrid, which share one, map the history's items once between them.

    Parameters
    ----------
    events
        Events in the layout of :attr:`Dataset.events` (at least ``item_id``, ``type``
        and ``timestamp``; other columns missing are read as empty), every row read as
        the same user's. Not copied when complete: leave it unchanged while the history
        is in use.

    Examples
    --------
    >>> from interestlens.data import Dataset, Event
    >>> ev = Dataset.from_records([Event("a", "x", "click"), Event("a", "y", "view")]).events
    >>> M, ids = History(ev).interactions()
    >>> M.toarray().tolist(), ids.tolist()
    ([[2.0, 1.0]], ['x', 'y'])
    """

    def __init__(self, events: pd.DataFrame) -> None:
        missing = [c for c in ("item_id", "type", "timestamp") if c not in events.columns]
        if missing:
            raise ValueError(f"events lack columns {missing}")
        absent = [c for c in EVENT_COLUMNS if c not in events.columns]
        self.events = events.assign(**dict.fromkeys(absent)) if absent else events
        self._views: dict[str, Any] = {}

    def interactions(self) -> tuple[sp.csr_matrix, np.ndarray]:
        """The user's ``(1, n)`` row of :meth:`Dataset.interactions` and its ``n`` item ids.

        Columns are the items in order of first appearance, as the one-user dataset's.
        """
        if "interactions" not in self._views:
            items = self.events["item_id"].to_numpy(dtype=object)
            has_item = pd.notna(items)
            codes, ids = pd.factorize(items[has_item])
            data = cell_values(self.events)[has_item]  # one value per row: no need to filter first
            keep = data != 0
            M = sp.coo_matrix(
                (data[keep], (np.zeros(int(keep.sum()), dtype=np.int64), codes[keep])),
                shape=(1, len(ids)),
            ).tocsr()
            M.sum_duplicates()
            self._views["interactions"] = (M, ids)
        return self._views["interactions"]

    def sorted_events(self) -> pd.DataFrame:
        """The events in time order, arrival order breaking ties (as :meth:`Dataset.sorted_events`)."""
        if "sorted" not in self._views:
            ev = self.events
            ts = ev["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
            # a history usually arrives in time order already: then there is nothing to copy
            in_order = bool(np.all(ts[1:] >= ts[:-1]))
            self._views["sorted"] = ev if in_order else ev.iloc[np.argsort(ts, kind="stable")]
        return self._views["sorted"]

    def sorted_columns(self, model: Recommender) -> np.ndarray:
        """Catalogue column in ``model`` of each of :meth:`sorted_events`' items (-1: none)."""
        return self._on_catalogue(
            "sorted columns",
            model,
            lambda: model._columns(self.sorted_events()["item_id"].to_numpy(dtype=object)),
        )

    def binary_row(self, model: Recommender) -> sp.csr_matrix:
        """The user's ``(1, n_items)`` binary row on ``model``'s catalogue (read-only: shared)."""

        def make() -> sp.csr_matrix:
            M, item_ids = self.interactions()
            # Recommender._cells then _catalogue_columns, in one sparse construction
            cols = model._columns(item_ids)[M.indices[M.data != 0]]
            cols = np.sort(cols[cols >= 0])  # distinct ids: distinct columns
            row = sp.csr_matrix(
                (np.ones(len(cols), dtype=np.float32), cols, np.array([0, len(cols)])),
                shape=(1, len(model.item_ids_)),
            )
            for part in (row.data, row.indices, row.indptr):
                part.flags.writeable = False
            return row

        return self._on_catalogue("binary row", model, make)

    def _on_catalogue(self, view: str, model: Recommender, make: Callable[[], Any]) -> Any:
        """View ``view`` on ``model``'s catalogue index, made once per index object."""
        index = model.item_ids_
        key = (view, id(index))
        held = self._views.get(key)
        if held is None or held[0] is not index:
            held = self._views[key] = (index, make())
        return held[1]


class Recommender(abc.ABC):
    """Base class of every recommender.

    Subclasses implement :meth:`_fit` (learn from the training matrix and dataset) and
    :meth:`_scores` (scores of all items for known users, by row); everything else —
    id handling, seen-item exclusion, cold start, top-k, forgetting a user, persistence —
    lives here.

    A subclass that keeps fitted state per user declares it in :attr:`_user_state`
    (attribute names, each a numpy array with users on the first axis or a CSR/CSC
    matrix with users as rows, in :attr:`user_ids_` order), and :meth:`forget_user`
    erases the user's row of each. State of another shape (inner models, dicts keyed by
    user id) is erased by extending :meth:`forget_user`: call
    ``super().forget_user(user_id)`` and erase the rest.

    Parameters
    ----------
    random_state
        Seed of every random step of the model.
    """

    #: Parameters holding runtime components (an encoder), not hyperparameters: they are
    #: not saved with the model and not part of :meth:`get_params`.
    _components: tuple[str, ...] = ()
    #: Whether :meth:`score_history` reads what the user wrote, so that a history without
    #: a known item is not simply cold.
    _reads_text = False
    #: Fitted attributes holding one row per user (see :func:`erase_user_row`), besides
    #: ``seen_`` and ``active_`` which every model has; absent ones are skipped.
    _user_state: ClassVar[tuple[str, ...]] = ()
    #: Attributes derived from fitted ones on first use, left out of pickles.
    _derived: ClassVar[tuple[str, ...]] = ("_lookups",)

    def __init__(self, *, random_state: int = 0) -> None:
        self.random_state = random_state

    # ----- to implement ---------------------------------------------------------
    @abc.abstractmethod
    def _fit(self, dataset: Dataset, X: sp.csr_matrix) -> None:
        """Learn from ``X`` (users x items, the dataset's ids) and the dataset itself."""

    @abc.abstractmethod
    def _scores(self, rows: np.ndarray) -> np.ndarray:
        """Scores of every item for the known users at ``rows``: ``(len(rows), n_items)``."""

    # ----- shared ---------------------------------------------------------------
    def interaction_matrix(self, dataset: Dataset) -> sp.csr_matrix:
        """Training matrix: :meth:`_cells` of the dataset's interactions (binary by default)."""
        return self._cells(
            dataset.interactions(user_ids=dataset.user_ids, item_ids=dataset.item_ids).matrix
        )

    def _cells(self, interactions: sp.csr_matrix) -> sp.csr_matrix:
        """The model's matrix from :meth:`Dataset.interactions`: 1 where the user engaged.

        Override to weight by value; :meth:`fit` and :meth:`score_history` both read
        their matrices through it.
        """
        return sp.csr_matrix((interactions != 0).astype(np.float32))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in self._derived:
            state.pop(name, None)
        return state

    def _positions(self, attr: str, ids: Sequence[Any] | np.ndarray | pd.Series) -> np.ndarray:
        """Position of each id in the fitted index ``attr`` (``"user_ids_"``, ``"item_ids_"``).

        -1 for ids it lacks and for missing values. Reads a dictionary built on first use
        per index (not saved, rebuilt when the index is replaced, as forgetting a user
        does), so a request's few ids cost no conversion of the whole index.
        """
        index = getattr(self, attr)
        lookups = self.__dict__.setdefault("_lookups", {})
        held, lookup = lookups.get(attr, (None, None))
        if held is not index:
            lookup = {key: pos for pos, key in enumerate(index.to_numpy(dtype=object))}
            lookups[attr] = (index, lookup)
        get = lookup.get  # type: ignore[union-attr]
        return np.fromiter((get(i, -1) for i in ids), dtype=np.int64, count=len(ids))

    def user_rows(self, user_ids: Sequence[str]) -> np.ndarray:
        """Row of each user in :attr:`user_ids_` (-1 for users it lacks, forgotten ones too).

        As ``user_ids_.get_indexer(user_ids)``, without building an index of the request's ids.
        """
        return self._positions("user_ids_", user_ids)

    def _columns(self, item_ids: Sequence[Any] | np.ndarray | pd.Series) -> np.ndarray:
        """Catalogue column of each item id (-1 for unknown ids and missing values)."""
        return self._positions("item_ids_", item_ids)

    def fit(self, dataset: Dataset) -> Recommender:
        """Learn from a dataset; returns the model."""
        self.user_ids_ = dataset.user_ids
        self.item_ids_ = dataset.item_ids
        X = self.interaction_matrix(dataset)
        self.seen_ = sp.csr_matrix(X != 0, dtype=np.bool_)
        self.active_ = self.user_ids_.isin(dataset.events["user_id"].unique())
        counts = np.asarray((X != 0).sum(axis=0)).ravel().astype(np.float64)
        self.popularity_ = counts / max(counts.max(), 1.0)
        self._fit(dataset, X)
        return self

    def _cold_scores(self, n: int) -> np.ndarray:
        """Scores for users the model has not seen; popularity unless overridden."""
        return np.tile(self.popularity_.astype(np.float32), (n, 1))

    def _check_fitted(self) -> None:
        if not hasattr(self, "item_ids_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(dataset) first")

    def score_all(self, user_ids: Sequence[str]) -> np.ndarray:
        """Scores of every catalogue item (columns in :attr:`item_ids_` order) for each user."""
        self._check_fitted()
        rows = self.user_rows([str(u) for u in user_ids])
        out = np.empty((len(rows), len(self.item_ids_)), dtype=np.float32)
        known = rows >= 0
        # a user of the users table without a single training event is a cold user too
        known &= self.active_[np.maximum(rows, 0)]
        if known.any():
            out[known] = self._scores(rows[known])
        if (~known).any():
            out[~known] = self._cold_scores(int((~known).sum()))
        return out

    def score_history(self, events: pd.DataFrame, *, exclude_seen: bool = False) -> np.ndarray:
        """Scores of every catalogue item for one user known only by ``events`` (fold-in).

        The model's learned item side is kept and the user side is computed from the
        events alone, as :meth:`fit` would have for a user with exactly this history: a
        user's events observed after the fit count at once, and a new user needs no
        refit. Every row of ``events`` is read as the same user's, whatever its
        ``user_id``.

        Parameters
        ----------
        events
            Events in the layout of :attr:`Dataset.events` (at least ``item_id``,
            ``type`` and ``timestamp``; ``value`` and ``text`` where the model reads
            them). Items the model was not fitted on have no learned parameters and
            add nothing; with no known item the result is the cold-start scores.
        exclude_seen
            Score every item an event names (whatever the event's type) ``-inf``, so
            that a ranking leaves out what the user already met; otherwise the
            history's own items are scored too.

        Returns
        -------
        numpy.ndarray
            ``(n_items,)`` float32 in :attr:`item_ids_` order.

        Examples
        --------
        >>> from interestlens.data import Dataset, Event
        >>> from interestlens.models import EASE
        >>> ds = Dataset.from_records([Event(u, i, "click") for u, i in
        ...     [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"), ("c", "z")]])
        >>> model = EASE(l2=1.0).fit(ds)
        >>> new = Dataset.from_records([Event("new", "x", "click")]).events
        >>> model.score_history(new).astype(float).round(3).tolist()   # items x, y, z
        [0.0, 0.667, 0.0]
        >>> model.score_history(new, exclude_seen=True).astype(float).round(3).tolist()
        [-inf, 0.667, 0.0]
        """
        self._check_fitted()
        history = History(events)
        scores = self._fold_in(history)
        if exclude_seen:
            cols = history.sorted_columns(self)
            scores[cols[cols >= 0]] = -np.inf
        return scores

    def _fold_in(self, history: History) -> np.ndarray:
        """:meth:`score_history` of the user of ``history``."""
        X = self._history_row(history)
        if X.nnz == 0 and not self._reads_text:
            return self._cold_scores(1)[0]
        return np.asarray(self._history_scores(history, X), dtype=np.float32)

    def _history_row(self, history: History) -> sp.csr_matrix:
        """The user's ``(1, n_items)`` row of :meth:`interaction_matrix` on the catalogue's columns.

        Read-only where the model keeps the binary cells: then it is the history's shared row.
        """
        if type(self)._cells is Recommender._cells:
            return history.binary_row(self)
        M, item_ids = history.interactions()
        return self._catalogue_columns(item_ids, self._cells(M))

    def _catalogue_columns(self, item_ids: np.ndarray, M: sp.csr_matrix) -> sp.csr_matrix:
        """One-row ``M`` (columns in ``item_ids`` order, no duplicates) on the catalogue's columns.

        Columns of items outside the catalogue are dropped; the others keep their values,
        in column order.
        """
        cols = self._columns(item_ids)[M.indices]
        known = np.flatnonzero(cols >= 0)
        order = known[np.argsort(cols[known], kind="stable")]
        return sp.csr_matrix(
            (M.data[order], cols[order], np.array([0, len(order)])),
            shape=(1, len(self.item_ids_)),
        )

    def _history_scores(self, history: History, X: sp.csr_matrix) -> np.ndarray:
        """Scores of every item for the user of ``history``.

        ``X`` is their ``(1, n_items)`` row of :meth:`interaction_matrix` on the fitted
        catalogue's columns.
        """
        raise TypeError(f"{type(self).__name__} cannot score a history it was not fitted on")

    def score(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """Scores of given items for given users: ``(len(user_ids), len(item_ids))``, NaN for unknown items."""
        all_scores = self.score_all(user_ids)
        cols = self._columns([str(i) for i in item_ids])
        out = np.full((len(user_ids), len(cols)), np.nan, dtype=np.float32)
        ok = cols >= 0
        out[:, ok] = all_scores[:, cols[ok]]
        return out

    def recommend_indices(
        self, user_ids: Sequence[str], k: int = 10, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item columns and their scores per user (the fast path for evaluation)."""
        scores = self.score_all(user_ids)
        if exclude_seen:
            rows = self.user_rows([str(u) for u in user_ids])
            for j, r in enumerate(rows):
                if r >= 0:
                    seen = self.seen_.indices[self.seen_.indptr[r] : self.seen_.indptr[r + 1]]
                    scores[j, seen] = -np.inf
        cols = top_k(scores, k)
        return cols, np.take_along_axis(scores, cols, axis=1)

    def recommend(
        self, user_ids: str | Sequence[str], k: int = 10, exclude_seen: bool = True
    ) -> pd.DataFrame:
        """Top-``k`` items per user.

        Returns
        -------
        pandas.DataFrame
            Columns ``user_id``, ``item_id``, ``score``, ``rank`` (1-based), users in the
            order given. Items already seen are left out when ``exclude_seen``.
        """
        users = [user_ids] if isinstance(user_ids, str) else [str(u) for u in user_ids]
        cols, scores = self.recommend_indices(users, k, exclude_seen)
        keep = np.isfinite(scores)
        n = cols.shape[1]
        return pd.DataFrame(
            {
                "user_id": np.repeat(np.asarray(users, dtype=object), n)[keep.ravel()],
                "item_id": self.item_ids_.to_numpy()[cols].ravel()[keep.ravel()],
                "score": scores.ravel()[keep.ravel()],
                "rank": np.tile(np.arange(1, n + 1), len(users))[keep.ravel()],
            }
        )

    def forget_user(self, user_id: str) -> bool:
        """Erase everything the fitted model holds about one user; returns whether it knew them.

        The user's rows of every per-user state (``seen_``, ``active_`` and the model's
        :attr:`_user_state`: user factors, interaction rows, neighbour rows, user
        vectors) are erased in place and their id in :attr:`user_ids_` is replaced by a
        tombstone no real id can equal, so row positions stay put and the raw id is
        nowhere in the model. From then on the user is a stranger: cold-start scores,
        recommendations as for a new user, no seen items excluded. Every other user's
        scores are unchanged, except in models whose scores for one user read other
        users' rows (:class:`~interestlens.models.UserKNN`: the forgotten user is no
        longer anyone's neighbour).

        Item-side statistics the user contributed to (popularity, item similarities,
        item factors, EASE weights, item text vectors) stay until the next :meth:`fit`:
        they describe items, and no user can be read back from them alone.

        Parameters
        ----------
        user_id
            The user to forget. Unknown ids, and users forgotten before, change nothing.

        Returns
        -------
        bool
            ``True`` when the model had a row for the user (even one without training
            events), ``False`` otherwise.

        Examples
        --------
        >>> from interestlens.data import Dataset, Event
        >>> from interestlens.models import ItemKNN
        >>> ds = Dataset.from_records([Event(u, i, "click") for u, i in
        ...     [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"), ("c", "z")]])
        >>> model = ItemKNN(k=5).fit(ds)
        >>> model.forget_user("a"), model.forget_user("a"), "a" in model.user_ids_
        (True, False, False)
        >>> bool((model.score_all(["a"]) == model.score_all(["never seen"])).all())
        True
        """
        self._check_fitted()
        row = int(self.user_ids_.get_indexer(pd.Index([str(user_id)], dtype=object))[0])
        if row < 0:
            return False
        self.user_ids_ = without_id(self.user_ids_, row)
        self.active_[row] = False
        for name in ("seen_", *self._user_state):
            state = getattr(self, name, None)
            if state is not None:
                erase_user_row(state, row)
        return True

    def attach_encoder(self, encoder: Encoder) -> None:
        """Give a loaded model the text encoder its saved form leaves out.

        A model that reads text (:class:`~interestlens.models.ContentLM` encodes what a
        user wrote at each fold-in) is saved without its encoder; loaded, it would build a
        default one of its own on first use: a second copy of the language model, loaded
        on a request, without the caller's embedding cache. Attach the encoder the rest of
        the application uses instead. Models without an encoder ignore it.
        """
        if "encoder" in self._components:
            self.encoder = encoder

    def warm(self) -> None:  # noqa: B027 (most models build nothing lazily)
        """Build now what a fitted model would build on its first fold-in.

        A server calls this at start, so that no user's request pays for it.
        """

    # ----- persistence ----------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the fitted model to a file (a pickle: load only models you saved)."""
        with open(path, "wb") as fh:
            pickle.dump({"format": _FORMAT, "model": self}, fh, protocol=5)

    @classmethod
    def load(cls, path: str | Path) -> Any:
        """Read a model written by :meth:`save`."""
        with open(path, "rb") as fh:
            doc = pickle.load(fh)
        if doc.get("format") != _FORMAT or not isinstance(doc.get("model"), Recommender):
            raise ValueError(f"{path} is not an interestlens model file")
        return doc["model"]

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters (the ``__init__`` arguments but runtime components)."""
        import inspect

        sig = inspect.signature(type(self).__init__)
        skip = {"self", *self._components}
        return {p: getattr(self, p) for p in sig.parameters if p not in skip and hasattr(self, p)}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
