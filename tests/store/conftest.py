from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from interestlens.store import EventStore, open_store
from interestlens.store.local_postgres import LocalPostgres, PostgresUnavailable


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """A private PostgreSQL cluster on 127.0.0.1, installed with apt-get if missing."""
    try:
        pg = LocalPostgres().start()
    except (PostgresUnavailable, OSError) as exc:
        pytest.skip(f"PostgreSQL cannot run here: {exc}")
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
