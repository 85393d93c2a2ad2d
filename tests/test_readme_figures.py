"""Every measured figure the README quotes comes from a committed benchmark result.

Each claim below finds a figure in the README's prose and recomputes it from
``benchmarks/results/*.json``, rounded as the README writes it; a stale or hand-written
figure fails. The sweep then finds every number in the prose (outside code) that has a
decimal point or a unit (x, %, ms, s, /s, clicks): each must be one of the claims, or listed in
``NOT_MEASURED`` with the reason it is not a benchmark figure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "results"
ANCHORS = ROOT.parent / "shared" / "ANCHORS.md"


@cache
def result(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def loo(model: str) -> float:
    return result("accuracy")["protocols"]["loo"]["models"][model]["test"]["ndcg"]["value"]


def rand(model: str) -> float:
    return result("accuracy")["protocols"]["random"]["models"][model]["test"]["ndcg"]["value"]


def speed(key: str) -> float:
    return result("accuracy")["speed"][key]


def shared(key: str) -> float:
    return result("accuracy")["shared_machine"][key]


def online(what: str, stat: str) -> float:
    return result("online")["latency_ms"][what][stat]


def startup(variant: str, key: str) -> float:
    return result("startup")["timings"][variant][key]["median"]


def startup_mib(variant: str) -> float:
    return startup(variant, "peak_rss") / 2**20


def sentiment_auc(method: str) -> float:
    rows = result("sentiment")["results"]
    return next(r for r in rows if r["method"] == method)["amazon_report_auc"]


def ope_errors(campaign: str) -> tuple[float, float]:
    errors = [
        r["relative_error"]
        for r in result("ope")["campaigns"][campaign]["bts_from_random"].values()
    ]
    return min(errors), max(errors)


def ope_campaigns(key: str, field: str) -> tuple[float, float]:
    values = [c[key][field] for c in result("ope")["campaigns"].values()]
    return min(values), max(values)


def serve(workers: str, *path: str) -> float:
    value = result("serve")["runs"][workers]
    for key in path:
        value = value[key]
    return value


def refit(key: str, stat: str | None = None) -> float:
    phase = result("serve_refit")["runs"]["2"]["refit"]
    return phase[key] if stat is None else phase[key][stat]


@dataclass(frozen=True)
class Claim:
    """A figure in the README: ``pattern`` holds it in its groups; ``value`` recomputes them."""

    pattern: str
    value: Callable[[], tuple[float, ...]]
    percent: bool = False


CLAIMS: list[Claim] = [
    Claim(r"pipeline scores (0\.\d+) and SASRec", lambda: (loo("default pipeline (Hybrid)"),)),
    Claim(r"and SASRec (0\.\d+), against", lambda: (loo("SASRec"),)),
    Claim(r"against (0\.\d+) for EASE", lambda: (loo("EASE (peer)"),)),
    Claim(r"(0\.\d+) for implicit's\s+ALS", lambda: (loo("implicit ALS (peer)"),)),
    Claim(r"80/20 holdout it scores (0\.\d+)", lambda: (rand("default pipeline (Hybrid)"),)),
    Claim(r"against EASE's (0\.\d+)", lambda: (rand("EASE (peer)"),)),
    Claim(r"`Engine\.fit` takes (\d+) s", lambda: (speed("engine_fit_seconds"),)),
    Claim(r"recommendations about (\d+) ms", lambda: (speed("engine_recommend_ms_median"),)),
    Claim(r"the fit took (\d+) s alone", lambda: (shared("engine_fit_alone_seconds"),)),
    Claim(
        r"and (\d+) s beside one\s+CPU-bound", lambda: (shared("engine_fit_beside_busy_seconds"),)
    ),
    Claim(
        r"recommendations take (\d+) ms \(p95 (\d+) ms;",
        lambda: (online("after_event_recommend", "p50"), online("after_event_recommend", "p95")),
    ),
    Claim(
        r"arithmetic\s+alone is (\d+) ms \(p95 (\d+) ms\)",
        lambda: (online("model_arithmetic", "p50"), online("model_arithmetic", "p95")),
    ),
    Claim(
        r"`interestlens recommend 1` answers in (\d\.\d) s",
        lambda: (startup("interestlens recommend 1", "process_seconds"),),
    ),
    Claim(r"with a peak of (\d+) MiB", lambda: (startup_mib("interestlens recommend 1"),)),
    Claim(
        r"opens memory-mapped in\s+(0\.\d+) s", lambda: (startup("read_artefact", "load_seconds"),)
    ),
    Claim(r"an AUC of (0\.\d+), against", lambda: (sentiment_auc("blend"),)),
    Claim(r"against (0\.\d+) for the\s+classifier alone", lambda: (sentiment_auc("embedding"),)),
    Claim(r"and (0\.\d+) for the previous default", lambda: (sentiment_auc("hybrid"),)),
    Claim(r"by (\d+)–(\d+)% on `all`", lambda: ope_errors("all"), percent=True),
    Claim(r", (\d+)–(\d+)% on `men`", lambda: ope_errors("men"), percent=True),
    Claim(r"and (\d+)–(\d+)% on `women`", lambda: ope_errors("women"), percent=True),
    Claim(
        r"only (\d+)–(\d+) clicks \(Random\)",
        lambda: ope_campaigns("random_log_floor", "clicks"),
    ),
    Claim(
        r"known only to ±(\d+)–(\d+)%",
        lambda: ope_campaigns("bts_on_policy_interval", "relative_half_width"),
        percent=True,
    ),
    Claim(
        r"2 workers a recommendation takes (\d+\.\d) ms at the median \(p99 (\d+\.\d) ms\)",
        lambda: (
            serve("2", "recommend", "explain_off", "p50"),
            serve("2", "recommend", "explain_off", "p99"),
        ),
    ),
    Claim(
        r"(\d+\.\d) ms with its reasons\s+\(p99 (\d+\.\d) ms\)",
        lambda: (
            serve("2", "recommend", "explain_on", "p50"),
            serve("2", "recommend", "explain_on", "p99"),
        ),
    ),
    Claim(r"same stack takes (\d\.\d) ms", lambda: (serve("2", "floor", "at_rate", "p50"),)),
    Claim(
        r"a second, it takes (\d+\.\d) ms \(p99\s+(\d+) ms:",
        lambda: (serve("2", "after_event", "get", "p50"), serve("2", "after_event", "get", "p99")),
    ),
    Claim(r"stores (\d+) events/s durably", lambda: (serve("2", "ingest", "events_per_second"),)),
    Claim(r"background refit took (\d+) s", lambda: (refit("refit_seconds"),)),
    Claim(r"all (\d+) requests were answered", lambda: (refit("all", "n"),)),
    Claim(r"were answered\s+\(p99 (\d+) ms\)", lambda: (refit("all", "p99"),)),
]

#: Numbers in the prose that are not benchmark figures, with why.
NOT_MEASURED: dict[str, str] = {
    "3.10": "the oldest Python supported",
    "2.13.0": "the torch version pinned in the install command",
    "0.999": "the bf16 precision check's threshold, a constant of the Encoder",
    "0.1": "an example value of the explore parameter",
    "0.2": "an example value of the explore parameter",
    "0.0667": "the true value in the README's own synthetic OPE example, computed in its text",
    "127.0.0.1": "an address",
    "95": "the confidence level of the intervals",
}

#: Figures quoted from ../shared/ANCHORS.md (peers that do not install here), checked there.
FROM_ANCHORS = {"0.0648"}


def prose() -> str:
    """The README without fenced or indented code."""
    text = re.sub(r"```.*?```", "", README.read_text(), flags=re.S)
    return "\n".join(line for line in text.splitlines() if not line.startswith("    "))


def figures_written(match: re.Match) -> list[str]:
    return [g for g in match.groups() if g is not None]


def rounded_as_written(value: float, written: str) -> float:
    decimals = len(written.split(".")[1]) if "." in written else 0
    return round(value, decimals)


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.pattern[:40] for c in CLAIMS])
def test_claim_matches_its_result(claim: Claim):
    match = re.search(claim.pattern, prose())
    assert match, f"the README no longer says {claim.pattern!r}: update or remove the claim"
    written = figures_written(match)
    values = claim.value()
    assert len(written) == len(values)
    for w, v in zip(written, values, strict=True):
        v = 100 * v if claim.percent else v
        assert float(w) == rounded_as_written(v, w), (
            f"README says {w} ({claim.pattern!r}) but the result gives {v}"
        )


UNIT = r"\s*(?:x\b|×|%|ms\b|s\b|/s\b|clicks\b)"
NUMBER = re.compile(rf"(?<![\w.])(\d+(?:\.\d+)+|\d+(?=(?:[–-]\d+)?{UNIT}))")


def test_every_quoted_figure_is_a_claim_or_explained():
    text = prose()
    covered: list[tuple[int, int]] = []
    for claim in CLAIMS:
        for m in re.finditer(claim.pattern, text):
            covered += [m.span(i) for i in range(1, len(m.groups()) + 1) if m.group(i)]
    unexplained = []
    for m in NUMBER.finditer(text):
        figure = m.group(1)
        if any(a <= m.start(1) and m.end(1) <= b for a, b in covered):
            continue
        if figure in NOT_MEASURED or figure in FROM_ANCHORS:
            continue
        line = text[text.rfind("\n", 0, m.start()) + 1 : text.find("\n", m.end())]
        unexplained.append(f"{figure!r} in: {line.strip()}")
    assert not unexplained, "figures with no result behind them:\n" + "\n".join(unexplained)


def test_anchor_figures_are_in_anchors():
    if not ANCHORS.is_file():
        pytest.skip(f"{ANCHORS} is not beside the checkout")
    anchors = ANCHORS.read_text()
    for figure in FROM_ANCHORS:
        assert figure in prose(), f"{figure} is no longer quoted: drop it from FROM_ANCHORS"
        assert figure in anchors, f"the README quotes {figure} from ANCHORS.md, which lacks it"
