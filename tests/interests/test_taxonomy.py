from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from interestlens.interests.taxonomy import (
    BROAD,
    FINE,
    InterestTaxonomy,
    default_sizes,
    label_terms,
)


def _blobs(n_per: int = 30, k: int = 6, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    vecs = np.repeat(centres, n_per, axis=0) + 0.15 * rng.normal(size=(k * n_per, dim))
    truth = np.repeat(np.arange(k), n_per)
    words = ["space", "western", "romance", "war", "cooking", "jazz"]
    terms = [[words[t], "common"] for t in truth]
    ids = [f"i{j}" for j in range(k * n_per)]
    return ids, vecs, truth, terms


def test_recovers_planted_clusters_and_labels_them_by_their_distinct_terms():
    ids, vecs, truth, terms = _blobs()
    tax = InterestTaxonomy(n_fine=6, n_broad=3).fit(ids, vecs, terms=terms)
    assert len(tax.fine()) == 6 and len(tax.broad()) == 3
    # each fine cluster is exactly one planted group
    for f in tax.fine():
        groups = {truth[int(i[1:])] for i in tax.members(f.interest_id)}
        assert len(groups) == 1
    assert sorted(f.label for f in tax.fine()) == sorted(
        ["space", "western", "romance", "war", "cooking", "jazz"]
    )
    # "common" is on every item and distinguishes nothing
    assert all("common" not in f.terms for f in tax.fine())
    # hierarchy: every fine interest has a broad parent whose members include its own
    for f in tax.fine():
        assert tax[f.parent].level == BROAD
        assert tax.members(f.interest_id) <= tax.members(f.parent)
    assert sum(b.size for b in tax.broad()) == len(ids)


def test_soft_membership_rows_sum_to_one_and_include_the_hard_cluster():
    ids, vecs, _, terms = _blobs()
    tax = InterestTaxonomy(n_fine=6, n_broad=2).fit(ids, vecs, terms=terms)
    sums = np.asarray(tax.membership_.sum(axis=1)).ravel()
    np.testing.assert_allclose(sums, 1.0)
    for j, iid in enumerate(ids[:20]):
        pairs = tax.item_interests(iid)
        assert pairs[0][1] >= pairs[-1][1]
        hard = int(tax.fine_ids_[tax.fine_of_item_[j]])
        assert hard in {i for i, _ in pairs}
    assert tax.item_interests("unknown") == []


def test_an_item_between_two_interests_serves_both():
    ids, vecs, truth, terms = _blobs(dim=8)
    a, b = vecs[truth == 0].mean(axis=0), vecs[truth == 1].mean(axis=0)
    ids2 = [*ids, "between"]
    vecs2 = np.vstack([vecs, a / np.linalg.norm(a) + b / np.linalg.norm(b)])
    tax = InterestTaxonomy(n_fine=6, n_broad=2, temperature=0.2).fit(
        ids2, vecs2, terms=[*terms, []]
    )
    assert len(tax.item_interests("between")) >= 2


def test_ids_stay_stable_across_refits_when_clusters_match():
    ids, vecs, _, terms = _blobs()
    first = InterestTaxonomy(n_fine=6, n_broad=3, random_state=0).fit(ids, vecs, terms=terms)
    rng = np.random.default_rng(5)
    order = rng.permutation(len(ids))  # same items, other order, other seed, a little noise
    second = InterestTaxonomy(n_fine=6, n_broad=3, random_state=7).fit(
        [ids[j] for j in order],
        vecs[order] + 0.01 * rng.normal(size=vecs.shape),
        terms=[terms[j] for j in order],
        previous=first,
    )
    before = {f.label: f.interest_id for f in first.fine()}
    after = {f.label: f.interest_id for f in second.fine()}
    assert before == after
    # a genuinely new cluster gets a fresh id
    ids3 = [*ids, *[f"n{j}" for j in range(30)]]
    vecs3 = np.vstack([vecs, 20 + np.random.default_rng(1).normal(size=(30, vecs.shape[1]))])
    third = InterestTaxonomy(n_fine=7, n_broad=3).fit(
        ids3, vecs3, terms=[*terms, *[["opera"]] * 30], previous=first
    )
    new = [f for f in third.fine() if f.label == "opera"]
    assert len(new) == 1 and new[0].interest_id not in set(before.values()) | {
        b.interest_id for b in first.broad()
    }


def test_behaviour_vectors_separate_items_that_text_cannot():
    # identical text, two audiences: only behaviour can tell the groups apart
    n = 40
    vecs = np.ones((n, 4)) + 1e-3 * np.random.default_rng(0).normal(size=(n, 4))
    users_a = np.arange(0, 50)
    users_b = np.arange(50, 100)
    rows, cols = [], []
    for i in range(n):
        group = users_a if i < n // 2 else users_b
        for u in np.random.default_rng(i).choice(group, 15, replace=False):
            rows.append(i)
            cols.append(u)
    iu = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, 100))
    tax = InterestTaxonomy(n_fine=2, n_broad=2, text_weight=0.2).fit(
        [str(i) for i in range(n)], vecs, item_user=iu
    )
    halves = [set(tax.fine_of_item_[: n // 2]), set(tax.fine_of_item_[n // 2 :])]
    assert len(halves[0]) == 1 and len(halves[1]) == 1 and halves[0] != halves[1]


def test_labels_fall_back_to_title_words_without_terms():
    ids, vecs, truth, _ = _blobs(k=2)
    titles = ["The Jazz Singer" if t == 0 else "Space Cowboys 2000" for t in truth]
    tax = InterestTaxonomy(n_fine=2, n_broad=2).fit(ids, vecs, titles=titles)
    labels = sorted(f.label for f in tax.fine())
    assert labels == ["cowboys · space", "jazz · singer"]


def test_zero_shot_tagging_picks_the_closest_interest():
    ids, vecs, truth, terms = _blobs()
    tax = InterestTaxonomy(n_fine=6, n_broad=2).fit(ids, vecs, terms=terms)
    query = vecs[truth == 3].mean(axis=0)
    (best, score), *_ = tax.tag_vectors(query[None, :], top=2)[0]
    assert tax[best].label == "war" and score > 0.9


def test_default_sizes_scale_with_the_catalogue():
    assert default_sizes(9742) == (99, 15)
    assert default_sizes(3) == (2, 2)
    assert default_sizes(1_000_000)[0] == 400


def test_label_terms_leave_out_bookkeeping_tags():
    items = pd.DataFrame(
        {"item_id": [str(i) for i in range(12)], "categories": [["Drama"]] * 12, "tags": [[]] * 12}
    )
    ev = pd.DataFrame(
        {
            "user_id": ["u1"] * 12 + ["u2", "u3"],
            "item_id": [str(i) for i in range(12)] + ["0", "0"],
            "type": ["tag"] * 14,
            "text": ["In Netflix queue"] * 12 + ["Twist ending", "twist ending "],
        }
    )
    terms = label_terms(items, ev)
    assert terms[0] == ["drama", "twist ending"]
    assert terms[5] == ["drama"]


def test_levels_are_marked():
    ids, vecs, _, terms = _blobs()
    tax = InterestTaxonomy(n_fine=6, n_broad=2).fit(ids, vecs, terms=terms)
    assert {i.level for i in tax.fine()} == {FINE} and {i.level for i in tax.broad()} == {BROAD}


def test_clashing_labels_are_told_apart_by_their_distinct_terms():
    from collections import Counter

    from interestlens.interests.taxonomy import _distinct_labels

    counts = [
        Counter(comedy=50, romance=30, drama=20),
        Counter(comedy=40, crime=25, drama=20),
        Counter(romance=45, comedy=40, teen=8),
        Counter(war=30),
        Counter(war=30),
    ]
    sizes = np.array([50, 40, 45, 30, 30])
    labels, terms = _distinct_labels(
        [("comedy",), ("comedy",), ("romance", "comedy"), ("war",), ("war",)],
        counts,
        sizes,
        parents=["funny", "funny", "funny", "history", "battles"],
    )
    # "romance · comedy" clashes with "comedy · romance" too: order does not make a label new
    assert len({frozenset(t) for t in terms[:3]}) == 3
    assert labels[1] == "comedy · crime" and "teen" in terms[2]
    # nothing tells the two war groups apart but their parents; never a number first
    assert labels[3:] == ["war (history)", "war (battles)"]
    assert len(set(labels)) == len(labels)
    # with no term and no parent left, a number is the last resort
    last, _ = _distinct_labels([("war",), ("war",)], counts[3:], sizes[3:])
    assert last == ["war (1)", "war (2)"]


def test_labels_of_the_real_taxonomy_are_distinct(ml_engine):
    interests = ml_engine.interests("all")
    labels = [i.label for i in interests]
    assert len(set(labels)) == len(labels)  # 18 labels were duplicated before
    # nor the same terms in another order ("comedy · romance", "romance · comedy")
    fine = ml_engine.interests("fine")
    sole = {f.interest_id for f in fine if sum(g.parent == f.parent for g in fine) == 1}
    keys = [
        (frozenset(i.label.split(" (")[0].split(" · ")), i.label.partition(" (")[2])
        for i in interests
        if i.interest_id not in sole
    ]
    assert len(set(keys)) == len(keys)
    assert not any(lab.endswith(")") and lab[-2].isdigit() for lab in labels)
    tax = ml_engine.snapshot.taxonomy
    terms = ml_engine.snapshot.item_terms
    for f in ml_engine.interests("fine"):
        members = tax.members(f.interest_id)
        # every term of a label, the disambiguating ones too, is held by its members
        for t in f.terms:
            if t != "misc":
                assert any(t in terms[m] for m in members), (f.label, t)
    # no profile lists a label twice
    for user in ("1", "42", "610"):
        shown = [i.label for i in ml_engine.profile(user).interests]
        assert len(shown) == len(set(shown))
