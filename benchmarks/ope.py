"""Off-policy evaluation on the Open Bandit Dataset sample (issues 5 and 17).

For each campaign (all, men, women) of ``obd-sample``:

- the Random logging policy evaluated on its own log, the evaluation policy being uniform
  or the log's own empirical per-position action distribution: does each estimator's
  interval contain the observed click rate?
- the Bernoulli-TS policy's value estimated from the Random log, the evaluation policy
  being the BTS log's empirical per-position action distribution (the share of its rows
  showing each item at each position; a context-free variant of the dataset's standard
  experiment): relative error ``|estimate - bts_ctr| / bts_ctr`` of each estimator, its
  interval's relative half-width, and whether its interval contains BTS's on-policy
  click rate.

What the data can show at all: each log holds only about 40 clicks in 10,000 rows, so

- the truth is itself uncertain: BTS's on-policy click rate gets its own 95% sampling
  interval from its clicks (exact Clopper-Pearson binomial interval, and a percentile
  bootstrap of the BTS log's rows as a check);
- no estimator can be more precise than the Random log's clicks allow: the best
  relative half-width any estimator could reach is that of the Random policy on its own
  log, where every importance weight is 1 (the exact binomial interval of its click
  rate, relative to the rate; about ``1.96 / sqrt(clicks)``). An estimate for another
  policy reweights the same clicks and can only be wider; DM's interval is narrower
  because it holds its reward model fixed and so leaves out that model's own error.

The reward model for DM/DR/SNDR/Switch-DR is ``cross_fit_rewards`` (5-fold logistic
regression) on the Random log; 1,000 bootstrap resamples, seed 0, 95% intervals. The
figures are accuracies, not timings, so the machine's load does not change them; the
load average is recorded all the same.

    python benchmarks/ope.py [--data ../shared/data/obd-sample] [--bootstrap 1000] [--seed 0]

Writes benchmarks/results/ope.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from interestlens.data.bandit import CAMPAIGNS, load_obd
from interestlens.evaluate.ope import (
    cross_fit_rewards,
    empirical_policy,
    evaluate_policy,
    policy_action_dist,
)
from machine import Competition

RESULTS = Path(__file__).parent / "results"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "obd-sample"
ALPHA = 0.05


def rows(results: dict, target: float) -> dict[str, dict[str, float | bool]]:
    """Each estimator's result with its coverage of ``target`` and its relative errors."""
    return {
        name: {
            **r.to_dict(),
            "covers": bool(r.ci_low <= target <= r.ci_high),
            "relative_error": abs(r.estimate - target) / target,
            "relative_half_width": (r.ci_high - r.ci_low) / 2 / target,
        }
        for name, r in results.items()
    }


