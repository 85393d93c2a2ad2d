"""`interestlens.client.Client` against the live server: typed calls, errors, retries, idempotent batches."""

from __future__ import annotations

import contextlib
import socket
import threading

import httpx
import pytest

from interestlens.client import ApiError, Client


class Proxy:
    """A TCP proxy to the server that, for its first ``drop`` connections, forwards the
    request but closes the connection as soon as the answer starts: the server did the
    work, the caller never hears so."""

    def __init__(self, port: int, drop: int = 1) -> None:
        self.port, self.drop, self.dropped = port, drop, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.port))
        if self.dropped < self.drop:
            self.dropped += 1
            threading.Thread(target=_pipe, args=(conn, upstream), daemon=True).start()
            upstream.recv(1)  # the server answers: it has stored the events
            for s in (conn, upstream):
                with contextlib.suppress(OSError):  # the other side may be gone already
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            return
        threading.Thread(target=_pipe, args=(conn, upstream), daemon=True).start()
        _pipe(upstream, conn)

    def close(self) -> None:
        self.listener.close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


class Hangup:
    """A listener that counts connections and closes each at once."""

    def __init__(self) -> None:
        self.accepted = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            conn.recv(65536)
            conn.close()


@pytest.fixture
def port(live) -> int:
    return httpx.URL(live.url).port


def test_typed_calls(live):
    with Client(live.url, "admin-key") as c:
        assert c.health()["status"] == "ok"
        report = c.ingest([{"user_id": "client-u", "item_id": "1", "type": "click"}])
        assert report == {"stored": 1, "duplicates": 0, "rejected": 0, "rejections": []}
        recs = c.recommend("client-u", k=5, explain=True)
        assert len(recs["items"]) == 5 and all(r["reason"] for r in recs["items"])
        assert c.feedback(recs["request_id"], recs["items"][0]["item_id"], 1.0) is True
        assert c.interests("client-u")["n_events"] == 1
        assert len(c.similar("1", k=3)) == 3
        toy = c.get_item("1")
        put = c.put_item("client-item", title=toy["title"], categories=toy["categories"])
        assert put["item_id"] == "client-item" and put["interests"]
        assert c.get_item("client-item")["title"] == toy["title"]
        assert c.delete_item("client-item") == {"item_id": "client-item", "removed": True}
        with pytest.raises(ApiError) as gone:
            c.get_item("client-item")
        assert gone.value.status == 404
        assert "interestlens_events_total" in c.metrics()
        assert c.forget("client-u")["events_deleted"] == 1


def test_errors_carry_the_error_shape(live):
    with Client(live.url, "read-key") as c:
        with pytest.raises(ApiError) as bad:
            c.recommend("1", k=0)
        assert (bad.value.status, bad.value.code, bad.value.field) == (422, "invalid", "query.k")
        with pytest.raises(ApiError) as forbidden:
            c.forget("1")
        assert forbidden.value.status == 403 and forbidden.value.code == "forbidden"
        with pytest.raises(ApiError) as missing:
            c.get_item("no-such-item")
        assert missing.value.status == 404


def test_rejections_are_indexed_into_what_was_sent_across_batches(live):
    events = [{"user_id": "idx-u", "item_id": str(i), "type": "click"} for i in range(1, 8)]
    events[5]["type"] = "teleport"
    with Client(live.url, "write-key") as c:
        report = c.ingest(events, batch_size=3)
    assert (report["stored"], report["rejected"]) == (6, 1)
    assert report["rejections"][0]["index"] == 5


def test_a_batch_retried_after_a_dropped_answer_is_stored_once(live, port):
    events = [{"user_id": "retry-u", "item_id": str(i), "type": "click"} for i in range(1, 21)]
    before = live.engine.info()["store_events"]
    proxy = Proxy(port)
    try:
        with Client(proxy.url, "write-key", retries=2, backoff=0.01) as c:
            report = c.ingest(events)
            assert proxy.dropped == 1  # the first attempt's answer was lost
            assert (report["stored"], report["duplicates"]) == (0, 20)
            assert live.engine.info()["store_events"] - before == 20
            # the same clicks sent again on purpose are new events: stored, not merged
            assert c.ingest(events)["stored"] == 20
    finally:
        proxy.close()
    assert live.engine.info()["store_events"] - before == 40


def test_connection_failures_are_retried_and_answers_are_not(live):
    hangup = Hangup()
    with Client(hangup.url, "read-key", retries=2, backoff=0.01) as c:
        with pytest.raises(httpx.TransportError):
            c.interests("1")
        assert hangup.accepted == 3
        with pytest.raises(httpx.TransportError):
            c.feedback("r", "1", 1.0)  # it may have arrived: a reward is not sent twice
        assert hangup.accepted == 4
    hangup.listener.close()
    with Client(live.url, "read-key", retries=2) as c:
        before = c.metrics()
        with pytest.raises(ApiError):
            c.recommend("1", k=-1)
    with pytest.raises(ValueError, match="retries"):
        Client(live.url, retries=-1)
    assert before
