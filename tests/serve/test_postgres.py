"""The HTTP service over a PostgreSQL store: a real uvicorn on 127.0.0.1, a real local cluster.

One engine fitted with the light hybrid on a fresh data dir, its store a database of
its own on a private PostgreSQL cluster started for this module. What the service
stores is checked with direct SQL on that database, not through the engine. The
restart test replaces the served engine with one reopened from the data dir and the
same store; the tests after it run against that one.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn

from tests.conftest import LIGHT_HYBRID
from tests.serve.conftest import KEYS, MAX_BATCH, MAX_BODY, auth, first_users, start_server
from tests.store.conftest import start_or_skip
from tests.store.local_postgres import LocalPostgres

pytestmark = pytest.mark.postgres


@dataclass
class Service:
    """The engine being served over PostgreSQL, its server, and how to restart it."""

    url: str
    engine: object
    server: uvicorn.Server
    thread: threading.Thread
    data_dir: Path
    config: object
    store_url: str

    def stop(self) -> None:
        """Stop the server and close the engine's store connection."""
        self.server.should_exit = True
        self.thread.join(10)
        assert not self.thread.is_alive(), "uvicorn did not stop"
        self.engine.slate_store.close()

    def restart(self) -> None:
        """Stop, reopen the engine from its data dir over the same store, serve it again."""
        from interestlens.engine import Engine

        self.stop()
        self.engine = Engine.open(self.data_dir, config=self.config)
        self.server, self.thread, self.url = start_server(_app(self.engine))


def _app(engine: object) -> object:
    from interestlens.serve import ServeSettings, create_app

    settings = ServeSettings(api_keys=KEYS, max_body_bytes=MAX_BODY, max_batch=MAX_BATCH)
    return create_app(engine, settings)


