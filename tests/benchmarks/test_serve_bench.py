"""``benchmarks/serve.py`` and its load generator: schedule, parsing and counting; no timing asserts."""

from __future__ import annotations

import asyncio
import os
import random
import sys

import pytest

from tests.benchmarks.scripts import benchmark_script


@pytest.fixture(scope="module")
def loadgen():
    with benchmark_script("loadgen") as module:
        yield module


@pytest.fixture(scope="module")
def bench():
    with benchmark_script("serve") as module:
        yield module


def parse(loadgen, raw: bytes) -> tuple[int, bytes, bool]:
    async def go() -> tuple[int, bytes, bool]:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await loadgen.read_response(reader)

    return asyncio.run(go())


def test_an_open_loop_run_starts_rate_times_seconds_jobs(loadgen):
    assert loadgen.schedule(100, 60) == 6000
    assert loadgen.schedule(50, 15) == 750
    assert loadgen.schedule(100, 0.001) == 1  # at least one


def test_responses_are_read_by_length_by_chunks_and_to_the_end(loadgen):
    body = b'{"stored": 100}'
    plain = b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n" + body + b"HTTP/1.1 ..."
    assert parse(loadgen, plain) == (200, body, True)
    chunked = (
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\n" + body[:5] + b"\r\na\r\n" + body[5:] + b"\r\n0\r\n\r\n"
    )
    assert parse(loadgen, chunked) == (201, body, True)
    closing = b"HTTP/1.1 503 Unavailable\r\nConnection: close\r\n\r\n" + body
    assert parse(loadgen, closing) == (503, body, False)
    with pytest.raises(loadgen.HTTPError):
        parse(loadgen, b"HTTP/1.1 200 OK\r\ncontent-")  # cut before the end of the head


def test_answers_are_checked_for_stored_events_and_a_served_back_item(loadgen):
    assert loadgen.check_answer({"expect_stored": 100}, 200, b'{"stored": 100}') == (100, None)
    assert loadgen.check_answer({"expect_stored": 100}, 200, b'{"stored": 99}') == (
        99,
        "not_stored",
    )
    slate = b'{"items": [{"item_id": "1"}, {"item_id": "2"}]}'
    assert loadgen.check_answer({"absent_item": "3"}, 200, slate) == (0, None)
    assert loadgen.check_answer({"absent_item": "2"}, 200, slate) == (0, "served_back")
    assert loadgen.check_answer({}, 401, b"") == (0, "status_401")


def test_a_summary_counts_each_step_and_keeps_a_window_of_due_times(bench):
    # four jobs at 2/s (due at 0, 0.5, 1.0, 1.5 s) of two requests each
    records = [
        [0.5, [10.0, 4.0], [200, 200], 1, []],
        [0.5, [12.0, 6.0], [200, 200], 1, [[1, "served_back"]]],
        [0.5, [30.0], [200], 1, [[1, "timeout"]]],
        [0.5, [], [], 0, [[0, "connection: ConnectionResetError"]]],
    ]
    result = {
        "rate": 2.0,
        "records": records,
        "wall_seconds": 2.0,
        "cpu_share": 0.05,
        "max_in_flight": 2,
        "connections_opened": 2,
    }
    first = bench.summarize(result, 0)
    assert (first["n"], first["max"], first["p50"]) == (3, 30.0, 12.0)
    assert first["error_kinds"] == {"connection: ConnectionResetError": 1}
    second = bench.summarize(result, 1)
    assert (second["n"], second["max"]) == (2, 6.0)
    assert second["error_kinds"] == {"served_back": 1, "timeout": 1, "not_sent": 1}
    window = bench.summarize(result, 0, window=(0.4, 1.1))  # the jobs due at 0.5 and 1.0 s
    assert (window["n"], window["max"], window["errors"]) == (2, 30.0, 0)


def test_pair_jobs_click_a_new_popular_item_for_each_user_met_again(bench):
    workload = object.__new__(bench.Workload)  # without loading a dataset
    workload.users = ["1", "2"]
    workload.popular = ["10", "20", "30", "40"]
    workload.seen = {"1": {"10"}, "2": set()}
    workload.rng = random.Random(0)
    jobs = workload.pair_jobs(4)
    clicks: dict[str, list[str]] = {}
    for post, get in jobs:
        body = post["body"]
        assert (post["method"], post["expect_stored"], body["type"]) == ("POST", 1, "click")
        assert get["path"] == f"/v1/users/{body['user_id']}/recommendations?k=10"
        assert get["absent_item"] == body["item_id"]
        clicks.setdefault(body["user_id"], []).append(body["item_id"])
    assert clicks == {"1": ["20", "30"], "2": ["10", "20"]}


def test_the_generator_drives_the_floor_and_every_request_is_answered(bench, tmp_path):
    """The real floor app on uvicorn, and the generator in its own process (a smoke test)."""
    cmd = [sys.executable, str(bench.HERE / "serve.py"), "--floor-server", "1"]
    with bench.started(
        lambda: bench.Server(cmd, tmp_path / "floor.log", dict(os.environ), 60)
    ) as server:
        jobs = [[{"path": "/v1/users/1/recommendations?k=10"}]]
        result = bench.load(server, "", mode="open", jobs=jobs, rate=50, seconds=0.4)
    summary = bench.summarize(result)
    assert result["scheduled"] == 20
    assert (summary["n"], summary["errors"]) == (20, 0)
    assert all(r[2] == [200] for r in result["records"])
