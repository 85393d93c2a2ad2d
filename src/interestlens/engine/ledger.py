"""`Ledger`: what arrived since a snapshot, per user, copy-on-write.

Each user's entry (every event of theirs, and their profile state with the new ones
folded in) is an immutable object that an ingest replaces whole, so a reader holding
an entry never sees it change. The batches keep arrival order and the store's watermark
after each, so a refit knows which stored events it holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from interestlens.engine.snapshot import Snapshot
from interestlens.interests.profile import UserState


@dataclass(frozen=True)
class UserEntry:
    """One user's state since the snapshot: all their events (the snapshot's, then the new) and profile."""

    events: pd.DataFrame
    state: UserState


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
        """Fold a batch of new events (any users) into their entries."""
        if len(events) == 0:
            return
        snap = self.snapshot
        self._batches.append(Batch(int(watermark), events))
        users = events["user_id"].astype(str)
        for user, mine in events.groupby(users, sort=False):
            user = str(user)
            old = self._users.get(user)
            if old is None:
                before = snap.user_events(user)
                state = snap.profiler.user_state(user)
            else:
                before, state = old.events, old.state
            self._users[user] = UserEntry(
                pd.concat([before, mine], ignore_index=True) if len(before) else mine,
                snap.profiler.fold(mine, state),
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

    @property
    def n_users(self) -> int:
        """Users with an entry."""
        return len(self._users)

    @property
    def n_events(self) -> int:
        """Events taken since the snapshot."""
        return sum(len(b.events) for b in self._batches)
