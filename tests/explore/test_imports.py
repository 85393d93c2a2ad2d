"""Importing the policies stays cheap: the heavy libraries load only where a policy uses them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("httpx", "interestlens.interests", "scipy.stats", "sklearn")


def test_importing_explore_loads_no_heavy_library():
    code = (
        "import sys, interestlens.explore; "
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == []
