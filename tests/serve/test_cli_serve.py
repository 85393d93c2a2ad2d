"""`interestlens serve` as a user runs it: a process on 127.0.0.1, a printed key, and every
acknowledged event still there after the process is killed with SIGKILL mid-burst."""

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

BIN = Path(sys.executable).parent / "interestlens"


@pytest.fixture(scope="module")
def saved_dir(tmp_path_factory, ml_small, encoder, sentiment) -> Path:
    """A data dir holding a saved light engine of 40 users (seconds to fit)."""
    from interestlens.engine import Config, Engine

    small = first_users(ml_small)
    data_dir = tmp_path_factory.mktemp("cli-serve")
    config = Config(data_dir=data_dir, hybrid_models=LIGHT_HYBRID)
    Engine(config, encoder=encoder, sentiment=sentiment).fit(small).save()
    return data_dir


class Server:
    """An `interestlens serve` process: its URL and the admin key it printed."""

    def __init__(self, data_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "INTERESTLENS_API_KEY"}
        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--data-dir", str(data_dir), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        lines = []
        for line in self.proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if line.startswith("try: curl"):
                break
        text = "".join(lines)
        found = re.search(r"serving (http://127\.0\.0\.1:\d+)", text)
        key = re.search(r"admin API key \(made now.*\): (\S+)", text)
        assert found and key, text + (
            self.proc.stderr.read() if self.proc.poll() is not None else ""
        )  # type: ignore[union-attr]
        self.url, self.key = found.group(1), key.group(1)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and self.proc.poll() is None, "server did not answer"
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(30)


@pytest.fixture
def server(saved_dir) -> Iterator[Server]:
    s = Server(saved_dir)
    yield s
    s.stop()


def test_serves_with_a_printed_key_on_loopback_only(server):
    headers = {"X-API-Key": server.key}
    got = httpx.get(f"{server.url}/v1/users/1/recommendations?k=5", headers=headers, timeout=30)
    assert got.status_code == 200, got.text
    assert len(got.json()["items"]) == 5
    assert httpx.get(f"{server.url}/v1/users/1/recommendations", timeout=30).status_code == 401
    port = server.url.rsplit(":", 1)[1]
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    addresses = {
        line.split()[3] for line in listening.splitlines() if line.split()[3].endswith(f":{port}")
    }
    assert addresses == {f"127.0.0.1:{port}"}


def test_every_acknowledged_event_survives_sigkill(saved_dir, ml_small):
    """Batches are posted until the server is killed; after a restart every batch it
    acknowledged is stored, and the user's recommendations leave those items out."""
    items = list(ml_small.items["item_id"][:600])
    first = Server(saved_dir)
    acknowledged: list[str] = []
    stop = threading.Event()

    def burst() -> None:
        with httpx.Client(base_url=first.url, headers={"X-API-Key": first.key}, timeout=30) as c:
            for n in range(0, len(items), 5):
                batch = [
                    {"user_id": "burst", "item_id": i, "type": "click", "event_id": f"burst-{i}"}
                    for i in items[n : n + 5]
                ]
                try:
                    answer = c.post("/v1/events", json={"events": batch})
                except httpx.TransportError:
                    return  # the server died: this batch was never acknowledged
                assert answer.status_code == 200, answer.text
                acknowledged.extend(e["item_id"] for e in batch)
                if stop.is_set():
                    return

    writer = threading.Thread(target=burst)
    writer.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    first.stop(signal.SIGKILL)
    stop.set()
    writer.join(60)
    assert len(acknowledged) >= 50, "too few batches acknowledged before the kill"

    second = Server(saved_dir)
    try:
        headers = {"X-API-Key": second.key}
        got = httpx.get(
            f"{second.url}/v1/users/burst/recommendations?k=50", headers=headers, timeout=30
        )
        assert got.status_code == 200, got.text
        assert not set(acknowledged) & {r["item_id"] for r in got.json()["items"]}
    finally:
        second.stop()
    from interestlens.engine import Engine

    stored = set(Engine.open(saved_dir).user_events("burst")["item_id"])
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
