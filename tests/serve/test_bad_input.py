"""Bad input answers 4xx in the one error shape, naming the field, never 500."""

from __future__ import annotations

import json

import pytest

from tests.serve.conftest import MAX_BATCH, MAX_BODY, assert_error, auth


def test_wrong_types_and_unknown_fields_name_the_field(http):
    w = auth("write")
    err = assert_error(http.post("/v1/events", json={"user_id": 5, "item_id": "1"}, headers=w), 422)
    assert err["field"] == "body.user_id"
    err = assert_error(
        http.post("/v1/events", json={"user_id": "5", "item_id": "1", "colour": "red"}, headers=w),
        422,
    )
    assert err["field"] == "body.colour" and "colour" in err["message"]
    events = [{"user_id": "u", "item_id": str(i), "type": "click"} for i in range(5)]
    events[3]["item_id"] = ["not", "a", "string"]
    err = assert_error(http.post("/v1/events", json={"events": events}, headers=w), 422)
    assert err["field"] == "body.events[3].item_id"
    err = assert_error(
        http.post("/v1/events", json={"user_id": "u", "value": "lots"}, headers=w), 422
    )
    assert err["field"] == "body.value"
    err = assert_error(http.put("/v1/items/x", json={"title": "t", "price": 3}, headers=w), 422)
    assert err["field"] == "body.price"
    err = assert_error(
        http.post("/v1/feedback", json={"request_id": "r", "item_id": "1"}, headers=w), 422
    )
    assert err["field"] == "body.reward"
    assert_error(http.post("/v1/events", json=[1, 2], headers=w), 422)


def test_non_finite_numbers_are_refused(http):
    body = '{"request_id": "r", "item_id": "1", "reward": NaN}'
    err = assert_error(
        http.post(
            "/v1/feedback",
            content=body,
            headers={**auth("write"), "Content-Type": "application/json"},
        ),
        422,
    )
    assert err["field"] == "body.reward"


def test_malformed_json(http):
    err = assert_error(
        http.post(
            "/v1/events",
            content=b'{"user_id": "u", ',
            headers={**auth("write"), "Content-Type": "application/json"},
        ),
        400,
        "malformed_json",
    )
    assert err["field"] == "body"


def test_an_oversized_body_is_413_declared_or_streamed(http):
    big = json.dumps({"user_id": "u", "text": "x" * MAX_BODY, "type": "search"}).encode()
    err = assert_error(
        http.post(
            "/v1/events",
            content=big,
            headers={**auth("write"), "Content-Type": "application/json"},
        ),
        413,
        "payload_too_large",
    )
    assert err["field"] == "body" and str(MAX_BODY) in err["message"]

    def chunks():  # no Content-Length: the limit counts what arrives
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    assert_error(
        http.post(
            "/v1/events",
            content=chunks(),
            headers={**auth("write"), "Content-Type": "application/json"},
        ),
        413,
        "payload_too_large",
    )


def test_a_batch_over_the_limit_is_413_naming_it(http):
    events = [{"user_id": "u", "item_id": "1", "type": "click"}] * (MAX_BATCH + 1)
    err = assert_error(
        http.post("/v1/events", json={"events": events}, headers=auth("write")),
        413,
        "batch_too_large",
    )
    assert err["field"] == "body.events" and str(MAX_BATCH) in err["message"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/users/1/recommendations", {"k": 0}, "query.k"),
        ("/v1/users/1/recommendations", {"k": 1001}, "query.k"),
        ("/v1/users/1/recommendations", {"k": "ten"}, "query.k"),
        ("/v1/users/1/recommendations", {"explore": 1.5}, "query.explore"),
        ("/v1/users/1/recommendations", {"explore": -0.1}, "query.explore"),
        ("/v1/users/1/recommendations", {"explain": "maybe"}, "query.explain"),
        ("/v1/items/1/similar", {"k": 1001}, "query.k"),
    ],
)
def test_query_parameters_out_of_range(http, path, params, field):
    err = assert_error(http.get(path, params=params, headers=auth("read")), 422, "invalid")
    assert err["field"] == field


def test_the_largest_k_is_served(http):
    r = http.get("/v1/users/1/recommendations", params={"k": 1000}, headers=auth("read"))
    assert r.status_code == 200 and len(r.json()["items"]) == 1000


def test_unknown_routes_and_methods_answer_in_the_error_shape(http):
    assert_error(http.get("/v2/nothing", headers=auth("read")), 404, "not_found")
    assert_error(http.get("/"), 404, "not_found")
    assert_error(http.patch("/v1/events", headers=auth("write")), 405, "method_not_allowed")


