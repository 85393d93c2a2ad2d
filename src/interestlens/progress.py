"""Progress bars on stderr for long work, shared by every layer.

Bars go to stderr so that ``--json`` output on stdout stays one clean document, and
they switch themselves off when stderr is not a terminal unless asked for.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)


class Bar:
    """A bar opened by :func:`progress_bar`; every method does nothing when it is off."""

    def __init__(self, progress: Progress | None, task: int | None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, n: float = 1) -> None:
        """Move the bar on by ``n`` units."""
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)

    def update(self, completed: float) -> None:
        """Set the bar to ``completed`` units."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=completed)

    def describe(self, description: str) -> None:
        """Replace the text left of the bar (the stage now running, the latest loss)."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=description)


@contextmanager
def progress_bar(
    description: str, total: float | None, enabled: bool | None = None
) -> Iterator[Bar]:
    """A progress bar on stderr.

    Parameters
    ----------
    description
        What is being done, shown left of the bar.
    total
        Units of work in all (``None`` when unknown).
    enabled
        ``None`` (default) shows the bar only when stderr is a terminal.

    Examples
    --------
    >>> with progress_bar("counting", total=3, enabled=False) as bar:
    ...     for _ in range(3):
    ...         bar.advance()
    """
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield Bar(None, None)
        return
    columns = [
        TextColumn("{task.description}", style="progress.description", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=True) as p:
        yield Bar(p, p.add_task(description, total=total))


class Stages:
    """The named stages of one piece of work, each shown and logged as it starts and ends.

    Made by :func:`stages`; :meth:`stage` wraps each stage.
    """

    def __init__(self, name: str, total: int, bar: Bar, logger: logging.Logger) -> None:
        self.name = name
        self.total = total
        self._bar = bar
        self._logger = logger
        self._started = 0

    @contextmanager
    def stage(self, text: str) -> Iterator[None]:
        """Run one stage: log and show ``text`` with its number, then its duration at the end."""
        self._started += 1
        label = f"{self.name} [{self._started}/{self.total}]: {text}"
        self._logger.info("%s", label)
        self._bar.describe(label)
        start = time.perf_counter()
        yield
        self._logger.info("%s: done in %.1f s", label, time.perf_counter() - start)
        self._bar.advance()


@contextmanager
def stages(
    name: str, total: int, logger: logging.Logger, enabled: bool | None = None
) -> Iterator[Stages]:
    """A bar over the ``total`` named stages of a long piece of work, which logs each too.

    Every stage's start and end (with its duration) go to ``logger`` at INFO level, so a
    log that is not a terminal still shows which stage a long run is in; the bar shows
    them on stderr as :func:`progress_bar` does.

    Parameters
    ----------
    name
        The work, prefixed to each stage's text.
    total
        Stages in all.
    logger
        Where each stage's start and end are logged.
    enabled
        As for :func:`progress_bar`.

    Examples
    --------
    >>> with stages("fit", total=2, logger=logging.getLogger("demo"), enabled=False) as s:
    ...     with s.stage("counting"):
    ...         pass
    ...     with s.stage("adding"):
    ...         pass
    """
    with progress_bar(name, total=total, enabled=enabled) as bar:
        yield Stages(name, total, bar, logger)
