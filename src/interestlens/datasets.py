"""Datasets: load a known dataset, a folder in a known layout, or a file of events.

Examples
--------
>>> from interestlens import datasets
>>> datasets.load("ml-latest-small").n_users
610
"""

from interestlens.data.loaders import available, describe, load

__all__ = ["available", "describe", "load"]
