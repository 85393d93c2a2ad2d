from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from interestlens.data import Dataset, Event
from interestlens.interests.profile import InterestProfiler, ProfileConfig
from interestlens.interests.taxonomy import InterestTaxonomy

T0 = datetime(2020, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def small_world(encoder):
    """Three tight groups of items with real text, embedded by the real model."""
    groups = {
        "space": [
            "Space opera with starships",
            "Aliens invade a distant planet",
            "Astronauts lost in orbit",
        ],
        "cooking": ["Baking bread at home", "Italian pasta recipes", "Cooking with fresh herbs"],
        "jazz": [
            "Live jazz saxophone session",
            "Bebop trumpet classics",
            "Smooth jazz piano night",
        ],
    }
    ids, texts, terms = [], [], []
    for g, titles in groups.items():
        for k, t in enumerate(titles):
            ids.append(f"{g}{k}")
            texts.append(t)
            terms.append([g])
    tax = InterestTaxonomy(n_fine=3, n_broad=2, soft_top=1).fit(
        ids, encoder.encode(texts), terms=terms, titles=texts
    )
    return tax


def _frame(events):
    return Dataset.from_records(events).events


def _profiler(tax, encoder, sentiment, **cfg):
    return InterestProfiler(
        tax, encoder.encode, sentiment, ProfileConfig(rating_pivot=3.0, rating_scale=2.0, **cfg)
    )


def _label(tax, group: str) -> str:
    """Label of the fine interest that holds a group's items (it names the group)."""
    best = max(tax.item_interests(f"{group}0"), key=lambda p: p[1])[0]
    assert all(
        max(tax.item_interests(f"{group}{k}"), key=lambda p: p[1])[0] == best for k in range(3)
    )
    label = tax[best].label
    assert label.startswith(group), label  # "space", or "space (...)" set apart from its parent
    return label


def test_weights_follow_engagement_and_low_ratings_count_against(small_world, encoder, sentiment):
    tax = small_world
    ev = [
        Event("u", "space0", "rating", 5, T0),
        Event("u", "space1", "purchase", 1, T0 + timedelta(days=1)),
        Event("u", "jazz0", "click", 1, T0 + timedelta(days=2)),
        Event("u", "cooking0", "rating", 1, T0 + timedelta(days=3)),
        Event("u", "cooking1", "rating", 1.5, T0 + timedelta(days=3)),
    ]
    prof = _profiler(tax, encoder, sentiment).fit(_frame(ev)).profile("u")
    labels = [i.label for i in prof.interests]
    assert labels == [_label(tax, "space"), _label(tax, "jazz")]
    assert prof.interests[0].weight > prof.interests[1].weight
    assert abs(sum(i.weight for i in prof.interests) - 1.0) < 1e-3
    assert [d.label for d in prof.dislikes] == [_label(tax, "cooking")]
    assert prof.n_events == 5 and prof.as_of == pd.Timestamp(T0 + timedelta(days=3))


def test_trend_shows_rising_and_fading_interests(small_world, encoder, sentiment):
    tax = small_world
    old = [Event("u", f"jazz{k % 3}", "click", 1, T0 + timedelta(days=k)) for k in range(10)]
    new = [Event("u", f"space{k % 3}", "click", 1, T0 + timedelta(days=300 + k)) for k in range(6)]
    prof = _profiler(tax, encoder, sentiment).fit(_frame(old + new)).profile("u")
    trend = {i.label: i.trend for i in prof.interests}
    assert trend == {_label(tax, "space"): "rising", _label(tax, "jazz"): "fading"}


def test_negative_words_count_against_and_texts_are_kept(small_world, encoder, sentiment):
    tax = small_world
    ev = [
        Event("u", "jazz0", "tag", 1, T0, text="boring and awful"),
        Event("u", "jazz1", "review", 1, T0, text="I hated every minute, terrible"),
        Event("u", "space0", "tag", 1, T0, text="brilliant, a masterpiece"),
    ]
    prof = _profiler(tax, encoder, sentiment).fit(_frame(ev)).profile("u")
    assert [i.label for i in prof.interests] == [_label(tax, "space")]
    assert [d.label for d in prof.dislikes] == [_label(tax, "jazz")]
    by_text = {t.text: t.sentiment for t in prof.texts}
    assert (
        by_text["brilliant, a masterpiece"] > 0.3
        and by_text["I hated every minute, terrible"] < -0.3
    )
    assert prof.sentiment is not None


def test_a_search_query_speaks_to_the_closest_interest(small_world, encoder, sentiment):
    tax = small_world
    ev = [Event("u", None, "search", 1, T0, text="saxophone jazz concerts")]
    prof = _profiler(tax, encoder, sentiment).fit(_frame(ev)).profile("u")
    assert prof.interests[0].label == _label(tax, "jazz")
    assert prof.texts[0].type == "search"


def test_incremental_update_equals_full_recompute(ml_small, ml_engine, encoder, sentiment):
    tax = ml_engine.snapshot.taxonomy
    events = ml_small.events
    users = ["414", "68", "1"]
    mine = events[events["user_id"].isin(users)]
    # hold back each user's last 15 events, including tags, and feed them one at a time, newest last
    held = mine.groupby("user_id", group_keys=False).tail(15)
    base = events.drop(index=held.index)
    cfg = {"rating_pivot": 3.5, "rating_scale": 3.0}
    incremental = InterestProfiler(tax, encoder.encode, sentiment, ProfileConfig(**cfg)).fit(base)
    for k in range(len(held)):
        incremental.update(held.iloc[[k]])
    full = InterestProfiler(tax, encoder.encode, sentiment, ProfileConfig(**cfg)).fit(events)
    for u in users:
        np.testing.assert_allclose(
            incremental.weights(u, "long"), full.weights(u, "long"), rtol=1e-9, atol=1e-12
        )
        np.testing.assert_allclose(
            incremental.weights(u, "short"), full.weights(u, "short"), rtol=1e-9, atol=1e-12
        )
        assert incremental.profile(u) == full.profile(u)
    # and an out-of-order (late) event is folded in exactly too
    late = held.iloc[[0]].assign(
        event_id="late", timestamp=held["timestamp"].min() - pd.Timedelta(days=400)
    )
    incremental.update(late)
    full2 = InterestProfiler(tax, encoder.encode, sentiment, ProfileConfig(**cfg)).fit(
        pd.concat([events, late])
    )
    np.testing.assert_allclose(
        incremental.weights(late["user_id"].iloc[0]),
        full2.weights(late["user_id"].iloc[0]),
        rtol=1e-9,
    )


def _assert_same_profile(a, b) -> None:
    """Equal profiles; a text's sentiment may differ in the last bits (the sentiment model
    scores a text within a different batch on an update than on a refit)."""
    da, db = a.to_dict(), b.to_dict()
    sa = [t.pop("sentiment") for t in da["texts"]]
    sb = [t.pop("sentiment") for t in db["texts"]]
    np.testing.assert_allclose(sa, sb, rtol=1e-9, atol=1e-12)
    if da["sentiment"] is not None:
        assert abs(da.pop("sentiment") - db.pop("sentiment")) <= 1e-4  # rounded to 4 places
    assert da == db


def test_with_the_defaults_an_update_is_a_refit_at_the_fitted_pivot_and_scale(
    ml_small, ml_engine, encoder, sentiment
):
    """The condition under which an update is exact, and the size of the difference
    when it does not hold: a default refit re-estimates the pivot and scale.

    Measured: the latest 5% of ml-latest-small's events (5,226, of 45 users) move the
    pivot 3.4992 -> 3.5016; shares then differ from a default refit by 4.8e-5 (long) and
    5.9e-5 (short) on average, and 609 of 610 users keep their top interest.
    """
    tax = ml_engine.snapshot.taxonomy
    events = ml_small.events
    late = (events["timestamp"] > events["timestamp"].quantile(0.95)).to_numpy()
    incremental = InterestProfiler(tax, encoder.encode, sentiment).fit(events[~late])
    pivot, scale = incremental.pivot_, incremental.scale_
    for k in range(0, int(late.sum()), 500):
        incremental.update(events[late].iloc[k : k + 500])
    assert (incremental.pivot_, incremental.scale_) == (pivot, scale)  # kept by updates

    same = ProfileConfig(rating_pivot=pivot, rating_scale=scale)
    at_fitted = InterestProfiler(tax, encoder.encode, sentiment, same).fit(events)
    default = InterestProfiler(tax, encoder.encode, sentiment).fit(events)
    users = default.known_users
    assert sorted(incremental.known_users) == sorted(users) == sorted(at_fitted.known_users)
    for horizon in ("long", "short"):
        inc = np.vstack([incremental.weights(u, horizon) for u in users])
        np.testing.assert_allclose(
            inc,
            np.vstack([at_fitted.weights(u, horizon) for u in users]),
            rtol=1e-9,
            atol=1e-12,
        )
    for u in users:
        _assert_same_profile(incremental.profile(u), at_fitted.profile(u))

    # the default refit moved the pivot and scale, and with them every share a little
    assert abs(default.pivot_ - pivot) > 1e-3 and abs(default.scale_ - scale) > 1e-3
    order = [incremental.known_users.index(u) for u in users]
    for horizon in ("long", "short"):
        a, b = incremental.shares(horizon)[order], default.shares(horizon)
        assert 1e-6 < np.abs(a - b).mean() < 5e-4
        assert (a.argmax(axis=1) == b.argmax(axis=1)).mean() >= 0.99


def test_unknown_user_gets_an_empty_profile(ml_engine):
    prof = ml_engine.profile("no-such-user")
    assert prof.interests == [] and prof.n_events == 0 and prof.as_of is None


def _time_split(events: pd.DataFrame, share: float) -> np.ndarray:
    """True for the first ``share`` of each user's events in time (arrival order breaks ties)."""
    order = np.lexsort((np.arange(len(events)), events["timestamp"].to_numpy(), events["user_id"]))
    ev = events.iloc[order]
    pos = ev.groupby("user_id").cumcount().to_numpy()
    size = ev.groupby("user_id")["user_id"].transform("size").to_numpy()
    early = np.empty(len(events), dtype=bool)
    early[order] = pos < np.ceil(share * size)
    return early


def _top_interest_gap(tax, held_liked: dict[str, np.ndarray], top: dict[str, int], seed: int):
    """Each user's top interest against a random other user's, on the user's held-out likes.

    The score of an interest for a user is the share of the user's held-out liked items
    that belong to it. Returns the mean gap (own minus other), wins and losses.
    """
    member = tax.membership_.tocsr() > 0
    users = list(held_liked)
    rng = np.random.default_rng(seed)
    gaps = []
    for k, u in enumerate(users):
        other = users[(k + 1 + rng.integers(len(users) - 1)) % len(users)]
        inside = member[held_liked[u]].toarray()
        gaps.append(inside[:, top[u]].mean() - inside[:, top[other]].mean())
    gaps = np.array(gaps)
    return float(gaps.mean()), int((gaps > 0).sum()), int((gaps < 0).sum())


def test_bundled_profiles_are_recognisable(ml_engine, ml_small, encoder, sentiment):
    """A user's top interest, learnt from the first 70% of their history, holds more of the
    films they later liked (rated 4 or more) than a random other user's top interest does.

    Measured on ml-latest-small (500 users with 5 or more later likes; seeds 0-4, as here
    with the engine's taxonomy): own top interest holds 27.1% of the later likes, another
    user's 15.1-17.3%; mean gap 0.099-0.121, the own one ahead for 241-262 users and behind
    for 79-92. With the profiles shuffled between users the gap is -0.021 to 0.010 and the
    wins and losses near even (137-182 against 140-180), which the thresholds below (half
    the smallest gap; wins twice the losses) reject. The former version of this test
    (a top interest's terms among the genres of the user's liked films, which cover 17-20
    of the 20 genres) passed for any label. The taxonomy is the engine's, clustered on
    all events; the profiles see only the early part.
    """
    tax = ml_engine.snapshot.taxonomy
    events = ml_small.events
    early = _time_split(events, 0.7)
    prof = InterestProfiler(tax, encoder.encode, sentiment).fit(events[early])
    later = events[~early]
    liked = later[(later["type"] == "rating") & (later["value"] >= 4)]
    held_liked = {}
    for u, g in liked.groupby("user_id"):
        rows = tax.item_rows(g["item_id"].tolist())
        if (rows >= 0).sum() >= 5 and u in prof.known_users:
            held_liked[u] = rows[rows >= 0]
    assert len(held_liked) >= 400
    shares = prof.shares("long")
    top = {u: int(np.argmax(shares[prof.known_users.index(u)])) for u in held_liked}
    assert len(set(top.values())) >= 10  # not one interest for everyone

    gap, wins, losses = _top_interest_gap(tax, held_liked, top, seed=0)
    assert gap > 0.05 and wins > 2 * losses, (gap, wins, losses)
    # the same check on profiles shuffled between users must fail: it discriminates
    users = list(top)
    perm = np.random.default_rng(1).permutation(len(users))
    shuffled = {u: top[users[p]] for u, p in zip(users, perm, strict=True)}
    gap_s, wins_s, losses_s = _top_interest_gap(tax, held_liked, shuffled, seed=0)
    assert not (gap_s > 0.05 and wins_s > 2 * losses_s), (gap_s, wins_s, losses_s)


def test_interest_vectors_are_unit_vectors_per_interest(ml_engine):
    interests, vecs = ml_engine.interest_vectors("1", k=3)
    assert len(interests) == 3 and vecs.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-6)


