"""Audiences: the users whose profile holds an interest, for marketing and ad targeting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from interestlens.interests.profile import EncodeFn, InterestProfiler
from interestlens.interests.taxonomy import BROAD, InterestTaxonomy


@dataclass(frozen=True)
class ResolvedQuery:
    """Which fine interests a query names, and how it was understood."""

    interest_ids: tuple[int, ...]
    how: str  # "id", "label", "term" or "text"


def resolve_interests(
    taxonomy: InterestTaxonomy,
    query: str | int,
    encode: EncodeFn | None = None,
    *,
    top: int = 3,
    min_score: float = 0.1,
) -> ResolvedQuery:
    """The fine interests a query names.

    A query is, in order of precedence: an interest id (a broad one stands for all its
    fine interests); a whole label; one of the terms of labels; or free text, matched
    zero-shot to up to ``top`` interests holding at least ``min_score`` of the votes of
    the items closest to it (:meth:`InterestTaxonomy.tag_vectors`).
    """
    fine = taxonomy.fine()

    def expand(ids: list[int]) -> tuple[int, ...]:
        out: list[int] = []
        for i in ids:
            it = taxonomy[i]
            out.extend(
                f.interest_id for f in fine if f.parent == i
            ) if it.level == BROAD else out.append(i)
        return tuple(dict.fromkeys(out))

    text = str(query).strip()
    if text.isdigit() and int(text) in taxonomy.interests_:
        return ResolvedQuery(expand([int(text)]), "id")
    low = text.lower()
    by_label = [i.interest_id for i in taxonomy.interests_.values() if i.label.lower() == low]
    if by_label:
        return ResolvedQuery(expand(by_label), "label")
    by_term = [i.interest_id for i in fine if low in (t.lower() for t in i.terms)]
    if by_term:
        return ResolvedQuery(tuple(by_term), "term")
    if encode is None:
        raise ValueError(
            f"{text!r} names no interest id, label or term, and no encoder was given to match it as text"
        )
    tagged = taxonomy.tag_vectors(encode([text]), top=top, min_score=min_score)[0]
    if not tagged:
        raise ValueError(f"no interest is close enough to {text!r}")
    return ResolvedQuery(tuple(i for i, _ in tagged), "text")


def audience(
    profiler: InterestProfiler,
    query: str | int,
    *,
    min_weight: float = 0.05,
    encode: EncodeFn | None = None,
) -> pd.DataFrame:
    """Users whose long-term profile gives the queried interests at least ``min_weight``.

    Returns
    -------
    pandas.DataFrame
        Columns ``user_id``, ``weight`` (summed share of the matched interests) and
        ``interests`` (their labels), heaviest first. ``frame.attrs["how"]`` says how the
        query was read.
    """
    tax = profiler.taxonomy
    resolved = resolve_interests(tax, query, encode)
    col = {f: k for k, f in enumerate(tax.fine_ids_)}
    cols = [col[i] for i in resolved.interest_ids]
    shares = profiler.shares("long")
    weight = shares[:, cols].sum(axis=1) if len(shares) else np.zeros(0)
    keep = np.flatnonzero(weight >= min_weight)
    order = keep[np.argsort(-weight[keep], kind="stable")]
    labels = " | ".join(tax[i].label for i in resolved.interest_ids)
    frame = pd.DataFrame(
        {
            "user_id": [profiler.user_ids_[k] for k in order],
            "weight": np.round(weight[order], 4),
            "interests": labels,
        }
    )
    frame.attrs["how"] = resolved.how
    return frame
