"""`Catalogue`: the items a live engine knows, the snapshot's and those added since.

A snapshot's items (ids, composed text, vectors, titles) are fixed by its fit. An item
added online is embedded once when it arrives, tagged with the interests its text
speaks to, and kept here until the next refit folds it into the snapshot. A removed
item is no longer recommended or similar to anything (its past events stay in users'
histories). Each :meth:`Catalogue.add` and :meth:`Catalogue.remove` returns a new
catalogue (copy-on-write), so a reader holding one never sees it change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from interestlens.engine.snapshot import Snapshot


@dataclass(frozen=True)
class AddedItem:
    """An item added since the snapshot: its row, text vector and interests ``[(fine id, score)]``."""

    row: pd.DataFrame
    vector: np.ndarray
    interests: tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class Catalogue:
    """The snapshot's items plus those added since (see the module docstring)."""

    snapshot: Snapshot
    added: dict[str, AddedItem] = field(default_factory=dict)
    removed: frozenset[str] = frozenset()

    def add(self, item_id: str, item: AddedItem) -> Catalogue:
        """A catalogue with ``item`` added (or replaced, or brought back after a removal)."""
        return Catalogue(self.snapshot, {**self.added, item_id: item}, self.removed - {item_id})

    def remove(self, item_id: str) -> Catalogue:
        """A catalogue without ``item_id``: not recommended, not similar to anything."""
        added = {k: v for k, v in self.added.items() if k != item_id}
        return Catalogue(self.snapshot, added, self.removed | {item_id})

    def __contains__(self, item_id: object) -> bool:
        if item_id in self.removed:
            return False
        return item_id in self.added or self.snapshot.item_ids.get_indexer([item_id])[0] >= 0

    def vector(self, item_id: str) -> np.ndarray:
        """The item's text vector (``KeyError`` for an unknown or removed item)."""
        if item_id in self.removed:
            raise KeyError(f"item {item_id!r} was removed")
        if item_id in self.added:
            return self.added[item_id].vector
        pos = self.snapshot.item_ids.get_indexer([item_id])[0]
        if pos < 0:
            raise KeyError(f"unknown item {item_id!r}")
        return self.snapshot.item_vectors[pos]

    def title(self, item_id: str) -> str:
        """The item's title (its id when it has none)."""
        if item_id in self.added:
            return str(self.added[item_id].row["title"].iloc[0]) or item_id
        return self.snapshot.titles.get(item_id, item_id)

    def interests(self, item_id: str) -> list[tuple[int, float]]:
        """The fine interests an item belongs to, heaviest first (an added item's by its text)."""
        if item_id in self.added:
            return list(self.added[item_id].interests)
        return self.snapshot.taxonomy.item_interests(item_id)

    def nearest(
        self, vector: np.ndarray, k: int, exclude: str | None = None
    ) -> list[tuple[str, float]]:
        """The ``k`` items whose text vectors are closest to ``vector``, with their cosine similarity."""
        snap = self.snapshot
        ids = snap.item_ids
        sims = snap.item_vectors @ vector
        # removed items, and fitted ones an added version replaces, are not candidates
        hidden = [*self.removed, *self.added, *([exclude] if exclude is not None else [])]
        if hidden:
            sims = np.where(ids.isin(hidden), -np.inf, sims)
        if self.added:
            ids = ids.append(pd.Index(list(self.added), dtype=object))
            extra = np.vstack([a.vector for a in self.added.values()]) @ vector
            if exclude in self.added:
                extra[list(self.added).index(exclude)] = -np.inf
            sims = np.concatenate([sims, extra])
        top = np.argsort(-sims)[:k]
        return [(str(ids[j]), float(sims[j])) for j in top if np.isfinite(sims[j])]

    def items_frame(self) -> pd.DataFrame:
        """Every item as an items frame: the snapshot's, then those added (replacing theirs); not the removed."""
        items = self.snapshot.dataset.items
        if self.removed:
            items = items[~items["item_id"].isin(list(self.removed))]
        if not self.added:
            return items
        added = pd.concat([a.row for a in self.added.values()], ignore_index=True)
        kept = items[~items["item_id"].isin(added["item_id"])]
        return pd.concat([kept, added], ignore_index=True)
