"""Each endpoint's happy path, against the live server."""

from __future__ import annotations

import math
import time

from tests.serve.conftest import assert_error, auth


def test_healthz_is_open_and_names_the_model(http, live):
    r = http.get("/healthz")
    assert r.status_code == 200
    doc = r.json()
    snap = live.engine.snapshot
    assert doc["status"] == "ok" and doc["fitted"] and doc["store_reachable"]
    assert doc["model_version"] == snap.generation
    assert 0 <= doc["model_age_seconds"] <= time.time() - snap.created + 5


def test_openapi_and_docs(http):
    spec = http.get("/openapi.json").json()
    assert {
        "/v1/events",
        "/v1/items/{item_id}",
        "/v1/users/{user_id}/recommendations",
        "/v1/feedback",
        "/v1/users/{user_id}/interests",
        "/v1/items/{item_id}/similar",
        "/v1/users/{user_id}",
        "/v1/admin/refit",
        "/healthz",
        "/metrics",
    } <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    docs = http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_an_event_changes_the_next_recommendation_and_is_not_served_back(http):
    user = "7"
    before = http.get(f"/v1/users/{user}/recommendations", params={"k": 10}, headers=auth("read"))
    assert before.status_code == 200
    first = before.json()
    assert first["user_id"] == user and len(first["items"]) == 10 and first["request_id"]
    assert [i["rank"] for i in first["items"]] == list(range(1, 11))
    n_before = http.get(f"/v1/users/{user}/interests", headers=auth("read")).json()["n_events"]
    top = first["items"][0]["item_id"]
    r = http.post(
        "/v1/events",
        json={"user_id": user, "item_id": top, "type": "rating", "value": 5.0},
        headers=auth("write"),
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"stored": 1, "duplicates": 0, "rejected": 0, "rejections": []}
    after = http.get(f"/v1/users/{user}/recommendations", params={"k": 10}, headers=auth("read"))
    served = [i["item_id"] for i in after.json()["items"]]
    assert top not in served
    assert served != [i["item_id"] for i in first["items"]]
    profile = http.get(f"/v1/users/{user}/interests", headers=auth("read")).json()
    assert profile["n_events"] == n_before + 1


def test_a_batch_stores_the_good_rows_lists_the_bad_by_index_and_is_idempotent(http):
    events = [
        {"user_id": "batch-u", "item_id": "1", "type": "click", "event_id": "b-1"},
        {"user_id": "batch-u", "item_id": "2", "type": "teleport", "event_id": "b-2"},
        {"user_id": "batch-u", "type": "click", "event_id": "b-3"},
        {"user_id": "batch-u", "type": "search", "text": "space opera", "event_id": "b-4"},
    ]
    r = http.post("/v1/events", json={"events": events}, headers=auth("write"))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["stored"], doc["duplicates"], doc["rejected"]) == (2, 0, 2)
    assert [x["index"] for x in doc["rejections"]] == [1, 2]
    assert "teleport" in doc["rejections"][0]["reason"]
    again = http.post("/v1/events", json={"events": events}, headers=auth("write")).json()
    assert (again["stored"], again["duplicates"], again["rejected"]) == (0, 2, 2)


def test_an_unknown_user_gets_cold_start_recommendations_and_an_empty_profile(http):
    r = http.get("/v1/users/nobody-at-all/recommendations", headers=auth("read"))
    assert r.status_code == 200 and len(r.json()["items"]) == 10
    p = http.get("/v1/users/nobody-at-all/interests", headers=auth("read")).json()
    assert p["user_id"] == "nobody-at-all" and p["n_events"] == 0 and p["interests"] == []


def test_explain_and_explore(http):
    r = http.get(
        "/v1/users/15/recommendations",
        params={"k": 20, "explore": 1.0, "explain": "true"},
        headers=auth("read"),
    ).json()
    assert all(i["reason"] for i in r["items"])
    explored = [i for i in r["items"] if i["explored"]]
    assert explored and all(0 < i["propensity"] < 1 for i in explored)
    assert all(i["reason"].startswith("exploring something new") for i in explored)
    assert all(i["score"] is None or math.isfinite(i["score"]) for i in r["items"])


