"""interestlens: a user-interest engine.

>>> from interestlens import datasets
>>> datasets.load("ml-latest-small").n_users
610
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# OpenMP threads that spin while they wait for each other stall whenever another process
# holds one of their cores (see interestlens.threads); sleeping ones do not. An OpenMP
# runtime reads this once, when it loads: so here, before anything of ours imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
    # the engine pulls in pandas and more; import it only when asked for, so the CLI
    # starts fast (and the version's metadata likewise)
    if name == "__version__":
        from interestlens.version import installed

        return installed()
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name])
        return module if name == "datasets" else getattr(module, name)
    raise AttributeError(f"module 'interestlens' has no attribute {name!r}")


__all__ = ["Config", "Engine", "Event", "Item", "User", "__version__", "datasets"]
