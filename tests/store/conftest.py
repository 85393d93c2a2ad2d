from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from interestlens.store import EventStore, open_store
from tests.store.local_postgres import LocalPostgres, PostgresNotInstallable


def start_or_skip(start: Callable[[], LocalPostgres]) -> LocalPostgres:
    """Start PostgreSQL; skip only when the machine cannot have it, and never under CI.

    Skips when the server binaries are absent and the machine cannot install them (not
    root, no apt-get, or apt-get cannot reach its registry), unless ``CI`` is set to a
    true value, where that fails too. Any other failure (a broken install, initdb or
    pg_ctl failing, an OSError) propagates and errors the tests that need the server.
    """
    try:
        return start()
    except PostgresNotInstallable as exc:
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI must run the PostgreSQL tests, but: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL is not installed and cannot be installed here: {exc}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """A private PostgreSQL cluster on 127.0.0.1, installed with apt-get if missing
    (see :func:`start_or_skip` for when it skips)."""
    pg = start_or_skip(LocalPostgres().start)
    yield pg
    pg.stop()


@pytest.fixture
def postgres_url(postgres_server: LocalPostgres) -> str:
    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'events.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    with open_store(store_url) as st:
        yield st
