"""Top-N accuracy of the default pipeline, each of our models, and the peers, side by side.

Protocols (ANCHORS.md): temporal leave-last-out (every rating an interaction; the last
to test, the one before to validation) and random per-user 80/20 (10% of the rest to
validation); full ranking over all items, K = 10, each user's training items excluded.
Every model, ours and the peers' (implicit ALS, implicit BPR, implicit item-item cosine,
and EASE as written in Steck 2019), is tuned on the validation part with the same budget
of trials, refitted with its best setting on train + validation, and scored once on test.
Confidence intervals come from a paired bootstrap over test users.

    python benchmarks/accuracy.py [--dataset NAME|PATH] [--budget 6] [--protocols loo,random]
                                  [--shared-machine [--allow-busy]]

Writes benchmarks/results/accuracy.json and prints the table, the ratios of the default
pipeline to the best peer, its fit time and the per-user latency of recommendations.

``--shared-machine`` also times the default pipeline's fit alone and beside one CPU-bound
process that the benchmark starts and stops itself (a refit beside a busy server), and
writes both times and their ratio under ``shared_machine``; it refuses to write them when
other processes took more than 10% of the cores meanwhile, unless ``--allow-busy``.
Only that measurement: ``--protocols "" --no-speed --shared-machine``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from interestlens import datasets
from interestlens.data import Dataset, Event
from interestlens.engine import Config, Engine, ExploreConfig
from interestlens.evaluate import evaluate, make_split, tune
from interestlens.models import Recommender, build_model
from interestlens.text import Encoder
from interestlens.threads import resolve

sys.path.insert(0, str(Path(__file__).parent))
from machine import Competition, refuse_if_busy

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
#: Published figures of peers that do not install here (ANCHORS.md), by (dataset, protocol).
ANCHORS = {("ml-latest-small", "loo"): ("SASRec, RecBole 1.2.1 (ANCHORS.md)", 0.0648)}

#: Contenders read from inside the fitted default pipeline instead of being fitted again:
#: the same class with the same (default) settings on the same data.
INSIDE_PIPELINE = {"SASRec": "SASRec"}


def contenders(encoder: Encoder) -> dict[str, tuple[str, Any, dict[str, list[Any]]]]:
    """Name -> (kind, builder taking a setting, search space; empty = defaults, not tuned).

    SASRec runs with its defaults and the default pipeline searches only which item its
    ranker learns to find (the next one or a random one): one fit of either costs minutes,
    so a wider search within the shared budget would cost an hour per protocol. Every
    other model, ours and the peers', is tuned with the same budget.
    """
    ours = lambda name: lambda p: build_model(name, encoder=encoder, **p)  # noqa: E731
    return {
        "default pipeline (Hybrid)": ("ours", ours("hybrid"), {"holdout": ["last", "random"]}),
        "SASRec": ("ours", ours("sasrec"), {}),
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


def run_protocol(
    ds: Dataset,
    protocol: str,
    budget: int,
    encoder: Encoder,
    only: set[str] | None,
    save: Callable[[dict[str, Any]], None],
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Tune, refit and score every contender; ``previous`` rows (same split) are kept."""
    split = make_split(ds, protocol, target_types="rating", random_state=0)
    final = split.for_refit()
    rows: dict[str, Any] = dict(previous or {})
    fitted: dict[str, Recommender] = {}
    out: dict[str, Any] = {"models": rows}
    for name, (kind, build, space) in contenders(encoder).items():
        if only and name not in only:
            continue
        pipeline = fitted.get("default pipeline (Hybrid)")
        inside = [
            m
            for m in getattr(pipeline, "models_", [])
            if type(m).__name__ == INSIDE_PIPELINE.get(name)
        ]
        row: dict[str, Any] = {"kind": kind}
        params: dict[str, Any] = {}
        if space:
            t = time.perf_counter()
            result = tune(build, space, split, budget=budget, metric="ndcg", k=10, random_state=0)
            row.update(
                best_params=result.best_params,
                validation_ndcg=result.best_value,
                tune_seconds=round(time.perf_counter() - t, 1),
            )
            params = result.best_params
        if inside:
            fitted[name] = inside[0]
            row["fit"] = "the instance inside the fitted default pipeline"
        else:
            t = time.perf_counter()
            fitted[name] = build(params).fit(final.train)
            row["fit_seconds"] = round(time.perf_counter() - t, 1)
        rows[name] = row
        print(f"  {protocol}: {name:32s} {row}", flush=True)
        save(out)
    report = evaluate(fitted, None, split=final, fit=False, k=10, n_bootstrap=1000, random_state=0)
    summary = report.to_dict()["results"]
    for name in fitted:
        rows[name]["test"] = summary[name]
    ndcg = {n: r["test"]["ndcg"]["value"] for n, r in rows.items()}
    peers = [n for n in rows if rows[n]["kind"] == "peer"]
    ours = "default pipeline (Hybrid)"
    if peers and ours in rows:
        best_peer = max(peers, key=ndcg.__getitem__)
        best = ndcg[best_peer]
        out["best_peer_in_run"] = best_peer
        if ours in summary and best_peer in summary:
            out["difference_vs_best_peer_in_run"] = report.compare(
                ours, best_peer, "ndcg"
            ).to_dict()
        anchor = ANCHORS.get((ds.name, protocol))
        if anchor and anchor[1] > best:
            best_peer, best = anchor
        out["best_peer"], out["best_peer_ndcg"] = best_peer, best
        for name in (ours, "SASRec"):
            if name in rows:
                out[f"ratio {name} / best peer"] = ndcg[name] / best
    save(out)
    return out


