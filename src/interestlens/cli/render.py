"""The one renderer of the command line: every command prints through it.

Text goes to stdout as rich tables and lines, with data (ids, titles, labels, paths) shown
as it is, never read as markup or emoji codes; ``--json`` prints exactly one strict JSON
document instead (NaN and infinities, which JSON lacks, become ``null``); progress and
errors go to stderr.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

#: Width of stdout when it is not a terminal: wide enough that no table cuts a value.
PIPE_WIDTH = 10_000

#: Profile trends as shown in a table.
TRENDS = {
    "rising": Text("↑ rising", style="green"),
    "fading": Text("↓ fading", style="red"),
    "stable": Text("→ stable"),
}

#: Metrics an evaluation table shows by default, in order.
METRICS = ("ndcg", "hr", "mrr", "map", "auc", "coverage", "novelty", "arp", "serendipity")

#: Metrics shown with their list length (``ndcg@10``).
AT_K = ("ndcg", "hr", "mrr", "map")


def _stdout_console() -> Console:
    """The terminal's width on a terminal; never cut a value when piped or redirected."""
    return Console() if sys.stdout.isatty() else Console(width=PIPE_WIDTH)


out = _stdout_console()
err = Console(stderr=True)

Cell = str | Text


def say(*parts: str | tuple[str, str], stderr: bool = False) -> None:
    """Print one line of plain text: data is never read as markup or emoji codes.

    Each part is a string, or a ``(string, style)`` pair for our own emphasis; ``stderr``
    sends the line to stderr (progress beside a ``--json`` document).
    """
    (err if stderr else out).print(Text.assemble(*parts), soft_wrap=True)


def bold(text: str) -> Text:
    """``text`` in bold, still shown as it is (a table cell or a :func:`say` part)."""
    return Text(text, style="bold")


def table(
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    right: Iterable[str] = (),
    header: bool = True,
) -> None:
    """Print a table; every string (title, cells) is data, shown as it is and whole when piped.

    Parameters
    ----------
    title
        The table's title (it may hold ids or paths).
    columns
        Column headings.
    rows
        The cells of each row; a :class:`~rich.text.Text` cell keeps its style.
    right
        Headings of the columns aligned right (numbers).
    header
        Whether to show the headings.
    """
    aligned = set(right)
    heading = Text(title, style="table.title")
    # at least as wide as its title, which rich would otherwise wrap to the table's width
    t = Table(title=heading, show_header=header, min_width=heading.cell_len)
    for col in columns:
        t.add_column(col, justify="right" if col in aligned else "left")
    for row in rows:
        t.add_row(*(c if isinstance(c, Text) else Text(c) for c in row))
    out.print(t)


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by ``None``, at any depth.

    Examples
    --------
    >>> finite({"score": float("nan"), "items": [1.5, float("inf")]})
    {'score': None, 'items': [1.5, None]}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(doc: Any) -> str:
    """``doc`` as strict, indented JSON (no NaN, which JSON lacks: ``null`` instead).

    Examples
    --------
    >>> print(dumps({"score": float("nan")}))
    {
      "score": null
    }
    """
    return json.dumps(finite(doc), indent=2, default=str, allow_nan=False)


def emit_json(doc: Any) -> None:
    """Print one strict JSON document on stdout: the whole output of a ``--json`` command."""
    sys.stdout.write(dumps(doc) + "\n")


def error(message: str) -> None:
    """Print ``error: MESSAGE`` as one line on stderr.

    It never fails itself: if the console cannot print the message, it goes to stderr raw.
    """
    text = message.strip() or "error"
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    try:
        err.print(Text.assemble(("error:", "bold red"), " ", line), soft_wrap=True)
    except Exception:
        sys.stderr.write(f"error: {line}".encode("ascii", "backslashreplace").decode() + "\n")


def summary(doc: Mapping[str, Any]) -> None:
    """A dataset summary (:meth:`Dataset.summary <interestlens.data.Dataset.summary>`) as a table."""
    rows = []
    for key, value in doc.items():
        if key == "name":
            continue
        if isinstance(value, Mapping):
            value = ", ".join(
                f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}" for k, v in value.items()
            )
        elif isinstance(value, int):
            value = f"{value:,}"
        rows.append((bold(key.replace("_", " ")), str(value)))
    table(f"dataset {doc.get('name') or ''}".strip(), ("", ""), rows, header=False)


def profile(doc: Mapping[str, Any]) -> None:
    """An interest profile (:meth:`InterestProfile.to_dict`): interests, broad, dislikes, words."""
    table(
        f"interests of user {doc['user_id']} ({doc['n_events']:,} events, as of {doc['as_of']})",
        ("interest", "weight", "trend"),
        [(x["label"], f"{x['weight']:.1%}", TRENDS[x["trend"]]) for x in doc["interests"]],
        right=("weight",),
    )
    if doc["broad"]:
        say("broad: " + ";  ".join(f"{b['label']} {b['weight']:.0%}" for b in doc["broad"][:5]))
    if doc["dislikes"]:
        say("dislikes: " + ";  ".join(d["label"] for d in doc["dislikes"][:5]))
    if doc["texts"]:
        words = ", ".join(f"{t['text']} ({t['sentiment']:+.2f})" for t in doc["texts"][-8:])
        say(f"own words ({len(doc['texts'])}, mean sentiment {doc['sentiment']}): {words}")


def evaluation(doc: Mapping[str, Any], shown: Sequence[str] = METRICS) -> None:
    """An evaluation report (:meth:`EvaluationReport.to_dict`): a row per model, then comparisons.

    Each value shows its bootstrap interval under it.
    """
    k = doc["k"]
    rows = []
    for name, res in doc["results"].items():
        cells = []
        for m in shown:
            r = res.get(m)
            if r is None or r["value"] is None:
                cells.append("")
            elif r["ci"] is None:
                cells.append(f"{r['value']:.4f}")
            else:
                cells.append(f"{r['value']:.4f}\n[{r['ci'][0]:.4f}, {r['ci'][1]:.4f}]")
        rows.append((name, *cells))
    headings = [f"{m}@{k}" if m in AT_K else m for m in shown]
    table(
        f"{doc['protocol']}, K={k}, {doc['n_users']:,} users "
        f"({round(doc['confidence'] * 100)}% bootstrap CI)",
        ("model", *headings),
        rows,
        right=headings,
    )
    for c in doc["comparisons"]:
        say(
            f"{c['a']} - {c['b']} on {c['metric']}: {c['difference']:+.4f} "
            f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}], p = {c['p_value']:.3g} "
            f"(Wilcoxon {c['wilcoxon_p']:.3g})"
        )


def rejections(sources: Sequence[Mapping[str, Any]], limit: int = 20) -> int:
    """The first ``limit`` refused rows of every source, each with its source and row number.

    Each source is a report's ``to_dict()`` with its ``source``; returns how many rows
    were refused in all.
    """
    refused = [(s["source"], r) for s in sources for r in s["rejections"]]
    if refused:
        say(
            (f"{len(refused):,} rows rejected", "yellow"),
            f" (first {limit}):" if len(refused) > limit else ":",
        )
        for source, r in refused[:limit]:
            say(f"  {source} row {r['row']}: {r['reason']}")
    return len(refused)
