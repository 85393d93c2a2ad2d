"""The live engine: configuration, snapshots, the per-user ledger and the :class:`Engine` facade."""

from interestlens.engine.config import Config, ExploreConfig
from interestlens.engine.facade import (
    Engine,
    ForgetReport,
    IngestReport,
    NotFittedError,
    Recommendation,
)

__all__ = [
    "Config",
    "Engine",
    "ExploreConfig",
    "ForgetReport",
    "IngestReport",
    "NotFittedError",
    "Recommendation",
]
