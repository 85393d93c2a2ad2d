"""`Engine`: the one facade over every layer, live.

The engine answers from an immutable :class:`~interestlens.engine.snapshot.Snapshot`
(what the last fit produced) plus a :class:`~interestlens.engine.ledger.Ledger` (what
arrived since, per user). Events come in one way, :meth:`Engine.ingest`: validated,
committed to the event store (durable before it returns), then folded into the ledger,
so the user's next profile and recommendation reflect them. :meth:`Engine.refit`
builds the next snapshot aside and swaps one reference, replaying what arrived during
the fit, so readers never wait on a fit and nothing is lost. :meth:`Engine.open` is
the restart: the latest saved snapshot plus every stored event after its watermark.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from interestlens.data import Dataset, Event, Item, User
from interestlens.data.dataset import items_frame
from interestlens.data.validation import LoadReport, Rejection, ValidationOptions
from interestlens.engine.artefact import (
    list_versions,
    prune,
    published_version,
    read_artefact,
    write_artefact,
)
from interestlens.engine.catalogue import AddedItem, Catalogue
from interestlens.engine.config import Config
from interestlens.engine.ledger import Ledger
from interestlens.engine.snapshot import Snapshot, build_snapshot
from interestlens.explore import Policy, build_policy
from interestlens.interests.audience import TextMatcher, resolve_interests
from interestlens.interests.audience import audience as _audience
from interestlens.interests.profile import InterestProfile, UserState
from interestlens.interests.sentiment import SentimentAnalyzer
from interestlens.interests.taxonomy import Interest
from interestlens.models import Recommender
from interestlens.store import EventStore, open_store
from interestlens.text import Encoder, compose_item_text

log = logging.getLogger(__name__)


#: How many of a user's latest events an explanation draws its "like ..." items from.
REASON_HISTORY = 200


class NotFittedError(RuntimeError):
    """The engine was asked something before :meth:`Engine.fit`."""


@dataclass(frozen=True)
class Recommendation:
    """One recommended item.

    Attributes
    ----------
    item_id, score, rank
        The item, the ranker's score and its 1-based position. The score is NaN for an
        item exploration drew from beyond the ranker's top candidates (``explored`` is
        then true), where the ranker gives only an order (:attr:`Slate.scores
        <interestlens.explore.Slate>`); :meth:`to_dict` gives it as ``None``.
    reason
        Why (with ``explain=True``): the interest it serves and the history behind it.
    explored
        Whether exploration, not the model's ranking, put it here.
    propensity
        Probability with which the serving policy chose this item at this position, in
        (0, 1]; an item epsilon-greedy drew uniformly from a whole catalogue has about
        ``explore / n_items`` (5e-5 on ml-latest-small at 0.5), so print it with
        significant digits (``f"{p:.3g}"``), not fixed ones.
    request_id
        The slate's id (the same for every item of one call of :meth:`Engine.recommend`),
        under which :meth:`Engine.feedback` takes rewards.
    """

    item_id: str
    score: float
    rank: int
    reason: str
    explored: bool
    propensity: float
    request_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (a NaN score, which JSON lacks, becomes ``None``)."""
        doc = asdict(self)
        if math.isnan(self.score):
            doc["score"] = None
        return doc


@dataclass
class IngestReport:
    """What :meth:`Engine.ingest` did with each event.

    Attributes
    ----------
    stored
        Events newly committed to the store (and folded into the live engine).
    duplicates
        Valid events whose ``event_id`` the store already held (idempotent re-sends).
    rejections
        One :class:`~interestlens.data.validation.Rejection` (row, reason) per refused event.
    source
        Where the events came from.
    """

    stored: int = 0
    duplicates: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    source: str = ""

    @property
    def rejected(self) -> int:
        """Number of refused events."""
        return len(self.rejections)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form with DESIGN.md's keys."""
        return {
            "source": self.source,
            "stored": self.stored,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "rejections": [r.to_dict() for r in self.rejections],
        }


@dataclass(frozen=True)
class ForgetReport:
    """What :meth:`Engine.forget` erased.

    Attributes
    ----------
    user_id
        The user.
    events_deleted
        Their events deleted from the store.
    components
        Per component (store, ledger, profiler, recommender, policies, cache, ...), whether
        it held anything of the user.
    note
        What remains and until when (item-side statistics until the next refit).
    """

    user_id: str
    events_deleted: int
    components: dict[str, bool]
    note: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class _Live:
    """The engine's current view: a snapshot, its ledger, and the policies serving from it."""

    def __init__(
        self, snapshot: Snapshot, ledger: Ledger | None = None, catalogue: Catalogue | None = None
    ) -> None:
        self.snapshot = snapshot
        self.ledger = ledger or Ledger(snapshot)
        self.catalogue = catalogue or Catalogue(snapshot)
        self.policies: dict[str, Policy] = {}
        self.policy_lock = threading.Lock()
        self._same: dict[tuple[int, int], tuple[pd.Index, pd.Index, bool]] = {}

    def same_items(self, a: pd.Index, b: pd.Index) -> bool:
        """Whether item indexes ``a`` and ``b`` hold the same ids in the same order.

        A model's and a policy's indexes are distinct objects of thousands of ids that
        never change once built: the answer is kept per pair of objects.
        """
        if a is b:
            return True
        key = (id(a), id(b))
        held = self._same.get(key)
        if held is None or held[0] is not a or held[1] is not b:
            held = self._same[key] = (a, b, bool(a.equals(b)))
        return held[2]

    def with_snapshot(self, snapshot: Snapshot) -> _Live:
        """The same ledger, items and policies over a snapshot the current one became (a forget)."""
        self.ledger.snapshot = snapshot
        twin = _Live(
            snapshot, self.ledger, Catalogue(snapshot, self.catalogue.added, self.catalogue.removed)
        )
        twin.policies, twin.policy_lock = self.policies, self.policy_lock
        return twin

    def with_ledger(self, ledger: Ledger) -> _Live:
        """The same snapshot, items and policies with ``ledger``."""
        twin = _Live(self.snapshot, ledger, self.catalogue)
        twin.policies, twin.policy_lock = self.policies, self.policy_lock
        return twin

    def with_catalogue(self, catalogue: Catalogue) -> _Live:
        """The same snapshot, ledger and policies with ``catalogue``."""
        twin = _Live(self.snapshot, self.ledger, catalogue)
        twin.policies, twin.policy_lock = self.policies, self.policy_lock
        return twin

    def user_events(self, user_id: str) -> pd.DataFrame:
        entry = self.ledger.entry(user_id)
        return entry.events if entry is not None else self.snapshot.user_events(user_id)

    def user_state(self, user_id: str) -> UserState | None:
        entry = self.ledger.entry(user_id)
        return entry.state if entry is not None else self.snapshot.profiler.user_state(user_id)


