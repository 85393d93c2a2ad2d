"""Every Python example in the README runs.

The example that fits the default pipeline (`Engine()`, several minutes of both cores) runs
here with the light hybrid the suite uses (`LIGHT_HYBRID`), and verbatim only in the
``full_pipeline`` job (`make test-full`), which `make test` leaves out.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import LIGHT_HYBRID

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
FULL = "Engine()"
LIGHT = f"Engine(__import__('interestlens').engine.Config(hybrid_models={LIGHT_HYBRID!r}))"


def _run(code: str) -> None:
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _run(code.replace(FULL, LIGHT))


@pytest.mark.full_pipeline
@pytest.mark.parametrize(
    "code", [b for b in BLOCKS if FULL in b], ids=lambda b: b.splitlines()[0][:30]
)
def test_readme_example_runs_with_the_full_pipeline(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _run(code)


def test_the_full_pipeline_example_is_still_in_the_readme():
    assert any(FULL in b for b in BLOCKS), "no README example fits the default Engine() any more"