def sql_count(url: str, table: str, user_id: str) -> int:
    """Rows of ``table`` for ``user_id``, read straight from PostgreSQL."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE user_id = %s", (user_id,))
        return int(row.fetchone()[0])


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[LocalPostgres]:
    """A private PostgreSQL cluster on 127.0.0.1 for this module."""
    pg = start_or_skip(LocalPostgres().start)
    yield pg
    pg.stop()


@pytest.fixture(scope="module")
def service(pg_cluster, tmp_path_factory, ml_small, encoder, sentiment) -> Iterator[Service]:
    """The light hybrid on the first 40 users of ml-latest-small, over a fresh database."""
    from interestlens.engine import Config, Engine

    store_url = pg_cluster.create_database(f"serve_{uuid.uuid4().hex[:12]}")
    small = first_users(ml_small)
    data_dir = tmp_path_factory.mktemp("serve-postgres")
    config = Config(data_dir=data_dir, hybrid_models=LIGHT_HYBRID, store=store_url)
    engine = Engine(config, encoder=encoder, sentiment=sentiment).fit(small)
    engine.save()  # what a restart reopens
    server, thread, url = start_server(_app(engine))
    svc = Service(url, engine, server, thread, data_dir, config, store_url)
    yield svc
    svc.stop()


@pytest.fixture
def http(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=60) as client:
        yield client


def recommended(http: httpx.Client, user: str, **params: object) -> dict:
    r = http.get(f"/v1/users/{user}/recommendations", params=params, headers=auth("read"))
    assert r.status_code == 200, r.text
    return r.json()


def test_healthz_says_the_postgres_store_is_reachable(http, service):
    assert service.engine.config.store_url.startswith("postgresql://")
    doc = http.get("/healthz").json()
    assert doc["status"] == "ok" and doc["fitted"] and doc["store_reachable"] is True


def test_a_batch_with_a_bad_row_stores_the_good_ones_in_postgres(http, service):
    user = "pg-batch"
    events = [
        {"user_id": user, "item_id": "1", "type": "click"},
        {"user_id": user, "item_id": "2", "type": "teleport"},
        {"user_id": user, "item_id": "3", "type": "rating", "value": 4.0},
    ]
    r = http.post("/v1/events", json={"events": events}, headers=auth("write"))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["stored"], doc["duplicates"], doc["rejected"]) == (2, 0, 1)
    assert [x["index"] for x in doc["rejections"]] == [1]
    assert "teleport" in doc["rejections"][0]["reason"]
    assert sql_count(service.store_url, "events", user) == 2


def test_an_event_changes_the_next_recommendation_and_is_not_served_back(http, service):
    user = "7"
    first = [i["item_id"] for i in recommended(http, user, k=10)["items"]]
    assert len(first) == 10
    stored = sql_count(service.store_url, "events", user)
    r = http.post(
        "/v1/events",
        json={"user_id": user, "item_id": first[0], "type": "rating", "value": 5.0},
        headers=auth("write"),
    )
    assert r.status_code == 200 and r.json()["stored"] == 1, r.text
    assert sql_count(service.store_url, "events", user) == stored + 1
    after = [i["item_id"] for i in recommended(http, user, k=10)["items"]]
    assert first[0] not in after
    assert after != first


def test_a_new_item_is_recommended_as_new_to_a_user_who_holds_its_interest(http, service):
    user = "21"
    top = http.get(f"/v1/users/{user}/interests", headers=auth("read")).json()["interests"][0]
    member = sorted(service.engine.snapshot.taxonomy.members(top["interest_id"]))[0]
    source = http.get(f"/v1/items/{member}", headers=auth("read"))
    assert source.status_code == 200, source.text
    fields = {k: v for k, v in source.json().items() if k in ("title", "categories", "tags")}
    assert fields["title"]
    put = http.put("/v1/items/pg-brand-new", json=fields, headers=auth("write"))
    assert put.status_code == 200, put.text
    assert top["interest_id"] in {i["interest_id"] for i in put.json()["interests"]}
    with psycopg.connect(service.store_url, autocommit=True) as conn:
        rows = conn.execute("SELECT title FROM items WHERE item_id = 'pg-brand-new'").fetchall()
    assert rows == [(fields["title"],)]
    items = recommended(http, user, explain="true")["items"]
    new = [i for i in items if i["item_id"] == "pg-brand-new"]
    assert new, [i["item_id"] for i in items]
    assert new[0]["reason"] == f"new in the catalogue: serves your interest in {top['label']}"


def test_feedback_on_a_served_slate_is_taken(http, service):
    user = "33"
    slate = recommended(http, user, explore=0.3)
    assert sql_count(service.store_url, "slates", user) >= 1  # the slate log is in PostgreSQL
    r = http.post(
        "/v1/feedback",
        json={
            "request_id": slate["request_id"],
            "item_id": slate["items"][0]["item_id"],
            "reward": 1.0,
        },
        headers=auth("write"),
    )
    assert r.status_code == 200, r.text
    with psycopg.connect(service.store_url, autocommit=True) as conn:
        n = conn.execute(
            "SELECT COUNT(*) FROM feedback WHERE request_id = %s", (slate["request_id"],)
        ).fetchone()[0]
    assert n == 1


def test_erasing_a_user_removes_their_rows_from_postgres(http, service):
    user = "12"
    http.post(
        "/v1/events",
        json={"events": [{"user_id": user, "item_id": str(i), "type": "click"} for i in (1, 2)]},
        headers=auth("write"),
    ).raise_for_status()
    recommended(http, user)  # a logged slate
    assert sql_count(service.store_url, "events", user) >= 2
    assert sql_count(service.store_url, "slates", user) >= 1
    r = http.delete(f"/v1/users/{user}", headers=auth("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["components"]["store"]
    assert sql_count(service.store_url, "events", user) == 0
    assert sql_count(service.store_url, "slates", user) == 0
    assert sql_count(service.store_url, "users", user) == 0


def test_a_restart_over_the_same_store_keeps_every_acknowledged_event(service):
    user = "9"
    with httpx.Client(base_url=service.url, timeout=60) as http:
        top = recommended(http, user, k=10)["items"][0]["item_id"]
        r = http.post(
            "/v1/events",
            json={"user_id": user, "item_id": top, "type": "click"},
            headers=auth("write"),
        )
        assert r.status_code == 200 and r.json()["stored"] == 1, r.text
        n_events = http.get(f"/v1/users/{user}/interests", headers=auth("read")).json()["n_events"]
    stored = sql_count(service.store_url, "events", user)
    old_engine = service.engine

    service.restart()

    assert service.engine is not old_engine
    assert sql_count(service.store_url, "events", user) == stored
    with httpx.Client(base_url=service.url, timeout=60) as http:
        health = http.get("/healthz").json()
        assert health["fitted"] and health["store_reachable"] is True
        assert top not in [i["item_id"] for i in recommended(http, user, k=10)["items"]]
        profile = http.get(f"/v1/users/{user}/interests", headers=auth("read")).json()
        assert profile["n_events"] == n_events
