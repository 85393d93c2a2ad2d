"""`interestlens serve`: the HTTP service (:mod:`interestlens.serve`) over a saved engine."""

from __future__ import annotations

import os
import secrets
import socket
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


def serve(
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            help="Threads of each library's pool while serving (default: "
            "$INTERESTLENS_THREADS, else 1).",
        ),
    ] = None,
) -> None:
    """Serve the engine saved in --data-dir over HTTP until interrupted (docs/serve.md).

    Opens the latest saved version plus every event stored since, then answers the API
    of /docs: events, items, recommendations, feedback, interests, similar items,
    erasure. The admin key is $INTERESTLENS_API_KEY; without it a new key is made and
    printed. Listens on 127.0.0.1 unless --host says otherwise.
    """
    run(fitted_engine(data_dir), host, port, threads)


def run(engine: Engine, host: str, port: int, threads: int | None, *, stderr: bool = False) -> None:
    """Serve ``engine`` on ``host:port`` until interrupted; print where, the key and a first request.

    The lines go to stderr with ``stderr`` (beside a ``--json`` document on stdout).
    """
    import uvicorn

    from interestlens.serve import ServeSettings, create_app
    from interestlens.serve.settings import ENV_KEY
    from interestlens.threads import pin

    if not 0 <= port <= 65535:
        raise CLIError(f"--port must be between 0 and 65535, got {port}")
    n = pin(threads)  # requests are small: one thread per pool, unless told otherwise
    key = os.environ.get(ENV_KEY)
    if key:
        settings, shown = ServeSettings(), f"${ENV_KEY}"
    else:
        key = secrets.token_urlsafe(24)
        settings, shown = ServeSettings(api_keys={key: ["admin"]}), key
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise CLIError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    engine.warm()  # before the address is printed: first requests would load torch and the encoder
    bound = sock.getsockname()[1]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{bound}"
    user = next(iter(engine.dataset.user_ids), "1")  # callers pass a fitted engine
    render.say(
        "serving ", (url, "bold"), f" (API docs {url}/docs; {n} thread(s) per pool)", stderr=stderr
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
    app = create_app(engine, settings)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    server.run(sockets=[sock])
