"""Search engines: the HTTP client for any cluster and local nodes for dev, tests and the demo."""

from vistag.engine.client import EngineClient, EngineInfo
from vistag.engine.local import LocalNode

__all__ = ["EngineClient", "EngineInfo", "LocalNode"]
