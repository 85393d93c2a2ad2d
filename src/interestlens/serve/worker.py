"""One worker of ``interestlens serve --workers N``: the app factory each worker process runs.

The parent binds the socket and starts N processes (uvicorn's supervisor); each calls
:func:`app`, which opens the engine saved in the data directory on its own (the
artefact's arrays are memory-mapped, so the workers share their pages), warms it and
builds the app with ``follow_store`` on: before each answer about a user, a worker
folds in what the others stored, and each swaps to a version a refit publishes.
The parent passes the settings in the environment variable :data:`ENV`.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from fastapi import FastAPI

#: The environment variable holding a worker's settings (JSON).
ENV = "INTERESTLENS_SERVE_WORKER"


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: any free port) and listening, for uvicorn to serve.

    Bound and listening before the address is printed, so the address takes connections
    at once (the workers accept them once they are up). The protocol is named: asyncio
    sets TCP_NODELAY only on sockets whose ``proto`` says TCP, and without it each answer
    written in two parts waits about 40 ms for the client's delayed ACK.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def spec(
    data_dir: str | Path,
    *,
    threads: int | None = None,
    follow_store: bool = True,
    poll_seconds: float = 1.0,
    refit_every: int = 0,
    refit_interval: float = 0.0,
    refit_threads: int | None = None,
) -> str:
    """The value of :data:`ENV` that makes :func:`app` serve ``data_dir`` with these settings."""
    return json.dumps(
        {
            "data_dir": str(data_dir),
            "threads": threads,
            "follow_store": follow_store,
            "poll_seconds": poll_seconds,
            "refit_every": refit_every,
            "refit_interval": refit_interval,
            "refit_threads": refit_threads,
        }
    )


def app() -> FastAPI:
    """The app of one worker, configured by :data:`ENV` (see :func:`spec`)."""
    from interestlens.engine import Engine
    from interestlens.serve.app import create_app
    from interestlens.serve.follow import settle_heap
    from interestlens.serve.settings import ServeSettings
    from interestlens.threads import pin

    doc: dict[str, Any] = json.loads(os.environ[ENV])
    pin(doc["threads"])
    engine = Engine.open(doc["data_dir"])
    if not engine.fitted:
        raise RuntimeError(f"no fitted engine in {doc['data_dir']}")
    engine.warm()
    settle_heap()
    settings = ServeSettings(
        follow_store=doc["follow_store"],
        poll_seconds=doc["poll_seconds"],
        refit_every=doc["refit_every"],
        refit_interval=doc["refit_interval"],
        refit_threads=doc["refit_threads"],
    )
    return create_app(engine, settings)
