"""Ingest throughput: synthetic events appended in batches to SQLite and PostgreSQL.

Prints a table and writes benchmarks/results/ingest.json. Each figure is the median of
--repeats runs, each into a fresh store. "validate+append" includes row validation of
raw string columns (what `interestlens ingest` does per chunk); "append" starts from
already validated frames.

    python benchmarks/ingest.py [--events 1000000] [--batch 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from interestlens.data.validation import EventValidator, ValidationOptions
from interestlens.store import open_store

# the private PostgreSQL cluster is a test helper: import it from the repository's tests
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.store.local_postgres import LocalPostgres, PostgresUnavailable

RESULTS = Path(__file__).parent / "results"


def synthetic_raw(n: int, seed: int = 0) -> pd.DataFrame:
    """Raw string columns as a CSV reader would give them."""
    rng = np.random.default_rng(seed)
    types = rng.choice(["view", "click", "rating", "purchase"], size=n, p=[0.6, 0.25, 0.1, 0.05])
    value = np.where(types == "rating", rng.integers(1, 11, size=n) / 2, 1.0)
    ts = 1_600_000_000 + np.sort(rng.integers(0, 90 * 86400, size=n))
    return pd.DataFrame(
        {
            "event_id": [f"e{k:08d}" for k in range(n)],
            "user_id": rng.integers(0, 50_000, size=n).astype(str),
            "item_id": rng.integers(0, 20_000, size=n).astype(str),
            "type": types,
            "value": value.astype(str),
            "timestamp": ts.astype(str),
        }
    ).astype(object)


def batches(frame: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    return [frame.iloc[i : i + size] for i in range(0, len(frame), size)]


def run_once(
    url: str, raw_batches: list[pd.DataFrame], validated: list[pd.DataFrame] | None
) -> float:
    with open_store(url) as store:
        t = time.perf_counter()
        if validated is None:
            v = EventValidator(ValidationOptions(rating_range=(0.5, 5)))
            for b in raw_batches:
                store.append(v.validate(b))
        else:
            for b in validated:
                store.append(b)
        elapsed = time.perf_counter() - t
        n = store.count()
    assert n == sum(len(b) for b in raw_batches), n
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    raw = synthetic_raw(args.events)
    raw_batches = batches(raw, args.batch)
    v = EventValidator(ValidationOptions(rating_range=(0.5, 5)))
    validated = [v.validate(b) for b in raw_batches]
    assert v.report.rejected == 0

    rows = []
    pg = None
    try:
        try:
            pg = LocalPostgres().start()
        except PostgresUnavailable as exc:
            print(f"PostgreSQL skipped: {exc}")
        targets = [("sqlite", None)] + ([("postgresql", pg)] if pg else [])
        for backend, server in targets:
            for mode, data in (("append", validated), ("validate+append", None)):
                times = []
                for r in range(args.repeats):
                    with tempfile.TemporaryDirectory() as tmp:
                        url = (
                            server.create_database(f"bench_{mode.replace('+', '_')}_{r}")
                            if server
                            else f"sqlite://{tmp}/bench.db"
                        )
                        times.append(run_once(url, raw_batches, data))
                med = statistics.median(times)
                rows.append(
                    {
                        "backend": backend,
                        "mode": mode,
                        "events": args.events,
                        "batch": args.batch,
                        "seconds": [round(t, 3) for t in times],
                        "median_seconds": round(med, 3),
                        "events_per_s": round(args.events / med),
                    }
                )
                print(
                    f"{backend:10s} {mode:16s} median {med:6.2f} s  {args.events / med:>10,.0f} events/s  runs {times}"
                )
    finally:
        if pg:
            pg.stop()

    target = 50_000
    sqlite_append = next(r for r in rows if r["backend"] == "sqlite" and r["mode"] == "append")
    print()
    print(f"{'backend':10s} {'mode':16s} {'events/s':>12s} {'median s':>9s}")
    for r in rows:
        print(
            f"{r['backend']:10s} {r['mode']:16s} {r['events_per_s']:>12,d} {r['median_seconds']:>9.2f}"
        )
    print(
        f"target: >= {target:,} events/s into SQLite; reached {sqlite_append['events_per_s'] / target:.1f}x"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest.json").write_text(
        json.dumps(
            {
                "benchmark": "ingest",
                "machine": {
                    "cpus": __import__("os").cpu_count(),
                    "python": platform.python_version(),
                },
                "target_events_per_s_sqlite": target,
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
