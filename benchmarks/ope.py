"""Off-policy evaluation on the Open Bandit Dataset sample (issue 5, "done when").

For each campaign (all, men, women) of ``obd-sample``:

- the Random logging policy evaluated on its own log, the evaluation policy being uniform
  or the log's own empirical per-position action distribution: does each estimator's
  interval contain the observed click rate?
- the Bernoulli-TS policy's value estimated from the Random log, the evaluation policy
  being the BTS log's empirical per-position action distribution (the share of its rows
  showing each item at each position; a context-free variant of the dataset's standard
  experiment): relative error ``|estimate - bts_ctr| / bts_ctr`` of each estimator, and
  whether its interval contains BTS's on-policy click rate.

The reward model for DM/DR/SNDR/Switch-DR is ``cross_fit_rewards`` (5-fold logistic
regression) on the Random log; 1,000 bootstrap resamples, seed 0, 95% intervals.

    python benchmarks/ope.py [--data ../shared/data/obd-sample] [--bootstrap 1000] [--seed 0]

Writes benchmarks/results/ope.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from interestlens.data.bandit import CAMPAIGNS, load_obd
from interestlens.evaluate.ope import (
    cross_fit_rewards,
    empirical_policy,
    evaluate_policy,
    policy_action_dist,
)

RESULTS = Path(__file__).parent / "results"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "obd-sample"


def rows(results: dict, target: float) -> dict[str, dict[str, float | bool]]:
    return {
        name: {
            **r.to_dict(),
            "covers": bool(r.ci_low <= target <= r.ci_high),
            "relative_error": abs(r.estimate - target) / target,
        }
        for name, r in results.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    doc: dict = {
        "data": str(args.data),
        "n_bootstrap": args.bootstrap,
        "seed": args.seed,
        "alpha": 0.05,
        "campaigns": {},
    }
    for campaign in CAMPAIGNS:
        random_log = load_obd(args.data, policy="random", campaign=campaign)
        bts_log = load_obd(args.data, policy="bts", campaign=campaign)
        started = time.perf_counter()
        q = cross_fit_rewards(random_log, random_state=args.seed)
        fit_s = time.perf_counter() - started
        kw = {"estimated_rewards": q, "n_bootstrap": args.bootstrap, "random_state": args.seed}
        random_ctr, bts_ctr = float(random_log.reward.mean()), float(bts_log.reward.mean())
        own = {
            policy: rows(
                evaluate_policy(random_log, policy_action_dist(policy, random_log), **kw),
                random_ctr,
            )
            for policy in ("uniform", "logging")
        }
        started = time.perf_counter()
        bts = evaluate_policy(random_log, empirical_policy(bts_log)(random_log), **kw)
        eval_s = time.perf_counter() - started
        doc["campaigns"][campaign] = {
            "rows": len(random_log),
            "actions": random_log.n_actions,
            "random_ctr": random_ctr,
            "bts_on_policy_ctr": bts_ctr,
            "random_on_own_log": own,
            "bts_from_random": rows(bts, bts_ctr),
            "seconds": {"reward_model": round(fit_s, 2), "six_estimators": round(eval_s, 2)},
        }

        print(f"\n== {campaign}: {len(random_log):,} rows, {random_log.n_actions} items")
        print(f"Random on its own log (observed CTR {random_ctr:.5f}); interval covers it?")
        for policy, res in own.items():
            cells = "  ".join(
                f"{n} {r['estimate']:.5f} [{r['ci_low']:.5f},{r['ci_high']:.5f}] "
                f"{'yes' if r['covers'] else 'NO'}"
                for n, r in res.items()
            )
            print(f"  {policy:8s} {cells}")
        print(f"BTS from the Random log (BTS on-policy CTR {bts_ctr:.5f}):")
        for name, r in doc["campaigns"][campaign]["bts_from_random"].items():
            print(
                f"  {name:10s} {r['estimate']:.5f} [{r['ci_low']:.5f}, {r['ci_high']:.5f}]"
                f"  relative error {r['relative_error']:.3f}"
                f"  covers {'yes' if r['covers'] else 'no'}"
            )

    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "ope.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
