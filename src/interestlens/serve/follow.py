"""How a serving process keeps up: new versions published by a refit, and when to start one.

Each serving process (a worker) runs one :class:`Follower`, a daemon thread that every
``poll_seconds`` swaps in a version another process published (:meth:`Engine.reload`),
and starts a background refit when enough new events arrived or the model is old
enough. :class:`Refitter` starts a refit: in a separate process
(``python -m interestlens refit``, lower CPU priority, bounded threads) when the engine
was opened from a data directory, else in a thread of this process (an engine fitted
in memory has nothing on disk for another process to open).
"""

from __future__ import annotations

import gc
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from interestlens.engine import Engine
from interestlens.engine.background import refit_running

log = logging.getLogger(__name__)


def settle_heap() -> None:
    """Collect garbage once, then leave every object alive now out of later collections.

    A serving process holds the engine's millions of long-lived objects; each full
    collection walked them all: pauses of 185 and 230 ms in 600 requests measured, 20 and
    33 ms once frozen (:func:`gc.freeze`). Called once the engine is loaded and warm, and
    after each swap to a new version (the old one is collected first).
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class RefitStarted(BaseModel):
    """The answer to ``POST /v1/admin/refit``."""

    model_config = ConfigDict(extra="forbid")

    started: bool = Field(description="Whether this request started a refit (no: one is running).")
    running: bool = Field(description="Whether a refit is running now.")
    how: Literal["process", "thread"] = Field(
        description="Where it runs: a separate process (a saved engine) or a thread of this one."
    )
    model_version: int = Field(description="The generation answering now; the refit's is higher.")


class Refitter:
    """Starts refits of one engine, one at a time; see the module docstring.

    Parameters
    ----------
    engine
        The serving engine.
    threads
        Threads for the refit (``None``: the refit process resolves
        ``$INTERESTLENS_THREADS``, else 1).
    keep
        Versions the refit process keeps.
    on_done
        Called with the refit's seconds when a refit started here ends.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        threads: int | None = None,
        keep: int = 3,
        on_done: Any = None,
    ) -> None:
        self.engine = engine
        self.threads = threads
        self.keep = keep
        self.on_done = on_done
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._started_at = 0.0

    @property
    def log_path(self) -> Path:
        """Where the last refit process started here writes its progress and logs."""
        return Path(self.engine.config.data_dir) / "engine" / "refit.log"

    @property
    def how(self) -> Literal["process", "thread"]:
        """``"process"`` for an engine opened from a data directory, else ``"thread"``."""
        return "process" if self.engine.version is not None else "thread"

    def running(self) -> bool:
        """Whether a refit (started here or by any process of this data directory) is running."""
        self.reap()
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return True
            if self._process is not None:
                return True
        return self.how == "process" and refit_running(self.engine.config.data_dir)

    def start(self) -> bool:
        """Start a refit unless one is running; returns whether this call started one."""
        if self.running():
            return False
        with self._lock:
            self._started_at = time.perf_counter()
            if self.how == "thread":
                self._thread = threading.Thread(
                    target=self._refit_here, name="interestlens-refit", daemon=True
                )
                self._thread.start()
                return True
            cmd = [
                sys.executable,
                "-m",
                "interestlens",
                "refit",
                "--data-dir",
                str(self.engine.config.data_dir),
                "--keep",
                str(self.keep),
                "--json",
            ]
            if self.threads is not None:
                cmd += ["--threads", str(self.threads)]
            # its progress and logs go to a file: a pipe nobody reads until the end would
            # fill (64 KiB) and stop a long refit; stdout holds only its closing JSON line
            with open(self.log_path, "w") as log_file:
                self._process = subprocess.Popen(
                    cmd,
                    stdout=subprocess.PIPE,
                    stderr=log_file,
                    text=True,
                    start_new_session=True,  # a Ctrl-C of the server does not cut it short
                )
            log.info("refit started (pid %d)", self._process.pid)
            return True

    def _refit_here(self) -> None:
        try:
            self.engine.refit()
        except Exception:
            log.exception("refit failed")
            return
        self._done()

    def reap(self) -> None:
        """Collect a finished refit process: log its outcome, then count it."""
        with self._lock:
            proc = self._process
            if proc is None or proc.poll() is None:
                return
            self._process = None
        out, _ = proc.communicate()
        if proc.returncode != 0:
            tail = self.log_path.read_text(errors="replace").strip()[-2000:]
            log.error(
                "refit process failed (exit %d; %s): %s", proc.returncode, self.log_path, tail
            )
            return
        try:
            doc = json.loads(out)
        except ValueError:
            doc = {}
        log.info("refit process ended: %s", doc)
        if doc.get("started"):
            self._done()

    def _done(self) -> None:
        if self.on_done is not None:
            self.on_done(time.perf_counter() - self._started_at)


class Follower:
    """A daemon thread that keeps one serving engine current; see the module docstring.

    Parameters
    ----------
    engine, refitter
        The serving engine and what starts its refits.
    poll_seconds
        How often to look for a published version and at the refit triggers.
    refit_every
        Start a refit once this many events were stored after the answering snapshot
        (0: never on this count).
    refit_interval
        Start a refit once the answering snapshot is this many seconds old and any event
        arrived since (0: never on age).
    """

    def __init__(
        self,
        engine: Engine,
        refitter: Refitter,
        *,
        poll_seconds: float = 1.0,
        refit_every: int = 0,
        refit_interval: float = 0.0,
    ) -> None:
        self.engine = engine
        self.refitter = refitter
        self.poll_seconds = poll_seconds
        self.refit_every = refit_every
        self.refit_interval = refit_interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="interestlens-follow", daemon=True)

    def start(self) -> Follower:
        """Start following; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following (waits for the current round)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.step()
            except Exception:  # a bad round is logged; the next one tries again
                log.exception("following the data directory failed")

    def step(self) -> None:
        """One round: reload a published version, collect a finished refit, start one if due."""
        engine = self.engine
        if engine.version is not None and engine.reload():
            log.info("now answering from %s", engine.version)
            settle_heap()
        self.refitter.reap()
        if engine.fitted and self.due():
            self.refitter.start()

    def due(self) -> bool:
        """Whether a refit trigger fired (and none is running)."""
        if not (self.refit_every or self.refit_interval):
            return False
        snap = self.engine.snapshot
        new = self.engine.slate_store.watermark() - snap.watermark
        by_count = self.refit_every > 0 and new >= self.refit_every
        by_age = (
            self.refit_interval > 0
            and new > 0
            and time.time() - snap.created >= self.refit_interval
        )
        return (by_count or by_age) and not self.refitter.running()
