"""The command line is a shell over the public Engine API: no private access, no lower layers.

The check reads the source of every module under ``src/interestlens/cli/`` (no import
runs), so it sees what happens inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[1] / "src" / "interestlens" / "cli"

#: Layers under the engine that the command line reaches only through it.
BELOW = ("store", "models", "explore", "interests", "text")


def _private(name: str) -> bool:
    """A private name: one leading underscore, not a dunder such as ``__doc__``."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def breaks(source: str) -> list[tuple[int, str]]:
    """(line, what) of every private access and every import of a lower layer in ``source``.

    A private access is ``x._name`` on anything but ``self`` or ``cls``, or
    ``getattr``/``setattr``/``hasattr``/``delattr`` with a private name; an import of a lower
    layer is any ``import`` or ``from ... import`` of ``interestlens.store``, ``.models``,
    ``.explore``, ``.interests`` or ``.text`` (or their modules), wherever it stands.
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            if owner not in ("self", "cls"):
                found.append((node.lineno, f"private attribute .{node.attr}"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            found.append((node.lineno, f"private attribute {node.args[1].value!r}"))
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "interestlens":
                modules = [f"interestlens.{a.name}" for a in node.names]
            else:
                modules = [node.module]
        for module in modules:
            parts = module.split(".")
            if parts[0] == "interestlens" and len(parts) > 1 and parts[1] in BELOW:
                found.append((node.lineno, f"imports {module}"))
    return sorted(found)


def test_the_check_finds_private_access_and_lower_imports():
    probe = (
        "import interestlens.store\n"
        "from interestlens.models import build_model\n"
        "from interestlens import explore\n"
        "def f(engine):\n"
        "    from interestlens.interests.taxonomy import Interest\n"
        "    import interestlens.text as t\n"
        "    engine._state = None\n"
        "    return getattr(engine.state, '_user_pos')\n"
        "class C:\n"
        "    def g(self, fn):\n"
        "        from interestlens.engine import Engine\n"
        "        from interestlens.data.loaders import load\n"
        "        return self._x, cls._y, fn.__doc__, getattr(fn, 'name')\n"
    )
    assert breaks(probe) == [
        (1, "imports interestlens.store"),
        (2, "imports interestlens.models"),
        (3, "imports interestlens.explore"),
        (5, "imports interestlens.interests.taxonomy"),
        (6, "imports interestlens.text"),
        (7, "private attribute ._state"),
        (8, "private attribute '_user_pos'"),
    ]


def test_the_cli_uses_only_public_names_and_allowed_layers():
    files = sorted(CLI.rglob("*.py"))
    assert len(files) > 1, f"no cli package at {CLI}"
    found = [
        f"{path.relative_to(CLI.parents[1])}:{line}: {what}"
        for path in files
        for line, what in breaks(path.read_text(encoding="utf-8"))
    ]
    assert not found, "the CLI goes around the public Engine API:\n" + "\n".join(found)
