"""Every endpoint refuses a missing key (401), an unknown key (401) and a key without its scope (403)."""

from __future__ import annotations

import pytest

from interestlens.serve import ServeSettings
from interestlens.serve.settings import hash_key
from tests.serve.conftest import assert_error, auth

#: (method, path, body, scope needed)
ROUTES = [
    ("POST", "/v1/events", {"user_id": "a", "item_id": "1", "type": "click"}, "write"),
    ("PUT", "/v1/items/auth-item", {"title": "x"}, "write"),
    ("GET", "/v1/items/1", None, "read"),
    ("DELETE", "/v1/items/1", None, "write"),
    ("GET", "/v1/users/1/recommendations", None, "read"),
    ("POST", "/v1/feedback", {"request_id": "r", "item_id": "1", "reward": 1}, "write"),
    ("GET", "/v1/users/1/interests", None, "read"),
    ("GET", "/v1/items/1/similar", None, "read"),
    ("DELETE", "/v1/users/1", None, "admin"),
    ("POST", "/v1/admin/refit", None, "admin"),
    ("GET", "/metrics", None, "read"),
]
#: A key that lacks each scope.
LACKING = {"read": "write", "write": "read", "admin": "write"}


@pytest.mark.parametrize(("method", "path", "body", "scope"), ROUTES)
def test_every_endpoint_needs_a_key_with_its_scope(http, method, path, body, scope):
    err = assert_error(http.request(method, path, json=body), 401, "unauthorized")
    assert err["field"] == "header.X-API-Key"
    assert_error(
        http.request(method, path, json=body, headers={"X-API-Key": "not-a-key"}),
        401,
        "unauthorized",
    )
    err = assert_error(
        http.request(method, path, json=body, headers=auth(LACKING[scope])), 403, "forbidden"
    )
    assert scope in err["message"]


def test_every_route_of_the_spec_but_healthz_is_in_the_matrix(http):
    spec = http.get("/openapi.json").json()["paths"]
    in_spec = {(m.upper(), p) for p, ops in spec.items() for m in ops if p != "/healthz"}
    templates = {
        "/v1/items/auth-item": "/v1/items/{item_id}",
        "/v1/items/1": "/v1/items/{item_id}",
        "/v1/items/1/similar": "/v1/items/{item_id}/similar",
        "/v1/users/1": "/v1/users/{user_id}",
        "/v1/users/1/interests": "/v1/users/{user_id}/interests",
        "/v1/users/1/recommendations": "/v1/users/{user_id}/recommendations",
    }
    assert {(m, templates.get(p, p)) for m, p, _, _ in ROUTES} == in_spec


def test_the_admin_key_reads_and_writes(http):
    assert http.get("/v1/users/1/interests", headers=auth("admin")).status_code == 200
    assert http.get("/metrics", headers=auth("admin")).status_code == 200


def test_keys_are_kept_as_hashes_and_the_environment_key_is_admin(monkeypatch):
    monkeypatch.setenv("INTERESTLENS_API_KEY", "from-env")
    settings = ServeSettings(api_keys={"reader": "read"})
    assert settings.scopes_of("from-env") == {"read", "write", "admin"}
    assert settings.scopes_of("reader") == {"read"}
    assert settings.scopes_of("from-env ") is None
    assert set(settings.key_scopes) == {hash_key("from-env"), hash_key("reader")}
    assert "from-env" not in repr(settings) and "reader" not in repr(settings)


def test_settings_refuse_unknown_scopes_and_bad_limits():
    with pytest.raises(ValueError, match="unknown scopes \\['sudo'\\]"):
        ServeSettings(api_keys={"k": ["sudo"]})
    with pytest.raises(ValueError, match="max_batch"):
        ServeSettings(max_batch=0)
    defaults = ServeSettings()
    assert (defaults.max_body_bytes, defaults.max_batch) == (10 * 1024 * 1024, 10_000)
