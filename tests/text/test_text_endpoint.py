"""The endpoint client against a real HTTP server on 127.0.0.1 that encodes with the bundled model."""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from interestlens.text import Encoder, EndpointError

TEXTS = [f"movie number {i}: a story about {w}" for i, w in enumerate("abcdefghijklmnopqrst")]


class EmbeddingServer(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for handlers still at work

    def __init__(self, encoder: Encoder) -> None:
        super().__init__(("127.0.0.1", 0), EmbeddingHandler)
        self.encoder = encoder
        self.reset()

    def reset(self) -> None:
        self.requests: list[dict] = []
        self.fail_next = 0  # answer 503 this many times
        self.status = 0  # answer this status once, if set
        self.delay = 0.0

    def handle_error(self, request: object, client_address: object) -> None:
        # a client that timed out has hung up; anything else is a real failure
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class EmbeddingHandler(BaseHTTPRequestHandler):
    server: EmbeddingServer

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv.requests.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        if self.path != "/v1/embeddings":
            return self._answer(404, {"error": "not found"})
        if srv.delay:
            time.sleep(srv.delay)
        if srv.fail_next:
            srv.fail_next -= 1
            return self._answer(503, {"error": {"message": "overloaded"}})
        if srv.status:
            status, srv.status = srv.status, 0
            return self._answer(status, {"error": {"message": "bad request"}})
        vecs = srv.encoder.encode(body["input"])
        data = [
            {"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vecs)
        ]
        # out of order on purpose: clients must order by "index"
        self._answer(200, {"object": "list", "data": data[::-1], "model": body.get("model")})


@pytest.fixture(scope="module")
def server(encoder):
    srv = EmbeddingServer(encoder)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def srv(server):
    server.reset()
    return server


def test_matches_the_in_process_encoder_in_batches(srv, encoder):
    enc = Encoder(srv.base_url, endpoint_model="minilm", batch_size=8, progress=False)
    vecs = enc.encode(TEXTS)
    assert vecs.shape == (20, 384) and vecs.dtype == np.float32
    assert np.sum(vecs * encoder.encode(TEXTS), axis=1).min() > 0.999
    assert [len(r["body"]["input"]) for r in srv.requests] == [8, 8, 4]
    assert {r["body"]["model"] for r in srv.requests} == {"minilm"}
    assert all(r["auth"] is None for r in srv.requests)
    assert enc.precision_ is None and enc.dim == 384
    assert enc.model_id == f"{srv.base_url}/embeddings#minilm"


def test_full_url_api_key_and_cache(srv, tmp_path):
    enc = Encoder(
        srv.base_url + "/embeddings", api_key="s3cret", cache_dir=tmp_path, progress=False
    )
    first = enc.encode([*TEXTS[:3], "", TEXTS[0]])
    assert len(srv.requests) == 1
    assert srv.requests[0]["auth"] == "Bearer s3cret"
    assert srv.requests[0]["body"]["input"] == sorted(TEXTS[:3], key=len, reverse=True)
    assert "model" not in srv.requests[0]["body"]
    assert not first[3].any()
    np.testing.assert_array_equal(enc.encode(TEXTS[:3]), first[:3])
    assert len(srv.requests) == 1  # all from the cache


def test_retries_after_503(srv):
    srv.fail_next = 2
    enc = Encoder(srv.base_url, max_retries=3, retry_backoff=0.01, progress=False)
    assert enc.encode(TEXTS[:2]).shape == (2, 384)
    assert len(srv.requests) == 3


def test_gives_up_after_the_last_retry_naming_url_and_status(srv):
    srv.fail_next = 10
    enc = Encoder(srv.base_url, max_retries=2, retry_backoff=0.01, progress=False)
    with pytest.raises(EndpointError) as err:
        enc.encode(TEXTS[:2])
    assert len(srv.requests) == 3
    assert f"{srv.base_url}/embeddings" in str(err.value)
    assert "3 attempt" in str(err.value) and "503" in str(err.value)


def test_client_errors_are_not_retried(srv):
    srv.status = 400
    enc = Encoder(srv.base_url, max_retries=3, retry_backoff=0.01, progress=False)
    with pytest.raises(EndpointError, match="400"):
        enc.encode(TEXTS[:2])
    assert len(srv.requests) == 1


def test_timeout_is_retried_then_reported(srv):
    srv.delay = 1.0
    enc = Encoder(srv.base_url, timeout=0.2, max_retries=1, retry_backoff=0.01, progress=False)
    start = time.perf_counter()
    with pytest.raises(EndpointError, match=r"timed out after 0\.2 s") as err:
        enc.encode(TEXTS[:2])
    assert time.perf_counter() - start < 0.9
    assert srv.base_url in str(err.value)
    assert len(srv.requests) == 2


def test_connection_refused_is_reported(srv):
    enc = Encoder("http://127.0.0.1:9/v1", max_retries=1, retry_backoff=0.01, progress=False)
    with pytest.raises(EndpointError, match=r"127\.0\.0\.1:9/v1/embeddings.*connection failed"):
        enc.encode(["x"])


def test_endpoint_refuses_a_precision():
    with pytest.raises(ValueError, match="no precision"):
        Encoder("http://127.0.0.1:9/v1", precision="bf16").encode(["x"])
