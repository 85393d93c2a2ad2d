"""Interest identification on MovieLens: genre prediction and taxonomy coherence.

Protocol (ANCHORS.md, "Understanding"): item text = title plus the distinct tags users
gave the movie; genres are the labels and are kept out of every input. One random
80/20 split of the movies that have genres, seed 0; each classifier tunes its
regularisation and one global threshold on a validation share of the training movies.

- baseline: TF-IDF (1-2 grams) + one-vs-rest logistic regression, tuned the same way;
- text: MiniLM embeddings of the same text (the engine's Encoder);
- behaviour: the movie's behaviour vector (64-d truncated SVD of the L2-normalised
  item x user rating matrix; unsupervised, so held-out movies have one too), joined to
  either text representation: the TF-IDF matrix hstacked with it (baseline + behaviour)
  and MiniLM hstacked with it (ours). Both vectors are unit length, like TF-IDF rows.

Two like-for-like comparisons of macro-F1 are reported: text against text (MiniLM vs
TF-IDF) and text+behaviour against text+behaviour (MiniLM + SVD vs TF-IDF + SVD). The
ratio of ours to the text-only baseline is kept as well, labelled as mixing inputs: ours
sees behaviour features that baseline does not. All four share the split, the C grid and
the threshold tuning. Figures are accuracies, not timings; the load average is recorded
all the same.

Taxonomy coherence: genre purity of the engine's fine interests (built with genres kept
out of text and labels) against random clusterings of the same sizes.

    python benchmarks/interests.py [--dataset ml-latest-small]

Writes benchmarks/results/interests.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import train_test_split

from interestlens import datasets
from interestlens.interests.classifier import InterestClassifier
from interestlens.interests.taxonomy import InterestTaxonomy, behaviour_vectors, label_terms
from interestlens.text import Encoder, compose_item_text
from machine import Competition

RESULTS = Path(__file__).parent / "results"

TFIDF = "TF-IDF + LR (baseline)"
TFIDF_BEHAVIOUR = "TF-IDF + behaviour SVD + LR (baseline + behaviour)"
MINILM = "MiniLM + LR"
OURS = "MiniLM + behaviour SVD + LR (ours)"
#: (name, ours, baseline, like for like?) of each reported macro-F1 ratio.
COMPARISONS = (
    ("text_vs_text", MINILM, TFIDF, True),
    ("text_behaviour_vs_text_behaviour", OURS, TFIDF_BEHAVIOUR, True),
    ("ours_vs_text_baseline_mixed_inputs", OURS, TFIDF, False),
)


def purity(assign: np.ndarray, genres: list[set[str]]) -> float:
    """Share of items holding their cluster's most common genre, summed over clusters."""
    total = 0
    frame = pd.DataFrame({"c": assign, "g": genres})
    for _, grp in frame.groupby("c"):
        counts = pd.Series([g for gs in grp["g"] for g in gs]).value_counts()
        total += int(counts.iloc[0]) if len(counts) else 0
    return total / len(frame)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-latest-small")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    competition = Competition().start()

    ds = datasets.load(args.dataset)
    items = ds.items[ds.items["categories"].map(len) > 0].reset_index(drop=True)
    labels = items["categories"].tolist()
    text = compose_item_text(items, ds.events, fields=("title", "tags"))

    t0 = time.perf_counter()
    enc = Encoder()
    emb = enc.encode(text.tolist())
    encode_s = time.perf_counter() - t0
    inter = ds.interactions()
    rows = inter.item_ids.get_indexer(items["item_id"])
    item_user = inter.matrix.T.tocsr()[rows]
    behaviour = behaviour_vectors(item_user, dims=64, random_state=args.seed)
    joint = np.hstack([emb, behaviour])

    idx = np.arange(len(items))
    tr, te = train_test_split(idx, test_size=0.2, random_state=args.seed)
    y_tr = [labels[i] for i in tr]
    y_te = [labels[i] for i in te]

    tfidf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    x_tfidf_tr = tfidf.fit_transform(text.iloc[tr])
    x_tfidf_te = tfidf.transform(text.iloc[te])

    methods = {
        TFIDF: (x_tfidf_tr, x_tfidf_te),
        TFIDF_BEHAVIOUR: (
            sp.hstack([x_tfidf_tr, behaviour[tr]], format="csr"),
            sp.hstack([x_tfidf_te, behaviour[te]], format="csr"),
        ),
        MINILM: (emb[tr], emb[te]),
        OURS: (joint[tr], joint[te]),
    }
    results = {}
    for name, (x_tr, x_te) in methods.items():
        t = time.perf_counter()
        clf = InterestClassifier(random_state=args.seed).fit(x_tr, y_tr)
        scores = clf.evaluate(x_te, y_te)
        results[name] = {
            "macro_f1": round(scores["macro_f1"], 4),
            "micro_f1": round(scores["micro_f1"], 4),
            "macro_precision": round(scores["macro_precision"], 4),
            "macro_recall": round(scores["macro_recall"], 4),
            "C": clf.C_,
            "threshold": clf.threshold_,
            "seconds": round(time.perf_counter() - t, 2),
        }
    comparisons = {
        key: {
            "ours": a,
            "baseline": b,
            "like_for_like": like,
            "macro_f1_ratio": round(results[a]["macro_f1"] / results[b]["macro_f1"], 4),
        }
        for key, a, b, like in COMPARISONS
    }

    # taxonomy coherence, genres kept out of clustering and labels
    no_genre = items.assign(categories=[[] for _ in range(len(items))])
    tax = InterestTaxonomy(random_state=args.seed).fit(
        items["item_id"].tolist(),
        emb,
        item_user=item_user,
        terms=label_terms(no_genre, ds.events),
        titles=items["title"].tolist(),
    )
    genres = [set(g) for g in labels]
    ours_purity = purity(tax.fine_of_item_, genres)
    rng = np.random.default_rng(args.seed)
    random_purity = float(
        np.mean([purity(rng.permutation(tax.fine_of_item_), genres) for _ in range(10)])
    )
    text_only = InterestTaxonomy(random_state=args.seed).fit(items["item_id"].tolist(), emb)
    text_purity = purity(text_only.fine_of_item_, genres)

    print(
        f"{args.dataset}: {len(items):,} movies with genres, {len(tr):,} train / {len(te):,} test; "
        f"encoded in {encode_s:.1f} s ({enc.precision_})"
    )
    print(f"{'method':52s} {'macro-F1':>9s} {'micro-F1':>9s} {'C':>5s} {'thr':>6s}")
    for name, r in results.items():
        print(
            f"{name:52s} {r['macro_f1']:>9.3f} {r['micro_f1']:>9.3f} "
            f"{r['C']:>5g} {r['threshold']:>6.3f}"
        )
    print("macro-F1 ratios (target >= 1.10 like for like):")
    for c in comparisons.values():
        kind = "like for like" if c["like_for_like"] else "NOT like for like: behaviour on one side"
        print(f"  {c['ours']} / {c['baseline']}: {c['macro_f1_ratio']:.3f}  ({kind})")
    print(
        f"taxonomy purity: {len(tax.fine())} fine interests {ours_purity:.3f} (text only {text_purity:.3f}); "
        f"random clusterings of the same sizes {random_purity:.3f}"
    )
    machine = competition.stop()
    print(
        f"load average {machine['load_average_before'][0]:.2f} before, "
        f"{machine['load_average_after'][0]:.2f} after; other processes used "
        f"{machine['other_cpu_share']:.0%} of the cores (accuracy figures: not affected)"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "interests.json").write_text(
        json.dumps(
            {
                "benchmark": "interests",
                "dataset": args.dataset,
                "movies": len(items),
                "train": len(tr),
                "test": len(te),
                "genre_prediction": results,
                "comparisons": comparisons,
                "target_ratio": 1.10,
                "taxonomy": {
                    "fine_interests": len(tax.fine()),
                    "broad_interests": len(tax.broad()),
                    "purity": round(ours_purity, 4),
                    "purity_text_only": round(text_purity, 4),
                    "purity_random_same_sizes": round(random_purity, 4),
                },
                "machine": machine,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
