"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

#: Copies of the public datasets (MovieLens, Jester, msweb, Open Bandit) kept beside the repo.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; tests that need it are skipped where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def shared_embedding_cache(tmp_path_factory):
    """One embedding cache for every engine the suite fits, in process or in a subprocess."""
    import os

    path = tmp_path_factory.mktemp("embedding-cache")
    old = os.environ.get("INTERESTLENS_CACHE_DIR")
    os.environ["INTERESTLENS_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("INTERESTLENS_CACHE_DIR", None)
    else:
        os.environ["INTERESTLENS_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def ml_small():
    """The bundled ml-latest-small, loaded once."""
    from interestlens import datasets

    return datasets.load("ml-latest-small")


@pytest.fixture(scope="session")
def encoder(shared_embedding_cache):
    """The bundled language model, loaded once per session."""
    from interestlens.text import Encoder

    return Encoder(cache_dir=shared_embedding_cache)


@pytest.fixture(scope="session")
def sentiment(encoder):
    from interestlens.interests.sentiment import SentimentAnalyzer

    return SentimentAnalyzer(encoder=encoder)


#: A fast hybrid for tests that exercise the engine, not the accuracy of the default
#: pipeline (benchmarks/accuracy.py measures that).
LIGHT_HYBRID = ("itemknn", "contentlm")


@pytest.fixture(scope="session")
def ml_engine(tmp_path_factory, ml_small, encoder, sentiment):
    """An engine fitted on ml-latest-small, shared by every test that only reads it."""
    from interestlens.engine import Config, Engine

    config = Config(data_dir=tmp_path_factory.mktemp("engine"), hybrid_models=LIGHT_HYBRID)
    return Engine(config, encoder=encoder, sentiment=sentiment).fit(ml_small)
