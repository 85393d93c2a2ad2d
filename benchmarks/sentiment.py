"""Sentiment of short user texts: every method on hand-labelled texts and on MovieLens weak labels.

Prints a table and writes benchmarks/results/sentiment.json.

Labelled texts: tests/interests/sentiment_labelled.csv, 275 short tags, reviews and
searches (movies, products, music, news, courses), each negative, neutral or positive.
Its ``part`` column splits it: ``dev`` (109) tunes each method's labelling threshold,
``test`` (106) and ``fresh`` (60, written after the methods were frozen) measure
macro-F1 over the three classes. Spearman's rho is over all 275 texts and needs no
threshold. "negation" is the share of 21 negated phrases ("not funny", "not bad at all")
whose label flips the way the negation says.

MovieLens weak labels: each tag in the bundled ml-latest-small joined with the same
user's rating of the same movie; AUC of the score for tags on movies rated >= 4.5
against <= 2.0, with a 95% interval from a bootstrap over users (one user writes most
of the low group's tags), and the mean score of the distinct tags in each group.

Besides the shipped methods, one rejected candidate is measured: "prototype", the
difference of cosine similarities to the positive and negative anchor centroids.

    python benchmarks/sentiment.py [--boot 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import f1_score, roc_auc_score

from interestlens import datasets
from interestlens.interests.sentiment import ANCHORS, THRESHOLDS, SentimentAnalyzer
from interestlens.text import Encoder

ROOT = Path(__file__).resolve().parents[1]
LABELLED = ROOT / "tests" / "interests" / "sentiment_labelled.csv"
RESULTS = Path(__file__).parent / "results"
CLASSES = {"negative": -1, "neutral": 0, "positive": 1}

#: (text, label its negation should get), shared with the tests
NEGATIONS = list(
    pd.read_csv(LABELLED.with_name("sentiment_negations.csv")).itertuples(index=False, name=None)
)


def three_class(s: np.ndarray, t: float) -> np.ndarray:
    return np.where(s > t, 1, np.where(s < -t, -1, 0))


def macro_f1(s: np.ndarray, y: np.ndarray, t: float) -> float:
    return float(f1_score(y, three_class(s, t), average="macro"))


def tune(s: np.ndarray, y: np.ndarray) -> float:
    grid = np.round(np.arange(0.0, 0.61, 0.01), 2)
    return float(grid[int(np.argmax([macro_f1(s, y, t) for t in grid]))])


def weak_labels() -> pd.DataFrame:
    events = datasets.load("ml-latest-small").events
    tags = events.loc[events["type"] == "tag", ["user_id", "item_id", "text"]]
    ratings = events.loc[events["type"] == "rating", ["user_id", "item_id", "value"]]
    joined = tags.merge(ratings, on=["user_id", "item_id"])
    joined = joined[(joined["value"] >= 4.5) | (joined["value"] <= 2.0)].reset_index(drop=True)
    joined["liked"] = (joined["value"] >= 4.5).astype(int)
    return joined


def user_bootstrap_auc(
    y: np.ndarray, s: np.ndarray, users: np.ndarray, n: int, seed: int = 0
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    ids, inverse = np.unique(users, return_inverse=True)
    rows = [np.flatnonzero(inverse == k) for k in range(len(ids))]
    aucs = []
    for _ in range(n):
        pick = np.concatenate([rows[k] for k in rng.integers(0, len(ids), len(ids))])
        if 0 < y[pick].sum() < len(pick):
            aucs.append(roc_auc_score(y[pick], s[pick]))
    lo, hi = np.percentile(aucs, [2.5, 97.5])
    return float(lo), float(hi)


def prototype(encoder: Encoder) -> Callable[[list[str]], np.ndarray]:
    pos = encoder.encode(list(ANCHORS["positive"])).mean(axis=0)
    neg = encoder.encode(list(ANCHORS["negative"])).mean(axis=0)
    pos, neg = pos / np.linalg.norm(pos), neg / np.linalg.norm(neg)
    return lambda texts: np.clip(encoder.encode(texts) @ (pos - neg), -1, 1).astype(np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--boot", type=int, default=1000, help="bootstrap resamples for the AUC interval"
    )
    args = ap.parse_args()

    lab = pd.read_csv(LABELLED)
    y = lab["label"].map(CLASSES).to_numpy()
    part = lab["part"].to_numpy()
    texts = lab["text"].tolist()
    weak = weak_labels()
    neutral_tags = ((lab["label"] == "neutral") & (lab["kind"] == "tag")).to_numpy()
    timing_texts = datasets.load("ml-latest-small").events.query("type == 'tag'")["text"].tolist()

    encoder = Encoder(progress=False)  # no disk cache: throughput includes encoding
    methods: dict[str, Callable[[list[str]], np.ndarray]] = {}
    for name in ("hybrid", "embedding", "textblob", "vader"):
        methods[name] = SentimentAnalyzer(name, encoder=encoder)  # type: ignore[arg-type]
    methods["prototype"] = prototype(encoder)

    rows = []
    for name, fn in methods.items():
        fn(["warm up"])
        t0 = time.perf_counter()
        fn(timing_texts)
        per_s = len(timing_texts) / (time.perf_counter() - t0)
        s = fn(texts)
        t_dev = tune(s[part == "dev"], y[part == "dev"])
        t = THRESHOLDS.get(name, t_dev)
        neg_s = fn([n for n, _ in NEGATIONS])
        neg_ok = np.mean(three_class(neg_s, t) == np.array([CLASSES[lb] for _, lb in NEGATIONS]))
        ws = fn(weak["text"].tolist())
        auc = roc_auc_score(weak["liked"], ws)
        lo, hi = user_bootstrap_auc(
            weak["liked"].to_numpy(), ws, weak["user_id"].to_numpy(), args.boot
        )
        distinct = pd.DataFrame(
            {"tag": weak["text"].str.lower().str.strip(), "liked": weak["liked"], "s": ws}
        ).drop_duplicates(["tag", "liked"])
        rows.append(
            {
                "method": name,
                "threshold": t,
                "threshold_tuned_on_dev": t_dev,
                "macro_f1_test": macro_f1(s[part == "test"], y[part == "test"], t),
                "macro_f1_fresh": macro_f1(s[part == "fresh"], y[part == "fresh"], t),
                "spearman": float(spearmanr(s, y).statistic),
                "negation": float(neg_ok),
                "neutral_tags_mean_abs": float(np.abs(s[neutral_tags]).mean()),
                "negatives_below_-0.2": float(np.mean(s[y == -1] < -0.2)),
                "positives_above_0": float(np.mean(s[y == 1] > 0)),
                "movielens_auc": float(auc),
                "movielens_auc_ci": [lo, hi],
                "movielens_mean_liked_tags": float(
                    distinct.loc[distinct["liked"] == 1, "s"].mean()
                ),
                "movielens_mean_disliked_tags": float(
                    distinct.loc[distinct["liked"] == 0, "s"].mean()
                ),
                "texts_per_s": per_s,
            }
        )

    head = (
        f"{'method':10s} {'t':>5s} {'F1 test':>8s} {'F1 fresh':>8s} {'rho':>6s} {'negation':>8s} "
        f"{'|neutral|':>9s} {'neg<-.2':>7s} {'ML AUC [95% CI]':>22s} {'ML liked/disliked':>18s} {'texts/s':>8s}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        lo, hi = r["movielens_auc_ci"]
        print(
            f"{r['method']:10s} {r['threshold']:5.2f} {r['macro_f1_test']:8.3f} {r['macro_f1_fresh']:8.3f} "
            f"{r['spearman']:6.3f} {r['negation']:8.2f} {r['neutral_tags_mean_abs']:9.3f} "
            f"{r['negatives_below_-0.2']:7.2f} {r['movielens_auc']:6.3f} [{lo:.3f}, {hi:.3f}] "
            f"{r['movielens_mean_liked_tags']:+8.3f}/{r['movielens_mean_disliked_tags']:+.3f} "
            f"{r['texts_per_s']:8.0f}"
        )
    print(
        f"\nlabelled: {len(lab)} texts ({', '.join(f'{k} {v}' for k, v in lab['part'].value_counts().items())}); "
        f"MovieLens: {int(weak['liked'].sum())} liked and {int((1 - weak['liked']).sum())} disliked tag events, "
        f"{weak['user_id'].nunique()} users; encoder precision {encoder.precision_}"
    )
    RESULTS.mkdir(exist_ok=True)
    out = {
        "labelled_texts": len(lab),
        "movielens_tag_events": {
            "liked": int(weak["liked"].sum()),
            "disliked": int((1 - weak["liked"]).sum()),
        },
        "encoder_precision": encoder.precision_,
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count()},
        "results": rows,
    }
    (RESULTS / "sentiment.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
