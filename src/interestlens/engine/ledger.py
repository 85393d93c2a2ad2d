"""`Ledger`: what arrived since a snapshot, per user, copy-on-write.

Each user's entry (every event of theirs, and their profile state with the new ones
folded in) is an immutable object that an ingest replaces whole, so a reader holding
an entry never sees it change. The batches keep arrival order and the store's watermark
after each, so a refit knows which stored events it holds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from interestlens.engine.snapshot import Snapshot
from interestlens.interests.profile import UserState


@dataclass(frozen=True, eq=False)
class UserEntry:
    """One user's state since the snapshot: their profile state, and all their events.

    ``parts`` are where the user's events are, in order: ``(frame, rows)`` pairs (the
    snapshot's events, then each batch's; ``rows`` ``None`` for the whole frame).
    :attr:`events` gathers them on first reading only, so taking a batch of events of
    many users costs no copy per user.
    """

    state: UserState
    parts: tuple[tuple[pd.DataFrame, np.ndarray | None], ...]

    @functools.cached_property
    def events(self) -> pd.DataFrame:
        """Every event of the user: the snapshot's, then the new, in arrival order."""
        frames = [f if rows is None else f.take(rows) for f, rows in self.parts]
        kept = [f for f in frames if len(f)] or frames[:1]
        return kept[0] if len(kept) == 1 else pd.concat(kept, ignore_index=True)

    def then(self, state: UserState, batch: pd.DataFrame, rows: np.ndarray) -> UserEntry:
        """The entry after the user's ``rows`` of ``batch``, with its new state."""
        joined = self.__dict__.get("events")  # gathered already: start from that
        part = (batch, rows)
        return UserEntry(
            state, ((joined, None), part) if joined is not None else (*self.parts, part)
        )


@dataclass(frozen=True)
class Batch:
    """Events taken in one ingest; ``watermark`` is the store's after it."""

    watermark: int
    events: pd.DataFrame


class Ledger:
    """Per-user state since a snapshot (see the module docstring).

    Writers (ingest, forget) are serialised by the engine; readers take entries without
    a lock.
    """

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._users: dict[str, UserEntry] = {}
        self._batches: list[Batch] = []

    def entry(self, user_id: str) -> UserEntry | None:
        """The user's entry, or ``None`` when nothing of theirs arrived since the snapshot."""
        return self._users.get(user_id)

    def add(self, events: pd.DataFrame, watermark: int) -> None:
        """Fold a batch of new events (any users) into their entries, all users in one pass."""
        if len(events) == 0:
            return
        snap = self.snapshot
        self._batches.append(Batch(int(watermark), events))
        groups = events.groupby(events["user_id"].astype(str), sort=False).indices
        old = {user: self._users.get(user) for user in groups}
        states = snap.profiler.fold_many(
            events,
            {u: e.state if e is not None else snap.profiler.user_state(u) for u, e in old.items()},
        )
        for user, rows in groups.items():
            entry = old[user]
            self._users[user] = (
                # the snapshot's rows copied now: a forget replaces the snapshot's dataset
                UserEntry(states[user], ((snap.user_events(user), None), (events, rows)))
                if entry is None
                else entry.then(states[user], events, rows)
            )

    @property
    def watermark(self) -> int | None:
        """The store's watermark after the newest batch (``None`` when empty)."""
        return self._batches[-1].watermark if self._batches else None

    def events(self) -> pd.DataFrame | None:
        """Every event taken, in arrival order (``None`` when none)."""
        frames = [b.events for b in self._batches]
        return pd.concat(frames, ignore_index=True) if frames else None

    def forget_user(self, user_id: str) -> int:
        """Drop a user's entry and their events from every batch; returns events dropped."""
        user_id = str(user_id)
        self._users.pop(user_id, None)
        dropped = 0
        batches = []
        for b in self._batches:
            mine = (b.events["user_id"].astype(str) == user_id).to_numpy()
            dropped += int(mine.sum())
            batches.append(Batch(b.watermark, b.events[~mine]) if mine.any() else b)
        self._batches = batches
        return dropped

    def users(self) -> list[str]:
        """The users with an entry."""
        return list(self._users)

    @property
    def n_users(self) -> int:
        """Users with an entry."""
        return len(self._users)

    @property
    def n_events(self) -> int:
        """Events taken since the snapshot."""
        return sum(len(b.events) for b in self._batches)
