"""HTTP service load: `interestlens serve` on ml-latest-small, driven open-loop by another process.

For each worker count (``--workers 1,2``) the benchmark starts a fresh server on a copy
of ``--data-dir`` (a fitted engine; the copy takes every event the run posts, so the
folder itself never changes), and a *floor* beside it: a bare FastAPI app defined here,
served by uvicorn with the same worker count and settings, whose one route
``GET /v1/users/{id}/recommendations`` returns a fixed ten-item list. The load comes
from ``benchmarks/loadgen.py`` in a separate process: requests are sent on a fixed
schedule (request ``i`` at ``t0 + i / rate``, however many are still in flight) and a
latency runs from the *scheduled* time to the end of the answer, so a stall is counted
in full. Phases (``--phases``, default all, in this order):

``floor``
    The floor at ``--rate`` for ``--seconds``, and its highest rate (the steps below).
``recommend``
    ``GET /v1/users/{u}/recommendations?k=10`` of seeded random fitted users at
    ``--rate`` (100/s) for ``--seconds`` (60), explain off then on. Targets: p99 <= 30 ms
    (off), <= 60 ms (on), p50 at most 5 ms above the floor's p50.
``after_event``
    ``--pair-rate`` (50) pairs/s for ``--seconds``: a click of a user on the most
    popular item they have no event on (``POST /v1/events``), then at once their
    recommendations; the GET's latency counts from the POST's answer. With 2 workers the
    GET may reach the other worker. Target p99 <= 30 ms; a slate holding the clicked
    item is counted (``served_back``).
``max_rate``
    Rates of ``--step-rates`` for ``--step-seconds`` (15) each, up to the first step
    whose p99 passes 50 ms or that has an error: the highest rate held.
``refit``
    ``--refit-rate`` (50/s) of recommendations; after ``--refit-lead`` seconds,
    ``POST /v1/admin/refit`` from another thread; the load runs on until ``/healthz``
    shows a new model version, then 5 s more (or ``--refit-timeout``). Every request must
    be answered. The default pipeline refits for minutes: leave the phase out for short runs.
``ingest``
    ``--ingest-concurrency`` (4) loops posting batches of 100 new clicks (fresh
    ``event_id``s) for ``--ingest-seconds`` (20): durable events/s (target >= 5,000).
    Last, so that the refit is not fitted on random clicks.

Every phase records the generator's CPU (a share of one core), the server's (its
processes, refit included) and its errors (non-2xx, timeouts, failed connections). At
the end the store of each copy is counted against the events acknowledged. Prints a
table and writes ``benchmarks/results/serve.json`` (or ``--out``); like the other timing
benchmarks it refuses to write when other processes took more than a tenth of the cores,
unless ``--allow-busy`` (then the result is marked busy).

    nice python benchmarks/serve.py [--data-dir /tmp/online_dir] [--workers 1,2]
        [--seconds 60] [--step-seconds 15] [--phases floor,recommend,...] [--allow-busy]

``--data-dir`` must hold an engine fitted on ``--dataset`` (whose users and items the
requests name); make one with ``interestlens demo --no-serve --data-dir DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from machine import MAX_OTHER_SHARE, Competition, refuse_if_busy, source_tree

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_DATA_DIR = Path("/tmp/online_dir")
PHASES = ("floor", "recommend", "after_event", "max_rate", "refit", "ingest")
STEP_RATES = (50, 100, 150, 200, 300, 400, 600, 800, 1000, 1500, 2000)
#: Targets of issue 19, in milliseconds (events/s for ingest).
TARGETS = {
    "recommend_p99_ms": 30.0,
    "recommend_explain_p99_ms": 60.0,
    "recommend_p50_over_floor_ms": 5.0,
    "after_event_p99_ms": 30.0,
    "max_rate_p99_ms": 50.0,
    "ingest_events_per_second": 5000.0,
}
#: The floor's answer: ten items shaped as the service's.
FIXED_ITEMS = [
    {"item_id": str(i), "score": 1.0 / (1 + r), "rank": r + 1, "reason": "", "explored": False}
    for r, i in enumerate((318, 296, 356, 593, 2571, 260, 480, 110, 589, 527))
]
#: CPU seconds of each stopped server's processes that no parent reaped (see `Server.stop`).
UNREAPED: list[float] = []
_SERVING = re.compile(r"serving (http://[\w.\-\[\]:]+)")


def floor_app() -> Any:
    """The floor: a bare FastAPI app whose recommendations are a fixed ten-item list.

    A plain ``def`` route like the service's (FastAPI runs it in its threadpool), no key,
    no middleware, no model: what HTTP, uvicorn and FastAPI cost alone.
    """
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/v1/users/{user_id}/recommendations")
    def recommendations(user_id: str, k: int = 10, explain: bool = False) -> list[dict]:
        return FIXED_ITEMS[:k]

    return app


def serve_floor(workers: int) -> None:
    """Serve :func:`floor_app` on a free port of 127.0.0.1 with ``workers`` processes.

    Prints ``serving http://127.0.0.1:PORT`` once the socket listens, as ``interestlens
    serve`` does; uvicorn runs with the service's settings (access log off).
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from interestlens.serve.worker import listen

    sock = listen("127.0.0.1", 0)  # the socket `interestlens serve` uses: the same stack
    config = uvicorn.Config(
        "serve:floor_app",
        factory=True,
        workers=workers,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    print(f"serving http://127.0.0.1:{sock.getsockname()[1]} (floor, {workers} worker(s))")
    sys.stdout.flush()
    if workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


class Server:
    """A server process in its own session, its address parsed from its output.

    ``stop`` ends it with SIGTERM (uvicorn then stops and reaps its workers, so their
    CPU counts as this process's children's) and SIGKILLs its whole process group
    after ``grace`` seconds or whatever is left of it.
    """

    def __init__(
        self, cmd: list[str], log: Path, env: dict[str, str], timeout: float, workers: int = 0
    ) -> None:
        self.log = log
        self._out = log.open("wb")
        self._stopped = False
        self.unreaped_cpu_seconds = 0.0
        self.proc = subprocess.Popen(
            cmd, stdout=self._out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        t = time.perf_counter()
        while True:
            match = _SERVING.search(log.read_text(errors="replace"))
            if match:
                self.url = match.group(1)
                self.port = int(self.url.rsplit(":", 1)[1])
                break
            if self.proc.poll() is not None or time.perf_counter() - t > timeout:
                self.stop()
                raise RuntimeError(f"{cmd[0]} did not start; its output:\n{self.tail()}")
            time.sleep(0.2)
        while not self._listening():  # the address may be printed before the socket listens
            if self.proc.poll() is not None or time.perf_counter() - t > timeout:
                self.stop()
                raise RuntimeError(f"{cmd[0]} does not listen; its output:\n{self.tail()}")
            time.sleep(0.05)
        # the parent listens before its workers have opened and warmed the engine: the
        # load starts once every worker answers, or the first seconds measure start-up
        seen: set[int] = set()
        while len(seen) < workers:
            if self.proc.poll() is not None or time.perf_counter() - t > timeout:
                self.stop()
                raise RuntimeError(f"{len(seen)} of {workers} workers answered:\n{self.tail()}")
            seen |= self._worker_answering()
        self.start_seconds = round(time.perf_counter() - t, 2)

    def _worker_answering(self) -> set[int]:
        """The process id of the worker that answers /healthz on a new connection, if any."""
        request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=30) as conn:
                conn.sendall(request)
                answer = b""
                while chunk := conn.recv(65536):
                    answer += chunk
        except OSError:
            time.sleep(0.2)
            return set()
        body = answer.partition(b"\r\n\r\n")[2]
        try:
            return {int(json.loads(body)["worker"])}
        except (ValueError, KeyError, TypeError):
            time.sleep(0.2)
            return set()

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1.0).close()
        except OSError:
            return False
        return True

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        """CPU seconds of the processes of its session alive now (workers, refit)."""
        return session_cpu_seconds(self.proc.pid)

    def stop(self, grace: float = 20.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        live = session_cpu_seconds(self.proc.pid, reaped=True)
        reaped = _children_cpu_seconds()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self._out.close()
        # what its processes used but no parent reaped (killed orphans, say a refit
        # process): not in this process's children's CPU, so `Competition` would count
        # it as another process's
        self.unreaped_cpu_seconds = max(0.0, live - (_children_cpu_seconds() - reaped))
        UNREAPED.append(self.unreaped_cpu_seconds)


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def session_cpu_seconds(sid: int, reaped: bool = False) -> float:
    """User and system CPU seconds of the live processes of session ``sid`` (``/proc``).

    With ``reaped``, also what the children they reaped used.
    """
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid:  # field 6, the session
            total += int(fields[11]) + int(fields[12])  # fields 14 and 15: utime, stime
            if reaped:
                total += int(fields[13]) + int(fields[14])  # 16 and 17: cutime, cstime
    return total / tick


@contextmanager
def started(server: Callable[[], Server]) -> Iterator[Server]:
    """A server started now and stopped on leaving, also on an error."""
    s = server()
    try:
        yield s
    finally:
        s.stop()


def interestlens_command() -> str:
    """The ``interestlens`` script of the running Python's environment."""
    local = Path(sys.executable).parent / "interestlens"
    found = str(local) if local.exists() else shutil.which("interestlens")
    if not found:
        raise SystemExit("cannot find the interestlens command: install the package first")
    return found


def has_workers_option(command: str) -> bool:
    """Whether ``interestlens serve`` takes ``--workers``."""
    out = subprocess.run([command, "serve", "--help"], capture_output=True, text=True).stdout
    return "--workers" in out


# --------------------------------------------------------------------------- workload


class Workload:
    """The users and items requests name: fitted users, each user's events, item popularity.

    Each user's next click is on the most popular item they have no event on (as
    ``benchmarks/online.py`` does), so that a user met again clicks something new.
    """

    def __init__(self, dataset: str, seed: int) -> None:
        import random

        from interestlens import datasets

        ds = datasets.load(dataset)
        events = ds.events.dropna(subset=["item_id"])
        self.users = sorted(map(str, ds.events["user_id"].unique()), key=_natural)
        self.items = [str(i) for i in ds.items["item_id"]]
        self.popular = [str(i) for i in events["item_id"].value_counts().index]
        self.seen = {str(u): set(map(str, g)) for u, g in events.groupby("user_id")["item_id"]}
        self.rng = random.Random(seed)

    def recommend_jobs(self, n: int, explain: bool) -> list[list[dict[str, Any]]]:
        """``n`` one-request jobs: recommendations of seeded random users."""
        flag = "&explain=true" if explain else ""
        return [
            [{"path": f"/v1/users/{self.rng.choice(self.users)}/recommendations?k=10{flag}"}]
            for _ in range(n)
        ]

    def pair_jobs(self, n: int) -> list[list[dict[str, Any]]]:
        """``n`` jobs of a new click, then the same user's recommendations.

        Users come in seeded random rounds; the slate must not hold the clicked item.
        """
        jobs: list[list[dict[str, Any]]] = []
        order: list[str] = []
        while len(jobs) < n:
            if not order:
                order = self.rng.sample(self.users, len(self.users))
            user = order.pop()
            seen = self.seen.setdefault(user, set())
            item = next(i for i in self.popular if i not in seen)
            seen.add(item)
            body = {"user_id": user, "item_id": item, "type": "click"}
            jobs.append(
                [
                    {"method": "POST", "path": "/v1/events", "body": body, "expect_stored": 1},
                    {"path": f"/v1/users/{user}/recommendations?k=10", "absent_item": item},
                ]
            )
        return jobs


def _natural(text: str) -> tuple[int, str]:
    return (int(text), "") if text.isdigit() else (sys.maxsize, text)


# --------------------------------------------------------------------------- load


class Load:
    """A run of ``benchmarks/loadgen.py`` against one server."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "loadgen.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line.startswith("started"):
            self.proc.kill()
            raise RuntimeError(f"the load generator did not start: {line!r}")
        #: When job 0 was due, on ``time.monotonic``'s clock (the generator's loop clock).
        self.t0 = float(line.split()[1])

    def stop(self) -> None:
        """Schedule no more jobs (those in flight finish)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()

    def result(self) -> dict[str, Any]:
        assert self.proc.stdout is not None and self.proc.stdin is not None
        line = self.proc.stdout.readline()
        self.proc.stdin.close()
        if self.proc.wait() != 0 or not line:
            raise RuntimeError("the load generator failed (its error is above)")
        return json.loads(line)


def load(server: Server, key: str, **spec: Any) -> dict[str, Any]:
    """Run one load spec to its end against ``server``; its result and the server's CPU."""
    cpu = server.cpu_seconds()
    gen = Load({"port": server.port, "api_key": key, **spec})
    result = gen.result()
    result["server_cpu_share"] = round(
        (server.cpu_seconds() - cpu) / max(result["wall_seconds"], 1e-9), 3
    )
    return result


def percentiles(ms: list[float]) -> dict[str, float]:
    """p50, p95, p99, mean and max of milliseconds (``n`` = 0: none)."""
    import numpy as np

    if not ms:
        return {"n": 0}
    a = np.asarray(ms, dtype=np.float64)
    return {
        "p50": round(float(np.percentile(a, 50)), 2),
        "p95": round(float(np.percentile(a, 95)), 2),
        "p99": round(float(np.percentile(a, 99)), 2),
        "mean": round(float(a.mean()), 2),
        "max": round(float(a.max()), 2),
        "n": len(a),
    }


def count_errors(records: list[list], step: int) -> dict[str, int]:
    """Errors of request ``step`` of each job, by kind (``not_sent``: an earlier one failed).

    Examples
    --------
    >>> records = [[0.1, [3.0, 2.0], [200, 200], 1, []], [0.2, [9.0], [200], 1, [[1, "timeout"]]],
    ...            [0.1, [], [], 0, [[0, "timeout"]]]]
    >>> count_errors(records, 0), count_errors(records, 1)
    ({'timeout': 1}, {'timeout': 1, 'not_sent': 1})
    """
    counts: dict[str, int] = {}
    for _lag, times, _statuses, _stored, errors in records:
        kinds = [kind for s, kind in errors if s == step]
        if len(times) <= step and not kinds:
            kinds = ["not_sent"]
        for kind in kinds:
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def summarize(
    result: dict[str, Any], step: int = 0, window: tuple[float, float] | None = None
) -> dict[str, Any]:
    """Latency of request ``step`` of each job of an open-loop ``result``, and its errors.

    ``window`` keeps the jobs due between two offsets from ``t0`` (seconds).
    """
    rate = result["rate"]
    records = [
        r
        for i, r in enumerate(result["records"])
        if not window or window[0] <= i / rate < window[1]
    ]
    ms = [r[1][step] for r in records if len(r[1]) > step]
    errors = count_errors(records, step)
    achieved = len(ms) / result["wall_seconds"] if result["wall_seconds"] else 0.0
    return {
        **percentiles(ms),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "rate": rate,
        "achieved_per_second": round(achieved, 1),
        "generator_lag_ms": percentiles([r[0] for r in records]),
        "generator_cpu_share": result["cpu_share"],
        "server_cpu_share": result.get("server_cpu_share"),
        "max_in_flight": result["max_in_flight"],
        "connections_opened": result["connections_opened"],
    }


# --------------------------------------------------------------------------- phases


class Bench:
    """The phases against one worker count's servers."""

    def __init__(self, args: argparse.Namespace, workload: Workload, key: str) -> None:
        self.args, self.workload, self.key = args, workload, key

    def open_loop(self, server: Server, jobs: list, rate: float, seconds: float) -> dict[str, Any]:
        """Read-only ``jobs`` at ``rate`` for ``seconds``, after up to 20 of them untimed."""
        result = load(
            server,
            self.key,
            mode="open",
            jobs=jobs,
            rate=rate,
            seconds=seconds,
            timeout=self.args.timeout,
            warmup=jobs[:: max(1, len(jobs) // 20)][:20],
        )
        return summarize(result)

    def floor(self, server: Server) -> dict[str, Any]:
        a = self.args
        jobs = [[{"path": "/v1/users/1/recommendations?k=10"}]]
        doc = {"at_rate": self.open_loop(server, jobs, a.rate, a.seconds)}
        _say(f"  floor at {a.rate:g}/s", doc["at_rate"])
        if "max_rate" in a.phases:
            doc["steps"] = self.steps(server, lambda n: jobs, "floor")
        return doc

    def steps(self, server: Server, jobs: Callable[[int], list], name: str) -> dict[str, Any]:
        a = self.args
        steps, held = [], None
        for rate in a.step_rates:
            s = self.open_loop(server, jobs(int(rate * a.step_seconds)), rate, a.step_seconds)
            s["held"] = s["errors"] == 0 and s["p99"] <= TARGETS["max_rate_p99_ms"]
            steps.append(s)
            _say(f"  {name} step {rate:g}/s", s)
            if not s["held"]:
                break
            held = rate
            time.sleep(1.0)  # let the server's queues drain
        return {"highest_rate_held": held, "steps": steps}

    def recommend(self, server: Server) -> dict[str, Any]:
        a, doc = self.args, {}
        n = int(a.rate * a.seconds)
        for explain in (False, True):
            name = "explain_on" if explain else "explain_off"
            jobs = self.workload.recommend_jobs(n, explain)
            doc[name] = self.open_loop(server, jobs, a.rate, a.seconds)
            _say(f"  recommend {name.replace('_', ' ')}", doc[name])
        return doc

    def after_event(self, server: Server) -> dict[str, Any]:
        a = self.args
        jobs = self.workload.pair_jobs(int(a.pair_rate * a.seconds))
        result = load(
            server,
            self.key,
            mode="open",
            jobs=jobs,
            rate=a.pair_rate,
            seconds=a.seconds,
            timeout=a.timeout,
        )
        doc = {
            "get": summarize(result, 1),
            "post": summarize(result, 0),
            "pairs_per_second": a.pair_rate,
            "events_acknowledged": sum(r[3] for r in result["records"]),
        }
        _say("  after event: POST", doc["post"])
        _say("  after event: GET", doc["get"])
        return doc

    def max_rate(self, server: Server) -> dict[str, Any]:
        return self.steps(server, lambda n: self.workload.recommend_jobs(n, False), "recommend")

    def ingest(self, server: Server) -> dict[str, Any]:
        a = self.args
        result = load(
            server,
            self.key,
            mode="closed",
            concurrency=a.ingest_concurrency,
            seconds=a.ingest_seconds,
            batch_size=a.batch_size,
            users=self.workload.users,
            items=self.workload.items,
            seed=a.seed,
            timeout=a.timeout,
        )
        records = result["records"]
        stored = sum(r[4] for r in records)
        errors = count_errors([r[1:] for r in records], 0)
        doc = {
            "batch_ms": percentiles([r[2][0] for r in records if r[2]]),
            "batches": len(records),
            "batch_size": a.batch_size,
            "concurrency": a.ingest_concurrency,
            "events_acknowledged": stored,
            "events_per_second": round(stored / result["wall_seconds"], 1),
            "errors": sum(errors.values()),
            "error_kinds": errors,
            "wall_seconds": result["wall_seconds"],
            "generator_cpu_share": result["cpu_share"],
            "server_cpu_share": result["server_cpu_share"],
        }
        print(
            f"  ingest: {doc['events_per_second']:,.0f} events/s durable, batch p50 "
            f"{doc['batch_ms'].get('p50')} ms p99 {doc['batch_ms'].get('p99')} ms, "
            f"{doc['errors']} errors",
            flush=True,
        )
        return doc

    def refit(self, server: Server) -> dict[str, Any]:
        """Recommendations at ``--refit-rate`` throughout a refit and 5 s past the swap."""
        from interestlens.client import Client

        a = self.args
        client = Client(server.url, self.key, timeout=a.refit_timeout + 60)
        before = client.health()["model_version"]
        jobs = self.workload.recommend_jobs(max(1000, int(a.refit_rate * 120)), False)
        cpu = server.cpu_seconds()
        gen = Load(
            {
                "port": server.port,
                "api_key": self.key,
                "mode": "open",
                "jobs": jobs,
                "rate": a.refit_rate,
                "seconds": a.refit_lead + a.refit_timeout + 10,
                "timeout": a.timeout,
            }
        )
        post: dict[str, Any] = {}
        changed = after = None
        try:
            time.sleep(max(0.0, gen.t0 + a.refit_lead - time.monotonic()))
            fired = time.monotonic()

            def fire() -> None:
                try:
                    post["answer"] = client.refit()
                except Exception as exc:  # recorded; the load goes on
                    post["error"] = f"{type(exc).__name__}: {exc}"
                post["seconds"] = round(time.monotonic() - fired, 2)

            threading.Thread(target=fire, daemon=True).start()
            while time.monotonic() - fired < a.refit_timeout:
                version = client.health()["model_version"]
                if version != before:
                    changed, after = time.monotonic(), version
                    break
                time.sleep(0.25)
            time.sleep(5.0 if changed else 0.0)
        finally:
            gen.stop()
            result = gen.result()
            client.close()
        result["server_cpu_share"] = round(
            (server.cpu_seconds() - cpu) / max(result["wall_seconds"], 1e-9), 3
        )
        start = fired - gen.t0
        end = (changed or time.monotonic()) - gen.t0
        doc = {
            "all": summarize(result),
            "during_refit": summarize(result, window=(start, end)),
            "model_version_before": before,
            "model_version_after": after,
            "refit_seconds": round(changed - fired, 2) if changed else None,
            "timed_out": changed is None,
            "refit_post": post,
            "rate": a.refit_rate,
        }
        _say("  during refit", doc["during_refit"])
        print(
            f"  refit: version {before} -> {after} after {doc['refit_seconds']} s"
            f"{' (TIMED OUT)' if changed is None else ''}; POST answered {post}",
            flush=True,
        )
        return doc


def _say(label: str, s: dict[str, Any]) -> None:
    print(
        f"{label}: n {s['n']} p50 {s.get('p50')} p99 {s.get('p99')} max {s.get('max')} ms, "
        f"{s['errors']} errors, generator CPU {s['generator_cpu_share']:.0%}, "
        f"server CPU {s['server_cpu_share']}",
        flush=True,
    )


def stored_events(data_dir: Path) -> int:
    """Events in the store of a data directory (the server stopped)."""
    from interestlens.store import open_store

    with open_store(data_dir / "events.db") as store:
        return store.count()


def run_workers(args: argparse.Namespace, workers: int, workload: Workload) -> dict[str, Any]:
    """Every phase asked for against fresh servers of ``workers`` processes."""
    key = secrets.token_urlsafe(24)
    bench = Bench(args, workload, key)
    env = {**os.environ, "INTERESTLENS_API_KEY": key}
    doc: dict[str, Any] = {"workers": workers}
    print(f"\n{workers} worker(s)", flush=True)
    with tempfile.TemporaryDirectory(prefix="interestlens-serve-bench-") as tmp:
        work = Path(tmp)
        if "floor" in args.phases:
            cmd = [sys.executable, str(HERE / "serve.py"), "--floor-server", str(workers)]
            with started(lambda: Server(cmd, work / "floor.log", env, 60)) as server:
                doc["floor"] = bench.floor(server)
        engine_phases = [p for p in PHASES if p != "floor" and p in args.phases]
        if not engine_phases:
            return doc
        data = work / "data"
        shutil.copytree(args.data_dir, data)
        before = stored_events(data)
        cmd = [args.interestlens, "serve", "--data-dir", str(data), "--port", "0"]
        cmd += ["--refit-every", "0", "--refit-interval", "0"]  # the refit phase starts one
        if workers > 1:
            cmd += ["--workers", str(workers)]
        acknowledged = 0
        with started(
            lambda: Server(cmd, work / "serve.log", env, args.start_timeout, workers)
        ) as server:
            doc["server_start_seconds"] = server.start_seconds
            for phase in engine_phases:
                doc[phase] = getattr(bench, phase)(server)
                acknowledged += doc[phase].get("events_acknowledged", 0)
                time.sleep(1.0)
        # acknowledged: answered as stored; a request that timed out may be stored as well
        doc["events_acknowledged"] = acknowledged
        doc["events_stored"] = stored_events(data) - before
        doc["every_acknowledged_event_stored"] = doc["events_stored"] >= acknowledged
    return doc


# --------------------------------------------------------------------------- report


def verdicts(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 19 met or not, per worker count."""
    out = []

    def add(workers: str, figure: str, value: Any, target: float, met: bool) -> None:
        out.append(
            {
                "workers": int(workers),
                "figure": figure,
                "value": value,
                "target": target,
                "met": met,
            }
        )

    for w, run in doc["runs"].items():
        floor = run.get("floor", {}).get("at_rate", {})
        if "recommend" in run:
            off, on = run["recommend"]["explain_off"], run["recommend"]["explain_on"]
            t = TARGETS["recommend_p99_ms"]
            add(w, "recommend_p99_ms", off["p99"], t, off["p99"] <= t and not off["errors"])
            t = TARGETS["recommend_explain_p99_ms"]
            add(w, "recommend_explain_p99_ms", on["p99"], t, on["p99"] <= t and not on["errors"])
            if floor.get("n"):
                over = round(off["p50"] - floor["p50"], 2)
                t = TARGETS["recommend_p50_over_floor_ms"]
                add(w, "recommend_p50_over_floor_ms", over, t, over <= t)
        if "after_event" in run:
            get = run["after_event"]["get"]
            t = TARGETS["after_event_p99_ms"]
            add(w, "after_event_p99_ms", get["p99"], t, get["p99"] <= t and not get["errors"])
        if "ingest" in run:
            eps = run["ingest"]["events_per_second"]
            t = TARGETS["ingest_events_per_second"]
            add(w, "ingest_events_per_second", eps, t, eps >= t and not run["ingest"]["errors"])
        if "refit" in run:
            r = run["refit"]
            add(
                w,
                "refit_errors",
                r["all"]["errors"],
                0,
                not r["all"]["errors"] and not r["timed_out"],
            )
    return out


def print_table(doc: dict[str, Any]) -> None:
    """The latency table: every figure with the floor's beside it."""
    head = f"{'':30s} {'n':>6s} {'err':>4s} {'p50':>7s} {'p95':>7s} {'p99':>7s} {'max':>8s}"
    print(f"\n{head} {'floor p50':>9s} {'floor p99':>9s} {'gen cpu':>7s} {'srv cpu':>7s}  (ms)")

    def row(label: str, s: dict[str, Any], floor: dict[str, Any] | None) -> None:
        if not s.get("n"):
            print(f"{label:30s} {0:6d} {s.get('errors', 0):4d}")
            return
        f50 = f"{floor['p50']:9.2f}" if floor and floor.get("n") else f"{'':9s}"
        f99 = f"{floor['p99']:9.2f}" if floor and floor.get("n") else f"{'':9s}"
        print(
            f"{label:30s} {s['n']:6d} {s['errors']:4d} {s['p50']:7.2f} {s['p95']:7.2f} "
            f"{s['p99']:7.2f} {s['max']:8.2f} {f50} {f99} {s['generator_cpu_share']:7.0%} "
            f"{s['server_cpu_share'] or 0:7.2f}"
        )

    for w, run in doc["runs"].items():
        print(f"-- {w} worker(s)")
        floor = run.get("floor", {}).get("at_rate")
        floor_steps = {s["rate"]: s for s in run.get("floor", {}).get("steps", {}).get("steps", [])}
        if floor:
            row(f"floor {floor['rate']:g}/s", floor, None)
        if "recommend" in run:
            row(f"recommend {doc['rate']:g}/s", run["recommend"]["explain_off"], floor)
            row(f"recommend explain {doc['rate']:g}/s", run["recommend"]["explain_on"], floor)
        if "after_event" in run:
            ae = run["after_event"]
            row(f"after event: POST {doc['pair_rate']:g}/s", ae["post"], floor)
            row(f"after event: GET {doc['pair_rate']:g}/s", ae["get"], floor)
            for name in ("post", "get"):
                if ae[name]["error_kinds"]:
                    print(f"{'':30s} {name.upper()} errors: {ae[name]['error_kinds']}")
        if "max_rate" in run:
            for s in run["max_rate"]["steps"]:
                row(
                    f"max rate {s['rate']:g}/s {'held' if s['held'] else 'FAILED'}",
                    s,
                    floor_steps.get(s["rate"]),
                )
            print(
                f"{'':30s} highest rate held (p99 <= 50 ms): {run['max_rate']['highest_rate_held']}/s"
            )
        if "floor" in run and "steps" in run["floor"]:
            print(
                f"{'':30s} floor's highest rate held: {run['floor']['steps']['highest_rate_held']}/s"
            )
        if "refit" in run:
            r = run["refit"]
            row(f"refit {r['rate']:g}/s: during", r["during_refit"], floor)
            row(f"refit {r['rate']:g}/s: whole run", r["all"], floor)
            print(
                f"{'':30s} version {r['model_version_before']} -> {r['model_version_after']} in "
                f"{r['refit_seconds']} s{' (timed out)' if r['timed_out'] else ''}"
            )
        if "ingest" in run:
            g = run["ingest"]
            b = g["batch_ms"]
            print(
                f"{'ingest batches of ' + str(g['batch_size']):30s} {g['batches']:6d} {g['errors']:4d} "
                f"{b.get('p50', 0):7.2f} {b.get('p95', 0):7.2f} {b.get('p99', 0):7.2f} "
                f"{b.get('max', 0):8.2f} -> {g['events_per_second']:,.0f} events/s durable"
            )
        if "events_stored" in run:
            print(
                f"{'':30s} events acknowledged {run['events_acknowledged']}, "
                f"in the store after the run {run['events_stored']}"
            )
    print()
    for v in doc["verdicts"]:
        print(
            f"target {v['workers']} worker(s) {v['figure']}: {v['value']} vs {v['target']}: "
            f"{'met' if v['met'] else 'NOT met'}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="a fitted engine (copied)"
    )
    ap.add_argument("--dataset", default="ml-latest-small", help="what the engine was fitted on")
    ap.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    ap.add_argument("--phases", default=",".join(PHASES), help=f"of {','.join(PHASES)}")
    ap.add_argument("--seconds", type=float, default=60.0, help="recommend and after_event")
    ap.add_argument("--rate", type=float, default=100.0, help="recommendations/s (and the floor)")
    ap.add_argument("--pair-rate", type=float, default=50.0, help="after_event pairs/s")
    ap.add_argument("--step-seconds", type=float, default=15.0)
    ap.add_argument("--step-rates", default=",".join(map(str, STEP_RATES)))
    ap.add_argument("--ingest-seconds", type=float, default=20.0)
    ap.add_argument("--ingest-concurrency", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--refit-rate", type=float, default=50.0)
    ap.add_argument("--refit-lead", type=float, default=5.0, help="load seconds before the refit")
    ap.add_argument("--refit-timeout", type=float, default=900.0)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds before a request fails")
    ap.add_argument("--start-timeout", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "serve.json")
    ap.add_argument("--note", default="", help="written into the result as it is")
    ap.add_argument(
        "--allow-busy",
        action="store_true",
        help="write the result even if other processes used the CPU meanwhile",
    )
    ap.add_argument("--floor-server", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.floor_server:
        return args
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        ap.error(f"unknown phases {sorted(unknown)}; choose among {','.join(PHASES)}")
    args.workers = [int(w) for w in args.workers.split(",")]
    args.step_rates = [float(r) for r in args.step_rates.split(",")]
    if min(args.workers) < 1 or args.seconds <= 0 or args.step_seconds <= 0:
        ap.error("--workers, --seconds and --step-seconds must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.floor_server:
        serve_floor(args.floor_server)
        return
    # SIGTERM unwinds like Ctrl-C, so that the servers started are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    if not (args.data_dir / "engine" / "CURRENT").exists():
        raise SystemExit(
            f"{args.data_dir} holds no fitted engine: make one first with\n"
            f"  interestlens demo --no-serve --data-dir {args.data_dir}"
        )
    args.interestlens = interestlens_command()
    if max(args.workers) > 1 and not has_workers_option(args.interestlens):
        raise SystemExit("`interestlens serve` has no --workers option yet: run with --workers 1")
    workload = Workload(args.dataset, args.seed)
    doc: dict[str, Any] = {
        "benchmark": "serve",
        "dataset": args.dataset,
        "data_dir": str(args.data_dir),
        "phases": args.phases,
        "seconds": args.seconds,
        "rate": args.rate,
        "pair_rate": args.pair_rate,
        "step_seconds": args.step_seconds,
        "step_rates": args.step_rates,
        "k": 10,
        "targets": TARGETS,
        "generator": "benchmarks/loadgen.py: open loop, asyncio over raw HTTP/1.1 keep-alive",
        "runs": {},
    }
    competition = Competition().start()
    for workers in args.workers:
        doc["runs"][str(workers)] = run_workers(args, workers, workload)
    doc["machine"] = machine = competition.stop()
    # the servers' orphans (killed, never reaped) were the benchmark's, not another's
    unreaped = sum(UNREAPED)
    raw = machine["other_cpu_share"]
    machine["other_cpu_share"] = round(
        max(0.0, raw - unreaped / (machine["wall_seconds"] * machine["cpus"])), 4
    )
    machine["busy"] = machine["other_cpu_share"] > MAX_OTHER_SHARE
    machine["other_cpu_share_before_unreaped_server_cpu"] = raw
    machine["unreaped_server_cpu_seconds"] = round(unreaped, 2)
    doc["verdicts"] = verdicts(doc)
    doc["host"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    doc["source"] = source_tree()
    doc["note"] = args.note
    print_table(doc)
    refuse_if_busy(doc["machine"], args.allow_busy)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
