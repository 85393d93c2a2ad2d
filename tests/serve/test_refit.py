"""POST /v1/admin/refit: readers are answered throughout, and the model version moves on.

Last of the module order on purpose: it swaps the session engine's snapshot.
"""

from __future__ import annotations

import time

from interestlens.client import Client


def test_refit_swaps_in_a_new_version_while_reads_are_answered(live):
    with Client(live.url, "admin-key", timeout=300) as c:
        before = c.health()["model_version"]
        c.ingest([{"user_id": "refit-u", "item_id": "1", "type": "click"}])
        started = c.refit()
        # fitted in memory, not saved: nothing on disk for a process to open, so a thread
        assert started == {
            "started": True,
            "running": True,
            "how": "thread",
            "model_version": before,
        }
        assert c.refit()["started"] is False  # one at a time
        answered, deadline = 0, time.monotonic() + 300
        while c.health()["model_version"] == before:
            assert len(c.recommend("refit-u", k=5)["items"]) == 5
            answered += 1
            assert time.monotonic() < deadline, "the refit did not go live in 300 s"
        assert answered > 0
        health = c.health()
        assert health["model_version"] == before + 1 and health["model_age_seconds"] < 60
        text = c.metrics()
        assert f"interestlens_model_version {before + 1}.0" in text
        assert "interestlens_refit_duration_seconds_count 1.0" in text
        assert c.interests("refit-u")["n_events"] == 1
