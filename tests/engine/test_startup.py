"""A command-line question opens a saved engine without loading what it does not need.

``interestlens recommend USER`` opens the saved engine and scores a known user in a fresh
process each time; torch, scikit-learn, LightGBM and sentence-transformers together cost
seconds of import time and hundreds of megabytes, and none of them is needed to score a
user the snapshot already holds. This test fails when one of them creeps back onto that
path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import LIGHT_HYBRID

HEAVY = ("torch", "sklearn", "lightgbm", "sentence_transformers")

_OPEN_AND_RECOMMEND = """
import json, sys
from interestlens.engine import Engine

engine = Engine.open(sys.argv[1])
recs = engine.recommend(sys.argv[2], k=5, explore=0.0)
print(json.dumps({
    "items": [r.item_id for r in recs],
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[3].split(",")),
}))
"""


@pytest.fixture(scope="module")
def saved_engine(tmp_path_factory, ml_small, encoder, sentiment):
    """A light hybrid with SASRec among its models, fitted on 60 users' events and saved."""
    from interestlens.data import Dataset
    from interestlens.engine import Config, Engine

    ev = ml_small.events
    users = ev["user_id"].drop_duplicates().iloc[:60]
    events = ev[ev["user_id"].isin(users)].reset_index(drop=True)
    items = ml_small.items[ml_small.items["item_id"].isin(events["item_id"])]
    dataset = Dataset(events, items, ml_small.users, name="ml-latest-small, 60 users")
    data_dir = tmp_path_factory.mktemp("startup")
    config = Config(data_dir=data_dir, hybrid_models=(*LIGHT_HYBRID, "sasrec"), threads=1)
    engine = Engine(config, encoder=encoder, sentiment=sentiment).fit(dataset)
    # a LambdaRank ranker would load LightGBM (and scikit-learn) at its first score
    assert engine.recommender.ranker_kind_ == "linear", engine.recommender.ranker_cv_
    engine.save()
    return engine, data_dir, str(users.iloc[0])


def test_recommending_for_a_known_user_loads_no_heavy_library(saved_engine):
    engine, data_dir, user = saved_engine
    p = subprocess.run(
        [sys.executable, "-c", _OPEN_AND_RECOMMEND, str(data_dir), user, ",".join(HEAVY)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["loaded"] == [], f"loaded on the way to a recommendation: {out['loaded']}"
    # the reopened engine answers as the one that was saved
    want = [r.item_id for r in engine.recommend(user, k=5, explore=0.0)]
    assert out["items"] == want and len(want) == 5


def test_the_reopened_sasrec_folds_in_a_new_history_as_the_saved_one(saved_engine):
    from interestlens.engine import Engine

    engine, data_dir, user = saved_engine
    sasrec = next(m for m in engine.recommender.models_ if type(m).__name__ == "SASRec")
    reopened = Engine.open(data_dir).recommender
    loaded = next(m for m in reopened.models_ if type(m).__name__ == "SASRec")
    assert "_network" not in vars(loaded)
    history = engine.snapshot.user_events(user).iloc[:-3]  # as if the last three never came
    np.testing.assert_array_equal(loaded.score_history(history), sasrec.score_history(history))


_OPEN_AND_WARM = """
import json, sys
from interestlens.engine import Engine

engine = Engine.open(sys.argv[1]).warm()
print(json.dumps(sorted(m for m in ("torch", "sentence_transformers") if m in sys.modules)))
"""


def test_warm_loads_what_a_first_fold_in_would(saved_engine):
    """A server warms the engine before its first request: SASRec's torch network and the
    text encoder are loaded then, not by the first user whose new event is folded in."""
    _, data_dir, _ = saved_engine
    p = subprocess.run(
        [sys.executable, "-c", _OPEN_AND_WARM, str(data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1]) == ["sentence_transformers", "torch"]