def test_odd_but_valid_input_is_never_a_500(http):
    w, r = auth("write"), auth("read")
    answers = [
        http.post(
            "/v1/events",
            json={"events": [{"user_id": "odd-u", "item_id": "never-seen-item", "type": "click"}]},
            headers=w,
        ),
        http.get("/v1/users/odd-u/recommendations", params={"explain": "true"}, headers=r),
        http.get("/v1/users/odd-u/interests", headers=r),
        http.post(
            "/v1/events",
            json={"user_id": "searcher", "type": "search", "text": "funny animated toys"},
            headers=w,
        ),
        http.get("/v1/users/searcher/recommendations", params={"explain": "true"}, headers=r),
        http.get("/v1/users/searcher/interests", headers=r),
        http.post("/v1/events", json={"events": []}, headers=w),
        http.post(
            "/v1/events",
            json={
                "user_id": "",
                "item_id": "1",
                "type": "click",
                "timestamp": "2020-01-01T00:00:00Z",
            },
            headers=w,
        ),
        http.post(
            "/v1/events", json={"user_id": "t", "item_id": "1", "timestamp": "yesterday"}, headers=w
        ),
        http.put("/v1/items/blank-item", json={"title": " ", "tags": [""]}, headers=w),
        http.get("/v1/items/blank-item/similar", headers=r),
        http.get(
            "/v1/users/%20%F0%9F%99%82/recommendations", params={"k": 1000, "explore": 1}, headers=r
        ),
        http.post(
            "/v1/feedback",
            json={"request_id": "none", "item_id": "1", "reward": -1e308},
            headers=w,
        ),
        http.delete("/v1/users/never-existed", headers=auth("admin")),
        http.post("/v1/events", content=b"", headers={**w, "Content-Type": "application/json"}),
        http.post("/v1/events", content=b"user_id=1", headers={**w, "Content-Type": "text/plain"}),
    ]
    statuses = [a.status_code for a in answers]
    assert all(s < 500 for s in statuses), list(
        zip(statuses, [a.text[:200] for a in answers], strict=True)
    )
    for a in answers:
        if a.status_code >= 400:
            assert set(a.json()) == {"error"}, a.text
    assert statuses[0] == 200 and answers[0].json()["stored"] == 1
    assert statuses[1] == 200
    assert statuses[9:11] == [422, 404] and answers[9].json()["error"]["field"] == "body"


def test_an_item_without_words_is_422_and_not_stored(http):
    answer = http.put("/v1/items/wordless", json={"attributes": {"price": 3}}, headers=auth())
    assert "wordless" in assert_error(answer, 422, "invalid")["message"]
    assert_error(http.get("/v1/items/wordless", headers=auth()), 404, "not_found")


def test_a_date_time_out_of_range_rejects_its_event_not_the_batch(http):
    """Year 0074 (beyond what the engine's nanoseconds hold) is a rejection by index."""
    w = auth("write")
    good = {"user_id": "far-u", "item_id": "1", "type": "click"}
    answer = http.post(
        "/v1/events",
        json={
            "events": [
                {**good, "timestamp": "0074-01-01T00:00:00Z"},
                {**good, "timestamp": "2024-05-01T12:00:00Z"},
            ]
        },
        headers=w,
    )
    assert answer.status_code == 200, answer.text
    out = answer.json()
    assert (out["stored"], out["rejected"]) == (1, 1)
    [rejection] = out["rejections"]
    assert rejection["index"] == 0
    assert "timestamp" in rejection["reason"] and "0074-01-01" in rejection["reason"]
    # Well-formed RFC 3339 that Python's datetime cannot hold either, and far offsets.
    far = ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "2016-12-31T23:59:60Z"]
    answer = http.post(
        "/v1/events",
        json={"events": [{**good, "item_id": "2", "timestamp": t} for t in far] + [good]},
        headers=w,
    )
    assert answer.status_code == 200, answer.text
    out = answer.json()
    assert out["stored"] == 1
    assert [r["index"] for r in out["rejections"]] == [0, 1, 2]
    assert all("timestamp" in r["reason"] for r in out["rejections"])
    # A wrong type is still a 422 for the request, naming the field.
    answer = http.post(
        "/v1/events", json={"events": [good, {**good, "timestamp": 1e20}]}, headers=w
    )
    assert assert_error(answer, 422)["field"] == "body.events[1].timestamp"
