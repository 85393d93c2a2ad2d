"""An acknowledged event, slate or feedback survives SIGKILL of the process that wrote it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from interestlens.store import open_store

EVENT_WRITER = textwrap.dedent(
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

SLATE_WRITER = textwrap.dedent(
    """
    import sys
    from interestlens.store import open_store

    store = open_store(sys.argv[1])
    n = 0
    while True:  # runs until killed
        store.log_slate(request_id="r%d" % n, user_id="u%d" % (n % 7), item_ids=["a", "b"],
                        propensities=[0.5, 0.5], explored=[False, True], policy="p", explore=0.5)
        store.log_feedback("r%d" % n, "b", 1.0)
        print("ack", n, flush=True)
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
