"""The live engine: configuration, snapshots, the per-user ledger and the :class:`Engine` facade."""

from interestlens.engine.config import Config, ExploreConfig
from interestlens.engine.facade import Engine, NotFittedError, Recommendation

__all__ = ["Config", "Engine", "ExploreConfig", "NotFittedError", "Recommendation"]