def test_a_new_item_is_put_fetched_and_recommended_to_a_user_who_holds_its_interest(http, live):
    user = "21"
    top = http.get(f"/v1/users/{user}/interests", headers=auth("read")).json()["interests"][0]
    tax = live.engine.snapshot.taxonomy
    member = sorted(tax.members(top["interest_id"]))[0]
    source = http.get(f"/v1/items/{member}", headers=auth("read"))
    assert source.status_code == 200, source.text
    fields = {k: v for k, v in source.json().items() if k in ("title", "categories", "tags")}
    assert fields["title"]
    put = http.put("/v1/items/brand-new-serve", json=fields, headers=auth("write"))
    assert put.status_code == 200, put.text
    assert top["interest_id"] in {i["interest_id"] for i in put.json()["interests"]}
    got = http.get("/v1/items/brand-new-serve", headers=auth("read")).json()
    assert got["item_id"] == "brand-new-serve" and got["title"] == fields["title"]
    similar = http.get(f"/v1/items/{member}/similar", params={"k": 1}, headers=auth("read"))
    assert similar.json()["items"][0]["item_id"] == "brand-new-serve"
    recs = http.get(
        f"/v1/users/{user}/recommendations", params={"explain": "true"}, headers=auth("read")
    ).json()
    last = recs["items"][-1]
    assert last["item_id"] == "brand-new-serve"
    assert last["reason"] == f"new in the catalogue: serves your interest in {top['label']}"


def test_items_unknown_and_delete(http):
    assert_error(http.get("/v1/items/no-such-item", headers=auth("read")), 404, "not_found")
    err = assert_error(
        http.get("/v1/items/no-such-item/similar", headers=auth("read")), 404, "not_found"
    )
    assert err["field"] == "path.item_id"
    assert_error(http.delete("/v1/items/no-such-item", headers=auth("write")), 404, "not_found")


def test_a_removed_item_is_not_served_until_put_again(http):
    user = "9"
    top = http.get(f"/v1/users/{user}/recommendations", headers=auth("read")).json()["items"]
    target = top[0]["item_id"]
    gone = http.delete(f"/v1/items/{target}", headers=auth("write"))
    assert gone.status_code == 200 and gone.json() == {"item_id": target, "removed": True}
    again = http.get(f"/v1/users/{user}/recommendations", headers=auth("read")).json()["items"]
    assert target not in {i["item_id"] for i in again} and len(again) == 10
    assert_error(http.get(f"/v1/items/{target}", headers=auth("read")), 404, "not_found")
    assert_error(http.get(f"/v1/items/{target}/similar", headers=auth("read")), 404, "not_found")
    back = http.put(f"/v1/items/{target}", json={"title": "back again"}, headers=auth("write"))
    assert back.status_code == 200, back.text
    assert http.get(f"/v1/items/{target}", headers=auth("read")).json()["title"] == "back again"


def test_similar_items(http):
    r = http.get("/v1/items/1/similar", params={"k": 5}, headers=auth("read")).json()
    ids = [i["item_id"] for i in r["items"]]
    assert r["item_id"] == "1" and len(ids) == 5 and "1" not in ids
    sims = [i["similarity"] for i in r["items"]]
    assert sims == sorted(sims, reverse=True)


def test_feedback_teaches_the_policy_and_unknown_slates_are_404(http):
    recs = http.get(
        "/v1/users/33/recommendations", params={"explore": 0.3}, headers=auth("read")
    ).json()
    item = recs["items"][0]["item_id"]
    r = http.post(
        "/v1/feedback",
        json={"request_id": recs["request_id"], "item_id": item, "reward": 1.0},
        headers=auth("write"),
    )
    assert r.status_code == 200 and r.json() == {"learned": True}
    err = assert_error(
        http.post(
            "/v1/feedback",
            json={"request_id": "no-such-slate", "item_id": item, "reward": 1.0},
            headers=auth("write"),
        ),
        404,
        "not_found",
    )
    assert err["field"] == "body.request_id"


def test_forget_erases_the_user(http, live):
    user = "forget-me"
    http.post(
        "/v1/events",
        json={"events": [{"user_id": user, "item_id": str(i), "type": "click"} for i in (1, 2, 3)]},
        headers=auth("write"),
    )
    assert live.engine.knows_user(user)
    r = http.delete(f"/v1/users/{user}", headers=auth("admin"))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["user_id"] == user and doc["events_deleted"] == 3 and doc["components"]["store"]
    assert not live.engine.knows_user(user)
    again = http.get(f"/v1/users/{user}/interests", headers=auth("read")).json()
    assert again["n_events"] == 0
