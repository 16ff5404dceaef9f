"""The deepcream web service: ``create_app(settings) -> FastAPI`` (see docs/server.md)."""

from deepcream.server.app import create_app
from deepcream.server.settings import Settings

__all__ = ["Settings", "create_app"]
