"""Schemathesis over the server's ``/openapi.json``: no 5xx, and every answer as the spec says.

Positive and negative requests are generated for every operation of the spec (its
examples, its boundaries, then random requests), sent to a real uvicorn server on
127.0.0.1, and each response is checked by schemathesis: never a server error; status
code, content type, headers and body as documented; invalid data refused with a 4xx;
the auth the spec declares enforced.

The spec is read when the module is collected, from an app built by the same
``create_app`` over an unfitted engine (schemathesis's lazy loader, which would read it
from the running server, does not run under pytest 9.2); ``test_the_live_server_publishes
_this_spec`` checks that the live server's ``/openapi.json`` is that document. The run
has a server and an engine of its own (``DELETE /v1/users/{id}`` and ``PUT
/v1/items/{id}`` with generated ids must not touch what the other serve tests read), and
a few examples per operation, so it stays under a minute.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from tests.conftest import LIGHT_HYBRID
from tests.serve.conftest import KEYS, MAX_BATCH, MAX_BODY, start_server

#: Examples per operation in the random (fuzzing) phase.
EXAMPLES = 12
#: An admin key: every operation is allowed, so the answers are about the data.
ADMIN = {"X-API-Key": "admin-key"}
#: A refit fits a model: left out of the generated runs, called once below.
SLOW = "/v1/admin/refit"


def _settings() -> Any:
    from interestlens.serve import ServeSettings

    return ServeSettings(api_keys=KEYS, max_body_bytes=MAX_BODY, max_batch=MAX_BATCH)


def _spec() -> dict[str, Any]:
    from interestlens.engine import Config, Engine
    from interestlens.serve import create_app

    with tempfile.TemporaryDirectory() as data_dir:
        return create_app(Engine(Config(data_dir=data_dir)), _settings()).openapi()


SPEC = _spec()


def _load(*, with_key: bool) -> schemathesis.BaseSchema:
    loaded = schemathesis.openapi.from_dict(SPEC)
    loaded.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=EXAMPLES,
        # With a key sent on every request, a generated (or removed) key would only be
        # overwritten: a "negative" case whose one flaw was the key would then be valid.
        with_security_parameters=not with_key,
    )
    # The engine has rules the spec cannot state (an item needs words, an event's fields
    # depend on its type): schema-valid data may be refused with 422, never with a 5xx.
    loaded.config.checks.positive_data_acceptance.expected_statuses = [
        "2xx",
        "3xx",
        "401",
        "403",
        "404",
        "409",
        "422",
        "429",
    ]

    @loaded.hook("filter_query")
    def declared_only(context: schemathesis.HookContext, query: dict[str, Any] | None) -> bool:
        """Unknown query parameters are ignored (only unknown body fields are refused)."""
        operation = context.operation
        if not query or operation is None:
            return True
        declared = {
            p["name"]
            for p in SPEC["paths"][operation.path][operation.method].get("parameters", [])
            if p["in"] == "query"
        }
        return set(query) <= declared

    return loaded


def generated(loaded: schemathesis.BaseSchema) -> Any:
    """``loaded.parametrize()`` over every operation but the refit."""
    return loaded.exclude(path=SLOW).parametrize()


schema = _load(with_key=True)
keyless = _load(with_key=False)

HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def fuzz_url(tmp_path_factory, ml_small, encoder, sentiment) -> Iterator[str]:
    """A server of its own over an engine of its own (the first 20 users of ml-latest-small)."""
    from interestlens.data import Dataset
    from interestlens.engine import Config, Engine
    from interestlens.serve import create_app

    users = ml_small.user_ids[:20]
    events = ml_small.events[ml_small.events["user_id"].isin(users)]
    items = ml_small.items[ml_small.items["item_id"].isin(events["item_id"])]
    small = Dataset(events.reset_index(drop=True), items.reset_index(drop=True), name="ml-20")
    config = Config(data_dir=tmp_path_factory.mktemp("fuzz-engine"), hybrid_models=LIGHT_HYBRID)
    engine = Engine(config, encoder=encoder, sentiment=sentiment).fit(small)
    server, thread, url = start_server(create_app(engine, _settings()))
    yield url
    server.should_exit = True
    thread.join(10)


def test_the_live_server_publishes_this_spec(fuzz_url: str) -> None:
    assert httpx.get(f"{fuzz_url}/openapi.json", timeout=30).json() == SPEC


@generated(schema)
@HYPOTHESIS
def test_every_operation_with_a_key(case: schemathesis.Case, fuzz_url: str) -> None:
    case.call_and_validate(base_url=fuzz_url, headers=ADMIN, timeout=60)


@generated(keyless)
@settings(HYPOTHESIS, max_examples=3)
def test_every_operation_without_a_key(case: schemathesis.Case, fuzz_url: str) -> None:
    case.call_and_validate(base_url=fuzz_url, timeout=60)


def test_refit_once(fuzz_url: str) -> None:
    """One refit, its answer checked like the rest; then it goes live (at once, or soon)."""
    before = httpx.get(f"{fuzz_url}/healthz", timeout=30).json()["model_version"]
    response = (
        schema[SLOW]["POST"].Case().call_and_validate(base_url=fuzz_url, headers=ADMIN, timeout=300)
    )
    assert response.status_code < 300, response.text
    deadline = time.monotonic() + 300
    while httpx.get(f"{fuzz_url}/healthz", timeout=30).json()["model_version"] == before:
        assert time.monotonic() < deadline, "the refit never went live"
        time.sleep(0.5)