def test_fold_is_update_without_touching_the_profiler(small_world, encoder, sentiment):
    tax = small_world
    first = [Event("u", "space0", "rating", 5, T0), Event("v", "jazz0", "click", 1, T0)]
    later = [
        Event("u", "jazz1", "review", 1, T0 + timedelta(days=40), text="wonderful, I loved it"),
        Event("u", "cooking0", "rating", 1, T0 + timedelta(days=2)),  # out of order on purpose
    ]
    fitted = _profiler(tax, encoder, sentiment).fit(_frame(first))
    before = fitted.long_.copy()
    state = fitted.fold(_frame(later), fitted.user_state("u"))
    np.testing.assert_array_equal(fitted.long_, before)  # the profiler is untouched
    assert fitted.profile("u").n_events == 1

    updated = _profiler(tax, encoder, sentiment).fit(_frame(first))
    updated.update(_frame(later))
    assert fitted.profile("u", state=state) == updated.profile("u")
    # a user new since the fit starts from nothing
    new = fitted.fold(_frame([Event("w", "space1", "click", 1, T0)]), None)
    assert fitted.profile("w", state=new).interests[0].label == _label(tax, "space")


def test_forget_user_leaves_no_trace_and_other_users_alone(small_world, encoder, sentiment):
    import pickle

    tax = small_world
    ev = [
        Event("zq-rare-user", "space0", "review", 1, T0, text="a rare secret phrase"),
        Event("v", "jazz0", "click", 1, T0),
    ]
    prof = _profiler(tax, encoder, sentiment).fit(_frame(ev))
    other = prof.profile("v")
    assert prof.forget_user("zq-rare-user") is True
    assert prof.profile("zq-rare-user").n_events == 0
    assert prof.profile("v") == other
    blob = pickle.dumps(prof)
    assert b"zq-rare-user" not in blob and b"rare secret phrase" not in blob
    assert prof.forget_user("zq-rare-user") is False
