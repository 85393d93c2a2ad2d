"""Interest taxonomy: items clustered into broad and fine interests with readable labels.

Items are placed by what they say and by who engages with them: the language-model
embedding of an item's text joined with a truncated SVD of the item x user matrix. On
catalogues with short item text the two together beat either alone (ANCHORS.md: genre
purity 0.52 from text, 0.57 from behaviour). Fine interests are spherical k-means
clusters of those vectors; broad interests group the fine ones. Each interest is
labelled with the terms (categories and user tags) that distinguish its members,
scored with class-based TF-IDF (Grootendorst, "BERTopic", 2022), falling back to title
words only where members carry neither.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

BROAD, FINE = 0, 1
_WORD = re.compile(r"[a-z][a-z'\-]+")


@dataclass(frozen=True)
class Interest:
    """One interest of the taxonomy.

    Attributes
    ----------
    interest_id
        Stable id: a refit keeps it for a cluster whose members largely stay.
    level
        0 for a broad interest, 1 for a fine one.
    label
        Readable label, e.g. ``"animation · pixar · family"``.
    terms
        The distinguishing terms behind the label, best first.
    parent
        For a fine interest, the id of its broad interest.
    size
        Number of items whose closest interest at this level it is.
    """

    interest_id: int
    level: int
    label: str
    terms: tuple[str, ...]
    parent: int | None
    size: int


def _normalise(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n == 0, 1.0, n)


def default_sizes(n_items: int) -> tuple[int, int]:
    """Numbers of fine and broad interests for a catalogue of ``n_items``.

    Fine interests grow with the square root of the catalogue (about 100 for 10,000
    items); broad interests with the square root of the fine ones.

    Examples
    --------
    >>> default_sizes(9742), default_sizes(100)
    ((99, 15), (10, 5))
    """
    n_fine = int(np.clip(round(math.sqrt(n_items)), 2, 400))
    n_fine = min(n_fine, max(n_items, 1))
    n_broad = int(np.clip(round(1.5 * math.sqrt(n_fine)), 2, 40))
    return n_fine, min(n_broad, n_fine)


def behaviour_vectors(item_user: sp.spmatrix, dims: int = 64, random_state: int = 0) -> np.ndarray:
    """Item vectors from co-engagement: truncated SVD of the L2-normalised item x user matrix.

    Items without any engagement get a zero vector.
    """
    from sklearn.decomposition import TruncatedSVD

    m = sp.csr_matrix(item_user, dtype=np.float64)
    m.data = np.abs(m.data)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    m = sp.diags(1.0 / np.where(norms == 0, 1.0, norms)) @ m
    k = max(1, min(dims, min(m.shape) - 1))
    if min(m.shape) < 2 or m.nnz == 0:
        return np.zeros((m.shape[0], k))
    vecs = TruncatedSVD(n_components=k, random_state=random_state).fit_transform(m)
    return _normalise(vecs)


def label_terms(
    items: pd.DataFrame, events: pd.DataFrame | None = None, *, bookkeeping_items: int = 10
) -> list[list[str]]:
    """Label terms per item: its categories and tags, and the tags users gave it.

    Terms are case-folded. A tag that a single user applied to more than
    ``bookkeeping_items`` items ("in netflix queue") is that user's bookkeeping, not a
    description, and is left out.

    Examples
    --------
    >>> items = pd.DataFrame({"item_id": ["1"], "categories": [["Animation"]], "tags": [[]]})
    >>> ev = pd.DataFrame({"user_id": ["u"], "item_id": ["1"], "type": ["tag"], "text": ["Pixar"]})
    >>> label_terms(items, ev)
    [['animation', 'pixar']]
    """
    user_tags: dict[str, list[str]] = {}
    if events is not None and len(events):
        tags = events[
            (events["type"] == "tag") & events["text"].notna() & events["item_id"].notna()
        ]
        term = tags["text"].astype(str).str.strip().str.lower()
        tags = tags.assign(term=term)[term != ""]
        usage = tags.groupby("term").agg(users=("user_id", "nunique"), items=("item_id", "nunique"))
        personal = set(usage.index[(usage["users"] == 1) & (usage["items"] > bookkeeping_items)])
        tags = tags[~tags["term"].isin(personal)]
        user_tags = (
            tags.groupby("item_id", sort=False)["term"]
            .agg(lambda s: list(dict.fromkeys(s)))
            .to_dict()
        )
    out = []
    for iid, cats, own in zip(items["item_id"], items["categories"], items["tags"], strict=True):
        terms = [str(c).strip().lower() for c in [*cats, *own] if str(c).strip()]
        out.append(list(dict.fromkeys([*terms, *user_tags.get(iid, [])])))
    return out


def _title_words(title: str) -> list[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return [w for w in _WORD.findall(title.lower()) if len(w) > 2 and w not in ENGLISH_STOP_WORDS]


def _group_counts(
    groups: np.ndarray, n_groups: int, words: Sequence[Sequence[str]]
) -> list[Counter[str]]:
    """Per group, the number of its items holding each word."""
    per_group: list[Counter[str]] = [Counter() for _ in range(n_groups)]
    for g, item_words in zip(groups, words, strict=True):
        per_group[g].update(set(item_words))
    return per_group


def _overlaps(term: str, chosen: Sequence[str]) -> bool:
    return any(term in c or c in term for c in chosen)


def _ctfidf_labels(
    groups: np.ndarray,
    n_groups: int,
    terms: Sequence[Sequence[str]],
    titles: Sequence[str],
    top: int,
    relative_floor: float = 0.4,
    min_share: float = 0.05,
) -> tuple[list[tuple[str, ...]], list[Counter[str]]]:
    """Best distinguishing terms per group; title words only for groups with no terms.

    Class-based TF-IDF as in BERTopic: a term's share of the group's items times
    ``log(1 + A / f)``, with ``f`` its frequency over all groups and ``A`` the average
    number of term occurrences per group. Terms scoring under ``relative_floor`` times
    the group's best term are left out of its label, and so are terms held by fewer
    than ``min_share`` of the group's items (a rare tag is not what a group is about).

    Returns the labels and, per group, the counts of the words its label was drawn from
    (terms, or title words for groups labelled by titles), for :func:`_distinct_labels`.
    """
    sizes = np.bincount(groups, minlength=n_groups)
    counts = {
        "terms": _group_counts(groups, n_groups, terms),
        "titles": _group_counts(groups, n_groups, [_title_words(t) for t in titles]),
    }
    out: dict[str, list[tuple[str, ...]]] = {}
    for source, per_group in counts.items():
        total: Counter[str] = Counter()
        for c in per_group:
            total.update(c)
        avg = sum(total.values()) / max(n_groups, 1)
        labels = []
        for g, group_counts in enumerate(per_group):
            min_support = max(2, math.ceil(min_share * sizes[g])) if sizes[g] >= 6 else 1
            scored = sorted(
                (-(cnt / max(sizes[g], 1)) * math.log(1 + avg / total[t]), t)
                for t, cnt in group_counts.items()
                if cnt >= min_support
            )
            chosen: list[str] = []
            for score, t in scored:
                if score > relative_floor * scored[0][0]:  # scores are negated
                    break
                if _overlaps(t, chosen):
                    continue
                chosen.append(t)
                if len(chosen) == top:
                    break
            labels.append(tuple(chosen))
        out[source] = labels
    labels, sources = [], []
    for g in range(n_groups):
        by_terms, by_titles = out["terms"][g], out["titles"][g]
        labels.append(by_terms or by_titles or ("misc",))
        sources.append(counts["titles"][g] if not by_terms and by_titles else counts["terms"][g])
    return labels, sources


def _distinct_labels(
    labels: Sequence[tuple[str, ...]],
    counts: Sequence[Counter[str]],
    sizes: np.ndarray,
    parents: Sequence[str | None] | None = None,
    reserved: frozenset[str] = frozenset(),
    same_as_parent: Sequence[bool] | None = None,
    max_rounds: int = 4,
) -> tuple[list[str], list[tuple[str, ...]]]:
    """Labels made distinct from each other and from ``reserved``, and the terms behind them.

    Two labels clash when they hold the same terms in any order ("comedy · romance"
    and "romance · comedy"). Each group of a clash gets the term that most sets it apart
    from the other groups of the clash: the term's share ``p`` of the group's items
    against its share ``q`` of theirs, scored ``p * log(p / q)`` (its part in the
    divergence of the two term distributions), so a term all of them share scores about
    0 and only a term over-represented in the group (score above 0, held by at least two
    items) is added. A group with no such term keeps its label, which is then its own as
    soon as the others have moved. This repeats while labels clash; a group still
    clashing when no term separates it gets its parent's label in brackets, and only
    then a number. A label alone in clashing with a ``reserved`` one is set apart from
    every other group, unless ``same_as_parent`` marks the group as its parent's only
    child (the same items at both levels) and the reserved label is its parent's.

    Returns the label texts and each label's terms.

    Examples
    --------
    >>> counts = [Counter(comedy=9, romance=6), Counter(comedy=8, crime=5), Counter(war=7)]
    >>> _distinct_labels([("comedy",), ("comedy",), ("war",)], counts, np.array([9, 8, 7]))[0]
    ['comedy · romance', 'comedy · crime', 'war']
    """
    out = [list(lab) for lab in labels]
    taken = {frozenset(r.split(" · ")) for r in reserved}
    parent_terms = [
        frozenset(p.split(" · "))
        if p and same_as_parent is not None and same_as_parent[g]
        else None
        for g, p in enumerate(parents or [None] * len(out))
    ]

    def reserved_clash(g: int, key: frozenset[str]) -> bool:
        return key in taken and key != parent_terms[g]

    def clashes() -> list[list[int]]:
        by_terms: dict[frozenset[str], list[int]] = {}
        for g, lab in enumerate(out):
            by_terms.setdefault(frozenset(lab), []).append(g)
        return [gs for key, gs in by_terms.items() if len(gs) > 1 or reserved_clash(gs[0], key)]

    for _ in range(max_rounds):
        todo = clashes()
        if not todo:
            break
        picks: dict[int, str] = {}
        for gs in todo:
            for g in gs:
                others = [h for h in gs if h != g] or [h for h in range(len(out)) if h != g]
                theirs: Counter[str] = Counter()
                for h in others:
                    theirs.update(counts[h])
                their_size = max(sum(int(sizes[h]) for h in others), 1)
                own = [] if out[g] == ["misc"] else out[g]
                best = None
                for t, cnt in counts[g].items():
                    if cnt < 2 or _overlaps(t, own):
                        continue
                    p = cnt / max(int(sizes[g]), 1)
                    q = (theirs[t] + 0.5) / their_size
                    score = p * math.log(p / q)
                    if score > 0 and (best is None or (score, t) > best):
                        best = (score, t)
                if best is not None:
                    picks[g] = best[1]
        if not picks:
            break
        for g, t in picks.items():
            out[g] = [t] if out[g] == ["misc"] else [*out[g], t]
    suffix = [""] * len(out)
    for gs in clashes():
        for g in gs:
            parent = parents[g] if parents is not None else None
            if parent and frozenset(parent.split(" · ")) != frozenset(out[g]):
                suffix[g] = f" ({parent})"
    still: dict[tuple[frozenset[str], str], list[int]] = {}
    for g, lab in enumerate(out):
        still.setdefault((frozenset(lab), suffix[g]), []).append(g)
    for (key, end), gs in still.items():
        if len(gs) > 1 or (not end and reserved_clash(gs[0], key)):
            for n, g in enumerate(gs, 1):
                suffix[g] += f" ({n})"
    return [" · ".join(lab) + suffix[g] for g, lab in enumerate(out)], [tuple(x) for x in out]


def _match_ids(
    new_groups: list[set[str]], old_groups: list[set[str]], old_ids: list[int], min_jaccard: float
) -> list[int | None]:
    """Old id for each new group whose members overlap an old group's enough (Hungarian)."""
    if not new_groups or not old_groups:
        return [None] * len(new_groups)
    from scipy.optimize import linear_sum_assignment

    jac = np.zeros((len(new_groups), len(old_groups)))
    for i, a in enumerate(new_groups):
        for j, b in enumerate(old_groups):
            inter = len(a & b)
            if inter:
                jac[i, j] = inter / len(a | b)
    rows, cols = linear_sum_assignment(-jac)
    out: list[int | None] = [None] * len(new_groups)
    for r, c in zip(rows, cols, strict=True):
        if jac[r, c] >= min_jaccard:
            out[r] = old_ids[c]
    return out


