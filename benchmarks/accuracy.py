"""Top-N accuracy of the default pipeline, each of our models, and the peers, side by side.

Protocols (ANCHORS.md): temporal leave-last-out (every rating an interaction; the last
to test, the one before to validation) and random per-user 80/20 (10% of the rest to
validation); full ranking over all items, K = 10, each user's training items excluded.
Every model, ours and the peers' (implicit ALS, implicit BPR, implicit item-item cosine,
and EASE as written in Steck 2019), is tuned on the validation part with the same budget
of trials, refitted with its best setting on train + validation, and scored once on test.
Confidence intervals come from a paired bootstrap over test users.

    python benchmarks/accuracy.py [--dataset ml-latest-small] [--budget 6] [--protocols loo,random]

Writes benchmarks/results/accuracy.json and prints the table, the ratios of the default
pipeline to the best peer, its fit time and the per-user latency of recommendations.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from interestlens import datasets
from interestlens.data import Dataset
from interestlens.data.splits import Split
from interestlens.evaluate import evaluate, make_split, tune
from interestlens.models import Recommender, build_model
from interestlens.text import Encoder

RESULTS = Path(__file__).parent / "results"


# ----- peers, wrapped in our interface only for scoring --------------------------------
class ImplicitPeer(Recommender):
    """An `implicit` model as the library ships it (users x items since 0.5)."""

    def __init__(
        self,
        kind: str = "als",
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        learning_rate: float = 0.01,
        iterations: int = 15,
        K: int = 100,
        *,
        random_state: int = 0,
    ) -> None:
        super().__init__(random_state=random_state)
        self.kind, self.factors, self.regularization = kind, factors, regularization
        self.alpha, self.learning_rate, self.iterations, self.K = (
            alpha,
            learning_rate,
            iterations,
            K,
        )

    def _fit(self, dataset: Dataset, X: sp.csr_matrix) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.cpu.bpr import BayesianPersonalizedRanking
        from implicit.nearest_neighbours import CosineRecommender

        if self.kind == "als":
            m = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.random_state,
                num_threads=1,
            )
        elif self.kind == "bpr":
            m = BayesianPersonalizedRanking(
                factors=self.factors,
                learning_rate=self.learning_rate,
                regularization=self.regularization,
                iterations=self.iterations,
                random_state=self.random_state,
                num_threads=1,
            )
        else:
            m = CosineRecommender(K=self.K)
        m.fit(sp.csr_matrix(X, dtype=np.float32), show_progress=False)
        self.model_ = m

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        m = self.model_
        if self.kind in ("als", "bpr"):
            return (m.user_factors[rows] @ m.item_factors.T).astype(np.float32)
        X = sp.csr_matrix(self.seen_, dtype=np.float32)[rows]
        return np.asarray((X @ m.similarity).todense(), dtype=np.float32)


class EASEPeer(Recommender):
    """EASE exactly as in Steck (2019), Algorithm 1."""

    def __init__(self, l2: float = 500.0, *, random_state: int = 0) -> None:
        super().__init__(random_state=random_state)
        self.l2 = l2

    def _fit(self, dataset: Dataset, X: sp.csr_matrix) -> None:
        G = (X.T @ X).toarray().astype(np.float64)
        G[np.diag_indices_from(G)] += self.l2
        P = np.linalg.inv(G)
        B = P / (-np.diag(P))
        B[np.diag_indices_from(B)] = 0.0
        self.B_ = B.astype(np.float32)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(sp.csr_matrix(self.seen_, dtype=np.float32)[rows] @ self.B_)


# ----- what is compared, and over which settings --------------------------------------
def contenders(encoder: Encoder) -> dict[str, tuple[str, Any, dict[str, list[Any]]]]:
    """Name -> (kind, builder taking a setting, search space)."""
    ours = lambda name: lambda p: build_model(name, encoder=encoder, **p)  # noqa: E731
    return {
        "default pipeline (Hybrid)": (
            "ours",
            ours("hybrid"),
            {"candidates": [100, 200], "n_estimators": [200, 400]},
        ),
        "SASRec": ("ours", ours("sasrec"), {"dropout": [0.2, 0.3], "dim": [64, 128]}),
        "EASE": ("ours", ours("ease"), {"l2": [100.0, 200.0, 500.0, 1000.0, 2000.0]}),
        "ItemKNN": (
            "ours",
            ours("itemknn"),
            {"k": [20, 50, 100, 200], "similarity": ["cosine", "bm25"]},
        ),
        "UserKNN": ("ours", ours("userknn"), {"k": [20, 50, 100, 200]}),
        "ALS": (
            "ours",
            ours("als"),
            {"factors": [32, 64], "regularization": [1.0, 10.0, 100.0], "alpha": [1.0, 5.0]},
        ),
        "BPR": ("ours", ours("bpr"), {"factors": [32, 64, 128], "learning_rate": [0.01, 0.05]}),
        "ContentLM": (
            "ours",
            ours("contentlm"),
            {"recent_weight": [0.3, 0.5, 0.7], "popularity_weight": [0.05, 0.2]},
        ),
        "Popularity": ("ours", ours("popularity"), {"window_days": [None, 365.0, 90.0]}),
        "implicit ALS (peer)": (
            "peer",
            lambda p: ImplicitPeer("als", **p),
            {"factors": [32, 64], "regularization": [1.0, 10.0, 100.0], "alpha": [1.0, 5.0]},
        ),
        "implicit BPR (peer)": (
            "peer",
            lambda p: ImplicitPeer("bpr", iterations=100, **p),
            {"factors": [32, 64, 128], "learning_rate": [0.01, 0.05]},
        ),
        "implicit ItemKNN cosine (peer)": (
            "peer",
            lambda p: ImplicitPeer("knn", **p),
            {"K": [20, 50, 100, 200]},
        ),
        "EASE (peer)": (
            "peer",
            lambda p: EASEPeer(**p),
            {"l2": [100.0, 300.0, 500.0, 1000.0, 2000.0]},
        ),
    }


def train_plus_validation(split: Split) -> Split:
    """The final split: refit on train + validation, score on test.

    Validation events come after each user's training events in time, so appending
    them keeps every user's order (ties broken by arrival, as everywhere).
    """
    ds = split.train
    merged = pd.concat([ds.events, split.validation.events], ignore_index=True)
    return replace(split, train=Dataset(merged, ds.items, ds.users, name=ds.name), validation=None)


def run_protocol(
    ds: Dataset, protocol: str, budget: int, encoder: Encoder, only: set[str] | None
) -> dict[str, Any]:
    split = make_split(ds, protocol, target_types="rating", random_state=0)
    final = train_plus_validation(split)
    rows: dict[str, Any] = {}
    fitted: dict[str, Recommender] = {}
    for name, (kind, build, space) in contenders(encoder).items():
        if only and name not in only:
            continue
        t = time.perf_counter()
        result = tune(build, space, split, budget=budget, metric="ndcg", k=10, random_state=0)
        tune_s = time.perf_counter() - t
        t = time.perf_counter()
        model = build(result.best_params).fit(final.train)
        fit_s = time.perf_counter() - t
        fitted[name] = model
        rows[name] = {
            "kind": kind,
            "best_params": result.best_params,
            "validation_ndcg": result.best_value,
            "tune_seconds": round(tune_s, 1),
            "fit_seconds": round(fit_s, 1),
        }
        print(
            f"  {protocol}: {name:32s} val NDCG@10 {result.best_value:.4f} {result.best_params} "
            f"(tune {tune_s:.0f} s, fit {fit_s:.1f} s)",
            flush=True,
        )
    report = evaluate(fitted, None, split=final, fit=False, k=10, n_bootstrap=1000, random_state=0)
    summary = report.to_dict()["results"]
    for name in rows:
        rows[name]["test"] = summary[name]
    peers = [n for n in rows if rows[n]["kind"] == "peer"]
    ours = "default pipeline (Hybrid)"
    out: dict[str, Any] = {"models": rows}
    if peers and ours in rows:
        best_peer = max(peers, key=lambda n: summary[n]["ndcg"]["value"])
        cmp = report.compare(ours, best_peer, "ndcg")
        out["best_peer"] = best_peer
        out["ratio_ndcg_vs_best_peer"] = (
            summary[ours]["ndcg"]["value"] / summary[best_peer]["ndcg"]["value"]
        )
        out["difference_vs_best_peer"] = cmp
        if "SASRec" in rows:
            out["ratio_sasrec_vs_best_peer"] = (
                summary["SASRec"]["ndcg"]["value"] / summary[best_peer]["ndcg"]["value"]
            )
    return out


def speed(ds: Dataset, encoder: Encoder) -> dict[str, float]:
    """Fit time of the default pipeline on the whole dataset, and ms per one-user request."""
    t = time.perf_counter()
    model = build_model("hybrid", encoder=encoder).fit(ds)
    fit_s = time.perf_counter() - t
    users = list(ds.user_ids[:200])
    model.recommend(users[0], k=10)  # warm-up
    lat = []
    for u in users:
        t = time.perf_counter()
        model.recommend(u, k=10)
        lat.append((time.perf_counter() - t) * 1000)
    return {
        "fit_seconds": round(fit_s, 1),
        "recommend_ms_median": round(statistics.median(lat), 2),
        "recommend_ms_p95": round(float(np.percentile(lat, 95)), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-latest-small")
    ap.add_argument(
        "--budget", type=int, default=6, help="tuning trials per model (the same for all)"
    )
    ap.add_argument("--protocols", default="loo,random")
    ap.add_argument("--only", default="", help="comma-separated contender names (default: all)")
    args = ap.parse_args()
    ds = datasets.load(args.dataset)
    encoder = Encoder()
    only = {s.strip() for s in args.only.split(",") if s.strip()} or None
    doc: dict[str, Any] = {
        "benchmark": "accuracy",
        "dataset": args.dataset,
        "k": 10,
        "budget": args.budget,
        "protocols": {},
    }
    for protocol in args.protocols.split(","):
        print(f"protocol {protocol}", flush=True)
        doc["protocols"][protocol] = run_protocol(ds, protocol, args.budget, encoder, only)
    doc["speed"] = speed(ds, encoder)
    print()
    for protocol, res in doc["protocols"].items():
        print(f"{protocol}: {'model':32s} {'NDCG@10':>8s} {'95% CI':>17s} {'HR@10':>7s}")
        for name, r in sorted(res["models"].items(), key=lambda p: -p[1]["test"]["ndcg"]["value"]):
            nd = r["test"]["ndcg"]
            print(
                f"{'':{len(protocol)}s}  {name:32s} {nd['value']:8.4f} [{nd['ci'][0]:.4f}, {nd['ci'][1]:.4f}] "
                f"{r['test']['hr']['value']:7.4f}"
            )
        if "ratio_ndcg_vs_best_peer" in res:
            d = res["difference_vs_best_peer"]
            print(
                f"  default pipeline / best peer ({res['best_peer']}): {res['ratio_ndcg_vs_best_peer']:.3f}; "
                f"difference {d}"
            )
        if "ratio_sasrec_vs_best_peer" in res:
            print(f"  SASRec / best peer: {res['ratio_sasrec_vs_best_peer']:.3f}")
    print(
        f"default pipeline: fit {doc['speed']['fit_seconds']} s on all of {args.dataset}; "
        f"recommend median {doc['speed']['recommend_ms_median']} ms, p95 {doc['speed']['recommend_ms_p95']} ms"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "accuracy.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
