"""The installed version of interestlens (a utility module every layer may import).

``__version__`` is read from the installed package's metadata when first asked for:
importing :mod:`importlib.metadata` costs tens of milliseconds that a command-line
question which never prints the version should not pay.

>>> from interestlens import version
>>> version.__version__ == version.installed()
True
"""

from __future__ import annotations

import functools


@functools.cache
def installed() -> str:
    """The version of the installed interestlens, ``"0.0.0"`` in a source tree without an install."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("interestlens")
    except PackageNotFoundError:
        return "0.0.0"


def __getattr__(name: str) -> str:
    if name == "__version__":
        return installed()
    raise AttributeError(f"module 'interestlens.version' has no attribute {name!r}")