def click_rate_interval(
    reward: np.ndarray, *, n_bootstrap: int, seed: int, alpha: float = ALPHA
) -> dict[str, float | int]:
    """The sampling interval of a log's own click rate, from its clicks alone.

    Parameters
    ----------
    reward
        The log's 0/1 clicks, one per row.
    n_bootstrap
        Percentile-bootstrap resamples of the rows (the check on the binomial interval).
    seed
        Seed of the bootstrap.
    alpha
        One minus the confidence level.

    Returns
    -------
    dict
        ``clicks``, ``rows``, ``ctr``; ``ci_low``/``ci_high``, the exact (Clopper-Pearson)
        binomial interval, and ``relative_half_width``, its half-width over the rate;
        ``bootstrap_ci_low``/``bootstrap_ci_high``, the percentile bootstrap interval.
    """
    reward = np.asarray(reward, dtype=float)
    if not np.isin(reward, (0.0, 1.0)).all():
        raise ValueError("click_rate_interval needs 0/1 rewards")
    n, clicks = len(reward), int(reward.sum())
    ci = binomtest(clicks, n).proportion_ci(1 - alpha, method="exact")
    rng = np.random.default_rng(seed)
    boot = reward[rng.integers(0, n, size=(n_bootstrap, n))].mean(axis=1)
    ctr = clicks / n
    return {
        "clicks": clicks,
        "rows": n,
        "ctr": ctr,
        "ci_low": float(ci.low),
        "ci_high": float(ci.high),
        "relative_half_width": float((ci.high - ci.low) / 2 / ctr),
        "bootstrap_ci_low": float(np.quantile(boot, alpha / 2)),
        "bootstrap_ci_high": float(np.quantile(boot, 1 - alpha / 2)),
    }


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def print_campaign(campaign: str, doc: dict) -> None:
    """The campaign's table: the truth's own interval, the floor, then each estimator."""
    truth, floor = doc["bts_on_policy_interval"], doc["random_log_floor"]
    print(f"\n== {campaign}: {doc['rows']:,} rows, {doc['actions']} items")
    print(
        f"Random on its own log (CTR {doc['random_ctr']:.5f}, {floor['clicks']} clicks); "
        "interval covers it?"
    )
    for policy, res in doc["random_on_own_log"].items():
        cells = "  ".join(
            f"{n} [{r['ci_low']:.5f},{r['ci_high']:.5f}] {'yes' if r['covers'] else 'NO'}"
            for n, r in res.items()
        )
        print(f"  {policy:8s} {cells}")
    print(
        f"BTS on-policy CTR {truth['ctr']:.5f} from {truth['clicks']} clicks: its own 95% "
        f"interval [{truth['ci_low']:.5f}, {truth['ci_high']:.5f}] (exact binomial; bootstrap "
        f"[{truth['bootstrap_ci_low']:.5f}, {truth['bootstrap_ci_high']:.5f}]), "
        f"±{pct(truth['relative_half_width'])}"
    )
    print(
        f"best relative half-width any estimator can reach from the Random log's "
        f"{floor['clicks']} clicks: ±{pct(floor['relative_half_width'])}"
    )
    print(
        f"  {'estimator':10s} {'estimate':>8s} {'95% interval':>20s} "
        f"{'rel. error':>10s} {'±half-width':>11s}  covers BTS CTR"
    )
    for name, r in doc["bts_from_random"].items():
        interval = f"[{r['ci_low']:.5f}, {r['ci_high']:.5f}]"
        print(
            f"  {name:10s} {r['estimate']:>8.5f} {interval:>20s} "
            f"{pct(r['relative_error']):>10s} {pct(r['relative_half_width']):>11s}  "
            f"{'yes' if r['covers'] else 'NO'}"
        )


def print_summary(campaigns: dict) -> None:
    """One line per campaign: clicks, the truth's and the floor's precision, the errors."""
    print("\n== BTS estimated from the Random log, all campaigns")
    print(
        f"{'campaign':8s} {'clicks R/BTS':>12s} {'BTS CTR ±':>9s} {'floor ±':>7s}  "
        "relative error per estimator (* = interval misses the BTS CTR)"
    )
    for campaign, doc in campaigns.items():
        truth, floor = doc["bts_on_policy_interval"], doc["random_log_floor"]
        errors = "  ".join(
            f"{n} {pct(r['relative_error'])}{'' if r['covers'] else '*'}"
            for n, r in doc["bts_from_random"].items()
        )
        print(
            f"{campaign:8s} {floor['clicks']:>5d}/{truth['clicks']:<6d} "
            f"{pct(truth['relative_half_width']):>9s} {pct(floor['relative_half_width']):>7s}  "
            f"{errors}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    competition = Competition().start()

    doc: dict = {
        "data": str(args.data),
        "n_bootstrap": args.bootstrap,
        "seed": args.seed,
        "alpha": ALPHA,
        "fields": {
            "bts_on_policy_interval": "the BTS log's own click rate and its 95% sampling "
            "interval from its clicks (exact binomial; bootstrap of its rows as a check)",
            "random_log_floor": "the Random log's click rate and its exact 95% interval: "
            "relative_half_width is the best any estimator can reach from these clicks",
            "relative_half_width": "an estimator's (ci_high - ci_low) / 2 over the target",
        },
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
        interval_kw = {"n_bootstrap": args.bootstrap, "seed": args.seed}
        doc["campaigns"][campaign] = {
            "rows": len(random_log),
            "actions": random_log.n_actions,
            "random_ctr": random_ctr,
            "bts_on_policy_ctr": bts_ctr,
            "bts_on_policy_interval": click_rate_interval(bts_log.reward, **interval_kw),
            "random_log_floor": click_rate_interval(random_log.reward, **interval_kw),
            "random_on_own_log": own,
            "bts_from_random": rows(bts, bts_ctr),
            "seconds": {"reward_model": round(fit_s, 2), "six_estimators": round(eval_s, 2)},
        }
        print_campaign(campaign, doc["campaigns"][campaign])

    print_summary(doc["campaigns"])
    doc["machine"] = competition.stop()
    print(
        f"\nload average {doc['machine']['load_average_before'][0]:.2f} before, "
        f"{doc['machine']['load_average_after'][0]:.2f} after (accuracy figures: not affected)"
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "ope.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
