"""A real uvicorn server on 127.0.0.1 over one engine fitted with the light hybrid, for the session."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from tests.conftest import LIGHT_HYBRID

#: One key per scope.
KEYS = {"admin-key": ["admin"], "write-key": ["write"], "read-key": ["read"]}
#: Limits small enough to reach cheaply in a test.
MAX_BODY = 200_000
MAX_BATCH = 50


@dataclass
class Live:
    """A running server: its base URL and the engine behind it."""

    url: str
    engine: object


def start_server(app: object) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Start uvicorn on a free port of 127.0.0.1 in a thread; return once it answers."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    return server, thread, url


def first_users(ml_small, n: int = 40):
    """ml-latest-small's first ``n`` users with the items they rated: a fit of seconds."""
    from interestlens.data import Dataset

    users = ml_small.user_ids[:n]
    events = ml_small.events[ml_small.events["user_id"].isin(users)]
    items = ml_small.items[ml_small.items["item_id"].isin(events["item_id"])]
    return Dataset(events.reset_index(drop=True), items.reset_index(drop=True), name=f"ml-{n}")


@pytest.fixture(scope="session")
def serve_engine(tmp_path_factory, ml_small, encoder, sentiment):
    """An engine of its own (tests here write to it), fitted with the light hybrid.

    On the first 40 users of ml-latest-small and the 2,511 items they rated, so the
    fit takes seconds, not minutes, and the whole tests/serve run stays short.
    """
    from interestlens.engine import Config, Engine

    small = first_users(ml_small)
    config = Config(data_dir=tmp_path_factory.mktemp("serve-engine"), hybrid_models=LIGHT_HYBRID)
    return Engine(config, encoder=encoder, sentiment=sentiment).fit(small)


@pytest.fixture(scope="session")
def live(serve_engine) -> Iterator[Live]:
    from interestlens.serve import ServeSettings, create_app

    settings = ServeSettings(api_keys=KEYS, max_body_bytes=MAX_BODY, max_batch=MAX_BATCH)
    server, thread, url = start_server(create_app(serve_engine, settings))
    yield Live(url, serve_engine)
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def http(live) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=60) as client:
        yield client


def auth(scope: str = "admin") -> dict[str, str]:
    """Headers with the key of ``scope``."""
    return {"X-API-Key": f"{scope}-key"}


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    """The response is ``status`` in the one error shape; its error object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}, body
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]
