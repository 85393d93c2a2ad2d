"""Train / validation / test splits that keep held-out interactions out of training.

Four protocols share one vocabulary. *Target* events are the ones a split may hold
out: by default every event that names an item (searches carry none), or only the
types given in ``target_types`` (say, ratings). Every other event is *context*: it
goes to train when it comes before its user's first held-out event, and is otherwise
dropped and counted in :attr:`Split.dropped`, because a tag or review written after
a held-out interaction can give it away.

"Before" means the stable per-user time order of :meth:`Dataset.sorted_events`:
by timestamp, ties kept in arrival order (the row order of ``Dataset.events``).
Events without a timestamp sort before every timestamped event of the same user,
and among themselves keep arrival order.

Only :func:`temporal_cut` also keeps out leakage *across* users: in the per-user
protocols another user's training events may be later than this user's test event,
which lets a model learn from the future (Ji et al., 2023).

References
----------
Zaiqiao Meng, Richard McCreadie, Craig Macdonald, Iadh Ounis. 2020. Exploring Data
Splitting Strategies for the Evaluation of Recommendation Models. RecSys '20.

Yitong Ji, Aixin Sun, Jie Zhang, Chenliang Li. 2023. A Critical Study on Data Leakage
in Recommender System Offline Evaluation. ACM TOIS 41(3):75.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from interestlens.data.dataset import Dataset
from interestlens.data.schema import EVENT_TYPES

__all__ = ["Split", "kfold", "leave_last_out", "random_holdout", "temporal_cut"]

_TRAIN, _VALIDATION, _TEST, _DROPPED = 0, 1, 2, -1

TargetTypes = str | Iterable[str] | None
RandomState = int | np.random.Generator | None


@dataclass(frozen=True)
class Split:
    """One split of a dataset into train, validation and test events.

    The three parts are disjoint, and together with the ``dropped`` events they are
    exactly the events of the dataset. Each part keeps the dataset's items, users and
    arrival order.

    Attributes
    ----------
    train, test
        The events to learn from and the held-out events to score on.
    validation
        Held-out events for tuning, or ``None`` when the protocol was asked for none.
    name
        The protocol: ``"leave_last_out"``, ``"random_holdout"``, ``"temporal_cut"``,
        or ``"kfold 2/5"`` for the second of five folds.
    dropped
        Events in no part: context events positioned after their user's first
        held-out event (or, for a temporal cut, at or after the cut).
    """

    train: Dataset
    validation: Dataset | None
    test: Dataset
    name: str
    dropped: int

    def for_refit(self) -> Split:
        """The split to refit on once settings are chosen: validation joined to train.

        Validation events come after each user's training events, so appending them
        keeps every user's order (ties broken by arrival, as everywhere). The test part
        is unchanged.

        Examples
        --------
        >>> from interestlens.data import Dataset, Event
        >>> ds = Dataset.from_records([Event("u", f"i{j}", "click") for j in range(5)])
        >>> split = leave_last_out(ds)
        >>> final = split.for_refit()
        >>> len(final.train.events), final.validation, len(final.test.events)
        (4, None, 1)
        """
        if self.validation is None:
            return self
        ds = self.train
        merged = pd.concat([ds.events, self.validation.events], ignore_index=True)
        return replace(
            self, train=Dataset(merged, ds.items, ds.users, name=ds.name), validation=None
        )

    def summary(self) -> dict[str, Any]:
        """Events, users, items and time span of each part, and the dropped count.

        ``test_users_not_in_train`` counts cold-start users: test users with no
        training event (common under a temporal cut, impossible under leave-last-out).
        """

        def part(ds: Dataset) -> dict[str, Any]:
            ev = ds.events
            ts = ev["timestamp"].dropna()
            return {
                "events": len(ev),
                "users": int(ev["user_id"].nunique()),
                "items": int(ev["item_id"].nunique()),
                "first_event": ts.min().isoformat() if len(ts) else None,
                "last_event": ts.max().isoformat() if len(ts) else None,
            }

        test_users = pd.Index(self.test.events["user_id"].unique())
        return {
            "protocol": self.name,
            "train": part(self.train),
            "validation": None if self.validation is None else part(self.validation),
            "test": part(self.test),
            "dropped": self.dropped,
            "test_users_not_in_train": int(
                (~test_users.isin(self.train.events["user_id"].unique())).sum()
            ),
        }


def leave_last_out(
    ds: Dataset, *, validation: bool = True, target_types: TargetTypes = None
) -> Split:
    """Hold out each user's last target event for test and the one before for validation.

    The protocol of SASRec and most sequential-recommendation papers, and of the
    accuracy anchors of this project. Users with two target events give one to test
    and none to validation; users with one keep it in train.

    Parameters
    ----------
    ds
        The dataset to split.
    validation
        Also hold out each user's second-to-last target event (users with three or
        more target events) as validation.
    target_types
        Event types that may be held out (one name or several); ``None`` means every
        event with an item.

    Returns
    -------
    Split
        Named ``"leave_last_out"``. Deterministic: it depends only on the events and
        their order.

    Notes
    -----
    Timestamp ties keep arrival order, so among events at the same time the one that
    arrived last is held out. Other users' training events may be later than a user's
    test event (see the module notes).

    Examples
    --------
    >>> from datetime import datetime, timedelta
    >>> from interestlens.data.dataset import Dataset
    >>> from interestlens.data.schema import Event
    >>> t0 = datetime(2024, 1, 1)
    >>> ds = Dataset.from_records(
    ...     [Event("ann", f"i{k}", "rating", 4, t0 + timedelta(days=k)) for k in range(4)]
    ...     + [Event("ann", "i3", "tag", timestamp=t0 + timedelta(days=5), text="great")]
    ...     + [Event("bob", "i0", "rating", 3, t0)]
    ... )
    >>> s = leave_last_out(ds, target_types="rating")
    >>> s.train.events["item_id"].tolist(), s.validation.events["item_id"].tolist()
    (['i0', 'i1', 'i0'], ['i2'])
    >>> s.test.events["item_id"].tolist(), s.dropped
    (['i3'], 1)
    """
    target = _targets(ds, target_types)
    users = ds.user_index(ds.events["user_id"])
    rows, first = _time_order(ds, users)
    tr = rows[target[rows]]
    rank, size, _ = _runs(users[tr])
    from_end = size - 1 - rank
    part = np.full(len(ds.events), _TRAIN)
    part[tr[(from_end == 0) & (size >= 2)]] = _TEST
    if validation:
        part[tr[(from_end == 1) & (size >= 3)]] = _VALIDATION
    _drop_late_context(part, target, rows, first)
    return _assemble(ds, part, "leave_last_out", validation=validation)


def random_holdout(
    ds: Dataset,
    *,
    test_ratio: float = 0.2,
    validation_ratio: float = 0.0,
    random_state: RandomState = 0,
    target_types: TargetTypes = None,
) -> Split:
    """Hold out a random share of each user's target events.

    A user with ``n >= 2`` target events gives ``round(test_ratio * n)`` of them to
    test, at least one and never all; a share ``validation_ratio`` of the remaining
    ``r`` goes to validation (at least one when ``r >= 2``, never all). Users with one
    target event keep it in train. Halves round up.

    Parameters
    ----------
    ds
        The dataset to split.
    test_ratio
        Share of each user's target events held out for test, in ``(0, 1)``.
    validation_ratio
        Share of the events left after the test draw held out for validation, in
        ``[0, 1)``; ``0`` gives no validation part.
    random_state
        Seed or generator: the same seed on the same dataset (same events, same
        order) gives the same split.
    target_types
        Event types that may be held out; ``None`` means every event with an item.

    Returns
    -------
    Split
        Named ``"random_holdout"``.

    Notes
    -----
    Held-out events are drawn without regard to time, so a user's training events
    may come after their test events; context events after the first held-out one
    are still dropped. Use :func:`leave_last_out` or :func:`temporal_cut` to measure
    prediction of the future.

    Examples
    --------
    >>> from datetime import datetime
    >>> from interestlens.data.dataset import Dataset
    >>> from interestlens.data.schema import Event
    >>> ds = Dataset.from_records(
    ...     [Event("ann", f"i{k}", "click", timestamp=datetime(2024, 1, k + 1)) for k in range(10)]
    ... )
    >>> s = random_holdout(ds, test_ratio=0.3, validation_ratio=0.5, random_state=7)
    >>> len(s.train.events), len(s.validation.events), len(s.test.events)
    (3, 4, 3)
    >>> s.test.events.equals(random_holdout(ds, test_ratio=0.3, random_state=7).test.events)
    True
    """
    if not 0 < test_ratio < 1:
        raise ValueError(f"test_ratio must be in (0, 1), got {test_ratio}")
    if not 0 <= validation_ratio < 1:
        raise ValueError(f"validation_ratio must be in [0, 1), got {validation_ratio}")
    rng = np.random.default_rng(random_state)
    target = _targets(ds, target_types)
    users = ds.user_index(ds.events["user_id"])
    rank, size, tr = _shuffled_targets(users, target, rng)
    n_test = np.where(size >= 2, np.clip(_round(test_ratio * size), 1, size - 1), 0)
    rest = size - n_test
    n_val = np.where(
        (validation_ratio > 0) & (rest >= 2),
        np.clip(_round(validation_ratio * rest), 1, rest - 1),
        0,
    )
    part = np.full(len(ds.events), _TRAIN)
    part[tr[rank < n_test]] = _TEST
    part[tr[(rank >= n_test) & (rank < n_test + n_val)]] = _VALIDATION
    rows, first = _time_order(ds, users)
    _drop_late_context(part, target, rows, first)
    return _assemble(ds, part, "random_holdout", validation=validation_ratio > 0)


def temporal_cut(
    ds: Dataset,
    *,
    at: pd.Timestamp | datetime | str | None = None,
    quantile: float = 0.8,
    validation_at: pd.Timestamp | datetime | str | None = None,
    validation_quantile: float | None = None,
    target_types: TargetTypes = None,
) -> Split:
    """Split the whole dataset at one moment: before it train, at or after it test.

    The only protocol here without leakage across users: every training event is
    earlier than every held-out event. A validation cut, when given, splits the
    training period again: target events between the two cuts go to validation.

    Parameters
    ----------
    ds
        The dataset to split; every event needs a timestamp.
    at
        The cut (a timezone-less time is read as UTC). When ``None``, the cut is the
        timestamp at ``quantile`` of the target events' times.
    quantile
        Share of target events (by time) before the cut, in ``(0, 1)``; the cut is an
        observed timestamp, so ties at the cut all go to test. Ignored when ``at``
        is given.
    validation_at, validation_quantile
        The validation cut, as a time or as a quantile of all target events' times
        (so below ``quantile``). Neither gives no validation part.
    target_types
        Event types that may be held out; ``None`` means every event with an item.

    Returns
    -------
    Split
        Named ``"temporal_cut"``. Context events at or after the earlier cut are
        dropped, so train ends before it.

    Raises
    ------
    ValueError
        When an event has no timestamp, when a quantile is needed but there are no
        target events, or when the validation cut is after the test cut.

    Notes
    -----
    Test users need not appear in train (cold start), and test items need not either;
    :meth:`Split.summary` counts the former. A cut outside the data's time span gives
    an empty train or test part.

    Examples
    --------
    >>> from datetime import datetime
    >>> from interestlens.data.dataset import Dataset
    >>> from interestlens.data.schema import Event
    >>> ds = Dataset.from_records(
    ...     [Event(u, f"i{k}", "click", timestamp=datetime(2024, 1, k + 1))
    ...      for k in range(5) for u in ("ann", "bob")]
    ... )
    >>> s = temporal_cut(ds, quantile=0.6, validation_quantile=0.4)
    >>> len(s.train.events), len(s.validation.events), len(s.test.events)
    (4, 2, 4)
    >>> str(s.test.events["timestamp"].min())
    '2024-01-04 00:00:00+00:00'
    """
    ev = ds.events
    missing = int(ev["timestamp"].isna().sum())
    if missing:
        raise ValueError(
            f"temporal_cut needs timestamps, and {missing} of {len(ev)} events have none; "
            "leave_last_out and random_holdout work on arrival order instead"
        )
    target = _targets(ds, target_types)
    t = ev["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    cut = _cut(t[target], at, quantile, "quantile")
    with_validation = validation_at is not None or validation_quantile is not None
    train_end = cut
    part = np.full(len(ev), _DROPPED)
    if with_validation:
        train_end = _cut(t[target], validation_at, validation_quantile, "validation_quantile")
        if train_end > cut:
            raise ValueError(
                f"the validation cut ({pd.Timestamp(train_end, tz='UTC')}) is after the "
                f"test cut ({pd.Timestamp(cut, tz='UTC')})"
            )
        part[target & (t >= train_end) & (t < cut)] = _VALIDATION
    part[t < train_end] = _TRAIN
    part[target & (t >= cut)] = _TEST
    return _assemble(ds, part, "temporal_cut", validation=with_validation)


def kfold(
    ds: Dataset,
    *,
    k: int = 5,
    random_state: RandomState = 0,
    target_types: TargetTypes = None,
) -> Iterator[Split]:
    """K splits in which every target event is held out exactly once.

    Each user's target events are shuffled and dealt round-robin into the ``k`` folds,
    starting at a random fold per user, so a user's folds differ in size by at most
    one and the folds are balanced overall. Split ``i`` tests fold ``i`` and trains on
    the rest.

    Parameters
    ----------
    ds
        The dataset to split.
    k
        Number of folds, at least 2.
    random_state
        Seed or generator; the folds are drawn once, when :func:`kfold` is called.
    target_types
        Event types that may be held out; ``None`` means every event with an item.

    Yields
    ------
    Split
        Named ``"kfold i/k"`` (``i`` from 1), with no validation part.

    Notes
    -----
    Unlike the other protocols, users with a single target event are tested too
    (in one fold, with nothing of theirs to train on). Users with fewer than ``k``
    target events have folds where none of theirs is held out. Held-out events are
    drawn without regard to time, as in :func:`random_holdout`.

    Examples
    --------
    >>> from datetime import datetime
    >>> from interestlens.data.dataset import Dataset
    >>> from interestlens.data.schema import Event
    >>> ds = Dataset.from_records(
    ...     [Event("ann", f"i{k}", "click", timestamp=datetime(2024, 1, k + 1)) for k in range(6)]
    ... )
    >>> folds = list(kfold(ds, k=3))
    >>> [f.name for f in folds]
    ['kfold 1/3', 'kfold 2/3', 'kfold 3/3']
    >>> [len(f.test.events) for f in folds], [len(f.train.events) for f in folds]
    ([2, 2, 2], [4, 4, 4])
    """
    if not isinstance(k, int | np.integer) or k < 2:
        raise ValueError(f"k must be an integer of at least 2, got {k!r}")
    rng = np.random.default_rng(random_state)
    target = _targets(ds, target_types)
    users = ds.user_index(ds.events["user_id"])
    rank, _, tr = _shuffled_targets(users, target, rng)
    fold = (rank + rng.integers(k, size=ds.n_users)[users[tr]]) % k
    rows, first = _time_order(ds, users)

    def split(i: int) -> Split:
        part = np.full(len(ds.events), _TRAIN)
        part[tr[fold == i]] = _TEST
        _drop_late_context(part, target, rows, first)
        return _assemble(ds, part, f"kfold {i + 1}/{k}", validation=False)

    return (split(i) for i in range(k))


# ----- shared machinery ------------------------------------------------------------


def _targets(ds: Dataset, target_types: TargetTypes) -> np.ndarray:
    """Mask of the events that may be held out."""
    ev = ds.events
    has_item = ev["item_id"].notna().to_numpy()
    if target_types is None:
        return has_item
    types = {target_types} if isinstance(target_types, str) else set(target_types)
    if not types:
        raise ValueError("target_types is empty: give event types, or None for every item event")
    unknown = types - EVENT_TYPES
    if unknown:
        raise ValueError(
            f"unknown event types {sorted(unknown)} in target_types; "
            f"use some of {sorted(EVENT_TYPES)}"
        )
    return has_item & ev["type"].isin(types).to_numpy()


def _runs(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank within, size of, and start position of each element's run of equal codes."""
    m = len(codes)
    new = np.ones(m, dtype=bool)
    new[1:] = codes[1:] != codes[:-1]
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, m))
    run = np.cumsum(new) - 1
    first = starts[run]
    return np.arange(m) - first, sizes[run], first