class Engine:
    """The user-interest engine.

    Parameters
    ----------
    config
        :class:`Config`; the defaults work.
    encoder, sentiment
        Components to share with other engines (by default built from the config on
        first use).

    Examples
    --------
    >>> from interestlens import Engine, datasets
    >>> engine = Engine().fit(datasets.load("ml-latest-small"))     # doctest: +SKIP
    >>> [i.label for i in engine.profile("42").interests[:2]]       # doctest: +SKIP
    ['...', '...']
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        encoder: Encoder | None = None,
        sentiment: SentimentAnalyzer | None = None,
    ) -> None:
        self.config = config or Config()
        self._live: _Live | None = None
        self._write = threading.RLock()  # writers: ingest, forget, the swap of a fit
        self._fitting = threading.Lock()  # one fit at a time
        self._opening = threading.Lock()  # the store is opened once
        # saving and forgetting: a forget erases in place what a save pickles, so the two
        # exclude each other, while ingests (a new ledger, never the snapshot) go on
        self._persist = threading.RLock()
        self._encoder = encoder
        self._sentiment = sentiment
        self._store: EventStore | None = None
        self._forgotten_during_fit: set[str] | None = None
        self._version: str | None = None  # the saved version answering (None: fitted here)
        # item revisions of the store (see EventStore.items_since): every item put up to
        # _fit_items is in the snapshot's fit; up to _items, in the catalogue too
        self._fit_items = 0
        self._items = 0
        self._erasures = 0  # the store's count of erasures this engine's ledger reflects
        self._reloading = threading.Lock()  # one reload at a time

    @classmethod
    def from_config(cls, path: str | Path | None = None) -> Engine:
        """An engine configured from a TOML file (``None``: defaults)."""
        return cls(Config.from_toml(path) if path else Config())

    @classmethod
    def open(cls, data_dir: str | Path | None = None, *, config: Config | None = None) -> Engine:
        """Reopen an engine: the latest snapshot saved in ``data_dir`` plus every stored event since.

        Without a saved snapshot the engine is unfitted but bound to the data dir's
        store: :meth:`ingest` works, questions raise :class:`NotFittedError`.

        Parameters
        ----------
        data_dir
            The folder :meth:`save` and the CLI use (default ``config.data_dir``).
        config
            Settings to use instead of the saved ones (its ``data_dir`` is replaced).
        """
        data_dir = Path(data_dir if data_dir is not None else (config or Config()).data_dir)
        root = data_dir / "engine"
        if not list_versions(root):
            if (root / "engine.pkl").exists():
                log.warning(
                    "%s was saved by an older interestlens and is not read: run `interestlens fit`",
                    root / "engine.pkl",
                )
            return cls(replace(config or Config(), data_dir=data_dir))
        doc, manifest = read_artefact(root)
        engine = cls(replace(config or doc["config"], data_dir=data_dir))
        engine._install_saved(doc["snapshot"], manifest)
        return engine

    def _install_saved(self, snapshot: Snapshot, manifest: Mapping[str, Any]) -> None:
        """Make a snapshot read from disk live, with this engine's encoder (one per engine)."""
        snapshot.profiler.attach(self.encoder.encode, self.sentiment)
        for model in (snapshot.recommender, snapshot.content):
            if model is not None:
                model.attach_encoder(self.encoder)
        with self._write:
            self._install(snapshot, manifest["meta"].get("item_watermark", 0))
            self._version = manifest["version"]
            self._fold_items()

    # ----- following other processes ----------------------------------------------
    @property
    def version(self) -> str | None:
        """The saved version answering (e.g. ``"v000003"``), ``None`` for a fit not saved yet."""
        return self._version

    def published(self) -> str | None:
        """The newest version saved in ``data_dir`` (by any process), ``None`` when none is."""
        return published_version(Path(self.config.data_dir) / "engine")

    def reload(self) -> bool:
        """Swap in the newest saved version when another process published one; ``True`` if it did.

        The version is read and mapped aside while this engine keeps answering, then
        swapped in between requests with every event stored after it. A background refit
        (``interestlens refit``) publishes versions; a server reloads when it sees one.
        Items added here and missing from it stay added; policies start afresh.
        """
        with self._reloading:
            name = self.published()
            if name is None or name == self._version:
                return False
            doc, manifest = read_artefact(Path(self.config.data_dir) / "engine")
            self._install_saved(doc["snapshot"], manifest)
            return True

    def catch_up(self) -> bool:
        """Take in what other processes stored since this engine last looked; whether there was any.

        Their events are folded in, and the items they put (:meth:`add_item`) are
        embedded and made live here too. One query when there is nothing new. Servers
        with several workers (or hosts) over one store call it before each answer, so
        what any of them took counts in the next answer of every one.
        """
        if self._live is None:
            return False
        events, items, erasures = self.slate_store.watermarks()
        if erasures != self._erasures:
            self._erased_elsewhere()
        elif events <= self._folded() and items <= self._items:
            return False
        with self._write:
            self._fold_since(self._folded())
            self._fold_items()
        return True

    def _erased_elsewhere(self) -> None:
        """Another process erased users: drop them here too.

        The erasing process rewrote the saved version when its snapshot held them: swap
        that in. Either way the ledger is rebuilt from the store (which no longer holds
        their events), and the users it loses are forgotten by the policies.
        """
        if self._version is not None and self.reload():
            return
        with self._write:
            live = self._view()
            erasures = self.slate_store.watermarks()[2]  # before reading: a later one reruns
            ledger = Ledger(live.snapshot)
            frame, mark = self.slate_store.events_since(live.snapshot.watermark)
            ledger.add(frame, mark)
            gone = set(live.ledger.users()) - set(ledger.users())
            self._live = live.with_ledger(ledger)
            for user in gone:
                for policy in live.policies.values():
                    policy.forget_user(user)
            self._erasures = erasures

    def _fold_items(self) -> None:
        """Make live every item stored after revision ``_items`` (caller holds the write lock).

        Items already live with the same text are skipped (this engine put them itself).
        """
        live = self._live
        if live is None:
            return
        frame, removed, rev = self.slate_store.items_since(self._items)
        if removed:
            catalogue = live.catalogue
            for item_id in removed:
                catalogue = catalogue.remove(item_id)
            self._live = live = live.with_catalogue(catalogue)
        if len(frame) == 0:
            self._items = rev
            return
        texts = compose_item_text(frame, fields=self.config.item_text_fields)
        rows = []
        for i, item_id in enumerate(frame["item_id"].astype(str)):
            have = live.catalogue.added.get(item_id)
            if not texts.iloc[i].strip():
                continue  # wordless: stored for the next fit, matches nothing now
            if (
                have is not None
                and compose_item_text(have.row, fields=self.config.item_text_fields).iloc[0]
                == texts.iloc[i]
            ):
                continue
            rows.append(i)
        catalogue = live.catalogue
        if rows:
            vectors = self.encoder.encode(texts.iloc[rows].tolist())
            tax = live.snapshot.taxonomy
            tags = tax.tag_vectors(vectors, top=3)
            for j, i in enumerate(rows):
                item_id = str(frame["item_id"].iloc[i])
                added = AddedItem(
                    frame.iloc[[i]].reset_index(drop=True), vectors[j], tuple(tags[j])
                )
                catalogue = catalogue.add(item_id, added)
            self._live = live.with_catalogue(catalogue)
        self._items = rev

    # ----- components ------------------------------------------------------------
    @property
    def encoder(self) -> Encoder:
        """The text encoder (loaded on first use), the one every component of this engine shares."""
        if self._encoder is None:
            self._encoder = Encoder(
                self.config.encoder,
                precision=self.config.precision,  # type: ignore[arg-type]
                cache_dir=self.config.cache_dir
                or os.environ.get("INTERESTLENS_CACHE_DIR")
                or Path(self.config.data_dir) / "cache",
            )
        return self._encoder

    @property
    def sentiment(self) -> SentimentAnalyzer:
        """The sentiment analyser for user texts."""
        if self._sentiment is None:
            self._sentiment = SentimentAnalyzer(self.config.sentiment, encoder=self.encoder)  # type: ignore[arg-type]
        return self._sentiment

    @property
    def slate_store(self) -> EventStore:
        """The event store (``config.store_url``, opened on first use): events, items, users, slate log."""
        store = self._store
        if store is None:
            with self._opening:
                if self._store is None:
                    self._store = open_store(self.config.store_url)
                store = self._store
        return store

    def close(self) -> None:
        """Close the store's connection; the next call that needs the store opens it again."""
        with self._opening:
            store, self._store = self._store, None
        if store is not None:
            store.close()

    def _view(self) -> _Live:
        live = self._live
        if live is None:
            raise NotFittedError(
                "the engine is not fitted: run `interestlens fit` or Engine.fit(dataset)"
            )
        return live

    @property
    def fitted(self) -> bool:
        """Whether the engine holds a snapshot to answer from."""
        return self._live is not None

    @property
    def snapshot(self) -> Snapshot:
        """The snapshot answering now (raises :class:`NotFittedError` before a fit)."""
        return self._view().snapshot

    @property
    def dataset(self) -> Dataset:
        """The dataset the current snapshot was fitted on."""
        return self._view().snapshot.dataset

    @property
    def recommender(self) -> Recommender | None:
        """The fitted recommender (``None`` with ``recommender="none"``)."""
        return self._view().snapshot.recommender

    def info(self) -> dict[str, Any]:
        """What the engine holds: snapshot generation, watermark and age, sizes, the ledger, the store's events."""
        live = self._live
        out: dict[str, Any] = {
            "fitted": live is not None,
            "store": self.config.store_url,
            "store_events": self.slate_store.count(),
        }
        if live is not None:
            snap, ledger = live.snapshot, live.ledger
            out.update(
                generation=snap.generation,
                watermark=snap.watermark,
                created=snap.created,
                n_users=snap.dataset.n_users,
                n_items=len(snap.item_ids),
                n_events=len(snap.dataset.events),
                ledger_users=ledger.n_users,
                ledger_events=ledger.n_events,
            )
        return out

    def warm(self) -> Engine:
        """Load now what the first requests would otherwise wait for; returns the engine.

        The configured exploration policy (fitted on first use), the recommender's lazily
        built parts (SASRec's torch network: about a second) and the text encoder (seconds;
        the first fold-in of a user who wrote something loads it). A server calls this
        before it takes requests; a one-off question does not need to. An unfitted engine
        has nothing to warm.
        """
        live = self._live
        if live is None or live.snapshot.recommender is None:
            return self
        self._policy(live, None)
        live.snapshot.recommender.warm()
        self.encoder.dim  # noqa: B018 (loads the model)
        return self

    # ----- fitting ---------------------------------------------------------------
    def fit(self, dataset: Dataset | None = None) -> Engine:
        """Fit a new snapshot on ``dataset`` (``None``: everything in the store) and swap it in.

        Item embeddings, the interest taxonomy, every user's profile and the recommenders
        are learnt aside while the current snapshot keeps answering; events ingested
        meanwhile are replayed from the store into the new one. The events the store held
        when the fit began count as part of ``dataset``: they are not replayed.
        """
        store = self.slate_store
        with self._fitting:
            with self._write:
                previous = self._live.snapshot if self._live is not None else None
                mark, items, _ = store.watermarks()
                if dataset is None:
                    dataset = store.to_dataset()
                self._forgotten_during_fit = set()
            return self._fit_and_swap(dataset, previous, mark, items)

    def refit(self) -> Engine:
        """Fit again on everything the engine holds (the snapshot's events and those since).

        Builds the next snapshot aside, then swaps it in, replaying what arrived during
        the fit: nothing ingested is lost and readers never wait. Users forgotten during
        the fit are forgotten in the new snapshot too. Items put into the store by any
        process (:meth:`add_item`) are fitted with their stored text.
        """
        with self._fitting:
            with self._write:
                live = self._view()
                snap = live.snapshot
                since = live.ledger.events()
                mark = live.ledger.watermark or snap.watermark
                items = self.slate_store.watermarks()[1]
                ds = snap.dataset
                events = (
                    ds.events if since is None else pd.concat([ds.events, since], ignore_index=True)
                )
                ds = Dataset(events, self._catalogue_items(live), ds.users, name=ds.name)
                self._forgotten_during_fit = set()
            return self._fit_and_swap(ds, snap, mark, items)

    def _catalogue_items(self, live: _Live) -> pd.DataFrame:
        """Every item: the catalogue's, replaced by the store's rows (items put by any process)."""
        items = live.catalogue.items_frame()
        stored = self.slate_store.items()
        if len(stored) == 0:
            return items
        kept = items[~items["item_id"].isin(stored["item_id"])]
        return pd.concat([kept, stored], ignore_index=True) if len(kept) else stored

    def _fit_and_swap(
        self, dataset: Dataset, previous: Snapshot | None, mark: int, items: int
    ) -> Engine:
        try:
            snapshot = build_snapshot(
                dataset,
                self.config,
                self.encoder,
                self.sentiment,
                previous=previous,
                watermark=mark,
            )
            with self._write:
                for user in sorted(self._forgotten_during_fit or ()):
                    snapshot, _ = snapshot.forget_user(user)
                self._install(snapshot, items)
        finally:
            self._forgotten_during_fit = None
        return self

    def _install(self, snapshot: Snapshot, items: int) -> None:
        """Make ``snapshot`` live with every stored event after its watermark (caller holds the write lock).

        ``items`` is the store's item revision its fit began at. Items added online that
        the snapshot lacks (added during its fit) stay added.
        """
        old = self._live.catalogue.added if self._live is not None else {}
        pending = {i: a for i, a in old.items() if snapshot.item_ids.get_indexer([i])[0] < 0}
        removed = frozenset(self.slate_store.removed_items())
        live = _Live(snapshot, catalogue=Catalogue(snapshot, pending, removed))
        self._erasures = self.slate_store.watermarks()[2]  # before reading the events
        frame, mark = self.slate_store.events_since(snapshot.watermark)
        live.ledger.add(frame, mark)
        if snapshot.recommender is not None:
            self._policy(live, None)  # the default policy is ready before the first request
        self._live = live
        self._fit_items = items
        self._items = items  # what was put since its fit begins is folded in again

    # ----- events ----------------------------------------------------------------
    def ingest(
        self,
        source: str | Path | Event | Iterable[Event | Mapping[str, Any]] | pd.DataFrame | Dataset,
        *,
        mapping: Mapping[str, str] | None = None,
        options: ValidationOptions | None = None,
        fmt: str | None = None,
        progress: bool | None = None,
    ) -> IngestReport:
        """Take events: validate, commit to the store (durable before this returns), fold in.

        The one way in for events. Once it returns, the user's profile and
        recommendations reflect them. Bad events are refused one by one, with their row
        and reason, and the rest are taken; re-sent events (same ``event_id``) count as
        duplicates and are taken once.

        Parameters
        ----------
        source
            An event file (CSV, TSV, Parquet, JSONL, JSON; read in chunks), or
            :class:`~interestlens.data.Event` objects, dicts, an events frame, or a
            :class:`~interestlens.data.Dataset` (taken as validated).
        mapping, options, fmt, progress
            For files: column mapping, validation options, format, progress bar.

        Examples
        --------
        >>> import tempfile
        >>> from interestlens import Engine
        >>> from interestlens.engine import Config
        >>> from interestlens.data import Event
        >>> engine = Engine(Config(data_dir=tempfile.mkdtemp()))
        >>> report = engine.ingest([Event("42", "318", "click"), {"user_id": "42", "type": "like"}])
        >>> report.stored, [r.reason[:25] for r in report.rejections]
        (1, ["unknown event type 'like'"])
        """
        store = self.slate_store
        if isinstance(source, (str, Path)):
            with self._write:
                mark = self._folded()
                loaded: LoadReport = store.ingest(
                    source, mapping=mapping, options=options, fmt=fmt, progress=progress
                )
                self._fold_since(mark)
            return IngestReport(loaded.loaded, loaded.duplicates, loaded.rejections, str(source))
        if isinstance(source, Dataset):
            frame, rejections, name = source.events, [], source.name
        else:
            records = [source] if isinstance(source, Event) else source
            if isinstance(records, pd.DataFrame):
                records = records.to_dict("records")
            ds = Dataset.from_records(records, options=options, name="events")
            frame, name = ds.events, "events"
            rejections = list(ds.report.rejections) if ds.report is not None else []
        with self._write:
            mark = self._folded()
            result = store.append(frame) if len(frame) else None
            if result is not None and self._stored_as_sent(frame, result.stored, mark):
                self._live.ledger.add(frame.reset_index(drop=True), mark + len(frame))  # type: ignore[union-attr]
            else:
                self._fold_since(mark)
        if result is None:
            return IngestReport(0, 0, rejections, name)
        return IngestReport(result.stored, result.duplicates, rejections, name)

    def _stored_as_sent(self, frame: pd.DataFrame, stored: int, mark: int) -> bool:
        """Whether the store now holds exactly ``mark`` then ``frame`` (caller holds the write lock).

        Then ``frame`` is folded in as it is, instead of read back from the store (a
        millisecond and more per request): every row was stored (no duplicate) and the
        store's sequence moved by exactly that many, so no other process wrote meanwhile.
        """
        return (
            self._live is not None
            and stored == len(frame)
            and self.slate_store.watermark() == mark + len(frame)
        )

    def _folded(self) -> int:
        live = self._live
        if live is None:
            return 0
        mark = live.ledger.watermark
        return live.snapshot.watermark if mark is None else mark

    def _fold_since(self, mark: int) -> None:
        """Fold every stored event after ``mark`` into the ledger (caller holds the write lock)."""
        live = self._live
        if live is not None:
            frame, new_mark = self.slate_store.events_since(mark)
            live.ledger.add(frame, new_mark)

    def add_items(self, items: Iterable[Item] | pd.DataFrame) -> int:
        """Store items in bulk (insert or replace) for the next fit. Returns how many were written.

        To make one item live at once, use :meth:`add_item`.
        """
        return self.slate_store.upsert_items(items)

    def add_item(self, item: Item | Mapping[str, Any]) -> list[tuple[Interest, float]]:
        """Add (or replace) one item online: stored, embedded once, tagged, recommendable at once.

        Its text is embedded with the engine's encoder and tagged with the fine interests
        it speaks to (:meth:`tag_text`); from then on it is among :meth:`similar_items`,
        and a user who holds one of those interests among their strongest gets it in the
        last slot of a slate (see :meth:`recommend`). The next refit learns it like any
        other item. Returns its interests with their scores (empty before a fit).

        Raises
        ------
        ValueError
            The item is invalid (an unknown field, an empty id), naming the field, or has
            no words to embed (no title, text, categories or tags): it would match nothing.
            :meth:`add_items` stores such items for the next fit.
        """
        if isinstance(item, Mapping):
            known = set(Item.__dataclass_fields__)
            unknown = sorted(set(item) - known)
            if unknown:
                raise ValueError(f"item: unknown fields {unknown}; known: {sorted(known)}")
            item = Item(**item)
        frame = items_frame([item])
        item_id = str(frame["item_id"].iloc[0])
        text = compose_item_text(frame, fields=self.config.item_text_fields)
        if not text.iloc[0].strip():
            raise ValueError(
                f"item {item_id!r}: no title, text, categories or tags to be embedded from"
            )
        self.slate_store.upsert_items(frame)
        live = self._live
        if live is None:
            return []
        vector = self.encoder.encode(text.tolist())[0]
        tax = live.snapshot.taxonomy
        tags = tuple(tax.tag_vectors(vector[None, :], top=3)[0])
        with self._write:
            current = self._view()
            added = AddedItem(frame, vector, tags)
            self._live = current.with_catalogue(current.catalogue.add(item_id, added))
        return [(tax[i], s) for i, s in tags]

    def remove_item(self, item_id: str) -> bool:
        """Take an item out of the catalogue; ``False`` (and nothing done) for an unknown item.

        From then on it is not recommended, not similar to anything, and not fitted on
        by the next refit; users' past events with it stay in their histories (and
        profiles). Every process serving the same store learns of it
        (:meth:`catch_up`). Putting the item again (:meth:`add_item`) brings it back.

        Examples
        --------
        >>> import tempfile
        >>> from interestlens.engine import Config, Engine
        >>> engine = Engine(Config(data_dir=tempfile.mkdtemp()))
        >>> engine.add_item({"item_id": "i1", "title": "A chess set"})
        []
        >>> engine.remove_item("i1"), engine.item("i1"), engine.remove_item("i1")
        (True, None, False)
        """
        item_id = str(item_id)
        if self.item(item_id) is None:
            return False
        self.slate_store.remove_item(item_id)
        with self._write:
            live = self._live
            if live is not None:
                self._live = live.with_catalogue(live.catalogue.remove(item_id))
        return True

    def add_users(self, users: Iterable[User] | pd.DataFrame) -> int:
        """Store users (insert or replace) with their attributes. Returns how many were written."""
        return self.slate_store.upsert_users(users)

    def item(self, item_id: str) -> dict[str, Any] | None:
        """One item's fields as the engine holds it; ``None`` for an unknown item.

        As last stored (added or ingested since the fit, live or waiting for the next
        fit), else as the snapshot was fitted with: ``item_id``, ``title``, ``text``,
        ``categories``, ``tags``, ``attributes``, ``created_at``.
        """
        item_id = str(item_id)
        if self._live is not None and item_id in self._live.catalogue.removed:
            return None
        rows = self.slate_store.items(item_id)
        if not len(rows) and self._live is not None:
            items = self._live.snapshot.dataset.items
            rows = items[items["item_id"] == item_id]
        return rows.iloc[-1].to_dict() if len(rows) else None

    def health(self) -> dict[str, Any]:
        """A cheap liveness answer, for a health check that runs every few seconds.

        Whether the engine is fitted, its snapshot's generation and creation time (``None``
        unfitted), and whether the store answers one small query (:meth:`info` counts
        every stored event instead).
        """
        try:
            self.slate_store.watermark()
            reachable = True
        except Exception:  # any failure of the probe means the store cannot be reached
            reachable = False
        live = self._live
        return {
            "fitted": live is not None,
            "generation": live.snapshot.generation if live is not None else None,
            "created": live.snapshot.created if live is not None else None,
            "store_reachable": reachable,
        }

    def dataset_from_store(self) -> Dataset:
        """Everything in the store as a dataset."""
        return self.slate_store.to_dataset()

    def events(self) -> pd.DataFrame:
        """Every event the engine knows: those it was fitted on, then those taken since."""
        live = self._view()
        since = live.ledger.events()
        ev = live.snapshot.dataset.events
        return ev if since is None else pd.concat([ev, since], ignore_index=True)

    def user_events(self, user_id: str) -> pd.DataFrame:
        """One user's events: those the engine was fitted on, then those taken since."""
        return self._view().user_events(str(user_id))

    def knows_user(self, user_id: str) -> bool:
        """Whether the engine holds any event of the user."""
        return self._view().user_state(str(user_id)) is not None

    # ----- forgetting ---------------------------------------------------------------
    def forget(self, user_id: str) -> ForgetReport:
        """Erase a user from everywhere the engine keeps data.

        From the store (events, profile row, slates, feedback), the ledger, the
        profiles, every recommender's user rows, the policies' state and pending slates,
        the embedding cache entries of their own texts, and the saved snapshot.

        Item-side statistics they contributed (popularity, similarities, item factors,
        the taxonomy) go at the next refit. Forgetting a user unknown everywhere is no
        error: every component answers ``False``.
        """
        user_id = str(user_id)
        if self._version is not None:
            self.reload()  # the version rewritten below must be the newest published
        with self._persist, self._write:
            store = self.slate_store
            before = store.watermarks()[2]
            deleted = store.forget_user(user_id)
            if before == self._erasures and store.watermarks()[2] == before + 1:
                self._erasures += 1  # only this one happened: nothing to catch up on
            held: dict[str, bool] = {"store": deleted > 0}
            in_snapshot = self._forget_here(user_id, held)
        with self._persist:  # the rewrite holds no writer lock: ingests go on meanwhile
            root = Path(self.config.data_dir) / "engine"
            if in_snapshot and list_versions(root):
                self.save(root, keep=1)  # older versions hold the user too: they go
                held["artefacts"] = True
        return ForgetReport(
            user_id,
            deleted,
            held,
            "item-side statistics the user contributed to (popularity, item similarities and "
            "factors, interest clusters) are refitted without them at the next refit",
        )

    def _forget_here(self, user_id: str, held: dict[str, bool]) -> bool:
        """Erase a user from what this engine holds in memory (caller holds the write lock).

        Fills ``held`` per component; returns whether the snapshot held the user.
        """
        live = self._live
        if live is None:
            return False
        state = live.user_state(user_id)
        texts = [t.text for t in state.texts] if state is not None else []
        held["ledger"] = live.ledger.entry(user_id) is not None
        live.ledger.forget_user(user_id)
        snapshot, in_snapshot = live.snapshot.forget_user(user_id)
        held.update(in_snapshot)
        held["policies"] = any([p.forget_user(user_id) for p in live.policies.values()])
        held["cache"] = self.encoder.forget_texts(texts) > 0 if texts else False
        self._live = live.with_snapshot(snapshot)
        if self._forgotten_during_fit is not None:
            self._forgotten_during_fit.add(user_id)
        return any(in_snapshot.values())

    # ----- questions -------------------------------------------------------------
    def profile(self, user_id: str) -> InterestProfile:
        """The interest profile of one user, with every event taken so far (empty for an unknown user)."""
        live = self._view()
        user_id = str(user_id)
        return live.snapshot.profiler.profile(user_id, state=live.user_state(user_id))

    def interests(self, level: str = "all") -> list[Interest]:
        """The taxonomy: ``"broad"``, ``"fine"`` or ``"all"`` interests."""
        tax = self._view().snapshot.taxonomy
        if level == "broad":
            return tax.broad()
        if level == "fine":
            return tax.fine()
        if level == "all":
            return tax.broad() + tax.fine()
        raise ValueError(f"level must be broad, fine or all, not {level!r}")

    def item_titles(self) -> Mapping[str, str]:
        """Each item's title."""
        return self._view().snapshot.titles

    def tag_text(self, text: str, top: int = 3) -> list[tuple[Interest, float]]:
        """Zero-shot: the interests a piece of text (a post, a query, a review) is about."""
        tax = self._view().snapshot.taxonomy
        pairs = tax.tag_vectors(self.encoder.encode([text]), top=top, min_score=0.0)[0]
        return [(tax[i], s) for i, s in pairs]

    def audience(self, query: str | int, min_weight: float = 0.05) -> pd.DataFrame:
        """Users whose profile holds the interest named by ``query`` (id, label, term or free text).

        Profiles as of the snapshot: events taken since count from the next refit.

        Raises
        ------
        ValueError
            The query is empty, or names no interest (see :meth:`resolve`).
        """
        live = self._view()
        return _audience(
            live.snapshot.profiler,
            query,
            min_weight=min_weight,
            encode=self.encoder.encode,
            matcher=self._text_matcher(live.snapshot),
        )

    def resolve(self, query: str | int) -> list[Interest]:
        """The interests a query names (see :func:`~interestlens.interests.audience.resolve_interests`).

        Free text is matched through the terms the items carry, then their text, each
        only above a similarity floor measured on nonsense (:class:`TextMatcher`).

        Raises
        ------
        ValueError
            The query is empty or blank, or names no interest ("xyzzy qwerty").
        """
        snap = self._view().snapshot
        resolved = resolve_interests(
            snap.taxonomy, query, self.encoder.encode, matcher=self._text_matcher(snap)
        )
        return [snap.taxonomy[i] for i in resolved.interest_ids]

    def text_matcher(self) -> TextMatcher:
        """The matcher of free-text queries to interests, fitted (its floors measured) on first use."""
        return self._text_matcher(self._view().snapshot)

    def _text_matcher(self, snap: Snapshot) -> TextMatcher:
        """The matcher of free-text queries to interests, fitted (its floors measured) on first use."""

        def build() -> TextMatcher:
            return TextMatcher(random_state=self.config.random_state).fit(
                snap.taxonomy,
                self.encoder.encode,
                [sorted(snap.item_terms.get(str(i), ())) for i in snap.taxonomy.item_ids_],
            )

        return snap.derived.get("text_matcher", build)

    def similar_items(self, item_id: str, k: int = 10) -> list[tuple[str, float]]:
        """Items closest to one item in text-embedding space, with their cosine similarity."""
        catalogue = self._view().catalogue
        item_id = str(item_id)
        return catalogue.nearest(catalogue.vector(item_id), k, exclude=item_id)

    def interest_vectors(self, user_id: str, k: int = 3) -> tuple[list[Interest], np.ndarray]:
        """Several retrieval vectors of one user, one per strongest interest."""
        live = self._view()
        snap = live.snapshot

        def vec(ids: Sequence[str]) -> np.ndarray:
            return snap.item_vectors[snap.item_ids.get_indexer(list(ids))]

        ids, vecs = snap.profiler.interest_vectors(live.user_events(str(user_id)), vec, k=k)
        return [snap.taxonomy[i] for i in ids], vecs

    def recommend(
        self,
        user_id: str,
        k: int = 10,
        *,
        explain: bool = False,
        exclude_seen: bool = True,
        explore: float = 0.0,
        policy: str | None = None,
    ) -> list[Recommendation]:
        """The ``k`` items the user most likely wants next, through an exploration policy.

        Known users with enough history get the configured recommender; users with
        fewer than ``cold_start_events`` events, or known only by what they searched
        or wrote, get ContentLM (their words and few items against item text); unknown
        users get the most popular items. Events taken since the fit count at once. The
        policy (``policy``, default the configured one) then explores at level
        ``explore`` in [0, 1]: 0 serves that ranking as is, with propensity 1. Every
        item carries the slate's ``request_id``, its propensity and whether exploration
        put it there; the slate is logged to the store (see :class:`ExploreConfig`).
        With ``explain`` each item carries its reason: the interest it serves and the
        user's history items that contributed most.
        """
        live = self._view()
        snap = live.snapshot
        if snap.recommender is None or snap.content is None:
            raise NotFittedError("this engine was fitted with recommender='none'")
        user_id = str(user_id)
        pol = self._policy(live, policy)
        source, n_events, scores = self._ranking_scores(live, user_id, pol, exclude_seen)
        removed = live.catalogue.removed
        slate = pol.recommend(
            user_id,
            k + len(removed),  # room to leave removed items out
            explore=explore,
            exclude_seen=exclude_seen,
            scores=scores,
            context={"source": source, "n_events": n_events},
        )
        shown = slate.record()
        if removed or len(shown["item_ids"]) > k:
            keep = [j for j, i in enumerate(shown["item_ids"]) if i not in removed][:k]
            for key in ("item_ids", "scores", "propensities", "explored"):
                shown[key] = [shown[key][j] for j in keep]
        fresh = self._fresh_item(live, user_id, shown["item_ids"])
        if fresh is not None:  # the last slot goes to a new item of one of the user's interests
            shown["item_ids"][-1], shown["scores"][-1] = fresh[0], math.nan
            shown["propensities"][-1], shown["explored"][-1] = 1.0, False
        if self.config.explore.log:
            self.slate_store.log_slate(**shown)
        out = [
            Recommendation(
                item_id=i,
                score=s,
                rank=n,
                reason="",
                explored=e,
                propensity=p,
                request_id=slate.request_id,
            )
            for n, (i, s, e, p) in enumerate(
                zip(
                    shown["item_ids"],
                    shown["scores"],
                    shown["explored"],
                    shown["propensities"],
                    strict=True,
                ),
                1,
            )
        ]
        if explain:
            ranked = [r.item_id for r in out][: len(out) - (fresh is not None)]
            reasons = self._reasons(live, user_id, ranked, source)
            if fresh is not None:
                label = live.snapshot.taxonomy[fresh[1]].label
                reasons.append(f"new in the catalogue: serves your interest in {label}")
            out = [
                replace(r, reason=f"exploring something new: {why}" if r.explored else why)
                for r, why in zip(out, reasons, strict=True)
            ]
        return out

    def _fresh_item(
        self, live: _Live, user_id: str, slate: Sequence[str]
    ) -> tuple[str, int] | None:
        """An item added since the snapshot for the user, and the interest it serves, if any.

        Among the added items the user has not engaged with and the slate lacks, the one
        whose interests (from its text) best meet the user's three strongest, weighting
        the strongest most; ``None`` when no added item is in those interests.
        """
        added = live.catalogue.added
        state = live.user_state(user_id) if added and slate else None
        if state is None:
            return None
        fine = live.snapshot.taxonomy.fine_ids_
        top = [int(fine[c]) for c in np.argsort(-state.long)[:3] if state.long[c] > 0]
        seen = set(live.user_events(user_id)["item_id"].dropna()) | set(slate)
        best: tuple[float, str, int] | None = None
        for item_id, item in added.items():
            if item_id in seen:
                continue
            for interest, score in item.interests:
                if interest in top:
                    fit = score * (len(top) - top.index(interest))
                    if best is None or fit > best[0]:
                        best = (fit, item_id, interest)
        return None if best is None else (best[1], best[2])

    def _ranking_scores(
        self, live: _Live, user_id: str, policy: Policy, exclude_seen: bool
    ) -> tuple[str, int, np.ndarray | None]:
        """Where a user's ranking comes from, their event count, and any scores to use.

        A user with at least ``cold_start_events`` events is ranked by the recommender
        (``"personal"``): as fitted (scores ``None``: the policy asks its ranker) unless
        events of theirs arrived since the fit, or they are new to it; then from every
        event of theirs (:meth:`~interestlens.models.Recommender.score_history`), so what
        they just did counts at once. A cold or unknown user is ranked by content scores
        of what they did (``"content"``) or by popularity when they did nothing
        (``"popular"``). Scores are aligned to ``policy``'s items, with the user's own
        items at ``-inf`` when ``exclude_seen``.
        """
        snap = live.snapshot
        assert snap.recommender is not None and snap.content is not None
        entry = live.ledger.entry(user_id)
        state = entry.state if entry is not None else snap.profiler.user_state(user_id)
        n_events = 0 if state is None else state.n_events
        personal = n_events >= self.config.cold_start_events
        if personal and entry is None and user_id in snap.recommender.user_ids_:
            return "personal", n_events, None
        mine = entry.events if entry is not None else snap.user_events(user_id)
        if personal:
            model, source = snap.recommender, "personal"
        else:
            model, source = snap.content, "content" if len(mine) else "popular"
        scores = model.score_history(mine, exclude_seen=exclude_seen)
        if not live.same_items(model.item_ids_, policy.item_ids_):
            scores = pd.Series(scores, index=model.item_ids_).reindex(policy.item_ids_).to_numpy()
        return source, n_events, scores

    def ranking_scores(
        self, user_id: str, policy: Policy, *, exclude_seen: bool = True
    ) -> tuple[str, int, np.ndarray | None]:
        """Where a user's ranking comes from, their event count, and any scores to use (see :meth:`recommend`)."""
        return self._ranking_scores(self._view(), str(user_id), policy, exclude_seen)

    def policy(self, name: str | None = None) -> Policy:
        """The exploration policy ``name`` (default: the configured one), fitted on first use."""
        return self._policy(self._view(), name)

    def _policy(self, live: _Live, name: str | None) -> Policy:
        cfg = self.config.explore
        name = cfg.policy if name is None else str(name)
        pol = live.policies.get(name)
        if pol is not None:
            return pol
        snap = live.snapshot
        if snap.recommender is None:
            raise NotFittedError("this engine was fitted with recommender='none'")
        with live.policy_lock:  # only first users of this policy wait for its fit
            pol = live.policies.get(name)
            if pol is None:
                params = dict(cfg.params) if name == cfg.policy else {}
                params.setdefault("random_state", self.config.random_state)
                pol = build_policy(name, snap.recommender, **params)
                vectors = snap.item_vectors
                if not snap.item_ids.equals(snap.recommender.item_ids_):
                    vectors = (
                        pd.DataFrame(vectors, index=snap.item_ids)
                        .reindex(snap.recommender.item_ids_)
                        .to_numpy()
                    )
                pol.fit(snap.dataset, item_vectors=vectors, taxonomy=snap.taxonomy)
                live.policies[name] = pol
            return pol

    def feedback(self, request_id: str, item_id: str, reward: float) -> bool:
        """A reward for an item of a served slate (a click is 1; shown items without one count 0).

        The policy that served the slate learns from it at once, and the reward is logged
        with the slate. Returns whether a policy learned from it: ``False`` when the slate
        is only in the log (served before a refit or a restart, or forgotten by the
        policy), where the reward is still logged for off-policy evaluation.

        Raises
        ------
        KeyError
            No slate with this ``request_id`` showed ``item_id`` (neither a policy nor
            the log knows it).
        ValueError
            The reward is not a finite number.
        """
        request_id = str(request_id)
        live = self._view()
        holder = next((p for p in list(live.policies.values()) if request_id in p.pending_), None)
        if holder is not None:
            try:
                holder.update(request_id, item_id, reward)
            except KeyError:
                if str(item_id) not in live.catalogue.added:
                    raise
                holder = None  # a new item in the slate's last slot: logged, no policy learns
        if self.config.explore.log:
            try:
                self.slate_store.log_feedback(request_id, str(item_id), reward)
            except KeyError:
                if holder is None:
                    raise KeyError(
                        f"unknown request_id {request_id!r}: no slate served with it"
                    ) from None
                raise
        elif holder is None:
            raise KeyError(f"unknown request_id {request_id!r}: no policy holds it")
        return holder is not None

    def explain(
        self, user_id: str, item_id: str, *, source: str = "personal", n_items: int = 3
    ) -> str:
        """Why an item suits a user: the interest of the item they hold, and the history behind it.

        The interest named is one the item belongs to (its soft membership) and whose
        label describes it (the item carries one of the label's terms, where it carries
        any): "serves your interest in X" when the user holds X, "in X" otherwise. Then
        the user's liked items most like it ("like A, B"), or "popular with everyone"
        for a user with no history.
        """
        return self._reasons(self._view(), str(user_id), [str(item_id)], source, n_items)[0]

    def item_reason_interests(self, item_id: str) -> list[tuple[int, float]]:
        """The interests a reason may name for an item: ``[(fine interest id, membership)]``.

        Those of the item's soft memberships whose label shares a term with the item
        (all of them for an item without terms); heaviest first.
        """
        return self._reason_interests(self._view().snapshot, str(item_id))

    @staticmethod
    def _reason_interests(snap: Snapshot, item_id: str) -> list[tuple[int, float]]:
        tax = snap.taxonomy
        memberships = tax.item_interests(item_id)
        mine = snap.item_terms.get(item_id, frozenset())
        if not mine:
            return memberships
        return [(i, w) for i, w in memberships if mine & set(tax[i].terms)]

    def _reasons(
        self, live: _Live, user_id: str, item_ids: list[str], source: str, n_items: int = 3
    ) -> list[str]:
        """Reasons for several items of one user, preparing the user's history once."""
        snap = live.snapshot
        tax = snap.taxonomy
        titles = snap.titles
        state = live.user_state(user_id)
        weights = state.long if state is not None else np.zeros(len(tax.fine_ids_))
        col = {f: c for c, f in enumerate(tax.fine_ids_)}
        contributors = self._contributors(live, user_id, item_ids, n_items)
        reasons = []
        for item_id, history in zip(item_ids, contributors, strict=True):
            parts = ["popular with everyone"] if source == "popular" else []
            describing = self._reason_interests(snap, item_id)
            if describing:
                best = max(describing, key=lambda p: (weights[col[p[0]]] * p[1], p[1]))
                held = weights[col[best[0]]] > 0
                parts.append(f"{'serves your interest in' if held else 'in'} {tax[best[0]].label}")
            if history:
                parts.append("like " + ", ".join(titles.get(i, i) for i in history))
            reasons.append("; ".join(parts) if parts else "popular with everyone")
        return reasons

    def _contributors(
        self, live: _Live, user_id: str, item_ids: list[str], n: int
    ) -> list[list[str]]:
        """Per item, the user's liked items most like it in text and co-engagement.

        Among their :data:`REASON_HISTORY` latest events only: a reason names what the user
        did lately, and a request of a user with thousands of ratings costs no more.
        """
        snap = live.snapshot
        mine = live.user_events(user_id)
        mine = mine[mine["item_id"].notna()].iloc[-REASON_HISTORY:]
        if len(mine):
            mine = mine[snap.profiler.signals(mine) > 0]
        hist = pd.Index(mine["item_id"].drop_duplicates(keep="last"), dtype=object)
        pos = snap.item_ids.get_indexer(hist)
        hist, pos = hist[pos >= 0], pos[pos >= 0]
        targets = snap.item_ids.get_indexer(pd.Index(item_ids, dtype=object))
        if len(pos) == 0:
            return [[] for _ in item_ids]
        ok = targets >= 0
        t = np.where(ok, targets, 0)
        text_sim = snap.item_vectors[pos] @ snap.item_vectors[t].T  # history x targets
        co_sim = np.zeros_like(text_sim)
        if snap.item_users is not None:
            h, c = snap.item_users[:, pos], snap.item_users[:, t]
            co = np.asarray((h.T @ c).todense())
            counts_h = np.asarray(h.sum(axis=0)).ravel()
            counts_c = np.asarray(c.sum(axis=0)).ravel()
            norm = np.sqrt(np.outer(counts_h, np.maximum(counts_c, 1.0)))
            co_sim = co / np.where(norm == 0, 1.0, norm)
        score = 0.5 * text_sim + 0.5 * co_sim
        return [
            [str(hist[j]) for j in np.argsort(-score[:, k])[:n]] if ok[k] else []
            for k in range(len(item_ids))
        ]

    # ----- persistence -----------------------------------------------------------
    def save(self, path: str | Path | None = None, *, keep: int | None = None) -> Path:
        """Write the current snapshot as a new version (default under ``data_dir/engine``).

        Older versions stay beside it (``keep``: how many of the newest to keep, the
        new one included; ``None`` keeps all). Arrays are written as files that
        :meth:`open` maps instead of reading, so reopening takes a fraction of a second.
        Events taken since the snapshot are not in it: they are in the store, and
        :meth:`open` replays them. Returns the version's folder.

        The snapshot is pickled: open only engines you saved yourself.
        """
        root = Path(path) if path is not None else Path(self.config.data_dir) / "engine"
        with self._persist:  # not the writer lock: ingests go on while the snapshot is written
            snap = self._view().snapshot
            folder = write_artefact(
                {"config": self.config, "snapshot": snap},
                root,
                meta={
                    "generation": snap.generation,
                    "watermark": snap.watermark,
                    "item_watermark": self._fit_items,
                },
            )
            if root == Path(self.config.data_dir) / "engine":
                self._version = folder.name
            if keep is not None:
                prune(root, keep)
        return folder
