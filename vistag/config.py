"""Settings read from the environment, with the defaults documented in the README.

Nothing here is read at import time; call the functions when a value is needed so
tests and the CLI can change the environment first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ENGINES = ("opensearch", "elasticsearch")
DEFAULT_ENGINE = "opensearch"


def vistag_home() -> Path:
    """Return ``$VISTAG_HOME`` (default ``~/.cache/vistag``): downloads, nodes, caches."""
    return Path(os.environ.get("VISTAG_HOME") or Path.home() / ".cache" / "vistag").expanduser()


def default_engine() -> str:
    """Return ``$VISTAG_ENGINE`` or ``opensearch``."""
    engine = os.environ.get("VISTAG_ENGINE", DEFAULT_ENGINE).strip().lower() or DEFAULT_ENGINE
    return engine


def default_data_dir() -> Path | None:
    """Return the sample catalog directory: ``$VISTAG_DATA`` or ``../shared/data/fashion-product-images``.

    The second is looked up next to the current directory and next to the repository
    this package was installed from. ``None`` when neither exists.
    """
    env = os.environ.get("VISTAG_DATA")
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parent.parent
    for base in (Path.cwd(), repo):
        candidate = base.parent / "shared" / "data" / "fashion-product-images"
        if candidate.is_dir():
            return candidate
    return None


@dataclass(frozen=True)
class ConnectionSettings:
    """How to reach an existing cluster.

    Attributes:
        url: base URL, e.g. ``https://search.example.com:9200``; ``None`` means
            "the local node vistag started".
        api_key: an Elasticsearch/OpenSearch API key (the base64 ``id:key`` form).
        username: basic-auth user.
        password: basic-auth password.
        ca_cert: path of a CA bundle used to verify TLS.
        verify_tls: set to ``False`` only for throwaway test clusters.
        timeout: request timeout in seconds.
    """

    url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_cert: str | None = None
    verify_tls: bool = True
    timeout: float = 60.0

    @classmethod
    def from_env(cls, **overrides: object) -> "ConnectionSettings":
        """Build settings from ``VISTAG_*`` variables; non-``None`` overrides win."""
        values: dict[str, object] = {
            "url": os.environ.get("VISTAG_URL") or None,
            "api_key": os.environ.get("VISTAG_API_KEY") or None,
            "username": os.environ.get("VISTAG_USER") or None,
            "password": os.environ.get("VISTAG_PASSWORD") or None,
            "ca_cert": os.environ.get("VISTAG_CA_CERT") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
