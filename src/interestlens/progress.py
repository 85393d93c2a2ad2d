"""Progress bars on stderr for long work, shared by every layer.

Bars go to stderr so that ``--json`` output on stdout stays one clean document, and
they switch themselves off when stderr is not a terminal unless asked for.
"""

from __future__ import annotations

import sys
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


class _Bar:
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


@contextmanager
def progress_bar(
    description: str, total: float | None, enabled: bool | None = None
) -> Iterator[_Bar]:
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
        yield _Bar(None, None)
        return
    columns = [
        TextColumn("{task.description}", style="progress.description", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=True) as p:
        yield _Bar(p, p.add_task(description, total=total))
