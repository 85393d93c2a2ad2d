"""The HTTP service: a FastAPI app over one live :class:`~interestlens.engine.Engine` (see docs/serve.md)."""

from interestlens.serve.app import create_app
from interestlens.serve.errors import ApiError
from interestlens.serve.settings import ServeSettings

__all__ = ["ApiError", "ServeSettings", "create_app"]
