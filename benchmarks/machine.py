"""How busy the machine was while a timing benchmark ran.

The load average counts the benchmark's own threads, so it cannot tell a quiet machine
from a busy one while the benchmark saturates the cores. `Competition` measures instead
the CPU time that *other* processes used: the machine's busy time from ``/proc/stat``
minus this process's own (threads and children included), as a share of every core over
the wall time. A timing benchmark records it and refuses to write its result when other
work took more than ``MAX_OTHER_SHARE`` of the cores, unless told to write it anyway,
in which case the result is marked busy.
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
from pathlib import Path

#: Other processes may use at most this share of all cores during a timing run.
MAX_OTHER_SHARE = 0.10

_TICK = os.sysconf("SC_CLK_TCK")


def _machine_busy_seconds() -> float:
    """CPU seconds spent outside idle and iowait, summed over every core, since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in fields]
    idle = ticks[3] + ticks[4]  # idle, iowait
    guest = sum(ticks[8:10])  # guest time is already counted in user and nice
    return (sum(ticks) - idle - guest) / _TICK


def _own_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


class Competition:
    """Share of the cores used by other processes between `start` and `stop`.

    Examples
    --------
    >>> c = Competition().start()
    >>> doc = c.stop()
    >>> sorted(doc)  # doctest: +NORMALIZE_WHITESPACE
    ['busy', 'cpus', 'load_average_after', 'load_average_before', 'other_cpu_share',
     'wall_seconds']
    """

    def start(self) -> Competition:
        self._t = time.perf_counter()
        self._busy = _machine_busy_seconds()
        self._own = _own_seconds()
        self._load = os.getloadavg()
        return self

    def stop(self) -> dict:
        wall = time.perf_counter() - self._t
        cpus = os.cpu_count() or 1
        other = (_machine_busy_seconds() - self._busy) - (_own_seconds() - self._own)
        share = max(0.0, other) / (wall * cpus) if wall > 0 else 0.0
        return {
            "other_cpu_share": round(share, 4),
            "busy": share > MAX_OTHER_SHARE,
            "cpus": cpus,
            "wall_seconds": round(wall, 2),
            "load_average_before": self._load,
            "load_average_after": os.getloadavg(),
        }


def refuse_if_busy(doc: dict, allow_busy: bool) -> None:
    """Print how busy the machine was; exit without writing when it was busy.

    ``doc`` is what `Competition.stop` returned. With ``allow_busy`` the result is written
    all the same, and its ``machine.busy`` field says it was measured on a busy machine.
    """
    share = doc["other_cpu_share"]
    print(
        f"\nother processes used {share:.1%} of the {doc['cpus']} cores during the run "
        f"(limit {MAX_OTHER_SHARE:.0%}); load average {doc['load_average_before'][0]:.2f} "
        f"before, {doc['load_average_after'][0]:.2f} after"
    )
    if doc["busy"] and not allow_busy:
        raise SystemExit(
            "the machine was busy: timings would understate every variant; result NOT written "
            "(rerun on a quiet machine, or pass --allow-busy to write it marked busy)"
        )


def source_tree() -> dict[str, str]:
    """Which interestlens source ran: its folder and the repository's commit, if any."""
    import interestlens

    src = Path(interestlens.__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    return {"path": str(src), "commit": commit}
