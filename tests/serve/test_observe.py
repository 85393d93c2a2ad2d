"""/metrics counts what happened; access log lines are JSON with the response's X-Request-ID."""

from __future__ import annotations

import json
import logging

from prometheus_client.parser import text_string_to_metric_families

from tests.serve.conftest import auth


def scrape(http) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    r = http.get("/metrics", headers=auth("read"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_events_slates_exploration_and_feedback(http, live):
    before = scrape(http)
    events = [
        {"user_id": "metrics-u", "item_id": "1", "type": "click", "event_id": "m-1"},
        {"user_id": "metrics-u", "item_id": "2", "type": "click", "event_id": "m-2"},
        {"user_id": "metrics-u", "item_id": "3", "type": "nonsense"},
    ]
    http.post("/v1/events", json={"events": events}, headers=auth("write"))
    http.post("/v1/events", json=events[0], headers=auth("write"))
    recs = http.get(
        "/v1/users/metrics-u/recommendations",
        params={"k": 20, "explore": 1.0},
        headers=auth("read"),
    ).json()
    n_explored = sum(i["explored"] for i in recs["items"])
    for reward, item in zip((1.0, 0.5), recs["items"], strict=False):
        http.post(
            "/v1/feedback",
            json={"request_id": recs["request_id"], "item_id": item["item_id"], "reward": reward},
            headers=auth("write"),
        )
    after = scrape(http)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("interestlens_events_total", outcome="stored") == 2
    assert delta("interestlens_events_total", outcome="duplicate") == 1
    assert delta("interestlens_events_total", outcome="rejected") == 1
    assert delta("interestlens_slates_total") == 1
    assert delta("interestlens_recommendations_total") == 20
    assert n_explored > 0 and delta("interestlens_items_explored_total") == n_explored
    assert delta("interestlens_feedback_reward_count") == 2
    assert delta("interestlens_feedback_reward_sum") == 1.5
    route = "/v1/users/{user_id}/recommendations"
    count = "interestlens_http_request_duration_seconds_count"
    assert delta(count, route=route, method="GET", status="200") == 1
    assert delta(count, route="/v1/events", method="POST", status="200") == 2
    assert value(after, "interestlens_model_version") == live.engine.snapshot.generation
    assert value(after, "interestlens_model_age_seconds") > 0


def test_unmatched_routes_are_one_label(http):
    before = scrape(http)
    http.get("/no/such/route/1")
    http.get("/no/such/route/2")
    after = scrape(http)
    name = "interestlens_http_request_duration_seconds_count"
    labels = {"route": "unmatched", "method": "GET", "status": "404"}
    assert value(after, name, **labels) - value(before, name, **labels) == 2


def test_access_log_lines_are_json_with_the_request_id_and_no_key(http, caplog):
    caplog.set_level(logging.INFO, logger="interestlens.serve.access")
    r = http.get("/v1/users/3/interests", headers=auth("read"))
    mine = http.get("/healthz", headers={"X-Request-ID": "trace-abc-123"})
    assert mine.headers["x-request-id"] == "trace-abc-123"
    rid = r.headers["x-request-id"]
    assert len(rid) == 32

    def lines() -> list[dict]:
        return [
            json.loads(rec.getMessage())
            for rec in caplog.records
            if rec.name == "interestlens.serve.access"
        ]

    assert {rid, "trace-abc-123"} <= {x["request_id"] for x in lines()}
    line = next(x for x in lines() if x["request_id"] == rid)
    assert (
        line["route"] == "/v1/users/{user_id}/interests" and line["path"] == "/v1/users/3/interests"
    )
    assert line["status"] == 200 and line["method"] == "GET" and line["duration_ms"] > 0
    assert all("read-key" not in rec.getMessage() for rec in caplog.records)
    bad = http.get("/healthz", headers={"X-Request-ID": "x" * 500})
    assert bad.headers["x-request-id"] != "x" * 500
