"""The load generator of ``benchmarks/serve.py``: HTTP/1.1 requests on a schedule.

Run as a process of its own, so that its CPU is not the server's and its event loop is
not delayed by the benchmark's bookkeeping:

    python benchmarks/loadgen.py < spec.json

It reads one JSON line on stdin (the *spec*), prints ``started T0`` when the timed part
begins (``T0``: when job 0 is due, on ``time.monotonic``'s clock), then one JSON line
with every request's outcome, and exits. Standard library only: an asyncio client over
raw keep-alive connections (a pool, reused last-in first-out, opened as needed), which
costs far less CPU per request than an HTTP library, so that on a small machine the
generator leaves the cores to the server.

Two modes:

``open``
    Job ``i`` is started at ``t0 + i / rate`` whatever happened before: any number of
    jobs are in flight. A job is one request or a few in sequence on one connection
    (an event, then the same user's recommendations). A request's latency runs from
    the job's *scheduled* time (the first request) or from the previous request's end
    (the next ones) to the last byte of its answer, so a stall of the server or a queue
    in front of it is counted in full (no coordinated omission). Jobs cycle through
    ``jobs``; the run ends after ``rate * seconds`` jobs, or earlier when a line
    ``stop`` (or the end of stdin) arrives.
``closed``
    ``concurrency`` loops each send their next request as soon as the previous one is
    answered, for ``seconds``: bodies are batches of ``batch_size`` new click events
    (fresh ``event_id``s) of random users on random items. For throughput (ingest).

A request that is not answered within ``timeout`` seconds, whose connection fails, or
whose answer is not 2xx is an error; nothing is retried. The result also says how much
CPU the generator used and how late it sent (its own lag), so a saturated generator is
seen rather than mistaken for a slow server.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import sys
import threading
import time
import uuid
from collections import deque
from typing import Any

#: Connections idle longer than this are closed rather than reused (uvicorn closes its
#: side after 5 s idle; reusing one it is closing would fail for the wrong reason).
IDLE_SECONDS = 2.0


class HTTPError(Exception):
    """The connection failed or the answer was not HTTP."""


def request_bytes(
    method: str, path: str, host: str, api_key: str, body: bytes | None = None
) -> bytes:
    """One HTTP/1.1 keep-alive request, ready to write.

    Examples
    --------
    >>> request_bytes("GET", "/healthz", "127.0.0.1:8000", "k")[:32]
    b'GET /healthz HTTP/1.1\\r\\nHost: 127'
    """
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {api_key}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode("latin-1") + (body or b"")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Read one HTTP/1.1 response: its status, body, and whether the connection stays open.

    Handles a ``Content-Length`` body, a chunked one, and one that ends with the
    connection.
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        raise HTTPError("connection closed before an answer") from exc
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise HTTPError(f"not an HTTP status line: {lines[0][:80]!r}")
    status = int(parts[1])
    length, chunked, keep = None, False, parts[0] == b"HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            keep = value != b"close"
    if chunked:
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                break
            body += (await reader.readexactly(size + 2))[:-2]
        return status, bytes(body), keep
    if length is not None:
        return status, await reader.readexactly(length), keep
    return status, await reader.read(), False


class Connection:
    """One keep-alive connection to the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = time.monotonic()
        self.open = True

    async def send(self, data: bytes) -> tuple[int, bytes]:
        """Write a request, read its answer (closing the connection if the server asks)."""
        self.writer.write(data)
        status, body, keep = await read_response(self.reader)
        if not keep:
            self.close()
        return status, body

    def close(self) -> None:
        if self.open:
            self.open = False
            self.writer.close()


