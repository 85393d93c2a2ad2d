"""The timing benchmarks' measure of competing work sees a process that is not theirs."""

from __future__ import annotations

import os
import time

import pytest

from tests.benchmarks.scripts import benchmark_script


@pytest.fixture(scope="module")
def machine():
    with benchmark_script("machine") as module:
        yield module


def _burn_in_a_stranger(seconds: float) -> None:
    """Burn CPU in a grandchild re-parented away from us, so its time is not ours."""
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                pass
        os._exit(0)
    os.waitpid(pid, 0)


def test_another_process_makes_the_machine_busy(machine):
    c = machine.Competition().start()
    _burn_in_a_stranger(1.5)
    time.sleep(2.0)
    doc = c.stop()
    # 1.5 CPU-seconds of 2 s x cpus, or more if the cores were saturated by others too
    assert doc["other_cpu_share"] >= 0.2, doc
    assert doc["busy"]
    with pytest.raises(SystemExit, match="NOT written"):
        machine.refuse_if_busy(doc, allow_busy=False)
    machine.refuse_if_busy(doc, allow_busy=True)  # prints, writes nothing, does not exit
