"""Build an official client from a URL and credentials (what the CLI and the local nodes need).

Library users hand vistag the ``Elasticsearch``/``OpenSearch`` object they already
configured and never need this module. The CLI turns its connection flags
(:class:`~vistag.config.ConnectionSettings`) into one here:

* ``elasticsearch.Elasticsearch`` for Elasticsearch (``cloud_id``, API keys,
  bearer tokens, basic auth, client certificates);
* ``opensearchpy.OpenSearch`` for OpenSearch (basic auth, client certificates,
  and AWS SigV4 for Amazon OpenSearch Service (``es``) and Serverless (``aoss``),
  with credentials from the usual AWS environment through botocore).

Which engine is behind a URL is detected from ``GET /`` (OpenSearch says
``"distribution": "opensearch"``; Elasticsearch integ-test zips answer 405),
unless the settings name it.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from vistag.config import ConnectionSettings
from vistag.engine.client import EngineClient
from vistag.engine.retry import RetryPolicy, map_error
from vistag.errors import ConfigError, EngineUnavailable

logger = logging.getLogger(__name__)


def connect(settings: ConnectionSettings, engine: str | None = None, retry: RetryPolicy | None = None) -> EngineClient:
    """An :class:`EngineClient` over a client built from ``settings``.

    Args:
        settings: hosts and credentials.
        engine: ``elasticsearch`` or ``opensearch`` when known; detected otherwise.
        retry: the backoff of every call.

    Raises:
        ConfigError: contradictory settings (e.g. SigV4 for Elasticsearch).
        EngineUnavailable: the URL does not answer (engine detection).

    Examples:
        >>> engine = connect(ConnectionSettings(urls=("http://127.0.0.1:9200",)))  # doctest: +SKIP
    """
    if not settings.urls and not settings.cloud_id:
        raise ConfigError("no engine URL: pass --url, set VISTAG_URL, or start a local node with `vistag engine start`")
    if not settings.verify_tls:
        logger.warning(
            "TLS CERTIFICATE VERIFICATION IS OFF (--no-verify-tls): anyone on the path can read and change "
            "this traffic, credentials included. Use only against a throwaway test cluster."
        )
    engine = engine or settings.engine or _detect(settings)
    label = settings.urls[0] if settings.urls else "Elastic Cloud"
    if engine == "elasticsearch":
        client = _elasticsearch(settings)
    elif engine == "opensearch":
        client = _opensearch(settings)
    else:
        raise ConfigError(f"unknown engine {engine!r}: elasticsearch or opensearch")
    return EngineClient(client, retry=retry, label=label)


def _detect(settings: ConnectionSettings) -> str:
    """``elasticsearch`` or ``opensearch``: Elastic Cloud and SigV4 tell; otherwise the first host's ``GET /``."""
    if settings.cloud_id:
        return "elasticsearch"
    if settings.aws_sigv4:
        return "opensearch"
    # opensearch-py talks to either engine (elasticsearch-py does not); a dead host is skipped for the next one.
    client = _opensearch(settings, max_retries=len(settings.urls) - 1)
    try:
        root = client.transport.perform_request("GET", "/")
    except Exception as exc:
        error = map_error(exc, f"GET / on {settings.urls[0]}")
        if error is None:
            raise
        if error.status == 405 or (error.status in (401, 403) and settings.api_key):
            return "elasticsearch"  # integ-test zips have no GET /; OpenSearch has no API keys
        if isinstance(error, EngineUnavailable) or error.status in (401, 403):
            raise error from None
        return "elasticsearch"
    finally:
        client.close()
    distribution = (root.get("version") or {}).get("distribution") if isinstance(root, dict) else None
    return "opensearch" if distribution == "opensearch" else "elasticsearch"


