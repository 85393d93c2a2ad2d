"""The evaluation commands' help stays in step with the registries it names."""

from __future__ import annotations

import typer.main

from interestlens.cli import app
from interestlens.evaluate import ope
from interestlens.explore import POLICIES


def test_ope_policy_help_names_every_policy():
    command = typer.main.get_command(app).commands["ope"]  # type: ignore[attr-defined]
    text = next(p.help for p in command.params if p.name == "policy")
    missing = [name for name in [*ope.TARGET_POLICIES, *POLICIES] if name not in text]
    assert not missing, f"ope --policy help lacks {missing}"
