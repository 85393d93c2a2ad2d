"""An acknowledged event, slate or feedback survives SIGKILL of the process that wrote it,
and, for SQLite, an event or a reward reached the disk (fdatasync of the WAL) before it was
acknowledged. A slate alone is committed without its own sync: it survives SIGKILL at once
and reaches the disk with the next synced commit (tests/store/test_sqlite_slates.py)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from interestlens.store import open_store
from interestlens.store.sqlite import SQLiteEventStore

EVENT_WRITER = textwrap.dedent(
    """
    import os, sys
    from interestlens.data.schema import Event
    from interestlens.store import open_store

    store = open_store(sys.argv[1])
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else None
    batch = 0
    while batch != limit:  # runs until killed, or for `limit` batches
        events = [Event("u%d" % (k % 7), "i%d" % k, "click", event_id="b%d-%d" % (batch, k)) for k in range(200)]
        store.append(events)
        os.write(1, b"ack %d\\n" % batch)  # one write(2): the acknowledgement
        batch += 1
    """
)

SLATE_WRITER = textwrap.dedent(
    """
    import os, sys
    from interestlens.store import open_store

    store = open_store(sys.argv[1])
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else None
    n = 0
    while n != limit:  # runs until killed, or for `limit` slates
        store.log_slate(request_id="r%d" % n, user_id="u%d" % (n % 7), item_ids=["a", "b"],
                        propensities=[0.5, 0.5], explored=[False, True], policy="p", explore=0.5)
        store.log_feedback("r%d" % n, "b", 1.0)
        os.write(1, b"ack %d\\n" % n)  # one write(2): the acknowledgement
        n += 1
    """
)


def _kill_after(script: str, store_url: str, tmp_path, acks: int) -> list[int]:
    """Run a writer, SIGKILL it after ``acks`` acknowledgements; return the acknowledged numbers."""
    path = tmp_path / "writer.py"
    path.write_text(script)
    proc = subprocess.Popen(
        [sys.executable, str(path), store_url],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    acked: list[int] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            acked.append(int(line.split()[1]))
            if len(acked) == acks:
                proc.send_signal(
                    signal.SIGKILL
                )  # mid-stream: the writer is already on its next write
                break
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return acked


def test_acknowledged_events_survive_sigkill(store_url, tmp_path):
    acked = _kill_after(EVENT_WRITER, store_url, tmp_path, 25)
    with open_store(store_url) as store:
        ids = set(store.events()["event_id"])
    missing = [f"b{b}-{k}" for b in acked for k in range(200) if f"b{b}-{k}" not in ids]
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:3]}"
    # Batches are atomic: whatever was stored beyond the acks is whole batches.
    assert len(ids) % 200 == 0 and len(ids) >= 25 * 200


def test_acknowledged_slates_and_feedback_survive_sigkill(store_url, tmp_path):
    acked = _kill_after(SLATE_WRITER, store_url, tmp_path, 40)
    with open_store(store_url) as store:
        frame = store.slate_frame()
    rewarded = set(frame.loc[frame["reward"] == 1.0, "request_id"])
    missing = [f"r{n}" for n in acked if f"r{n}" not in rewarded]
    assert not missing, f"{len(missing)} acknowledged slates or rewards lost, e.g. {missing[:3]}"
    # a slate is stored whole: both of its positions or neither
    assert (frame.groupby("request_id").size() == 2).all()


def test_sqlite_store_commits_with_wal_and_synchronous_full(tmp_path):
    """``synchronous=FULL`` (2) makes each commit fsync the WAL; NORMAL (1) would not."""
    with open_store(f"sqlite://{tmp_path / 'events.db'}") as store:
        assert isinstance(store, SQLiteEventStore)
        conn = store._conn
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _strace() -> str:
    """Path of strace, installed with apt-get as root when missing; skips with the reason."""
    found = shutil.which("strace")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "strace"]):
            subprocess.run(cmd, env=env, capture_output=True, timeout=600)
        found = shutil.which("strace")
    if found is None:
        reason = "strace is absent and apt-get could not install it"
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI must run the fsync test, but {reason}", pytrace=False)
        pytest.skip(reason)
    probe = subprocess.run([found, "-qq", "-e", "trace=none", "true"], capture_output=True)
    if probe.returncode != 0:  # e.g. ptrace forbidden in this container
        pytest.skip(f"strace cannot trace here: {probe.stderr.decode(errors='replace')[-300:]}")
    return found


#: One traced call: pid, name, fd and the fd's path (strace -y), the rest of the line.
_CALL = re.compile(r"^(\d+)\s+(\w+)\((\d+)<([^>]*)>(.*)$")


def traced_writer(
    script: str, n: int, tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    """Run a writer ``script`` (store URL and ``n`` as arguments) under strace, tracing its
    writes and syncs with their file paths; the finished process, its data dir and the trace."""
    strace = _strace()
    db_dir = tmp_path / "db"
    path = tmp_path / "writer.py"
    path.write_text(script)
    trace = tmp_path / "trace.txt"
    proc = subprocess.run(
        [
            strace,
            "-f",
            "-y",
            "-qq",
            "-e",
            "trace=write,pwrite64,pwritev,pwritev2,fsync,fdatasync",
            "-o",
            str(trace),
            sys.executable,
            str(path),
            f"sqlite://{db_dir / 'events.db'}",
            str(n),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc, db_dir, trace


@pytest.mark.parametrize(("script", "n"), [(EVENT_WRITER, 30), (SLATE_WRITER, 30)])
def test_each_acknowledged_sqlite_write_is_fdatasynced_before_the_ack(script, n, tmp_path):
    """Power-loss durability, short of cutting the power: trace the writer's system calls
    and check that before each acknowledgement every byte written to the WAL since the
    last one was passed to fsync/fdatasync, and the WAL's directory entry was synced
    before the first. What the page cache holds is then on the device (as far as the
    device honours a flush, which no test here can see). With ``synchronous=NORMAL``
    SQLite writes the WAL without syncing it at commit, and this test fails.
    """
    proc, db_dir, trace = traced_writer(script, n, tmp_path)
    assert proc.stdout.split() == [w for k in range(n) for w in ("ack", str(k))]
    wal = str(db_dir / "events.db-wal")
    dirty = synced = dir_synced = False
    acks = wal_writes = 0
    for line in trace.read_text().splitlines():
        m = _CALL.match(line)
        if not m:
            continue
        _, call, fd, target, rest = m.groups()
        if call.startswith(("pwrite", "write")) and target == wal:
            dirty, wal_writes = True, wal_writes + 1
        elif call in ("fsync", "fdatasync") and target == wal:
            dirty, synced = False, True
        elif call in ("fsync", "fdatasync") and Path(target) == db_dir:
            dir_synced = True
        elif call == "write" and fd == "1" and '"ack ' in rest:
            assert not dirty, f"ack {acks} was sent with WAL writes not yet synced"
            assert synced, f"ack {acks} was sent without a sync of the WAL since the last ack"
            assert dir_synced, "the WAL's directory entry was never synced"
            synced = False
            acks += 1
    assert acks == n and wal_writes >= n


@pytest.mark.postgres
def test_postgres_store_commits_synchronously(postgres_url):
    """A commit returns only once the server has flushed its WAL (fsync on, synchronous_commit on)."""
    with open_store(postgres_url) as store:
        conn = store._conn
        assert conn.execute("SHOW synchronous_commit").fetchone()[0] == "on"
        assert conn.execute("SHOW fsync").fetchone()[0] == "on"
