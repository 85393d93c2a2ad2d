from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

from interestlens import threads
from interestlens.threads import DEFAULT_THREADS, ENV, limit, resolve


def pools() -> dict[str, int]:
    """Threads of each loaded OpenMP and BLAS library, by file."""
    return {p["filepath"]: p["num_threads"] for p in threadpool_info()}


def test_the_callers_number_wins_then_the_environment_then_the_default(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert resolve() == DEFAULT_THREADS
    monkeypatch.setenv(ENV, " 3 ")
    assert resolve() == 3
    assert resolve(2) == 2
    assert resolve(np.int64(2)) == 2 and type(resolve(np.int64(2))) is int


@pytest.mark.parametrize(
    ("value", "message"),
    [(0, "threads must be at least 1"), (1.5, "whole number"), (True, "whole number")],
)
def test_a_bad_number_is_refused_by_name(value, message):
    with pytest.raises(ValueError, match=message):
        resolve(value)


@pytest.mark.parametrize("raw", ["two", "0", "-1", "1.5"])
def test_a_bad_environment_variable_is_refused_by_name(monkeypatch, raw):
    monkeypatch.setenv(ENV, raw)
    with pytest.raises(ValueError, match=ENV):
        resolve()


def test_limit_sizes_torch_openmp_and_blas_and_puts_them_back(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    torch_before, pools_before = torch.get_num_threads(), pools()
    assert any("gomp" in f or "omp" in f for f in pools_before)  # torch's OpenMP is seen
    with limit(1) as n:
        assert n == 1
        assert torch.get_num_threads() == 1
        assert set(pools().values()) == {1}
        np.linalg.inv(np.eye(50) + 1)  # BLAS work runs under the limit
    assert torch.get_num_threads() == torch_before
    assert pools() == pools_before


def test_a_limit_without_a_number_follows_the_enclosing_one(monkeypatch):
    monkeypatch.setenv(ENV, "1")
    with limit(2):
        assert resolve() == 2
        with limit() as inner:
            assert inner == 2 and torch.get_num_threads() == 2
        with limit(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    assert resolve() == 1


def test_limit_puts_threads_back_when_the_block_raises():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"), limit(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    assert threads._active.get() is None


_LOAD_INSIDE = """
import json, os
import torch
from threadpoolctl import threadpool_info
from interestlens.threads import limit
known = {p["filepath"] for p in threadpool_info()}
with limit(1):
    import lightgbm, scipy.linalg, sklearn.linear_model
    inside = {p["filepath"]: p["num_threads"] for p in threadpool_info()}
print(json.dumps({"known": sorted(known), "inside": inside,
                  "env_after": os.environ.get("OMP_NUM_THREADS")}))
"""


def test_a_library_first_loaded_inside_the_block_starts_with_its_threads():
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    p = subprocess.run(
        [sys.executable, "-c", _LOAD_INSIDE], capture_output=True, text=True, timeout=300, env=env
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    loaded_inside = set(doc["inside"]) - set(doc["known"])
    assert loaded_inside  # scipy's BLAS, scikit-learn's OpenMP
    assert set(doc["inside"].values()) == {1}
    assert doc["env_after"] is None


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_importing_the_package_makes_openmp_threads_sleep_unless_told(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    code = "import os, interestlens; print(os.environ['OMP_WAIT_POLICY'])"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == expected