def _tls_kwargs(settings: ConnectionSettings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if settings.ca_cert:
        kwargs["ca_certs"] = settings.ca_cert
    if settings.client_cert:
        kwargs["client_cert"] = settings.client_cert
    if settings.client_key:
        kwargs["client_key"] = settings.client_key
    if not settings.verify_tls:
        kwargs["verify_certs"] = False
        kwargs["ssl_show_warn"] = False
    return kwargs


#: Connections kept per host by the clients vistag builds (elasticsearch-py keeps 10 by default).
POOL_MAXSIZE = 16


def _elasticsearch(settings: ConnectionSettings) -> Any:
    try:
        from elasticsearch import Elasticsearch
    except ImportError as exc:  # pragma: no cover - a dependency
        raise ConfigError(f"the elasticsearch package is missing ({exc})") from None
    if settings.aws_sigv4:
        raise ConfigError("--aws-sigv4 signs requests to Amazon OpenSearch Service: it needs an OpenSearch cluster")
    kwargs: dict[str, Any] = {
        "request_timeout": settings.timeout,
        "http_compress": settings.http_compress,
        # vistag's RetryPolicy retries statuses with backoff; the client moves to another node on connection errors.
        "retry_on_status": (),
        "retry_on_timeout": True,
        "max_retries": 2,
        **_tls_kwargs(settings),
    }
    if settings.cloud_id:
        kwargs["cloud_id"] = settings.cloud_id
    else:
        kwargs["hosts"] = list(settings.urls)
    if settings.api_key:
        kwargs["api_key"] = settings.api_key
    elif settings.bearer_token:
        kwargs["bearer_auth"] = settings.bearer_token
    elif settings.username:
        kwargs["basic_auth"] = (settings.username, settings.password or "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the insecure-TLS warning is logged once, above
        return Elasticsearch(**kwargs)


def _opensearch(settings: ConnectionSettings, max_retries: int = 2) -> Any:
    try:
        from opensearchpy import OpenSearch
    except ImportError as exc:  # pragma: no cover - a dependency
        raise ConfigError(f"the opensearch-py package is missing ({exc})") from None
    if settings.cloud_id:
        raise ConfigError("--cloud-id is an Elastic Cloud setting: it needs an Elasticsearch cluster")
    kwargs: dict[str, Any] = {
        "hosts": list(settings.urls),
        "timeout": settings.timeout,
        "http_compress": settings.http_compress,
        "retry_on_status": (),
        "retry_on_timeout": True,
        "max_retries": max_retries,
        # opensearch-py keeps one connection per host unless told: parallel bulk threads and the
        # service's concurrent searches would open and drop a connection per request.
        "pool_maxsize": POOL_MAXSIZE,
        **_tls_kwargs(settings),
    }
    if any(u.startswith("https://") for u in settings.urls):
        kwargs["use_ssl"] = True
    headers: dict[str, str] = {}
    if settings.aws_sigv4:
        kwargs["http_auth"] = sigv4_auth(settings.aws_sigv4, settings.aws_region)
    elif settings.api_key:
        headers["Authorization"] = f"ApiKey {settings.api_key}"
    elif settings.bearer_token:
        headers["Authorization"] = f"Bearer {settings.bearer_token}"
    elif settings.username:
        kwargs["http_auth"] = (settings.username, settings.password or "")
    if headers:
        kwargs["headers"] = headers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return OpenSearch(**kwargs)


def sigv4_auth(service: str, region: str | None) -> Any:
    """opensearch-py's SigV4 signer for ``service`` (``es`` or ``aoss``) with the AWS environment's credentials.

    Raises:
        ConfigError: unknown service, no region, no botocore, or no credentials found.
    """
    if service not in ("es", "aoss"):
        raise ConfigError(f"--aws-sigv4 {service!r}: es (Amazon OpenSearch Service) or aoss (OpenSearch Serverless)")
    if not region:
        raise ConfigError("--aws-sigv4 needs --aws-region (or AWS_REGION)")
    try:
        import botocore.session
        from opensearchpy import Urllib3AWSV4SignerAuth
    except ImportError as exc:
        raise ConfigError(f"--aws-sigv4 needs botocore: pip install 'vistag[aws]' ({exc})") from None
    credentials = botocore.session.Session().get_credentials()
    if credentials is None:
        raise ConfigError(
            "--aws-sigv4: no AWS credentials found (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, "
            "or an instance role)"
        )
    return Urllib3AWSV4SignerAuth(credentials, region, service)
