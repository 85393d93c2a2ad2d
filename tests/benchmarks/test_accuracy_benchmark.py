"""The shared-machine mode of ``benchmarks/accuracy.py`` times a fit alone and beside a busy process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.benchmarks.scripts import benchmark_script
from tests.conftest import LIGHT_HYBRID
from tests.models.contract import tiny_dataset


@pytest.fixture(scope="module")
def bench():
    with benchmark_script("accuracy") as module:
        yield module


def busy_children(loop: str) -> list[int]:
    """Our child processes running the benchmark's busy loop, zombies included."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().decode(errors="replace")
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == os.getpid() and (loop in cmdline or fields[0] == "Z"):
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_a_fit_is_timed_alone_and_beside_a_busy_process_that_is_stopped_after(bench, capsys):
    shared = bench.shared_machine(
        tiny_dataset(), hybrid_models=LIGHT_HYBRID, n_fine=4, n_broad=2, threads=1
    )
    alone, beside = shared["engine_fit_alone_seconds"], shared["engine_fit_beside_busy_seconds"]
    assert alone > 0 and beside > 0
    assert shared["ratio_beside_busy_to_alone"] == pytest.approx(beside / alone, abs=0.06)
    assert shared["threads"] == 1 and shared["cpus"] == os.cpu_count()
    # the busy process ran during the second fit, and is gone
    assert shared["busy_process_cpu_seconds"] > 0
    assert busy_children(bench.BUSY_LOOP) == []
    assert set(shared["machine"]) == {"alone", "beside_busy"}
    assert all(0 <= m["other_cpu_share"] <= 1 for m in shared["machine"].values())

    bench.print_table({"protocols": {}, "shared_machine": shared})
    out = capsys.readouterr().out
    assert f"Engine.fit alone {alone} s, beside one CPU-bound process {beside} s" in out
