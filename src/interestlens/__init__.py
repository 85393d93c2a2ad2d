"""interestlens: a user-interest engine.

>>> from interestlens import datasets
>>> datasets.load("ml-latest-small").n_users
610
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interestlens.version import __version__

if TYPE_CHECKING:
    from interestlens import datasets
    from interestlens.data import Event, Item, User
    from interestlens.engine import Config, Engine

_LAZY = {
    "Engine": "interestlens.engine",
    "Config": "interestlens.engine",
    "Event": "interestlens.data",
    "Item": "interestlens.data",
    "User": "interestlens.data",
    "datasets": "interestlens.datasets",
}


def __getattr__(name: str) -> Any:
    # the engine pulls in torch; import it only when asked for, so the CLI starts fast
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name])
        return module if name == "datasets" else getattr(module, name)
    raise AttributeError(f"module 'interestlens' has no attribute {name!r}")


__all__ = ["Config", "Engine", "Event", "Item", "User", "__version__", "datasets"]
