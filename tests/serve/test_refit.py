"""POST /v1/admin/refit: readers are answered throughout, and the model version moves on.

Last of the module order on purpose: it swaps the session engine's snapshot.
"""

from __future__ import annotations

import threading

from interestlens.client import Client


def test_refit_swaps_in_a_new_version_while_reads_are_answered(live):
    with Client(live.url, "admin-key", timeout=300) as c:
        before = c.health()["model_version"]
        c.ingest([{"user_id": "refit-u", "item_id": "1", "type": "click"}])
        result: dict = {}
        thread = threading.Thread(target=lambda: result.update(c.refit()))
        thread.start()
        answered = 0
        while thread.is_alive():
            assert len(c.recommend("refit-u", k=5)["items"]) == 5
            answered += 1
        thread.join()
        assert answered > 0
        assert result["model_version"] == before + 1 and result["seconds"] > 0
        health = c.health()
        assert health["model_version"] == before + 1 and health["model_age_seconds"] < 60
        assert f"interestlens_model_version {before + 1}.0" in c.metrics()
        assert c.interests("refit-u")["n_events"] == 1
