"""The live engine: refit without loss, readers in threads during ingest and refit, forget everywhere."""

from __future__ import annotations

import pickle
import threading
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from interestlens.data import Dataset, Event
from interestlens.engine import Config, Engine

T = pd.Timestamp("2030-01-01", tz="UTC")
RARE = "zq-rare-user-7731"


@pytest.fixture(scope="module")
def small(ml_small) -> Dataset:
    """Sixty users of ml-latest-small and the items they rated: a fit takes seconds."""
    users = ml_small.user_ids[:60]
    events = ml_small.events[ml_small.events["user_id"].isin(users)]
    items = ml_small.items[ml_small.items["item_id"].isin(events["item_id"])]
    return Dataset(events.reset_index(drop=True), items.reset_index(drop=True))


def _engine(tmp_path, small, encoder, sentiment, **cfg) -> Engine:
    config = Config(
        data_dir=tmp_path,
        n_fine=12,
        n_broad=4,
        hybrid_models=("itemknn", "als", "contentlm"),
        **cfg,
    )
    return Engine(config, encoder=encoder, sentiment=sentiment).fit(small)


def _clicks(user: str, items, start: int = 0) -> list[Event]:
    return [
        Event(user, str(i), "click", timestamp=T + timedelta(minutes=start + k))
        for k, i in enumerate(items)
    ]


def test_events_that_arrive_during_a_refit_are_all_in_the_engine_after(
    tmp_path, small, encoder, sentiment
):
    engine = _engine(tmp_path, small, encoder, sentiment)
    items = list(small.item_ids[:40])
    engine.ingest(_clicks("1", items[:5]))  # in the ledger before the refit: in its dataset
    during: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        k = 0
        while not stop.is_set() or k < 10:
            engine.ingest(_clicks(f"w{k % 3}", [items[k % 40]], start=100 + k))
            during.append(k)
            k += 1

    thread = threading.Thread(target=writer)
    thread.start()
    engine.refit()
    stop.set()
    thread.join()
    info = engine.info()
    assert info["generation"] == 2
    stored = engine.slate_store.events()
    known = engine.events()
    assert len(known) == len(small.events) + len(stored)  # every stored event, exactly once
    assert set(stored["event_id"]) <= set(known["event_id"])
    assert known["event_id"].is_unique
    for k in range(3):  # the writer's users have profiles with all their events
        assert engine.profile(f"w{k}").n_events == int((stored["user_id"] == f"w{k}").sum())
    # and a restart sees the same
    engine.save()
    again = Engine.open(tmp_path)
    assert len(again.events()) == len(known)


def test_readers_in_threads_during_ingest_and_refit_see_one_consistent_snapshot(
    tmp_path, small, encoder, sentiment
):
    engine = _engine(tmp_path, small, encoder, sentiment)
    users = [str(u) for u in small.user_ids[:10]]
    items = [str(i) for i in small.item_ids[:50]]
    errors: list[BaseException] = []
    answers = 0
    stop = threading.Event()

    def reader(seed: int) -> None:
        nonlocal answers
        rng = np.random.default_rng(seed)
        while not stop.is_set():
            try:
                user = users[rng.integers(len(users))]
                live = engine._view()
                recs = engine.recommend(user, k=5, explore=0.2)
                assert len(recs) == 5 and len({r.item_id for r in recs}) == 5
                prof = engine.profile(user)
                assert prof.n_events > 0
                sims = engine.similar_items(items[rng.integers(len(items))], k=3)
                assert len(sims) == 3
                # one view: its ledger belongs to its snapshot
                assert live.ledger.snapshot is live.snapshot
                answers += 1
            except BaseException as exc:
                errors.append(exc)
                return

    def writer() -> None:
        k = 0
        while not stop.is_set():
            try:
                engine.ingest(_clicks(users[k % 10], [items[k % 50]], start=k))
            except BaseException as exc:
                errors.append(exc)
                return
            k += 1

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(3)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    try:
        engine.refit()
        engine.refit()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    assert answers > 0 and engine.info()["generation"] == 3


