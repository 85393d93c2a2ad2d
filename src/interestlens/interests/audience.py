"""Audiences: the users whose profile holds an interest, for marketing and ad targeting.

A query names interests by id, label or label term, or in free text. Free text is
matched through the terms items carry (categories and user tags: "space opera" is a
tag on the Star Wars films, though their embedded text is mostly their titles) and
through the items whose text is closest. Either match counts only above a
similarity floor measured on nonsense, so that "xyzzy qwerty" names no interest.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from interestlens.interests.profile import EncodeFn, InterestProfiler
from interestlens.interests.taxonomy import BROAD, InterestTaxonomy


@dataclass(frozen=True)
class ResolvedQuery:
    """Which fine interests a query names, and how it was understood."""

    interest_ids: tuple[int, ...]
    how: str  # "id", "label", "term", or for free text "text-term", "text" or "text-both"


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n == 0, 1.0, n)


def nonsense_probes(vocabulary: Sequence[str], n: int = 200, random_state: int = 0) -> list[str]:
    """Queries that mean nothing: random letter strings and shuffled vocabulary terms.

    Half are one to three "words" of 3-8 random letters; half the letters of a
    vocabulary term of five or more letters in random order (a shuffle that happens to
    spell a vocabulary term is drawn again), which keeps the letter statistics of real
    terms without their meaning.

    Examples
    --------
    >>> probes = nonsense_probes(["space opera", "animation"], n=4)
    >>> len(probes), all(p not in ("space opera", "animation") for p in probes)
    (4, True)
    """
    rng = np.random.default_rng(random_state)
    letters = np.array(list(string.ascii_lowercase))
    out = [
        " ".join(
            "".join(rng.choice(letters, int(rng.integers(3, 9))))
            for _ in range(int(rng.integers(1, 4)))
        )
        for _ in range(n - n // 2)
    ]
    known = set(vocabulary)
    long = [t for t in vocabulary if sum(c.isalpha() for c in t) >= 5]
    while len(out) < n and long:
        term = str(long[int(rng.integers(len(long)))])
        chars = [c for c in term if c.isalpha()]
        shuffled = "".join(rng.permutation(chars))
        if shuffled not in known:
            out.append(shuffled)
    while len(out) < n:  # no long terms to shuffle: more random strings
        out.append("".join(rng.choice(letters, int(rng.integers(3, 9)))))
    return out


class TextMatcher:
    """Matches free text to fine interests, above similarity floors measured on nonsense.

    Two ways, each counted only above its floor; where both count, the interests'
    shares of the two votes are averaged:

    1. Through terms: the query is compared with every term items carry (held by at
       least ``min_term_items`` items). Each term above the term floor casts a vote
       weighted by a softmax of its similarity at ``temperature`` and by the square
       root of the number of items holding it, shared equally among those items,
       which pass it on through their soft interest membership.
    2. Through item text: the mean cosine similarity of the ``neighbours`` items whose
       text is closest to the query must clear the item floor; those items then vote
       with their membership, weighted by a softmax of their similarity at 0.1 (as in
       :meth:`InterestTaxonomy.tag_vectors`).

    Each floor is the highest value of its statistic over :func:`nonsense_probes`
    (random letter strings and shuffled terms): no probe would match anything. On
    ml-latest-small with the bundled model the floors came to 0.55-0.57 (term) and
    0.42-0.49 (item text) over two draws of the probes (the highest of 200 draws is
    itself noisy), while "space opera", "animation", "gangsters and the mafia" and
    "romantic comedy" reach 1.0, 1.0, 0.86 and 0.68 on terms.

    Parameters
    ----------
    min_term_items
        Items that must carry a term for it to be matched (a tag on one item is one
        user's note, not a topic).
    neighbours
        Items whose text similarity is averaged (and that vote) in the second way.
    temperature
        Softmax temperature over the matched terms' similarities.
    n_probes
        Nonsense queries the floors are measured on.
    random_state
        Seed of the probes.
    """

    def __init__(
        self,
        *,
        min_term_items: int = 2,
        neighbours: int = 10,
        temperature: float = 0.05,
        n_probes: int = 200,
        random_state: int = 0,
    ) -> None:
        self.min_term_items = min_term_items
        self.neighbours = neighbours
        self.temperature = temperature
        self.n_probes = n_probes
        self.random_state = random_state

    def fit(
        self,
        taxonomy: InterestTaxonomy,
        encode: EncodeFn,
        item_terms: Sequence[Sequence[str]] | None = None,
    ) -> TextMatcher:
        """Encode the term vocabulary and measure both floors.

        Parameters
        ----------
        taxonomy
            The fitted taxonomy (its items' text vectors and soft membership).
        encode
            The encoder the taxonomy's text vectors came from.
        item_terms
            Terms per item, aligned with ``taxonomy.item_ids_``
            (:func:`~interestlens.interests.taxonomy.label_terms`); ``None``: text only.
        """
        n_items = len(taxonomy.item_ids_)
        item_terms = item_terms if item_terms is not None else [[] for _ in range(n_items)]
        if len(item_terms) != n_items:
            raise ValueError(f"item_terms has {len(item_terms)} rows for {n_items} items")
        index: dict[str, int] = {}
        rows, cols = [], []
        for i, ts in enumerate(item_terms):
            for t in dict.fromkeys(str(x).strip().lower() for x in ts):
                if t:
                    rows.append(index.setdefault(t, len(index)))
                    cols.append(i)
        held = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(index), n_items)
        )
        keep = np.flatnonzero(np.diff(held.indptr) >= self.min_term_items)
        names = list(index)
        self.vocabulary_ = [names[k] for k in keep]
        self.term_items_ = held[keep]
        self.term_vectors_ = (
            _normalise(encode(self.vocabulary_))
            if self.vocabulary_
            else np.zeros((0, taxonomy.text_vectors_.shape[1]), dtype=np.float32)
        )
        probes = _normalise(encode(nonsense_probes(self.vocabulary_, self.n_probes)))
        term_stat, item_stat = self._statistics(taxonomy, probes)
        self.term_floor_ = float(term_stat.max()) if len(self.vocabulary_) else np.inf
        self.item_floor_ = float(item_stat.max())
        return self

    def _statistics(
        self, taxonomy: InterestTaxonomy, q: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per query: best term similarity, and mean similarity of its nearest items."""
        term = (q @ self.term_vectors_.T).max(axis=1) if len(self.vocabulary_) else None
        sims = q @ taxonomy.text_vectors_.T
        n = min(self.neighbours, sims.shape[1])
        near = -np.partition(-sims, n - 1, axis=1)[:, :n]
        return (term if term is not None else np.full(len(q), -np.inf)), near.mean(axis=1)

    def match(
        self,
        taxonomy: InterestTaxonomy,
        vector: np.ndarray,
        *,
        top: int = 3,
        min_score: float = 0.1,
    ) -> tuple[list[tuple[int, float]], str]:
        """Fine interests a text embedding names, with their share of the votes, and how.

        Returns ``([], "")`` when the text clears neither floor. ``how`` is
        ``"text-term"`` (through terms only), ``"text"`` (item text only) or
        ``"text-both"``.
        """
        q = _normalise(vector)
        shares: list[np.ndarray] = []
        hows: list[str] = []
        if len(self.vocabulary_):
            s = (q @ self.term_vectors_.T)[0]
            hit = np.flatnonzero(s > self.term_floor_)
            if len(hit):
                # a term's vote grows with the square root of the items holding it:
                # "drama" on 4,000 items does not drown "courtroom drama" on two, nor
                # "romantic" on two drown "romance" and "comedy" on thousands
                term_weight = np.exp((s[hit] - s[hit].max()) / self.temperature)
                held = self.term_items_[hit]
                per_item = term_weight / np.sqrt(np.asarray(held.sum(axis=1)).ravel())
                weights = np.asarray(held.T @ per_item).ravel()
                votes = np.asarray(taxonomy.membership_.T @ weights).ravel()
                if votes.sum() > 0:
                    shares.append(votes / votes.sum())
                    hows.append("term")
        _, near_mean = self._statistics(taxonomy, q)
        if near_mean[0] > self.item_floor_:
            sims = (q @ taxonomy.text_vectors_.T)[0]
            n = min(self.neighbours, len(sims))
            near = np.argpartition(-sims, n - 1)[:n]
            w = np.exp((sims[near] - sims[near].max()) / 0.1)
            votes = np.asarray(taxonomy.membership_[near].T @ w).ravel()
            shares.append(votes / votes.sum())
            hows.append("item")
        if not shares:
            return [], ""
        how = "text-term" if hows == ["term"] else "text" if hows == ["item"] else "text-both"
        return _top_shares(taxonomy, np.mean(shares, axis=0), top, min_score), how


def _top_shares(
    taxonomy: InterestTaxonomy, votes: np.ndarray, top: int, min_score: float
) -> list[tuple[int, float]]:
    total = float(votes.sum())
    if total <= 0:
        return []
    share = votes / total
    order = np.argsort(-share, kind="stable")[:top]
    kept = [c for c in order if share[c] >= min_score] or list(order[:1])
    return [(int(taxonomy.fine_ids_[c]), float(share[c])) for c in kept]


def resolve_interests(
    taxonomy: InterestTaxonomy,
    query: str | int,
    encode: EncodeFn | None = None,
    *,
    matcher: TextMatcher | None = None,
    top: int = 3,
    min_score: float = 0.1,
) -> ResolvedQuery:
    """The fine interests a query names.

    A query is, in order of precedence: an interest id (a broad one stands for all its
    fine interests); a whole label; one of the terms of labels; or free text, matched by
    ``matcher`` (a :class:`TextMatcher`, fitted here on ``encode`` with no item terms
    when not given) to up to ``top`` interests holding at least ``min_score`` of the
    votes.

    Raises
    ------
    ValueError
        The query is empty or blank, or names no interest: text that clears neither
        similarity floor (nonsense) names none.
    """
    text = str(query).strip()
    if not text:
        raise ValueError("the query is empty: give an interest id, a label, a term or some words")
    fine = taxonomy.fine()

    def expand(ids: list[int]) -> tuple[int, ...]:
        out: list[int] = []
        for i in ids:
            if taxonomy[i].level == BROAD:
                out.extend(f.interest_id for f in fine if f.parent == i)
            else:
                out.append(i)
        return tuple(dict.fromkeys(out))

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
            f"{text!r} names no interest id, label or term, and no encoder was given "
            "to match it as text"
        )
    matcher = matcher or TextMatcher().fit(taxonomy, encode)
    tagged, how = matcher.match(taxonomy, encode([text]), top=top, min_score=min_score)
    if not tagged:
        raise ValueError(
            f"no interest matches {text!r}: it is no closer to any item or term than "
            "random strings are"
        )
    return ResolvedQuery(tuple(i for i, _ in tagged), how)


def audience(
    profiler: InterestProfiler,
    query: str | int,
    *,
    min_weight: float = 0.05,
    encode: EncodeFn | None = None,
    matcher: TextMatcher | None = None,
) -> pd.DataFrame:
    """Users whose long-term profile gives the queried interests at least ``min_weight``.

    Returns
    -------
    pandas.DataFrame
        Columns ``user_id``, ``weight`` (summed share of the matched interests) and
        ``interests`` (their labels), heaviest first. ``frame.attrs["how"]`` says how the
        query was read.

    Raises
    ------
    ValueError
        As :func:`resolve_interests`: an empty query, or one that names no interest.
    """
    tax = profiler.taxonomy
    resolved = resolve_interests(tax, query, encode, matcher=matcher)
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
