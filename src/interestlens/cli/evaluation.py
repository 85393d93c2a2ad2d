"""Evaluation commands: ``evaluate`` (offline accuracy), ``ope`` (logged feedback), ``simulate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from interestlens.cli import render
from interestlens.cli.shared import (
    DEFAULT_DATA_DIR,
    CLIError,
    DataDirOpt,
    DatasetOpt,
    JsonOpt,
    fitted_engine,
    load_dataset,
    parse_list,
)

if TYPE_CHECKING:
    import numpy as np

    from interestlens.data import BanditLog


def evaluate(
    dataset: DatasetOpt = None,
    protocol: Annotated[
        str, typer.Option("--protocol", help="loo (leave-last-out), random or temporal.")
    ] = "loo",
    models: Annotated[
        str, typer.Option("--models", help="Comma-separated model names, e.g. popularity,ease.")
    ] = "popularity",
    k: Annotated[int, typer.Option("--k", help="List length.")] = 10,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write report.md, report.json and report.png here."),
    ] = None,
    target_types: Annotated[
        str | None,
        typer.Option(
            "--target-types", help="Event types that may be held out, e.g. rating (default: all)."
        ),
    ] = None,
    n_bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap resamples of users for the intervals.")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of splits, bootstrap and tests.")] = 0,
    chart_metric: Annotated[
        str, typer.Option("--chart-metric", help="Metric drawn in report.png.")
    ] = "ndcg",
    json_out: JsonOpt = False,
) -> None:
    """Fit models on a split and score them on held-out events, ranking the full catalogue."""
    from interestlens.evaluate import evaluate as run_evaluation
    from interestlens.evaluate import parse_models

    unfitted = parse_models(models)
    ds = load_dataset(dataset)
    types = [t.strip() for t in target_types.split(",") if t.strip()] if target_types else None
    render.say(
        f"evaluating {', '.join(unfitted)} on {ds.name or dataset} ({protocol}, K={k})",
        stderr=True,
    )
    report = run_evaluation(
        unfitted,
        ds,
        protocol,
        k,
        target_types=types,
        n_bootstrap=n_bootstrap,
        random_state=seed,
    )
    doc = report.to_dict()
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        report.to_markdown(out_dir / "report.md")
        report.to_json(out_dir / "report.json")
        report.plot(out_dir / "report.png", metric=chart_metric)
        doc["files"] = [str(out_dir / f) for f in ("report.md", "report.json", "report.png")]
    if json_out:
        render.emit_json(doc)
        return
    render.evaluation(doc)
    if out_dir is not None:
        render.say(f"written to {out_dir}: report.md, report.json, report.png")


def _action_dist(
    log: BanditLog,
    policy: str | None,
    evaluation_log: Path | None,
    explore: float | None,
    draws: int,
    data_dir: Path,
) -> tuple[BanditLog, np.ndarray]:
    """The log to evaluate on and the evaluation policy's action_dist over it.

    A context-free policy by name, another log's empirical one, or one of the exploration
    policies as fitted in the saved engine (the log then gains the OTHER_ITEMS action).
    """
    from interestlens.evaluate import ope
    from interestlens.evaluate.simulate import POLICIES

    if policy is not None and evaluation_log is not None:
        raise CLIError("give --policy or --evaluation-log, not both")
    if policy not in POLICIES:
        if explore is not None:
            raise CLIError(f"--explore applies to our exploration policies ({', '.join(POLICIES)})")
        if evaluation_log is not None:
            return log, ope.empirical_policy(ope.read_log(evaluation_log))(log)
        if policy is not None and policy not in ope.TARGET_POLICIES:
            known = [*ope.TARGET_POLICIES, *POLICIES]
            raise CLIError(f"unknown policy {policy!r}; known: {', '.join(known)}")
        return log, ope.policy_action_dist(policy or "uniform", log)
    if log.user_id is None:
        raise CLIError(
            f"the log has no user_id column (an Open Bandit Dataset log, say), and the {policy} "
            "policy needs each row's user; evaluate uniform, logging or --evaluation-log instead"
        )
    return ope.engine_action_dist(
        log, fitted_engine(data_dir), policy, explore=explore, n_draws=draws, random_state=0
    )


def ope(
    logfile: Annotated[
        Path,
        typer.Argument(
            help="Logged bandit feedback: an Open Bandit Dataset folder or CSV, or a "
            "CSV/Parquet with item_id, position, reward (or click) and propensity."
        ),
    ],
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            help="Evaluation policy: uniform or logging (default uniform), or one of our "
            "exploration policies (epsilon_greedy, softmax, lin_ucb, lin_ts, "
            "interest_explorer, interest_diversifier, cold_start) as fitted in the engine "
            "in --data-dir; those need a log with user ids (the product's slate log).",
        ),
    ] = None,
    explore: Annotated[
        float | None,
        typer.Option(
            "--explore", help="Exploration level of an exploration policy (default: its own)."
        ),
    ] = None,
    draws: Annotated[
        int,
        typer.Option(
            "--draws", help="Simulated slates per logged slate for Monte-Carlo distributions."
        ),
    ] = 1000,
    evaluation_log: Annotated[
        Path | None,
        typer.Option(
            "--evaluation-log",
            help="Evaluate the policy that logged this file (its per-position item shares).",
        ),
    ] = None,
    estimators: Annotated[
        str,
        typer.Option("--estimators", help="Comma-separated: dm,ips,snips,dr,sndr,switch-dr."),
    ] = "dm,ips,snips,dr,sndr,switch-dr",
    tau: Annotated[
        float | None,
        typer.Option("--tau", help="Switch-DR's importance-weight threshold (default 5)."),
    ] = None,
    n_bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap resamples for the intervals.")
    ] = 1000,
    alpha: Annotated[float, typer.Option("--alpha", help="Intervals cover 1 - alpha.")] = 0.05,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap and folds.")] = 0,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_out: JsonOpt = False,
) -> None:
    """Off-policy evaluation: estimate a policy's value from logged bandit feedback."""
    from interestlens.evaluate import ope as ope_mod

    log = ope_mod.read_log(logfile)
    if log.report is not None and log.report.rejected:
        first = log.report.rejections[0]
        render.say(
            (f"{log.report.rejected:,} rows refused", "yellow"),
            f" (first: row {first.row}, {first.reason})",
            stderr=True,
        )
    names = [e.strip().lower() for e in estimators.split(",") if e.strip()]
    chosen = [
        ope_mod.SwitchDR(tau=tau) if e == "switch-dr" and tau is not None else e for e in names
    ]
    log, action_dist = _action_dist(log, policy, evaluation_log, explore, draws, data_dir)
    results = ope_mod.evaluate_policy(
        log, action_dist, chosen, n_bootstrap=n_bootstrap, alpha=alpha, random_state=seed
    )
    if json_out:
        render.emit_json({name: r.to_dict() for name, r in results.items()})
        return
    evaluated = f"policy of {evaluation_log}" if evaluation_log else policy or "uniform"
    if explore is not None:
        evaluated += f" at explore {explore:g}"
    render.table(
        f"value of {evaluated} on {logfile} ({len(log):,} rows, {1 - alpha:.0%} bootstrap CI)",
        ("estimator", "estimate", "CI low", "CI high"),
        [
            (name, f"{r.estimate:.5f}", f"{r.ci_low:.5f}", f"{r.ci_high:.5f}")
            for name, r in results.items()
        ],
        right=("estimate", "CI low", "CI high"),
    )
    render.say(f"the logging policy's own mean reward: {log.reward.mean():.5f}")


