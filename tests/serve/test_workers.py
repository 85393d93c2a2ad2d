"""`interestlens serve --workers 2` behaves as one service, over SQLite and over PostgreSQL:
what one worker takes (events, items, removals, erasures), the other answers with; a
background refit process publishes a version both swap to while every request is answered."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LIGHT_HYBRID
from tests.serve.conftest import first_users
from tests.store.conftest import start_or_skip
from tests.store.local_postgres import LocalPostgres

BIN = Path(sys.executable).parent / "interestlens"
KEY = "workers-admin-key"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def saved_dir(request, tmp_path_factory, ml_small, encoder, sentiment) -> Path:
    """A data dir holding a saved light engine of 40 users (seconds to fit), its store
    SQLite in the data dir or a database of its own on a private PostgreSQL cluster."""
    from interestlens.engine import Config, Engine

    store = None
    if request.param == "postgres":
        pg = start_or_skip(LocalPostgres().start)
        request.addfinalizer(pg.stop)
        store = pg.create_database("workers")

    small = first_users(ml_small)
    data_dir = tmp_path_factory.mktemp("workers")
    config = Config(data_dir=data_dir, hybrid_models=LIGHT_HYBRID, store=store)
    Engine(config, encoder=encoder, sentiment=sentiment).fit(small).save()
    return data_dir


class Workers:
    """A running `interestlens serve --workers 2` and one keep-alive connection to each worker."""

    def __init__(self, data_dir: Path) -> None:
        env = {**os.environ, "INTERESTLENS_API_KEY": KEY}
        self.proc = subprocess.Popen(
            [
                *(str(BIN), "serve", "--data-dir", str(data_dir), "--port", "0"),
                *("--workers", "2", "--refit-every", "0", "--refit-interval", "0"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        text = ""
        for line in self.proc.stdout:  # type: ignore[union-attr]
            text += line
            if line.startswith("try: curl"):
                break
        found = re.search(r"serving (http://127\.0\.0\.1:\d+)", text)
        assert found, text
        self.url = found.group(1)
        self.by_worker: dict[int, httpx.Client] = {}
        spare: list[httpx.Client] = []
        deadline = time.monotonic() + 120
        while len(self.by_worker) < 2:  # connections land on either worker: open until both
            assert time.monotonic() < deadline, f"reached workers {list(self.by_worker)} only"
            assert self.proc.poll() is None, self.proc.stderr.read()  # type: ignore[union-attr]
            client = httpx.Client(base_url=self.url, headers={"X-API-Key": KEY}, timeout=60)
            try:
                health = client.get("/healthz").json()
            except httpx.TransportError:
                client.close()
                time.sleep(0.2)
                continue
            if health["worker"] in self.by_worker:
                spare.append(client)
            else:
                self.by_worker[health["worker"]] = client
        for client in spare:
            client.close()
        self.a, self.b = self.by_worker.values()

    def stop(self) -> None:
        for client in self.by_worker.values():
            client.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(60)


@pytest.fixture(scope="module")
def workers(saved_dir) -> Iterator[Workers]:
    w = Workers(saved_dir)
    yield w
    w.stop()


def _items(client: httpx.Client, user: str, k: int = 10) -> list[str]:
    got = client.get(f"/v1/users/{user}/recommendations", params={"k": k})
    assert got.status_code == 200, got.text
    return [i["item_id"] for i in got.json()["items"]]


@pytest.mark.parametrize("direction", ["a to b", "b to a"])
def test_an_event_taken_by_one_worker_counts_in_the_next_answer_of_the_other(workers, direction):
    taker, other = (workers.a, workers.b) if direction == "a to b" else (workers.b, workers.a)
    user = "3" if direction == "a to b" else "4"
    before = other.get(f"/v1/users/{user}/interests").json()["n_events"]
    top = _items(other, user)[0]
    stored = taker.post("/v1/events", json={"user_id": user, "item_id": top, "type": "click"})
    assert stored.json()["stored"] == 1
    assert top not in _items(other, user)  # not served back by the worker that did not take it
    assert other.get(f"/v1/users/{user}/interests").json()["n_events"] == before + 1


def test_an_item_put_at_one_worker_is_recommended_by_the_other(workers, saved_dir):
    user = "21"
    top = workers.b.get(f"/v1/users/{user}/interests").json()["interests"][0]
    from interestlens.engine import Engine

    member = sorted(Engine.open(saved_dir).snapshot.taxonomy.members(top["interest_id"]))[0]
    fields = {
        k: v
        for k, v in workers.a.get(f"/v1/items/{member}").json().items()
        if k in ("title", "categories", "tags")
    }
    put = workers.a.put("/v1/items/new-at-a", json=fields)
    assert put.status_code == 200, put.text
    recs = workers.b.get(f"/v1/users/{user}/recommendations", params={"explain": "true"}).json()
    assert recs["items"][-1]["item_id"] == "new-at-a"
    assert recs["items"][-1]["reason"].startswith("new in the catalogue")
    similar = workers.b.get(f"/v1/items/{member}/similar", params={"k": 1}).json()
    assert similar["items"][0]["item_id"] == "new-at-a"


def test_a_background_refit_reaches_both_workers_and_every_request_is_answered(workers):
    before = {
        pid: c.get("/healthz").json()["model_version"] for pid, c in workers.by_worker.items()
    }
    assert len(set(before.values())) == 1
    version = next(iter(before.values()))
    workers.a.post("/v1/events", json={"user_id": "refit-w", "item_id": "1", "type": "click"})
    started = workers.b.post("/v1/admin/refit").json()
    assert started["started"] and started["how"] == "process", started
    statuses: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=workers.url, headers={"X-API-Key": KEY}, timeout=60) as own:
            while not stop.is_set():
                try:
                    statuses.append(own.get("/v1/users/5/recommendations").status_code)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 300
    try:
        while {c.get("/healthz").json()["model_version"] for c in workers.by_worker.values()} != {
            version + 1
        }:
            assert time.monotonic() < deadline, "the new version did not reach both workers"
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not failures and statuses and set(statuses) == {200}, (failures[:3], set(statuses))
    for client in workers.by_worker.values():  # the event taken before the refit is in it
        assert client.get("/v1/users/refit-w/interests").json()["n_events"] == 1


def test_a_user_erased_at_one_worker_is_gone_at_the_other(workers):
    user = "erase-w"
    workers.a.post("/v1/events", json={"user_id": user, "item_id": "1", "type": "click"})
    assert workers.b.get(f"/v1/users/{user}/interests").json()["n_events"] == 1
    erased = workers.a.delete(f"/v1/users/{user}")
    assert erased.status_code == 200 and erased.json()["events_deleted"] == 1
    assert workers.b.get(f"/v1/users/{user}/interests").json()["n_events"] == 0
    assert _items(workers.b, user) == _items(workers.b, "never-seen")  # a stranger again


def test_a_fitted_user_erased_at_one_worker_is_gone_at_the_other(workers):
    user = "7"  # in the saved version: the erasure rewrites it, the other worker swaps to it
    assert workers.b.get(f"/v1/users/{user}/interests").json()["n_events"] > 0
    assert workers.a.delete(f"/v1/users/{user}").json()["components"]["artefacts"]
    assert workers.b.get(f"/v1/users/{user}/interests").json()["n_events"] == 0
    assert _items(workers.b, user) == _items(workers.b, "never-seen")


def test_an_item_removed_at_one_worker_is_not_served_by_the_other(workers):
    user = "11"
    target = _items(workers.b, user)[0]
    assert workers.a.delete(f"/v1/items/{target}").json()["removed"]
    assert target not in _items(workers.b, user)
    assert workers.b.get(f"/v1/items/{target}/similar").status_code == 404