class Pool:
    """Keep-alive connections to one server: reused newest first, opened as needed.

    Up to ``limit`` connections; past that a job waits for one (its latency still runs
    from its scheduled time).
    """

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port, self.limit = host, port, limit
        self.idle: list[Connection] = []
        self.waiters: deque[asyncio.Future[Connection]] = deque()
        self.count = 0
        self.opened = 0
        self.tasks: set[asyncio.Future[None]] = set()

    async def acquire(self) -> Connection:
        now = time.monotonic()
        while self.idle:
            conn = self.idle.pop()
            if conn.open and now - conn.idle_since < IDLE_SECONDS:
                return conn
            self._drop(conn)
        if self.count < self.limit:
            self.count += 1
            self.opened += 1
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                self.count -= 1
                raise
            return Connection(reader, writer)
        waiter: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        return await waiter

    def release(self, conn: Connection) -> None:
        if not conn.open:
            self._drop(conn)
            return
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        conn.idle_since = time.monotonic()
        self.idle.append(conn)

    def _drop(self, conn: Connection) -> None:
        conn.close()
        self.count -= 1
        if self.waiters and self.count < self.limit:  # let a waiter open a new one
            waiter = self.waiters.popleft()
            if not waiter.done():
                task = asyncio.ensure_future(self._open_for(waiter))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def _open_for(self, waiter: asyncio.Future[Connection]) -> None:
        self.count += 1
        self.opened += 1
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            self.count -= 1
            if not waiter.done():
                waiter.set_exception(exc)
            return
        if not waiter.done():
            waiter.set_result(Connection(reader, writer))

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


def schedule(rate: float, seconds: float) -> int:
    """How many jobs an open-loop run of ``seconds`` at ``rate`` jobs/s starts.

    Examples
    --------
    >>> schedule(100, 60), schedule(50, 0.5), schedule(3, 1.0)
    (6000, 25, 3)
    """
    return max(1, round(rate * seconds))


def check_answer(req: dict[str, Any], status: int, body: bytes) -> tuple[int, str | None]:
    """Events the answer says were stored, and what is wrong with it (``None``: nothing).

    ``req`` may ask ``expect_stored`` (the answer's ``stored`` must equal it) and
    ``absent_item`` (the slate must not hold that item).

    Examples
    --------
    >>> check_answer({"expect_stored": 2}, 200, b'{"stored": 2}')
    (2, None)
    >>> check_answer({"absent_item": "7"}, 200, b'{"items": [{"item_id": "7"}]}')
    (0, 'served_back')
    >>> check_answer({}, 503, b"")
    (0, 'status_503')
    """
    if not 200 <= status < 300:
        return 0, f"status_{status}"
    if "expect_stored" not in req and "absent_item" not in req:
        return 0, None
    try:
        doc = json.loads(body)
    except ValueError:
        return 0, "bad_json"
    stored = int(doc.get("stored", 0)) if "expect_stored" in req else 0
    if "expect_stored" in req and stored != req["expect_stored"]:
        return stored, "not_stored"
    if "absent_item" in req and any(
        r.get("item_id") == req["absent_item"] for r in doc.get("items", [])
    ):
        return stored, "served_back"
    return stored, None


