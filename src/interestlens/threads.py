"""How many threads heavy work uses: one decision, applied to every thread pool at once.

A fit runs in the thread pools of several libraries: torch's (SASRec, the text encoder),
OpenMP's (torch, implicit, LightGBM) and BLAS's (numpy and scipy: EASE's inverse, ALS).
Each sizes itself to every core by default, which is fastest on an idle machine and
collapses on a shared one: OpenMP threads that wait for each other at every step stall
whenever another process holds one of their cores. :func:`limit` sizes all of them
together, to :func:`resolve`'s answer: the caller's number, else that of the enclosing
:func:`limit`, else the environment variable ``INTERESTLENS_THREADS``, else
:data:`DEFAULT_THREADS`. ``import interestlens`` also sets ``OMP_WAIT_POLICY=PASSIVE``
(unless set), so that OpenMP threads sleep instead of spinning while they wait, which
an OpenMP runtime only reads when it loads: after ``import interestlens``, not before.

Measured with 1-epoch SASRec fits (defaults, 60 users of ml-latest-small, all 9,742
items) on a 2-core machine where other people's jobs took 80-94 % of the cores (load
6.8-12.3), three interleaved runs per case, median seconds alone / beside one more
CPU-bound process:

=======  ======================  ==============================================
threads  OpenMP waits            seconds, alone / beside
=======  ======================  ==============================================
1        spinning (the default)  24.8 / 43.6
1        passive                 28.9 / 36.1
2        spinning (the default)  >240 / >240 (the fastest of the six runs: 164)
2        passive                 23.6 / 31.4
=======  ======================  ==============================================
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: Environment variable that sets the threads of heavy work when the caller does not.
ENV = "INTERESTLENS_THREADS"

#: Threads of heavy work when neither the caller nor ``INTERESTLENS_THREADS`` says. One
#: thread never waits for another, so it cannot collapse beside busy processes, whatever
#: the import order: two passive threads were as fast in the measurement above, but two
#: runs whose script imported torch before interestlens (so the runtime loaded spinning)
#: took 164 and 191 s. On an idle machine two threads train SASRec about 1.6 times
#: faster: set ``INTERESTLENS_THREADS`` (or ``Config.threads``, ``--threads``) there.
DEFAULT_THREADS = 1

#: Variables an OpenMP or BLAS library reads once, when it is loaded, to size its pool.
_POOL_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_active: ContextVar[int | None] = ContextVar("interestlens_threads", default=None)


def resolve(threads: int | None = None) -> int:
    """The number of threads heavy work should use.

    Parameters
    ----------
    threads
        The caller's choice (a configuration value, a ``--threads`` option); ``None``
        defers to the enclosing :func:`limit` (so a model inside a pipeline's fit follows
        the pipeline's number), then to ``INTERESTLENS_THREADS``, then to
        :data:`DEFAULT_THREADS`.

    Returns
    -------
    int
        At least 1.

    Raises
    ------
    ValueError
        If ``threads`` or ``INTERESTLENS_THREADS`` is not a whole number of at least 1.

    Examples
    --------
    >>> resolve(2)
    2
    """
    if threads is None:
        enclosing = _active.get()
        if enclosing is not None:
            return enclosing
        raw = os.environ.get(ENV, "").strip()
        if not raw:
            return DEFAULT_THREADS
        try:
            threads = int(raw)
        except ValueError:
            raise ValueError(f"{ENV} must be a whole number of threads, not {raw!r}") from None
        if threads < 1:
            raise ValueError(f"{ENV} must be at least 1, not {threads}")
        return threads
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
        raise ValueError(f"threads must be a whole number, not {threads!r}")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    return int(threads)


@contextmanager
def limit(threads: int | None = None) -> Iterator[int]:
    """Run the block with every thread pool of heavy work sized to :func:`resolve`'s answer.

    Sizes torch's intra-op threads and, through threadpoolctl, every OpenMP and BLAS
    library loaded, and puts them back as they were afterwards. A library first loaded
    inside the block (a model's lazy import of LightGBM or scipy's BLAS) starts with
    ``n`` threads from the environment variables set meanwhile (``OMP_NUM_THREADS``,
    ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``) and keeps them afterwards. Blocks
    may nest; the innermost wins while it runs. The sizes are per process, so two
    threads of one process that enter different limits at the same time see whichever
    was set last.

    Parameters
    ----------
    threads
        As for :func:`resolve`.

    Yields
    ------
    int
        The number of threads applied.

    Examples
    --------
    >>> import torch
    >>> with limit(1) as n:
    ...     n, torch.get_num_threads()
    (1, 1)
    """
    n = resolve(threads)
    # torch loads its own OpenMP runtime on import: import it first, so that threadpoolctl
    # sees that runtime too
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    previous_env = {name: os.environ.get(name) for name in _POOL_VARIABLES}
    token = _active.set(n)
    torch.set_num_threads(n)
    os.environ.update(dict.fromkeys(_POOL_VARIABLES, str(n)))
    try:
        with threadpool_limits(limits=n):
            yield n
    finally:
        torch.set_num_threads(previous)
        for name, value in previous_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _active.reset(token)


def pin(threads: int | None = None) -> int:
    """Size every thread pool of this process to :func:`resolve`'s answer, for its whole life.

    For a process that serves requests: each request is small, and pools sized to every
    core (numpy's BLAS, OpenMP) lose more to waking and waiting than they gain, many
    times over when another process holds a core (a 9,742 x 384 product took 16 ms on
    two BLAS threads beside a busy job, 0.55 ms on one). Libraries already loaded are
    resized through threadpoolctl (and torch, if loaded); the environment variables make
    those loaded later (torch on the first fold-in of a SASRec) start at this size.
    Unlike :func:`limit`, nothing is put back. Returns the number applied.

    Examples
    --------
    >>> import subprocess, sys
    >>> code = "from interestlens.threads import pin; print(pin(1))"
    >>> subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
    '1'
    """
    import sys

    from threadpoolctl import threadpool_limits

    n = resolve(threads)
    os.environ.update(dict.fromkeys(_POOL_VARIABLES, str(n)))
    threadpool_limits(limits=n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    return n
