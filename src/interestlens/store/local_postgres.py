"""A private, throw-away PostgreSQL cluster on 127.0.0.1, for tests, benchmarks and demos.

Uses the server binaries of Debian's ``postgresql`` package; :func:`ensure_installed`
installs it with ``apt-get`` when missing and running as root. The cluster lives in a
folder of its own, listens on 127.0.0.1 only, and is removed by :meth:`LocalPostgres.stop`.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be installed or started here; the message says why."""


def _bin_dir() -> Path | None:
    for pattern in ("/usr/lib/postgresql/*/bin",):
        dirs = sorted(
            glob.glob(pattern),
            key=lambda d: int(Path(d).parent.name) if Path(d).parent.name.isdigit() else 0,
        )
        for d in reversed(dirs):
            if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
                return Path(d)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found and shutil.which("pg_ctl") else None


def ensure_installed(timeout: float = 600) -> Path:
    """Path of the PostgreSQL server binaries, installing Debian's package if needed."""
    found = _bin_dir()
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise PostgresUnavailable(
            "PostgreSQL server binaries are missing and apt-get cannot run as root here"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-500:]}")
    found = _bin_dir()
    if not found:
        raise PostgresUnavailable("apt-get installed postgresql but no initdb/pg_ctl was found")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalPostgres:
    """A PostgreSQL server of our own on 127.0.0.1.

    Examples
    --------
    >>> pg = LocalPostgres().start()        # doctest: +SKIP
    >>> pg.url("events")                    # doctest: +SKIP
    'postgresql://postgres@127.0.0.1:54321/events'
    >>> pg.stop()                           # doctest: +SKIP
    """

    def __init__(self, base_dir: str | Path | None = None, port: int | None = None) -> None:
        self.base_dir = Path(base_dir) if base_dir else None
        self.port = port
        self.data_dir: Path | None = None
        self._bin: Path | None = None
        self._owns_dir = base_dir is None

    def _run(self, args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            args = ["runuser", "-u", "postgres", "--", *args]
        return subprocess.run(args, capture_output=True, text=True, **kw)  # type: ignore[call-overload]

    def start(self) -> LocalPostgres:
        """Create the cluster and start the server; raises :class:`PostgresUnavailable`."""
        self._bin = ensure_installed()
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="interestlens-pg-"))
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.base_dir / "data"
        sock_dir = self.base_dir / "sock"
        sock_dir.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.base_dir, "postgres", "postgres")
            shutil.chown(sock_dir, "postgres", "postgres")
        self.port = self.port or _free_port()
        if not (self.data_dir / "PG_VERSION").exists():
            p = self._run(
                [
                    str(self._bin / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            )
            if p.returncode != 0:
                raise PostgresUnavailable(f"initdb failed: {p.stderr.strip()[-500:]}")
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {sock_dir} "
            "-c fsync=on -c shared_buffers=128MB -c max_connections=50"
        )
        p = self._run(
            [
                str(self._bin / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-o",
                opts,
                "-l",
                str(self.base_dir / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        if p.returncode != 0:
            log = self.base_dir / "server.log"
            tail = log.read_text()[-500:] if log.exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed: {p.stderr.strip()[-300:]} {tail}")
        return self

    def url(self, dbname: str = "postgres") -> str:
        """Connection URL of a database on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, dbname: str) -> str:
        """Create a database (if missing) and return its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{dbname}"')
        return self.url(dbname)

    def stop(self) -> None:
        """Stop the server and delete the cluster folder if we created it."""
        if self._bin and self.data_dir and self.data_dir.exists():
            self._run(
                [str(self._bin / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]
            )
        if self._owns_dir and self.base_dir and self.base_dir.exists():
            deadline = time.time() + 10
            while True:
                try:
                    shutil.rmtree(self.base_dir)
                    break
                except OSError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.2)
