"""A private, throw-away PostgreSQL cluster on 127.0.0.1, for the tests and the benchmarks.

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
from collections.abc import Sequence
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be installed or started here; the message says why.

    Raised for a broken installation too (``initdb`` or ``pg_ctl`` failing, ``apt-get``
    failing for any reason but an unreachable registry): callers such as tests must treat
    it as a failure. Only :class:`PostgresNotInstallable` describes a machine that
    merely lacks PostgreSQL.
    """


class PostgresNotInstallable(PostgresUnavailable):
    """The server binaries are absent and this machine cannot install them.

    The reasons, all about the machine and none about interestlens: not running as root,
    no ``apt-get``, or ``apt-get`` cannot reach its package registry. This is the only
    condition under which a test may skip for want of PostgreSQL.
    """


#: Markers in apt-get's output that the package registry could not be reached.
_UNREACHABLE = (
    "Failed to fetch",
    "Some index files failed to download",
    "Temporary failure resolving",
    "Could not resolve",
    "Could not connect",
    "Unable to connect",
    "Network is unreachable",
    "Connection timed out",
)

#: Where Debian's ``postgresql`` package puts the server binaries.
DEBIAN_BIN_DIRS = ("/usr/lib/postgresql/*/bin",)


def _bin_dir(patterns: Sequence[str] = DEBIAN_BIN_DIRS, use_path: bool = True) -> Path | None:
    for pattern in patterns:
        dirs = sorted(
            glob.glob(pattern),
            key=lambda d: int(Path(d).parent.name) if Path(d).parent.name.isdigit() else 0,
        )
        for d in reversed(dirs):
            if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
                return Path(d)
    if not use_path:
        return None
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found and shutil.which("pg_ctl") else None


def registry_unreachable(apt_output: str) -> bool:
    """Whether apt-get's output says its package registry could not be reached."""
    return any(marker in apt_output for marker in _UNREACHABLE)


def ensure_installed(
    timeout: float = 600,
    *,
    patterns: Sequence[str] = DEBIAN_BIN_DIRS,
    use_path: bool = True,
    apt_options: Sequence[str] = (),
    package: str = "postgresql",
) -> Path:
    """Path of the PostgreSQL server binaries, installing Debian's package if needed.

    Parameters
    ----------
    timeout
        Seconds allowed to each ``apt-get`` command.
    patterns, use_path
        Where to look for ``initdb`` and ``pg_ctl``: glob patterns of folders, then
        ``PATH`` when ``use_path``.
    apt_options
        Extra ``-o`` settings passed to ``apt-get`` (e.g. a proxy).
    package
        The Debian package that holds the server.

    Raises
    ------
    PostgresNotInstallable
        The binaries are absent and cannot be installed: not root, no ``apt-get``, or
        ``apt-get`` cannot reach its registry.
    PostgresUnavailable
        Anything else (``apt-get`` failed for another reason, or installed the package
        without the binaries): a broken installation, not a missing one.
    """
    found = _bin_dir(patterns, use_path)
    if found:
        return found
    if os.geteuid() != 0:
        raise PostgresNotInstallable(
            "PostgreSQL server binaries are missing and this process is not root, "
            "so apt-get cannot install them"
        )
    if not shutil.which("apt-get"):
        raise PostgresNotInstallable(
            "PostgreSQL server binaries are missing and there is no apt-get"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    opts = [a for o in apt_options for a in ("-o", o)]
    seen = ""
    for cmd in (
        ["apt-get", *opts, "update", "-qq"],
        ["apt-get", *opts, "install", "-y", "-qq", package],
    ):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        seen += proc.stdout + proc.stderr
        if proc.returncode != 0:
            what = f"{' '.join(cmd)} failed: {proc.stderr.strip()[-500:]}"
            if registry_unreachable(seen):
                raise PostgresNotInstallable(
                    f"PostgreSQL server binaries are missing and apt-get cannot reach its "
                    f"package registry ({what})"
                )
            raise PostgresUnavailable(what)
    found = _bin_dir(patterns, use_path)
    if not found:
        raise PostgresUnavailable(f"apt-get installed {package} but no initdb/pg_ctl was found")
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

    def __init__(
        self,
        base_dir: str | Path | None = None,
        port: int | None = None,
        bin_dir: str | Path | None = None,
    ) -> None:
        self.base_dir = Path(base_dir) if base_dir else None
        self.port = port
        self.data_dir: Path | None = None
        self.bin_dir = Path(bin_dir) if bin_dir else None
        self._bin: Path | None = None
        self._owns_dir = base_dir is None

    def _run(self, args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            args = ["runuser", "-u", "postgres", "--", *args]
        return subprocess.run(args, capture_output=True, text=True, **kw)  # type: ignore[call-overload]

    def start(self) -> LocalPostgres:
        """Create the cluster and start the server.

        Raises
        ------
        PostgresNotInstallable
            The binaries are absent and this machine cannot install them.
        PostgresUnavailable
            Any other failure (installing, ``initdb``, ``pg_ctl start``, the folders).
        """
        self._bin = self.bin_dir or ensure_installed()
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
