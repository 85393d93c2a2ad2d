"""Settings of an :class:`~interestlens.engine.Engine`: every field has a working default."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from interestlens.interests.profile import ProfileConfig
from interestlens.models import HYBRID_BASE

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class ExploreConfig:
    """How the engine explores: the default policy and its parameters.

    Parameters
    ----------
    policy
        Name of the policy :meth:`Engine.recommend` uses when none is named (one of
        :data:`interestlens.explore.POLICIES`).
    params
        Parameters of that policy (other policies named per request use their defaults).
    log
        Whether served slates and their feedback are written to the store's slate log.
    """

    policy: str = "epsilon_greedy"
    params: Mapping[str, Any] = field(default_factory=dict)
    log: bool = True

    def __post_init__(self) -> None:
        # here, not at the top: a saved engine's config is unpickled without this check,
        # and opening one should not import the policies it does not use
        from interestlens.explore import POLICIES
        from interestlens.explore.base import policy_parameters

        if self.policy not in POLICIES:
            raise ValueError(
                f"explore.policy: unknown policy {self.policy!r}; known: {', '.join(POLICIES)}"
            )
        unknown = set(self.params) - policy_parameters(POLICIES[self.policy])
        if unknown:
            raise ValueError(
                f"explore.params: unknown parameters {sorted(unknown)} of policy {self.policy!r}; "
                f"known: {sorted(policy_parameters(POLICIES[self.policy]))}"
            )


@dataclass(frozen=True)
class Config:
    """Settings of an :class:`Engine`; every field has a working default.

    Parameters
    ----------
    data_dir
        Where saved engines live.
    cache_dir
        Embedding cache; default ``$INTERESTLENS_CACHE_DIR`` if set, else ``data_dir/cache``.
        Several projects may share one.
    encoder
        ``"bundled"`` (all-MiniLM-L6-v2), a local sentence-transformers folder, or an
        OpenAI-compatible embeddings URL.
    precision
        ``"auto"`` (bf16 where the CPU supports it and it matches fp32), ``"bf16"`` or ``"fp32"``;
        also SASRec's training arithmetic (whose ``"auto"`` is bf16 on CPUs with AMX).
    threads
        Threads of heavy work (encoding, clustering, every model's training);
        ``None``: ``$INTERESTLENS_THREADS``, else 1 (see :mod:`interestlens.threads`: on a
        machine shared with other busy processes, more threads than free cores made
        training many times slower).
    item_text_fields
        Item fields composed into the text that is embedded.
    n_fine, n_broad
        Numbers of fine and broad interests (default: scaled to the catalogue).
    text_weight
        Share of text (vs behaviour) in the item vectors the taxonomy clusters.
    recommender
        ``"hybrid"`` (the default pipeline: learned ranking over the candidates of the
        models in ``hybrid_models``), ``"none"`` (profiles only), or one model name of
        :data:`interestlens.models.MODELS`.
    hybrid_models
        Base models whose candidates the hybrid re-ranks.
    cold_start_events
        Users with fewer events than this are served by ContentLM (text), which needs
        only one event or one search.
    sentiment
        Sentiment method for user texts (see :class:`~interestlens.interests.sentiment.SentimentAnalyzer`).
    profile
        How events become interest signals (:class:`~interestlens.interests.profile.ProfileConfig`).
    explore
        The exploration policy (:class:`ExploreConfig`).
    store
        Event store URL where served slates and feedback are logged; default
        ``sqlite://<data_dir>/events.db`` (the CLI's store). Opened on first use.
    random_state
        Seed of every random step.
    """

    data_dir: Path = Path(".interestlens")
    cache_dir: Path | None = None
    encoder: str = "bundled"
    precision: str = "auto"
    threads: int | None = None
    item_text_fields: tuple[str, ...] = ("title", "categories", "text", "tags")
    n_fine: int | None = None
    n_broad: int | None = None
    text_weight: float = 0.5
    sentiment: str = "auto"
    recommender: str = "hybrid"
    hybrid_models: tuple[str, ...] = HYBRID_BASE
    cold_start_events: int = 3
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    explore: ExploreConfig = field(default_factory=ExploreConfig)
    store: str | None = None
    random_state: int = 0

    @property
    def store_url(self) -> str:
        """The slate log's store URL (``store`` or the SQLite file under ``data_dir``)."""
        return self.store or f"sqlite://{Path(self.data_dir) / 'events.db'}"

    @classmethod
    def from_toml(cls, path: str | Path) -> Config:
        r"""Read the ``[engine]`` table (and ``[engine.profile]``, ``[engine.explore]``) of a TOML file.

        In ``[engine.explore]``, ``policy`` names the default policy, ``log`` turns the
        slate log on or off, and every other key is a parameter of that policy.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "interestlens.toml"
        >>> _ = p.write_text('[engine]\nn_fine = 40\n[engine.profile]\nshort_half_life = 14\n'
        ...                  '[engine.explore]\npolicy = "lin_ucb"\nalpha = 2.0\n')
        >>> c = Config.from_toml(p)
        >>> c.n_fine, c.profile.short_half_life, c.explore.policy, dict(c.explore.params)
        (40, 14.0, 'lin_ucb', {'alpha': 2.0})
        """
        raw = tomllib.loads(Path(path).read_text()).get("engine", {})
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(
                f"{path}: unknown [engine] settings {sorted(unknown)}; known: {sorted(known)}"
            )
        prof = raw.pop("profile", {})
        exp = dict(raw.pop("explore", {}))
        try:
            explore = ExploreConfig(
                policy=exp.pop("policy", ExploreConfig.policy),
                log=bool(exp.pop("log", True)),
                params=exp,
            )
        except ValueError as exc:
            raise ValueError(f"{path}: [engine.explore] {exc}") from None
        pknown = {f.name for f in fields(ProfileConfig)}
        if set(prof) - pknown:
            raise ValueError(
                f"{path}: unknown [engine.profile] settings {sorted(set(prof) - pknown)}"
            )
        for key in ("long_half_life", "short_half_life", "trend_threshold"):
            if key in prof:
                prof[key] = float(prof[key])
        for key in ("data_dir", "cache_dir"):
            if key in raw:
                raw[key] = Path(raw[key])
        for key in ("item_text_fields", "hybrid_models"):
            if key in raw:
                raw[key] = tuple(raw[key])
        return cls(**raw, profile=replace(ProfileConfig(), **prof), explore=explore)