def _time_order(ds: Dataset, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row positions in the stable per-user time order, and where each one's user starts."""
    rows = ds.sorted_events().index.to_numpy()
    _, _, first = _runs(users[rows])
    return rows, first


def _shuffled_targets(
    users: np.ndarray, target: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Target rows grouped by user in random order: rank within the user, user's count, row."""
    tr = np.flatnonzero(target)
    order = np.lexsort((rng.random(len(tr)), users[tr]))
    rank, size, _ = _runs(users[tr][order])
    return rank, size, tr[order]


def _drop_late_context(
    part: np.ndarray, target: np.ndarray, rows: np.ndarray, first: np.ndarray
) -> None:
    """Mark context events at or after their user's first held-out event as dropped."""
    held = (target & (part != _TRAIN))[rows]
    seen = np.cumsum(held)
    late = seen - (seen - held)[first] > 0
    part[rows[late & ~target[rows]]] = _DROPPED


def _round(x: np.ndarray) -> np.ndarray:
    """Round halves up, to integers."""
    return np.floor(x + 0.5).astype(np.int64)


def _cut(
    times: np.ndarray, at: pd.Timestamp | datetime | str | None, quantile: float | None, what: str
) -> int:
    """Place a cut, in nanoseconds since the epoch (UTC), at a time or a quantile of ``times``."""
    if at is not None:
        ts = pd.Timestamp(at)
        return int((ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).value)
    if quantile is None or not 0 < quantile < 1:
        raise ValueError(f"{what} must be in (0, 1), got {quantile}")
    if len(times) == 0:
        raise ValueError("no target events to place a quantile cut among")
    ordered = np.sort(times)
    return int(ordered[min(int(np.floor(quantile * len(ordered))), len(ordered) - 1)])


def _assemble(ds: Dataset, part: np.ndarray, name: str, *, validation: bool) -> Split:
    def sub(code: int, label: str) -> Dataset:
        return ds.subset(part == code, name=f"{ds.name}/{label}" if ds.name else label)

    return Split(
        train=sub(_TRAIN, "train"),
        validation=sub(_VALIDATION, "validation") if validation else None,
        test=sub(_TEST, "test"),
        name=name,
        dropped=int((part == _DROPPED).sum()),
    )