def test_forget_erases_the_user_from_every_component(tmp_path, small, encoder, sentiment):
    engine = _engine(tmp_path, small, encoder, sentiment)
    items = [str(i) for i in small.item_ids[:8]]
    engine.ingest(
        [
            *_clicks(RARE, items),
            Event(RARE, items[0], "review", timestamp=T, text="a zq rare secret review"),
        ]
    )
    engine.refit()  # the user is now in the snapshot: dataset, profiler, every model
    engine.ingest(_clicks(RARE, items[:2], start=50))  # and in the ledger
    recs = engine.recommend(RARE, k=5, explore=0.5, policy="lin_ucb")
    engine.recommend(RARE, k=5, explore=0.5)
    engine.save()
    other = engine.profile("1")
    live = engine._view()
    models = [live.snapshot.recommender, *live.snapshot.recommender.models_]
    assert all(RARE in m.user_ids_ for m in models)

    report = engine.forget(RARE)
    assert report.events_deleted == 11
    assert all(report.components[c] for c in ("store", "ledger", "profiler", "recommender"))
    assert report.components["dataset"] and report.components["policies"]
    assert report.components["cache"] and report.components["artefacts"]
    assert "next refit" in report.note

    assert engine.slate_store.events(RARE).empty
    assert engine.slate_store.slate_frame().query("user_id == @RARE").empty
    assert not engine.knows_user(RARE) and engine.user_events(RARE).empty
    assert engine.profile(RARE).n_events == 0 and engine.profile("1") == other
    live = engine._view()
    assert all(RARE not in m.user_ids_ for m in models)
    assert RARE not in set(live.snapshot.dataset.events["user_id"])
    with pytest.raises(KeyError):
        engine.feedback(recs[0].request_id, recs[0].item_id, 1.0)
    for pol in live.policies.values():
        assert not any(RARE in pickle.dumps(s).decode("latin-1") for s in pol.pending_.values())
    # nothing of the user in the snapshot's pickle, nor in the saved artefact
    blob = pickle.dumps(live.snapshot)
    assert RARE.encode() not in blob and b"zq rare secret" not in blob
    for path in (tmp_path / "engine").rglob("*"):
        if path.is_file():
            assert RARE.encode() not in path.read_bytes(), path
    # a restart does not bring them back, and they can come back as a new user
    again = Engine.open(tmp_path)
    assert not again.knows_user(RARE)
    again.ingest(_clicks(RARE, items[:1], start=99))
    assert again.profile(RARE).n_events == 1
    # forgetting an unknown user is no error: nothing held them
    assert not any(engine.forget("nobody-at-all").components.values())


def test_forget_during_a_refit_reaches_the_new_snapshot(tmp_path, small, encoder, sentiment):
    engine = _engine(tmp_path, small, encoder, sentiment)
    user = str(small.user_ids[5])
    started = threading.Event()
    real = engine.encoder.encode

    def slow_encode(texts, *args, **kwargs):
        started.set()
        return real(texts, *args, **kwargs)

    engine.encoder.encode = slow_encode  # type: ignore[method-assign]
    try:
        thread = threading.Thread(target=engine.refit)
        thread.start()
        assert started.wait(120)
        engine.forget(user)
        thread.join()
    finally:
        del engine.encoder.encode  # the shared encoder's own method again
    assert engine.info()["generation"] == 2
    assert not engine.knows_user(user)
    assert user not in set(engine.dataset.events["user_id"])
    assert user not in engine.recommender.user_ids_


def test_an_item_added_online_is_similar_tagged_and_served_at_once(
    tmp_path, small, encoder, sentiment
):
    engine = _engine(tmp_path, small, encoder, sentiment)
    tax = engine.snapshot.taxonomy
    # the user's strongest interest, and an item whose text is written for it
    user = str(small.user_ids[0])
    top = engine.profile(user).interests[0]
    member = sorted(tax.members(top.interest_id))[0]
    row = small.items.set_index("item_id").loc[member]
    # a new edition of one of its items: the same words, a new id
    interests = engine.add_item(
        {
            "item_id": "brand-new",
            "title": row["title"],
            "categories": list(row["categories"]),
            "tags": list(row["tags"]),
        }
    )
    assert top.interest_id in {i.interest_id for i, _ in interests}
    assert "brand-new" in engine.slate_store.items()["item_id"].tolist()  # stored
    assert engine.similar_items(member, k=1)[0][0] == "brand-new"
    assert engine.similar_items("brand-new", k=1)[0][0] == member

    recs = engine.recommend(user, k=10, explain=True)
    assert recs[-1].item_id == "brand-new" and recs[-1].propensity == 1.0
    assert recs[-1].reason == f"new in the catalogue: serves your interest in {top.label}"
    assert engine.feedback(recs[-1].request_id, "brand-new", 1.0) is False  # logged only
    logged = engine.slate_store.slate_frame().query("request_id == @recs[-1].request_id")
    assert logged["item_id"].iloc[-1] == "brand-new" and logged["reward"].iloc[-1] == 1.0
    # a user who does not hold the interest is not served it
    others = [
        str(u)
        for u in small.user_ids
        if top.interest_id not in {i.interest_id for i in engine.profile(str(u)).interests[:3]}
    ]
    assert others and all(
        "brand-new" not in {r.item_id for r in engine.recommend(u, k=10)} for u in others[:5]
    )
    with pytest.raises(ValueError, match="unknown fields \\['colour'\\]"):
        engine.add_item({"item_id": "x", "colour": "red"})
    # the next refit learns it as an item of the catalogue
    engine.refit()
    assert "brand-new" in engine.snapshot.item_ids and not engine._view().catalogue.added
