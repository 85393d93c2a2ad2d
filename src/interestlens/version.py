"""The installed version of interestlens (a utility module every layer may import)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("interestlens")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
