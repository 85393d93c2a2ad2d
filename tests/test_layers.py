"""Every module under src/interestlens imports only the layers DESIGN.md's table allows.

The check reads the source (no import runs), so it sees imports inside functions and
under ``TYPE_CHECKING`` too, and strings naming a module to import later
(``importlib.import_module("interestlens.x")``, a registry's ``"interestlens.x:Class"``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "interestlens"

#: DESIGN.md's table: each layer and the layers of ours it may import (its own always).
ALLOWED: dict[str, set[str]] = {
    "data": set(),
    "store": {"data"},
    "text": {"data"},
    "llm": {"data"},
    "interests": {"data", "text"},
    "models": {"data", "text", "interests"},
    "explore": {"data", "text", "interests", "models"},
    "evaluate": {"data", "text", "interests", "models", "explore"},
}
ALLOWED["engine"] = {"store", "llm", *ALLOWED["evaluate"], "evaluate"}
ALLOWED["spark"] = {*ALLOWED["engine"], "engine"}
ALLOWED["serve"] = {"engine", "data"}
ALLOWED["cli"] = {"engine", "data", "evaluate", "serve"}

#: The public face: nothing inside the layers may import these.
PUBLIC = {"interestlens", "interestlens.datasets"}

#: Breaks that exist today, as (file under src/interestlens, imported module): the engine
#: reads ``__version__`` from the top package (``importlib.metadata.version("interestlens")``
#: reads it without). Delete an entry with its break: a listed break that is gone fails
#: the test, so this list only shrinks.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()

#: A string naming one of our modules, as ``import_module`` or a registry takes it.
MODULE_STRING = re.compile(r"interestlens(\.[A-Za-z_]\w*)+(:[A-Za-z_]\w*)?")


def utilities() -> set[str]:
    """Top-level utility modules (progress, registry, ...): importable by every layer."""
    return {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__", "datasets", *ALLOWED}


def imported(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, module) of every import of ours in a file of the package at ``root``.

    Relative imports are resolved; ``from interestlens import x`` counts as importing
    ``interestlens.x``.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.parent.relative_to(root.parent).parts)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base == "interestlens":
                found += [(node.lineno, f"interestlens.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, base))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if MODULE_STRING.fullmatch(node.value):
                found.append((node.lineno, node.value.partition(":")[0]))
    return sorted((line, name) for line, name in found if name.split(".")[0] == "interestlens")


def layer_of(module: str, utils: set[str]) -> str:
    """The layer of one of our modules: a layer name, ``"utility"`` or ``"public"``."""
    parts = module.split(".")
    if module in PUBLIC or (len(parts) > 1 and parts[1] not in ALLOWED and parts[1] not in utils):
        return "public"  # the package itself, datasets, or a name it re-exports (Engine)
    return "utility" if parts[1] in utils else parts[1]


def violations() -> list[tuple[str, int, str, str]]:
    """(file, line, imported module, why) of every import the table forbids."""
    utils = utilities()
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        top = rel.split("/")[0].removesuffix(".py")
        if top in {"__init__", "__main__", "datasets"}:
            continue  # the public face (and `python -m interestlens`) may import any layer
        source = "utility" if top in utils else top
        assert source in ALLOWED or source == "utility", (
            f"{rel}: layer {top!r} is not in DESIGN.md's table; add it there and here"
        )
        for line, module in imported(path):
            target = layer_of(module, utils)
            if target == "public":
                why = "imports the public face (interestlens or interestlens.datasets)"
            elif target == "utility" or target == source:
                continue
            elif source == "utility":
                why = "a utility module may import only other utility modules"
            elif target not in ALLOWED[source]:
                why = f"{source} may import only {sorted(ALLOWED[source]) or 'nothing of ours'}"
            else:
                continue
            out.append((rel, line, module, why))
    return out


def test_the_check_sees_every_kind_of_import(tmp_path):
    """Absolute, relative, in-function, `from interestlens import x` and module strings."""
    root = tmp_path / "interestlens"
    probe = root / "explore" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "from interestlens import datasets\n"
        "from ..engine import Engine\n"
        "def f():\n"
        "    import interestlens.cli\n"
        "    return 'interestlens.store.sqlite:SQLiteEventStore'\n"
        "from . import base\n"
        "from .base import Policy\n"
        "import numpy\n"
    )
    got = imported(probe, root)
    assert got == [
        (1, "interestlens.datasets"),
        (2, "interestlens.engine"),
        (4, "interestlens.cli"),
        (5, "interestlens.store.sqlite"),
        (6, "interestlens.explore"),
        (7, "interestlens.explore.base"),
    ]
    utils = utilities()
    assert {"progress", "registry"} <= utils
    assert [layer_of(m, utils) for _, m in got] == [
        "public",
        "engine",
        "cli",
        "store",
        "explore",
        "explore",
    ]
    assert layer_of("interestlens.registry", utils) == "utility"
    assert layer_of("interestlens.Engine", utils) == "public"


def test_no_layer_imports_a_higher_one():
    found = violations()
    new = [v for v in found if (v[0], v[2]) not in KNOWN_VIOLATIONS]
    gone = KNOWN_VIOLATIONS - {(v[0], v[2]) for v in found}
    report = "\n".join(
        f"src/interestlens/{f}:{line}: imports {m}: {why}" for f, line, m, why in found
    )
    print(report)
    assert not new, "imports that break DESIGN.md's layer table:\n" + "\n".join(
        f"src/interestlens/{f}:{line}: imports {m}: {why}" for f, line, m, why in new
    )
    assert not gone, f"listed in KNOWN_VIOLATIONS but no longer found (remove them): {sorted(gone)}"
