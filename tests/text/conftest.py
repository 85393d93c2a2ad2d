"""Fixtures for the text layer: the bundled encoder, loaded once per session."""

from __future__ import annotations

import pytest

from interestlens.text import Encoder


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    """The default Encoder (bundled all-MiniLM-L6-v2, no cache), already loaded."""
    enc = Encoder(progress=False)
    enc.encode(["load the model"])
    return enc
