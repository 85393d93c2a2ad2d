"""An acknowledged event survives SIGKILL of the process that appended it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from interestlens.store import open_store

WRITER = textwrap.dedent(
    """
    import sys
    from interestlens.data.schema import Event
    from interestlens.store import open_store

    store = open_store(sys.argv[1])
    batch = 0
    while True:  # runs until killed
        events = [Event("u%d" % (k % 7), "i%d" % k, "click", event_id="b%d-%d" % (batch, k)) for k in range(200)]
        store.append(events)
        print("ack", batch, flush=True)
        batch += 1
    """
)


def test_acknowledged_events_survive_sigkill(store_url, tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen(
        [sys.executable, str(script), store_url],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    acked: list[int] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            acked.append(int(line.split()[1]))
            if len(acked) == 25:
                proc.send_signal(
                    signal.SIGKILL
                )  # mid-stream: the writer is already on its next batch
                break
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with open_store(store_url) as store:
        ids = set(store.events()["event_id"])
    missing = [f"b{b}-{k}" for b in acked for k in range(200) if f"b{b}-{k}" not in ids]
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:3]}"
    # Batches are atomic: whatever was stored beyond the acks is whole batches.
    assert len(ids) % 200 == 0 and len(ids) >= 25 * 200
