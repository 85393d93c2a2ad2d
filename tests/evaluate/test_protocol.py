"""Protocols: full ranking, seen-item exclusion, same users for every model."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from interestlens.evaluate import evaluate, evaluate_split, make_split
from interestlens.evaluate.protocol import _held_out, _rank
from interestlens.models import Popularity
from tests.evaluate.fakes import ColumnOrder, ListsSeenItems, Oracle, RandomRecommender


def _expected_ranks(model, split, users):
    """Rank of each user's single held-out item among all items minus the training items."""
    train = split.train.events
    test = split.test.events.set_index("user_id")["item_id"]
    ranks, n_cand = [], []
    for u in users:
        seen = set(model.item_ids_.get_indexer(train.loc[train["user_id"] == u, "item_id"]))
        c = model.item_ids_.get_loc(test[u])
        ranks.append(1 + sum(1 for j in range(c) if j not in seen))
        n_cand.append(len(model.item_ids_) - len(seen))
    return np.array(ranks), np.array(n_cand)


def test_held_out_item_competes_with_every_item(loo):
    model = ColumnOrder().fit(loo.train)
    n_items = len(model.item_ids_)
    df = evaluate_split(model, loo, k=n_items, metrics=["hr", "ndcg", "auc"])
    rank, n_cand = _expected_ranks(model, loo, df.index)
    assert n_items == 9742 and len(df) == 609
    # with K = whole catalogue every held-out item is found, at its rank among all items
    assert (df["hr"] == 1).all()
    np.testing.assert_allclose(df["ndcg"], 1 / np.log2(rank + 1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(df["auc"], 1 - (rank - 1) / (n_cand - 1), rtol=0, atol=1e-12)
    assert rank.max() > 1000  # far beyond what 100 sampled negatives could express


def test_full_ranking_is_the_default_and_sampling_only_when_asked(loo):
    model = ColumnOrder().fit(loo.train)
    a = evaluate_split(model, loo, metrics=["hr", "auc"], random_state=1)
    b = evaluate_split(model, loo, metrics=["hr", "auc"], random_state=2)
    pd.testing.assert_frame_equal(a, b)  # nothing random in a full ranking
    s = evaluate_split(model, loo, metrics=["hr", "auc"], n_negatives=99, random_state=1)
    assert s.attrs["n_negatives"] == 99
    assert s["hr"].mean() > 3 * a["hr"].mean()  # sampled metrics flatter the model


def test_training_items_are_excluded(loo):
    held = loo.test.events[["user_id", "item_id"]]
    df = evaluate_split(Oracle(held).fit(loo.train), loo, metrics=["hr", "ndcg", "auc"])
    # the oracle scores training items highest: only exclusion lets the held-out item lead
    assert (df["hr"] == 1).all() and (df["ndcg"] == 1).all() and (df["auc"] == 1).all()


@pytest.mark.parametrize("model_cls", [Popularity, ListsSeenItems])
def test_no_list_holds_a_training_item(loo, model_cls):
    model = model_cls().fit(loo.train)
    held = _held_out(loo, model.item_ids_, None)
    recs, _ = _rank(
        model,
        held,
        10,
        need_scores=False,
        n_negatives=None,
        rng=np.random.default_rng(0),
        batch_size=256,
    )
    seen = held.seen.toarray()
    rows = np.repeat(np.arange(len(recs)), recs.shape[1]).reshape(recs.shape)
    assert not seen[rows[recs >= 0], recs[recs >= 0]].any()
    if model_cls is ListsSeenItems:  # its training items became empty slots
        assert (recs == -1).any()


def test_users_with_held_out_item_among_training_items_are_skipped(ml_small, loo):
    df = evaluate_split(Popularity().fit(loo.train), loo, metrics=["hr"])
    assert len(df) == 609 and loo.test.events["user_id"].nunique() == 610
    asked = evaluate_split(
        Popularity().fit(loo.train), loo, metrics=["hr"], users=["5", "1", "no-such-user"]
    )
    assert asked.index.tolist() == ["5", "1"] and asked.attrs["skipped_users"] == 1


def test_every_model_is_scored_on_the_same_users(pop_vs_random):
    a, b = (pop_vs_random.per_user[m] for m in ("popularity", "random"))
    assert a.index.equals(b.index) and len(a) == 609
    assert set(a.columns) >= {"hr", "precision", "recall", "f1", "ndcg", "mrr", "map", "auc"}
    assert {"coverage", "gini"} <= set(a.attrs["aggregate"])


def test_popularity_loo_matches_the_anchor_within_noise(pop_vs_random):
    s = pop_vs_random.summary()
    ndcg = s.loc[("popularity", "ndcg")]
    # ANCHORS.md: 0.0189 (RecBole); one standard error here is about 0.004
    assert abs(ndcg["value"] - 0.0189) < 0.004
    assert ndcg["ci_low"] < 0.0189 < ndcg["ci_high"]


def test_evaluating_one_model_is_fast(loo):
    model = Popularity().fit(loo.train)
    evaluate_split(model, loo)  # warm up
    t0 = time.perf_counter()
    evaluate_split(model, loo)
    assert time.perf_counter() - t0 < 3.0


def test_prefitted_models_and_factories(ml_small, loo, pop_vs_random):
    fitted = Popularity().fit(loo.train)
    r = evaluate({"popularity": fitted}, None, split=loo, fit=False, metrics=["ndcg", "hr"])
    pd.testing.assert_series_equal(
        r.per_user["popularity"]["ndcg"], pop_vs_random.per_user["popularity"]["ndcg"]
    )
    r2 = evaluate(
        {"rand": lambda: RandomRecommender(random_state=3)},
        ml_small,
        metrics=["hr"],
        target_types="rating",
    )
    assert r2.protocol == "leave_last_out" and "rand" in r2.models


def test_random_and_temporal_protocols_run(ml_small):
    for protocol, name in (("random", "random_holdout"), ("temporal", "temporal_cut")):
        split = make_split(ml_small, protocol, target_types="rating")
        assert split.name == name and split.validation is not None
        df = evaluate_split(Popularity().fit(split.train), split, metrics=["recall", "ndcg"])
        assert len(df) > 50 and df["ndcg"].between(0, 1).all()


def test_bad_arguments(loo):
    with pytest.raises(ValueError, match="unknown protocol"):
        make_split(loo.train, "sampled")
    with pytest.raises(ValueError, match="unknown metrics"):
        evaluate_split(Popularity().fit(loo.train), loo, metrics=["hr", "bleu"])
    with pytest.raises(ValueError, match="item_vectors"):
        evaluate_split(Popularity().fit(loo.train), loo, metrics=["ild"])
    with pytest.raises(RuntimeError, match="not fitted"):
        evaluate_split(Popularity(), loo)


def test_intra_list_diversity_with_item_vectors(loo):
    model = Popularity().fit(loo.train)
    rng = np.random.default_rng(0)
    vectors = pd.DataFrame(rng.normal(size=(len(model.item_ids_), 8)), index=model.item_ids_)
    df = evaluate_split(model, loo, metrics=["ild"], item_vectors=vectors)
    assert df["ild"].between(0, 2).all() and 0.7 < df["ild"].mean() < 1.3


def test_held_out_items_the_model_never_saw_count_as_misses():
    from interestlens.data import Dataset, Event
    from interestlens.data.splits import leave_last_out

    pairs = [("a", "x"), ("a", "y"), ("b", "x"), ("b", "z"), ("c", "y"), ("c", "w")]
    split = leave_last_out(Dataset.from_records([Event(u, i, "click") for u, i in pairs]))
    model = Popularity().fit(split.train)  # knows x and y only: z and w appear in test
    df = evaluate_split(model, split, k=2, metrics=["hr", "recall", "auc"])
    assert df["hr"].tolist() == [1.0, 0.0, 0.0]
    # a: y is the only candidate left (no negatives, so no AUC); b, c: never-seen items rank last
    np.testing.assert_array_equal(df["auc"], [np.nan, 0.0, 0.0])
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate({"p": Popularity()}, Dataset.from_records([Event("a", "x", "click")]))
