"""The SQLite slate log skips the fsync of each slate, and nothing else does.

A slate is committed with ``synchronous=NORMAL`` (it is written on every recommendation,
and the fsync was most of its cost): it must still survive SIGKILL of the process the
moment :meth:`log_slate` returns, and every event committed after it must still be
fsynced before its acknowledgement, slates before it included.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from interestlens.data.schema import Event
from interestlens.store import open_store
from tests.store.test_durability import _CALL, traced_writer

#: Logs slates only (no feedback, whose synced commit would carry them to the disk).
SLATES_ONLY = textwrap.dedent(
    """
    import os, sys
    from interestlens.store import open_store

    store = open_store(sys.argv[1])
    n = 0
    while True:
        store.log_slate(request_id="r%d" % n, user_id="u%d" % (n % 7), item_ids=["a", "b"],
                        propensities=[0.5, 0.5], explored=[False, True], policy="p", explore=0.5)
        os.write(1, b"ack %d\\n" % n)
        n += 1
    """
)

#: A slate, then an event, acknowledged after the event.
SLATE_THEN_EVENT = textwrap.dedent(
    """
    import os, sys
    from interestlens.data.schema import Event
    from interestlens.store import open_store

    store = open_store(sys.argv[1])
    for n in range(int(sys.argv[2])):
        store.log_slate(request_id="r%d" % n, user_id="u", item_ids=["a", "b"],
                        propensities=[1.0, 1.0], explored=[False, False], policy="p", explore=0.0)
        store.append([Event("u", "i%d" % n, "click", event_id="e%d" % n)])
        os.write(1, b"ack %d\\n" % n)
    """
)


def test_a_logged_slate_survives_sigkill_without_any_synced_commit_after_it(tmp_path):
    path = tmp_path / "writer.py"
    path.write_text(SLATES_ONLY)
    url = f"sqlite://{tmp_path / 'events.db'}"
    proc = subprocess.Popen([sys.executable, str(path), url], stdout=subprocess.PIPE, text=True)
    acked: list[int] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            acked.append(int(line.split()[1]))
            if len(acked) == 60:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with open_store(url) as store:
        logged = set(store.slate_frame()["request_id"])
    missing = [f"r{n}" for n in acked if f"r{n}" not in logged]
    assert not missing, f"{len(missing)} acknowledged slates lost, e.g. {missing[:3]}"


def test_a_slate_leaves_the_connection_fully_synchronous(tmp_path):
    with open_store(f"sqlite://{tmp_path / 'events.db'}") as store:
        conn = store._conn
        slate = {
            "request_id": "r",
            "user_id": "u",
            "item_ids": ["a"],
            "propensities": [1.0],
            "explored": [False],
            "policy": "p",
            "explore": 0.0,
        }
        store.log_slate(**slate)
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        # the same after a slate logged twice (the early return inside the transaction)
        assert not store.log_slate(**slate)
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        store.append([Event("u", "a", "click")])
        assert store.count() == 1 and store.count_slates() == 1


def test_an_event_after_a_slate_is_fdatasynced_before_its_ack_and_the_slate_with_it(tmp_path):
    """Trace the writer: a slate's commit writes the WAL without a sync, and the event's
    commit after it syncs the WAL before the acknowledgement (so the slate too)."""
    n = 20
    _, db_dir, trace = traced_writer(SLATE_THEN_EVENT, n, tmp_path)
    wal = str(db_dir / "events.db-wal")
    dirty = False
    acks = syncs = 0
    for line in trace.read_text().splitlines():
        m = _CALL.match(line)
        if not m:
            continue
        _, call, fd, target, rest = m.groups()
        if call.startswith(("pwrite", "write")) and target == wal:
            dirty = True
        elif call in ("fsync", "fdatasync") and target == wal:
            dirty, syncs = False, syncs + 1
        elif call == "write" and fd == "1" and '"ack ' in rest:
            assert not dirty, f"ack {acks} was sent with WAL writes not yet synced"
            acks += 1
    assert acks == n
    # one sync per event commit, none per slate (a checkpoint may add a few)
    assert n <= syncs < 2 * n, syncs
