"""A small HTTP client for Elasticsearch 8 and OpenSearch 2 over ``requests``.

It does the few things vistag needs the same way on both engines: JSON requests,
NDJSON bulk bodies, API-key / basic auth, TLS with a CA file, and detection of
which engine (and which optional modules) it is talking to. Credentials never
appear in ``repr``, logs or error messages.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable

import requests

from vistag.config import ConnectionSettings
from vistag.engine.versions import SUPPORTED_MAJORS
from vistag.errors import EngineError, EngineUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineInfo:
    """What the cluster is.

    Attributes:
        engine: ``elasticsearch`` or ``opensearch``.
        version: e.g. ``"8.19.21"``.
        modules: names of the modules and plugins every node has (empty when the
            credentials may not read ``_nodes``; then a full distribution is assumed).
    """

    engine: str
    version: str
    modules: frozenset[str] = field(default_factory=frozenset)

    @property
    def major(self) -> int:
        """Major version number."""
        return int(self.version.split(".")[0])

    def has(self, module: str) -> bool:
        """Whether ``module`` is present (assumed present when modules are unknown)."""
        return not self.modules or module in self.modules


class EngineClient:
    """Thin client for one cluster.

    Args:
        settings: URL and credentials.
        session: an optional ``requests.Session`` to reuse.
    """

    def __init__(self, settings: ConnectionSettings, session: requests.Session | None = None) -> None:
        if not settings.url:
            raise EngineError("no engine URL: pass --url, set VISTAG_URL, or start a local node with `vistag engine start`")
        self.settings = settings
        self.url = settings.url.rstrip("/")
        self.session = session or requests.Session()
        if settings.api_key:
            self.session.headers["Authorization"] = f"ApiKey {settings.api_key}"
        elif settings.username:
            self.session.auth = (settings.username, settings.password or "")
        # Passed on every request: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a
        # session-level `verify`, which would silently ignore --ca-cert.
        self.verify: str | bool = settings.ca_cert or settings.verify_tls
        self.session.verify = self.verify
        self._info: EngineInfo | None = None

    def __repr__(self) -> str:
        return f"EngineClient(url={self.url!r})"

    # ------------------------------------------------------------------ basics
    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        *,
        ndjson: bytes | None = None,
        ok_statuses: Iterable[int] = (),
        timeout: float | None = None,
    ) -> Any:
        """Send a request and return the decoded JSON body.

        Args:
            method: HTTP method.
            path: path below the base URL, e.g. ``"/products/_search"``.
            body: a JSON-serialisable body.
            params: query-string parameters.
            ndjson: a raw NDJSON body (bulk); excludes ``body``.
            ok_statuses: non-2xx statuses to return instead of raising (e.g. 404).
            timeout: seconds; defaults to the settings' timeout.

        Raises:
            EngineUnavailable: connection failure, timeout, or 502/503/504.
            EngineError: any other non-2xx answer not in ``ok_statuses``.
        """
        headers = {}
        data: bytes | None = None
        if ndjson is not None:
            data, headers["Content-Type"] = ndjson, "application/x-ndjson"
        elif body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        try:
            resp = self.session.request(
                method, self.url + path, data=data, params=params, headers=headers,
                timeout=timeout or self.settings.timeout, verify=self.verify,
            )
        except requests.exceptions.SSLError as exc:
            raise EngineUnavailable(f"TLS error talking to {self.url}: {type(exc).__name__} (check --ca-cert)") from None
        except requests.RequestException as exc:
            raise EngineUnavailable(f"cannot reach {self.url}: {type(exc).__name__}") from None
        try:
            payload = resp.json() if resp.content else {}
        except ValueError:
            payload = resp.text
        if resp.ok or resp.status_code in set(ok_statuses):
            return payload
        reason = _error_reason(payload)
        message = f"{method} {path} -> HTTP {resp.status_code}: {reason}"
        if resp.status_code in (502, 503, 504):
            raise EngineUnavailable(message, resp.status_code, payload)
        if resp.status_code == 401:
            message += " (check the API key or user/password)"
        raise EngineError(message, resp.status_code, payload)

    # ---------------------------------------------------------------- metadata
    def info(self, refresh: bool = False) -> EngineInfo:
        """Detect the engine, its version and modules (cached)."""
        if self._info is not None and not refresh:
            return self._info
        engine = version = None
        try:
            root = self.request("GET", "/")
            version_info = root.get("version", {}) if isinstance(root, dict) else {}
            version = version_info.get("number")
            engine = "opensearch" if version_info.get("distribution") == "opensearch" else "elasticsearch"
        except EngineError as exc:
            if exc.status not in (403, 405):  # the ES integ-test zip has no GET /
                raise
        modules: frozenset[str] = frozenset()
        try:
            nodes = self.request("GET", "/_nodes/plugins", params={"filter_path": "nodes.*.version,nodes.*.modules.name,nodes.*.plugins.name,nodes.*.build_type,nodes.*.build_flavor"})
            per_node = []
            for node in nodes.get("nodes", {}).values():
                version = version or node.get("version")
                per_node.append({m["name"] for m in node.get("modules", []) + node.get("plugins", [])})
            if per_node:
                modules = frozenset(set.intersection(*per_node))
        except EngineError as exc:
            if exc.status != 403:
                raise
        if engine is None:
            resp = self.session.get(self.url + "/_cluster/health", timeout=self.settings.timeout, verify=self.verify)
            engine = "elasticsearch" if resp.headers.get("X-elastic-product") == "Elasticsearch" else "opensearch"
        if not version:
            raise EngineError(f"could not read the version of the engine at {self.url}")
        self._info = EngineInfo(engine=engine, version=version, modules=modules)
        majors = SUPPORTED_MAJORS[engine]
        if self._info.major not in majors:
            logger.warning("%s %s is not a supported version (supported majors: %s)", engine, version, majors)
        return self._info

    # ------------------------------------------------------------- shortcuts
    def index_exists(self, index: str) -> bool:
        """Whether an index or alias exists."""
        try:
            resp = self.session.head(f"{self.url}/{index}", timeout=self.settings.timeout, verify=self.verify)
        except requests.RequestException as exc:
            raise EngineUnavailable(f"cannot reach {self.url}: {type(exc).__name__}") from None
        if resp.status_code in (200, 404):
            return resp.status_code == 200
        raise EngineError(f"HEAD /{index} -> HTTP {resp.status_code}", resp.status_code)

    def refresh(self, index: str) -> None:
        """Make recent writes searchable."""
        self.request("POST", f"/{index}/_refresh")

    def count(self, index: str, query: dict | None = None) -> int:
        """Number of documents matching ``query`` (all by default)."""
        body = {"query": query} if query else None
        return int(self.request("POST", f"/{index}/_count", body)["count"])

    def search(self, index: str, body: dict, params: dict | None = None) -> dict:
        """Run ``_search`` and return the raw response."""
        return self.request("POST", f"/{index}/_search", body, params=params)


def _error_reason(payload: Any) -> str:
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict):
            root = (err.get("root_cause") or [err])[0]
            return f"{root.get('type', 'error')}: {root.get('reason', '')}"[:500]
        if err:
            return str(err)[:500]
    return str(payload)[:500]