class InterestTaxonomy:
    """Two-level interest taxonomy over a catalogue.

    Parameters
    ----------
    n_fine, n_broad
        Numbers of fine and broad interests; by default they scale with the catalogue
        (:func:`default_sizes`).
    text_weight
        Share of the text embedding in the joint item vector (the rest is behaviour).
    svd_dims
        Dimensions of the behaviour vectors.
    soft_top, temperature, min_membership
        Soft membership: an item belongs to up to ``soft_top`` fine interests, weighted
        by a softmax of its cosine to each centroid at ``temperature``; weights below
        ``min_membership`` are dropped and the rest renormalised.
    label_terms
        Terms in each label.
    random_state
        Seed of the clustering.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> centres = np.eye(4)
    >>> vecs = np.repeat(centres, 10, axis=0) + 0.05 * rng.normal(size=(40, 4))
    >>> terms = [["space"]] * 10 + [["horse", "west"]] * 10 + [["love"]] * 10 + [["war"]] * 10
    >>> tax = InterestTaxonomy(n_fine=4, n_broad=2).fit([str(i) for i in range(40)], vecs, terms=terms)
    >>> sorted(i.label for i in tax.fine())
    ['horse · west', 'love', 'space', 'war']
    """

    def __init__(
        self,
        n_fine: int | None = None,
        n_broad: int | None = None,
        *,
        text_weight: float = 0.5,
        svd_dims: int = 64,
        soft_top: int = 3,
        temperature: float = 0.05,
        min_membership: float = 0.15,
        label_terms: int = 3,
        random_state: int = 0,
    ) -> None:
        self.n_fine = n_fine
        self.n_broad = n_broad
        self.text_weight = text_weight
        self.svd_dims = svd_dims
        self.soft_top = soft_top
        self.temperature = temperature
        self.min_membership = min_membership
        self.label_terms = label_terms
        self.random_state = random_state

    # ----- fitting ------------------------------------------------------------
    def item_vectors(
        self, text: np.ndarray, behaviour: np.ndarray | None, engagement: np.ndarray | None
    ) -> np.ndarray:
        """Joint item vectors: text and behaviour parts, behaviour trusted by engagement count."""
        t = _normalise(np.asarray(text, dtype=np.float64))
        if behaviour is None:
            return t
        b = _normalise(np.asarray(behaviour, dtype=np.float64))
        conf = np.ones(len(b)) if engagement is None else engagement / (engagement + 5.0)
        joint = np.hstack(
            [math.sqrt(self.text_weight) * t, math.sqrt(1 - self.text_weight) * b * conf[:, None]]
        )
        return _normalise(joint)

    def fit(
        self,
        item_ids: Sequence[str],
        text_vectors: np.ndarray,
        *,
        item_user: sp.spmatrix | None = None,
        terms: Sequence[Sequence[str]] | None = None,
        titles: Sequence[str] | None = None,
        previous: InterestTaxonomy | None = None,
    ) -> InterestTaxonomy:
        """Cluster the catalogue into interests.

        Parameters
        ----------
        item_ids
            Ids of the items, one per row of ``text_vectors``.
        text_vectors
            Language-model embeddings of the items' text.
        item_user
            Item x user engagement matrix (rows aligned with ``item_ids``); adds the
            behaviour part of the item vectors.
        terms
            Label terms per item (its categories and the tags users gave it).
        titles
            Item titles, for labels of interests whose members carry no terms.
        previous
            An earlier fit: interests whose members largely match keep their ids.
        """
        from sklearn.cluster import KMeans, MiniBatchKMeans

        n = len(item_ids)
        if n == 0:
            raise ValueError("cannot build interests from an empty catalogue")
        text = np.asarray(text_vectors, dtype=np.float64)
        if text.shape[0] != n:
            raise ValueError(f"{text.shape[0]} text vectors for {n} items")
        terms = [list(t) for t in terms] if terms is not None else [[] for _ in range(n)]
        titles = list(titles) if titles is not None else [""] * n
        n_fine, n_broad = default_sizes(n)
        n_fine = min(self.n_fine or n_fine, n)
        n_broad = min(self.n_broad or n_broad, n_fine)

        behaviour = engagement = None
        if item_user is not None:
            iu = sp.csr_matrix(item_user)
            engagement = np.diff(iu.indptr).astype(np.float64)
            behaviour = behaviour_vectors(iu, self.svd_dims, self.random_state)
        vecs = self.item_vectors(text, behaviour, engagement)

        km_cls = MiniBatchKMeans if n > 50_000 else KMeans
        km = km_cls(n_clusters=n_fine, n_init=3, random_state=self.random_state).fit(vecs)
        fine_of = km.labels_
        centroids = _normalise(km.cluster_centers_)
        sizes = np.bincount(fine_of, minlength=n_fine)
        broad_km = KMeans(n_clusters=n_broad, n_init=5, random_state=self.random_state).fit(
            centroids, sample_weight=np.maximum(sizes, 1)
        )
        broad_of_fine = broad_km.labels_
        broad_of_item = broad_of_fine[fine_of]

        broad_sizes = np.bincount(broad_of_item, minlength=n_broad)
        broad_labels, broad_terms = _distinct_labels(
            *_ctfidf_labels(broad_of_item, n_broad, terms, titles, self.label_terms),
            broad_sizes,
        )
        fine_labels, fine_terms = _distinct_labels(
            *_ctfidf_labels(fine_of, n_fine, terms, titles, self.label_terms),
            sizes,
            parents=[broad_labels[b] for b in broad_of_fine],
            reserved=frozenset(broad_labels),
            same_as_parent=[np.sum(broad_of_fine == b) == 1 for b in broad_of_fine],
        )

        ids = [str(i) for i in item_ids]
        fine_members = [set() for _ in range(n_fine)]
        broad_members = [set() for _ in range(n_broad)]
        for i, (f, b) in enumerate(zip(fine_of, broad_of_item, strict=True)):
            fine_members[f].add(ids[i])
            broad_members[b].add(ids[i])
        next_id = 0
        old_fine = old_broad = None
        if previous is not None:
            next_id = previous.next_id_
            old_fine = (
                [previous.members(i.interest_id) for i in previous.fine()],
                [i.interest_id for i in previous.fine()],
            )
            old_broad = (
                [previous.members(i.interest_id) for i in previous.broad()],
                [i.interest_id for i in previous.broad()],
            )

        def assign(
            groups: list[set[str]], old: tuple[list[set[str]], list[int]] | None
        ) -> list[int]:
            nonlocal next_id
            matched = _match_ids(groups, *old, min_jaccard=0.3) if old else [None] * len(groups)
            out = []
            for m in matched:
                if m is None:
                    m = next_id
                    next_id += 1
                out.append(m)
            return out

        broad_ids = assign(broad_members, old_broad)
        fine_ids = assign(fine_members, old_fine)
        self.next_id_ = max([next_id, *broad_ids, *fine_ids]) + 1

        interests = [
            Interest(
                broad_ids[b],
                BROAD,
                broad_labels[b],
                broad_terms[b],
                None,
                int(broad_sizes[b]),
            )
            for b in range(n_broad)
        ] + [
            Interest(
                fine_ids[f],
                FINE,
                fine_labels[f],
                fine_terms[f],
                broad_ids[broad_of_fine[f]],
                int(sizes[f]),
            )
            for f in range(n_fine)
        ]
        self.interests_ = {i.interest_id: i for i in interests}
        self.item_ids_ = np.asarray(ids, dtype=object)
        self._item_pos = {iid: k for k, iid in enumerate(ids)}
        self.fine_ids_ = np.asarray(fine_ids)
        self.fine_of_item_ = fine_of
        self.centroids_ = centroids
        self.membership_ = self._soft_membership(vecs, centroids, fine_of)
        self.text_vectors_ = _normalise(text).astype(np.float32)
        return self

    def _soft_membership(
        self, vecs: np.ndarray, centroids: np.ndarray, hard: np.ndarray
    ) -> sp.csr_matrix:
        sims = vecs @ centroids.T
        top = min(self.soft_top, centroids.shape[0])
        idx = np.argpartition(-sims, top - 1, axis=1)[:, :top]
        s = np.take_along_axis(sims, idx, axis=1)
        w = np.exp((s - s.max(axis=1, keepdims=True)) / self.temperature)
        w /= w.sum(axis=1, keepdims=True)
        w[w < self.min_membership] = 0.0
        rows = np.arange(len(vecs))
        # the closest centroid by k-means assignment always counts
        hard_pos = idx == hard[:, None]
        w = np.where(hard_pos & (w == 0), self.min_membership, w)
        w /= w.sum(axis=1, keepdims=True)
        m = sp.csr_matrix(
            (w.ravel(), (np.repeat(rows, top), idx.ravel())), shape=(len(vecs), centroids.shape[0])
        )
        m.eliminate_zeros()
        return m

    # ----- reading ------------------------------------------------------------
    def fine(self) -> list[Interest]:
        """Fine interests, in cluster order."""
        return [self.interests_[i] for i in self.fine_ids_]

    def broad(self) -> list[Interest]:
        """Broad interests."""
        return [i for i in self.interests_.values() if i.level == BROAD]

    def __getitem__(self, interest_id: int) -> Interest:
        return self.interests_[interest_id]

    def members(self, interest_id: int) -> set[str]:
        """Item ids whose closest interest (at the interest's level) is ``interest_id``."""
        it = self.interests_[interest_id]
        if it.level == FINE:
            col = int(np.flatnonzero(self.fine_ids_ == interest_id)[0])
            return set(self.item_ids_[self.fine_of_item_ == col])
        cols = [k for k, f in enumerate(self.fine_ids_) if self.interests_[f].parent == interest_id]
        return set(self.item_ids_[np.isin(self.fine_of_item_, cols)])

    def item_interests(self, item_id: str) -> list[tuple[int, float]]:
        """Soft membership of one item: ``[(fine interest id, weight)]``, heaviest first."""
        k = self._item_pos.get(str(item_id))
        if k is None:
            return []
        row = self.membership_.getrow(k)
        pairs = sorted(zip(row.indices, row.data, strict=True), key=lambda p: -p[1])
        return [(int(self.fine_ids_[c]), float(w)) for c, w in pairs]

    def item_rows(self, item_ids: Sequence[str]) -> np.ndarray:
        """Row of each item in :attr:`membership_`; -1 for items the taxonomy has not seen."""
        return np.array([self._item_pos.get(str(i), -1) for i in item_ids], dtype=np.int64)

    def tag_vectors(
        self,
        vectors: np.ndarray,
        top: int = 3,
        min_score: float = 0.1,
        neighbours: int = 20,
        temperature: float = 0.1,
    ) -> list[list[tuple[int, float]]]:
        """Zero-shot tagging: the fine interests a text embedding speaks to.

        The ``neighbours`` items whose text is closest to the query vote with their soft
        membership, each vote weighted by a softmax of its cosine similarity at
        ``temperature``; an interest's score is its share of the votes. Nearest items are sharper than cluster centroids: "space
        opera" lands on the films tagged so, not on whatever cluster holds musicals.

        Parameters
        ----------
        vectors
            Text embeddings (from the same encoder as the catalogue).
        top
            Interests to return per text at most.
        min_score
            Lowest share of the votes that counts.
        neighbours
            Items that vote.
        """
        q = _normalise(np.atleast_2d(np.asarray(vectors, dtype=np.float32)))
        sims = q @ self.text_vectors_.T
        n = min(neighbours, sims.shape[1])
        out = []
        for row in sims:
            near = np.argpartition(-row, n - 1)[:n]
            weights = np.exp((row[near] - row[near].max()) / temperature)
            votes = np.asarray(
                self.membership_[near].multiply(weights[:, None]).sum(axis=0)
            ).ravel()
            total = votes.sum()
            if total <= 0:
                out.append([])
                continue
            share = votes / total
            order = np.argsort(-share)[:top]
            out.append(
                [(int(self.fine_ids_[c]), float(share[c])) for c in order if share[c] >= min_score]
            )
        return out
