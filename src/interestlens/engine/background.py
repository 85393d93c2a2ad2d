"""A refit in a process of its own: fit the next version beside the servers, publish it whole.

Servers answer from the version ``CURRENT`` names in ``data_dir/engine`` plus every event
stored since. :func:`refit_published` (what ``interestlens refit`` runs, and what a
server starts in a separate process) opens that version, fits again on its events and
every event stored since, with bounded threads and a lower CPU priority so serving keeps
its share of the machine, and publishes the result as a new version. Each server swaps
to it between requests (:meth:`Engine.reload`). One refit runs at a time per data
directory (:func:`refit_lock`).

Users erased while the refit ran are erased from what it publishes: those whose
events it took from the store and which the store no longer holds, and those the
version it started from held and the newest published version (rewritten by the
erasure) does not.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from interestlens.engine.artefact import read_artefact

log = logging.getLogger(__name__)

#: The lock file a running refit holds, beside the versions.
LOCK_NAME = "refit.lock"


@contextlib.contextmanager
def refit_lock(data_dir: str | Path) -> Iterator[bool]:
    """Hold ``data_dir``'s refit lock for the block if no other process holds it; yields whether it does.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with refit_lock(d) as mine:
    ...     mine, refit_running(d)
    (True, True)
    >>> refit_running(d)
    False
    """
    root = Path(data_dir) / "engine"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_NAME, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def refit_running(data_dir: str | Path) -> bool:
    """Whether a process holds ``data_dir``'s refit lock now."""
    if not (Path(data_dir) / "engine" / LOCK_NAME).exists():
        return False
    with refit_lock(data_dir) as mine:
        return not mine


def refit_published(
    data_dir: str | Path, *, keep: int = 3, threads: int | None = None, nice: int = 10
) -> dict[str, Any]:
    """Fit the next version from the newest published one and every event stored since; publish it.

    Parameters
    ----------
    data_dir
        The data directory servers answer from (it must hold a saved version).
    keep
        Versions to keep after publishing, the new one included (servers still mapping
        an older one keep reading it: a removed file lives on while it is mapped).
    threads
        Threads for the fit (default: the saved configuration's, else
        ``$INTERESTLENS_THREADS``, else 1).
    nice
        How much to lower this process's CPU priority first (0: not at all), so that
        servers on the same machine keep answering at their pace.

    Returns
    -------
    dict
        ``started`` (``False`` when another refit holds the lock: nothing was done),
        ``version`` and ``generation`` published, ``seconds``, ``events`` fitted on and
        ``erased`` (users erased during the fit and left out).
    """
    from interestlens.engine.facade import Engine

    data_dir = Path(data_dir)
    with refit_lock(data_dir) as mine:
        if not mine:
            return {"started": False}
        if nice:
            os.nice(nice)
        start = time.perf_counter()
        engine = Engine.open(data_dir)
        if threads is not None:
            from dataclasses import replace

            engine.config = replace(engine.config, threads=threads)
        started_from = engine.version
        store = engine.slate_store
        ledger_users = _ledger_users(engine)
        snapshot_users = set(engine.dataset.events["user_id"].astype(str).unique())
        engine.refit()
        erased = {u for u in ledger_users if not store.has_user(u)}
        if engine.published() != started_from:  # an erasure rewrote the version meanwhile
            erased |= snapshot_users - _published_users(data_dir)
        with engine._write:
            for user in sorted(erased):
                engine._forget_here(user, {})
        folder = engine.save(keep=keep)
        info = engine.info()
        doc = {
            "started": True,
            "version": folder.name,
            "generation": info["generation"],
            "seconds": time.perf_counter() - start,
            "events": info["n_events"],
            "erased": len(erased),
        }
        log.info(
            "refit published %s (generation %d) in %.1f s",
            folder.name,
            doc["generation"],
            doc["seconds"],
        )
        return doc


def _ledger_users(engine: Any) -> set[str]:
    frame = engine._view().ledger.events()  # the engine's own package: private access is ours
    return set() if frame is None else set(frame["user_id"].astype(str).unique())


def _published_users(data_dir: Path) -> set[str]:
    doc, _ = read_artefact(data_dir / "engine")
    return set(doc["snapshot"].dataset.events["user_id"].astype(str).unique())