def simulate(
    policies: Annotated[
        str | None,
        typer.Option("--policies", help="Comma-separated policy names (default: every policy)."),
    ] = None,
    rounds: Annotated[int, typer.Option("--rounds", help="Slates per run.")] = 200,
    explore: Annotated[
        str, typer.Option("--explore", help="Comma-separated exploration levels in [0, 1].")
    ] = "0,0.1,0.3",
    seeds: Annotated[str, typer.Option("--seeds", help="Comma-separated seeds.")] = "0,1,2",
    users: Annotated[int, typer.Option("--users", help="Simulated users drawn per seed.")] = 100,
    k: Annotated[int, typer.Option("--k", help="Slate size.")] = 10,
    dataset: DatasetOpt = None,
    ranker: Annotated[
        str, typer.Option("--ranker", help="Model the policies rank with (a model name).")
    ] = "als",
    static_ranker: Annotated[
        bool,
        typer.Option(
            "--static-ranker",
            help="Keep each user's ranker scores from the fit instead of folding clicks in.",
        ),
    ] = False,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write simulate.json and frontier.png here."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Long-run explore/exploit on simulated users built from real data.

    Each simulated user's true preference over all items comes from EASE fitted on all
    their data; policies start from the first 30% of each user's history, and the ranker
    folds each click in as it comes. Reports reward, regret against the oracle, true
    interests found, coverage, and the frontier.
    """
    from interestlens.evaluate import UserSimulator, parse_models
    from interestlens.evaluate import simulate as run_simulation
    from interestlens.evaluate.simulate import POLICIES, explore_levels, named_policies

    factories = named_policies(
        parse_list("--policies", policies, str) if policies else list(POLICIES)
    )
    levels = explore_levels(parse_list("--explore", explore, float))
    seed_list = parse_list("--seeds", seeds, int)
    rankers = parse_models(ranker)
    if len(rankers) != 1:
        raise CLIError(f"--ranker {ranker!r} names {len(rankers)} models; give one")
    ds = load_dataset(dataset)
    render.say(
        f"building simulated users from {ds.name or dataset} ({ds.n_users:,} users)", stderr=True
    )
    sim = UserSimulator().fit(ds)
    result = run_simulation(
        sim,
        factories,
        ranker=next(iter(rankers.values())),
        rounds=rounds,
        k=k,
        explore=levels,
        seeds=seed_list,
        n_users=users,
        online=not static_ranker,
        progress=lambda line: render.say(line, stderr=True),
    )
    doc = result.to_dict()
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "simulate.json").write_text(render.dumps(doc) + "\n")
        result.frontier(out_dir / "frontier.png")
        doc["files"] = [str(out_dir / "simulate.json"), str(out_dir / "frontier.png")]
    if json_out:
        render.emit_json(doc)
        return
    st = doc["settings"]
    render.table(
        f"{st['rounds']} rounds of {st['k']} items, {st['users']} users, "
        f"median of {len(st['seeds'])} seeds; ratios to pure exploitation",
        ("policy", "explore", "clicks", "regret", "found", "new", "coverage", "reward×", "found×"),
        [
            (
                r["policy"],
                f"{r['explore']:g}",
                f"{r['reward']:.0f}",
                f"{r['regret']:.1f}",
                f"{r['interests_found']:.0f}/{r['true_interests']:.0f}",
                f"{r['new_interests_found']:.0f}",
                f"{r['coverage']:.1%}",
                f"{r['reward_ratio']:.3f}",
                f"{r['discovery_ratio']:.3f}",
            )
            for r in doc["summary"]
        ],
        right=("explore", "clicks", "regret", "found", "new", "coverage", "reward×", "found×"),
    )
    render.say(
        "found: true interests with a click (new: not in the starting view); "
        "reward× and found×: expected reward and interests found relative to pure exploitation"
    )
    if out_dir is not None:
        render.say(f"written to {out_dir}: simulate.json, frontier.png")
