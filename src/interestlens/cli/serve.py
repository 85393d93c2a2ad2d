"""`interestlens serve`: the HTTP service (:mod:`interestlens.serve`) over a saved engine."""

from __future__ import annotations

import os
import secrets
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from interestlens.cli import render
from interestlens.cli.shared import (
    DEFAULT_DATA_DIR,
    CLIError,
    DataDirOpt,
    fitted_engine,
)

if TYPE_CHECKING:
    from interestlens.engine import Engine

HostOpt = Annotated[
    str, typer.Option("--host", help="Address to listen on (127.0.0.1: this machine only).")
]
PortOpt = Annotated[int, typer.Option("--port", help="Port to listen on (0: any free port).")]


WorkersOpt = Annotated[
    int,
    typer.Option(
        "--workers",
        min=1,
        help="Worker processes on the one address; each opens the engine, and an event "
        "taken by any of them counts in the next answer of every one.",
    ),
]
RefitEveryOpt = Annotated[
    int,
    typer.Option(
        "--refit-every",
        min=0,
        help="Refit in the background after this many new events (0: not on a count).",
    ),
]
RefitIntervalOpt = Annotated[
    float,
    typer.Option(
        "--refit-interval",
        min=0,
        help="Refit in the background once the model is this many hours old and events "
        "arrived since (0: not on age).",
    ),
]


def serve(
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    workers: WorkersOpt = 1,
    refit_every: RefitEveryOpt = 10_000,
    refit_interval: RefitIntervalOpt = 24.0,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            help="Threads of each library's pool while serving, and of a background refit "
            "(default: $INTERESTLENS_THREADS, else 1).",
        ),
    ] = None,
) -> None:
    """Serve the engine saved in --data-dir over HTTP until interrupted (docs/serve.md).

    Opens the latest saved version plus every event stored since, then answers the API
    of /docs: events, items, recommendations, feedback, interests, similar items,
    erasure. Listens on 127.0.0.1 unless --host says otherwise.

    A refit runs in a separate process at a lower CPU priority after --refit-every new
    events, every --refit-interval hours, or on POST /v1/admin/refit; the workers swap
    to the version it publishes between requests.

    The admin key is $INTERESTLENS_API_KEY; without it a new key is made and printed.
    """
    engine = fitted_engine(data_dir)
    run(
        engine,
        host,
        port,
        threads,
        workers=workers,
        refit_every=refit_every,
        refit_interval=refit_interval,
    )


def run(
    engine: Engine,
    host: str,
    port: int,
    threads: int | None,
    *,
    workers: int = 1,
    refit_every: int = 10_000,
    refit_interval: float = 24.0,
    stderr: bool = False,
) -> None:
    """Serve ``engine`` on ``host:port`` until interrupted; print where, the key and a first request.

    With ``workers`` above 1, ``engine`` only names the data directory: each worker
    process opens it. The lines go to stderr with ``stderr`` (beside a ``--json``
    document on stdout).
    """
    import uvicorn

    from interestlens.serve import ServeSettings, create_app
    from interestlens.serve.follow import settle_heap
    from interestlens.serve.settings import ENV_KEY
    from interestlens.serve.worker import listen
    from interestlens.threads import pin

    if not 0 <= port <= 65535:
        raise CLIError(f"--port must be between 0 and 65535, got {port}")
    if workers > 1 and engine.version is None:
        raise CLIError("several workers serve a saved engine: save it first (`interestlens fit`)")
    key = os.environ.get(ENV_KEY)
    if key:
        shown = f"${ENV_KEY}"
    else:
        key = secrets.token_urlsafe(24)
        shown = key
        os.environ[ENV_KEY] = key  # ServeSettings and the workers read it from here
    try:
        sock = listen(host, port)
    except OSError as exc:
        raise CLIError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    follow = workers > 1 or not engine.config.store_url.startswith("sqlite")
    knobs = {
        "follow_store": follow,
        "refit_every": refit_every,
        "refit_interval": refit_interval * 3600,
        "refit_threads": threads,
    }
    if workers == 1:
        n = pin(threads)  # requests are small: one thread per pool, unless told otherwise
        engine.warm()  # before the address is printed: first requests would load torch
        settle_heap()
    else:
        from interestlens.threads import resolve

        n = resolve(threads)
    bound = sock.getsockname()[1]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{bound}"
    user = next(iter(engine.dataset.user_ids), "1")  # callers pass a fitted engine
    render.say(
        "serving ",
        (url, "bold"),
        f" (API docs {url}/docs; {workers} worker(s), {n} thread(s) per pool)",
        stderr=stderr,
    )
    if key == shown:
        render.say(
            "admin API key (made now; set $INTERESTLENS_API_KEY to choose one): ",
            (key, "bold"),
            stderr=stderr,
        )
    else:
        render.say("admin API key: the value of $INTERESTLENS_API_KEY", stderr=stderr)
    render.say(
        f"try: curl -H \"X-API-Key: {shown}\" '{url}/v1/users/{user}/recommendations?k=5&explain=true'",
        stderr=stderr,
    )
    (sys.stderr if stderr else sys.stdout).flush()
    if workers == 1:
        app = create_app(engine, ServeSettings(**knobs))  # type: ignore[arg-type]
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        )
        server.run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    from interestlens.serve.worker import ENV, spec

    os.environ[ENV] = spec(engine.config.data_dir, threads=threads, **knobs)  # type: ignore[arg-type]
    del engine  # each worker opens its own; this process only supervises them
    config = uvicorn.Config(
        "interestlens.serve.worker:app",
        factory=True,
        workers=workers,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_worker_healthcheck=60,  # a worker opens and warms the engine at start
    )
    Multiprocess(config, sockets=[sock]).run()
