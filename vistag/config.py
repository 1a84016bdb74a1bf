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
    """How the CLI reaches a cluster (library users pass their own client object instead).

    Attributes:
        urls: node URLs, e.g. ``("https://es1:9200", "https://es2:9200")``; empty means
            "the local node vistag started" (or Elastic Cloud with ``cloud_id``).
        engine: ``elasticsearch`` or ``opensearch`` when known (else detected).
        api_key: an API key (the base64 ``id:key`` form).
        username: basic-auth user.
        password: basic-auth password.
        bearer_token: an OAuth/JWT bearer token.
        cloud_id: an Elastic Cloud deployment id (Elasticsearch only).
        ca_cert: CA bundle that verifies the server certificates.
        client_cert: client certificate (PEM) for mutual TLS.
        client_key: its private key (PEM).
        verify_tls: ``False`` only for throwaway test clusters (logged loudly).
        aws_sigv4: ``es`` or ``aoss``: sign every request with AWS SigV4 (OpenSearch only).
        aws_region: the AWS region SigV4 signs for.
        http_compress: gzip request bodies.
        timeout: request timeout in seconds.

    Examples:
        >>> ConnectionSettings(urls=("http://127.0.0.1:9200",)).url
        'http://127.0.0.1:9200'
    """

    urls: tuple[str, ...] = ()
    engine: str | None = None
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    cloud_id: str | None = None
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    verify_tls: bool = True
    aws_sigv4: str | None = None
    aws_region: str | None = None
    http_compress: bool = False
    timeout: float = 60.0

    @property
    def url(self) -> str | None:
        """The first node URL (``None`` when there is none)."""
        return self.urls[0] if self.urls else None

    @classmethod
    def from_env(cls, **overrides: object) -> ConnectionSettings:
        """Build settings from ``VISTAG_*`` variables (``VISTAG_URL`` may list several, comma-separated) and
        ``AWS_REGION``; non-``None`` overrides win.
        """
        env_urls = tuple(u.strip() for u in os.environ.get("VISTAG_URL", "").split(",") if u.strip())
        values: dict[str, object] = {
            "urls": env_urls,
            "api_key": os.environ.get("VISTAG_API_KEY") or None,
            "username": os.environ.get("VISTAG_USER") or None,
            "password": os.environ.get("VISTAG_PASSWORD") or None,
            "bearer_token": os.environ.get("VISTAG_BEARER_TOKEN") or None,
            "cloud_id": os.environ.get("VISTAG_CLOUD_ID") or None,
            "ca_cert": os.environ.get("VISTAG_CA_CERT") or None,
            "aws_region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None and v != ()})
        urls = values.get("urls") or ()
        if isinstance(urls, str):
            urls = (urls,)
        values["urls"] = tuple(str(u).rstrip("/") for u in urls)  # type: ignore[attr-defined]  # a str or a tuple
        return cls(**values)  # type: ignore[arg-type]  # values are typed by their keys, checked by the dataclass


def embedding_cache_dir() -> Path:
    """Where the CLI keeps embedding caches: ``$VISTAG_HOME/cache/embeddings`` (one folder per model below it)."""
    return vistag_home() / "cache" / "embeddings"


def default_relations_path() -> Path:
    """Where ``vistag relations build`` writes, and search and the storefront look, by default."""
    return vistag_home() / "relations" / "tag-relations.npz"