class Generator:
    """One run of a spec (see the module docstring) against ``host:port``."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.host, self.port = spec.get("host", "127.0.0.1"), int(spec["port"])
        self.hostport = f"{self.host}:{self.port}"
        self.key = spec.get("api_key", "")
        self.timeout = float(spec.get("timeout", 10.0))
        self.pool = Pool(self.host, self.port, int(spec.get("max_connections", 512)))
        self.stopped = asyncio.Event()
        self.in_flight = 0
        self.max_in_flight = 0

    def encode(self, req: dict[str, Any]) -> bytes:
        body = req.get("body")
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        return request_bytes(req.get("method", "GET"), req["path"], self.hostport, self.key, data)

    async def exchange(self, conn: Connection, data: bytes) -> tuple[int, bytes]:
        async with asyncio.timeout(self.timeout):
            return await conn.send(data)

    async def job(self, loop: asyncio.AbstractEventLoop, due: float, reqs: list[dict]) -> list:
        """Run one job's requests in order: ``[lag_ms, [ms...], [status...], stored, errors]``.

        ``errors`` lists ``[request index, kind]``; after a request that got no answer
        (timeout, connection) the job's later requests are not sent.
        """
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        ms: list[float] = []
        statuses: list[int] = []
        errors: list[list] = []
        stored = 0
        try:
            conn = await self.pool.acquire()
        except OSError as exc:
            self.in_flight -= 1
            lag = (loop.time() - due) * 1000
            return [round(lag, 3), ms, statuses, 0, [[0, f"connect: {type(exc).__name__}"]]]
        lag = (loop.time() - due) * 1000
        start = due
        for k, req in enumerate(reqs):
            data = self.encode(req)
            try:
                status, body = await self.exchange(conn, data)
            except TimeoutError:
                conn.close()
                errors.append([k, "timeout"])
                break
            except (OSError, HTTPError, asyncio.IncompleteReadError, ValueError) as exc:
                conn.close()
                errors.append([k, f"connection: {type(exc).__name__}"])
                break
            end = loop.time()
            ms.append((end - start) * 1000)
            statuses.append(status)
            start = end
            n, problem = check_answer(req, status, body)
            stored += n
            if problem:
                errors.append([k, problem])
        self.pool.release(conn)
        self.in_flight -= 1
        return [round(lag, 3), [round(x, 3) for x in ms], statuses, stored, errors]

    async def warm(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open ``prewarm`` connections and send the ``warmup`` jobs, untimed."""
        conns = [await self.pool.acquire() for _ in range(int(self.spec.get("prewarm", 4)))]
        for conn in conns:
            self.pool.release(conn)
        for reqs in self.spec.get("warmup", []):
            await self.job(loop, loop.time(), reqs)

    async def run_open(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        await self.warm(loop)
        jobs = self.spec["jobs"]
        rate = float(self.spec["rate"])
        n = schedule(rate, float(self.spec["seconds"]))
        cpu0, wall0 = _cpu(), time.perf_counter()
        t0 = loop.time() + 0.01
        print(f"started {t0:.6f}", flush=True)  # loop.time() is time.monotonic()
        tasks: list[asyncio.Task] = []
        for i in range(n):
            due = t0 + i / rate
            delay = due - loop.time()
            # behind schedule, still yield so that the jobs started make progress
            await asyncio.sleep(max(delay, 0.0))
            if self.stopped.is_set():
                break
            tasks.append(loop.create_task(self.job(loop, due, jobs[i % len(jobs)])))
        records = await asyncio.gather(*tasks)
        wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
        return {
            "mode": "open",
            "rate": rate,
            "scheduled": len(tasks),
            "records": records,
            **self._usage(wall, cpu),
        }

    async def run_closed(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        await self.warm(loop)
        rng = random.Random(self.spec.get("seed", 0))
        users, items = self.spec["users"], self.spec["items"]
        size = int(self.spec["batch_size"])

        def batch() -> dict[str, Any]:
            events = [
                {
                    "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                    "user_id": rng.choice(users),
                    "item_id": rng.choice(items),
                    "type": "click",
                }
                for _ in range(size)
            ]
            req = {"method": "POST", "path": "/v1/events", "body": {"events": events}}
            return {**req, "expect_stored": size}

        cpu0, wall0 = _cpu(), time.perf_counter()
        t0 = loop.time()
        print(f"started {t0:.6f}", flush=True)
        end = t0 + float(self.spec["seconds"])
        records: list[list] = []

        async def worker() -> None:
            while loop.time() < end and not self.stopped.is_set():
                due = loop.time()
                records.append([round(due - t0, 4), *(await self.job(loop, due, [batch()]))])

        await asyncio.gather(*(worker() for _ in range(int(self.spec["concurrency"]))))
        wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
        return {"mode": "closed", "records": records, **self._usage(wall, cpu)}

    def _usage(self, wall: float, cpu: float) -> dict[str, Any]:
        return {
            "wall_seconds": round(wall, 3),
            "cpu_seconds": round(cpu, 3),
            "cpu_share": round(cpu / wall, 4) if wall > 0 else 0.0,
            "connections_opened": self.pool.opened,
            "max_in_flight": self.max_in_flight,
        }

    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()

        def watch_stdin() -> None:  # "stop", or the end of stdin, ends the run early
            for line in sys.stdin:
                if line.strip() == "stop":
                    break
            try:
                loop.call_soon_threadsafe(self.stopped.set)
            except RuntimeError:  # the run had ended and its loop closed
                pass

        threading.Thread(target=watch_stdin, daemon=True).start()
        try:
            if self.spec["mode"] == "open":
                return await self.run_open()
            return await self.run_closed()
        finally:
            self.pool.close()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    result = asyncio.run(Generator(spec).run())
    sys.stdout.write(json.dumps(result, separators=(",", ":")) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