def speed(ds: Dataset) -> dict[str, float]:
    """Fit time of the whole default pipeline (``Engine.fit``: text, interests, profiles and
    the Hybrid) on the dataset from a cold embedding cache, and milliseconds per one-user
    request: the model's ``recommend``, ``Engine.recommend`` with its slate log off, and
    ``Engine.recommend`` right after the user's new event (folded in by the recommender)."""
    tmp = Path(tempfile.mkdtemp(prefix="interestlens-speed-"))
    config = Config(data_dir=tmp, explore=ExploreConfig(log=False))
    engine = Engine(config)
    t = time.perf_counter()
    engine.fit(ds)
    fit_s = time.perf_counter() - t
    users = list(ds.user_ids[:200])
    model = engine.recommender
    engine.recommend(users[0], k=10)  # warm-up
    lat: dict[str, list[float]] = {"model": [], "engine": []}
    for u in users:
        t = time.perf_counter()
        model.recommend(u, k=10)
        lat["model"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        engine.recommend(u, k=10)
        lat["engine"].append((time.perf_counter() - t) * 1000)
    # a user's next request after a new event: the recommender folds it in (score_history)
    lat["engine_after_observe"] = []
    popular = ds.events["item_id"].value_counts().index
    for u in users[:100]:
        mine = set(engine.user_events(u)["item_id"])
        item = next(i for i in popular if i not in mine)
        engine.ingest([Event(u, item, "click", timestamp=pd.Timestamp.now(tz="UTC"))])
        t = time.perf_counter()
        engine.recommend(u, k=10)
        lat["engine_after_observe"].append((time.perf_counter() - t) * 1000)
    out = {"engine_fit_seconds": round(fit_s, 1)}
    for key, ms in lat.items():
        out[f"{key}_recommend_ms_median"] = round(statistics.median(ms), 2)
        out[f"{key}_recommend_ms_p95"] = round(float(np.percentile(ms, 95)), 2)
    return out


#: A process that keeps one core busy and never sleeps, as a busy server or job would.
BUSY_LOOP = "while True:\n    pass"


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a running process has used (``/proc/PID/stat``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, from field 3
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def shared_machine(ds: Dataset, **config: Any) -> dict[str, Any]:
    """Seconds of the default pipeline's ``Engine.fit`` alone, then beside a CPU-bound process.

    The busy process is started right before the second fit and stopped right after it, so
    that fit shares the machine with one process that holds a core, as a refit beside a
    busy server does. Each fit starts from a cold embedding cache in a data dir of its own,
    so both do the same work. ``config`` overrides fields of the engine's ``Config``.
    ``machine`` holds, per fit, the share of the cores that processes other than this
    benchmark and its busy process took (see ``benchmarks/machine.py``).
    """
    runs: dict[str, dict[str, Any]] = {}
    for case in ("alone", "beside_busy"):
        tmp = Path(tempfile.mkdtemp(prefix="interestlens-shared-"))
        cfg = Config(
            data_dir=tmp, cache_dir=tmp / "cache", explore=ExploreConfig(log=False), **config
        )
        engine = Engine(cfg)
        busy = None
        if case == "beside_busy":
            busy = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
        competition = Competition().start()
        t = time.perf_counter()
        try:
            engine.fit(ds)
        finally:
            seconds = time.perf_counter() - t
            if busy is not None:
                busy_cpu = _cpu_seconds(busy.pid)
                busy.kill()
                busy.wait()  # reaped before the competition stops, so its CPU counts as ours
        runs[case] = {"seconds": seconds, "machine": competition.stop()}
        if busy is not None:
            runs[case]["busy_process_cpu_seconds"] = round(busy_cpu, 1)
        print(f"  Engine.fit {case.replace('_', ' ')}: {seconds:.1f} s", flush=True)
    alone, beside = runs["alone"]["seconds"], runs["beside_busy"]["seconds"]
    return {
        "engine_fit_alone_seconds": round(alone, 1),
        "engine_fit_beside_busy_seconds": round(beside, 1),
        "ratio_beside_busy_to_alone": round(beside / alone, 2),
        "busy_process_cpu_seconds": runs["beside_busy"]["busy_process_cpu_seconds"],
        "threads": resolve(cfg.threads),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "cpus": os.cpu_count(),
        "machine": {case: run["machine"] for case, run in runs.items()},
    }


def print_table(doc: dict[str, Any]) -> None:
    for protocol, res in doc["protocols"].items():
        print(f"\n{protocol}: {'model':32s} {'NDCG@10':>8s} {'95% CI':>17s} {'HR@10':>7s}")
        for name, r in sorted(res["models"].items(), key=lambda p: -p[1]["test"]["ndcg"]["value"]):
            nd = r["test"]["ndcg"]
            print(
                f"{'':{len(protocol)}s}  {name:32s} {nd['value']:8.4f} "
                f"[{nd['ci'][0]:.4f}, {nd['ci'][1]:.4f}] {r['test']['hr']['value']:7.4f}"
            )
        if "best_peer" in res:
            print(f"  best peer: {res['best_peer']} ({res['best_peer_ndcg']:.4f})")
            for key, value in res.items():
                if key.startswith("ratio "):
                    print(f"  {key[6:]}: {value:.3f}")
            d = res.get("difference_vs_best_peer_in_run")
            if isinstance(d, dict):
                d = (
                    f"{d['difference']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}], "
                    f"p = {d['p_value']:.3g}"
                )
            print(f"  default pipeline - {res['best_peer_in_run']}: {d}")
    sp_ = doc.get("speed")
    if sp_:
        print(
            f"\ndefault pipeline: Engine.fit {sp_['engine_fit_seconds']} s on all of "
            f"{doc['dataset']}; recommend median {sp_['model_recommend_ms_median']} ms "
            f"(Engine.recommend {sp_['engine_recommend_ms_median']} ms; right after a new "
            f"event {sp_.get('engine_after_observe_recommend_ms_median', 'n/a')} ms)"
        )
    shared = doc.get("shared_machine")
    if shared:
        print(
            f"Engine.fit alone {shared['engine_fit_alone_seconds']} s, beside one CPU-bound "
            f"process {shared['engine_fit_beside_busy_seconds']} s: "
            f"{shared['ratio_beside_busy_to_alone']}x ({shared['threads']} thread(s) of "
            f"{shared['cpus']} cores, OMP_WAIT_POLICY {shared['omp_wait_policy']})"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-latest-small", help="dataset name or path")
    ap.add_argument(
        "--budget", type=int, default=6, help="tuning trials per model (the same for all)"
    )
    ap.add_argument("--protocols", default="loo,random")
    ap.add_argument("--only", default="", help="comma-separated contender names (default: all)")
    ap.add_argument("--no-speed", action="store_true", help="skip the fit-time and latency run")
    ap.add_argument(
        "--shared-machine",
        action="store_true",
        help="also time Engine.fit alone and beside a CPU-bound process the benchmark starts",
    )
    ap.add_argument(
        "--allow-busy",
        action="store_true",
        help="write the shared-machine figures even if other processes used the CPU meanwhile",
    )
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep the other contenders' rows of the existing results (with --only)",
    )
    args = ap.parse_args()
    ds = datasets.load(args.dataset)
    # one embedding cache for the run, cold at its start, as the engine keeps one
    encoder = Encoder(cache_dir=tempfile.mkdtemp(prefix="interestlens-accuracy-"))
    only = {s.strip() for s in args.only.split(",") if s.strip()} or None
    doc: dict[str, Any] = {
        "benchmark": "accuracy",
        "dataset": args.dataset,
        "k": 10,
        "budget": args.budget,
        "protocols": {},
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "accuracy.json"

    def save(partial: dict[str, Any] | None = None, protocol: str = "") -> None:
        if partial is not None:
            doc["protocols"][protocol] = partial
        path.write_text(json.dumps(doc, indent=2, default=str) + "\n")

    if (args.merge or not args.protocols) and path.exists():
        # --protocols "" refreshes the speed or shared-machine figures only
        doc = json.loads(path.read_text())
    for protocol in filter(None, args.protocols.split(",")):
        print(f"protocol {protocol}", flush=True)
        previous = doc["protocols"].get(protocol, {}).get("models") if args.merge else None
        run_protocol(
            ds,
            protocol,
            args.budget,
            encoder,
            only,
            lambda part, p=protocol: save(part, p),
            previous,
        )
    if not args.no_speed:
        doc["speed"] = speed(ds)
        save()
    if args.shared_machine:
        print("shared machine: Engine.fit alone, then beside one CPU-bound process", flush=True)
        shared = shared_machine(ds)
        for case, machine in shared["machine"].items():
            print(f"during the fit {case.replace('_', ' ')}:", end="")
            refuse_if_busy(machine, args.allow_busy)
        doc["shared_machine"] = shared
        save()
    print_table(doc)


if __name__ == "__main__":
    main()
