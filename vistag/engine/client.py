"""The one adapter between vistag and a cluster: the user's official client, wrapped.

vistag never opens its own HTTP connections to an engine. It takes an
``elasticsearch.Elasticsearch`` or an ``opensearchpy.OpenSearch`` object that the
user configured (hosts, auth, TLS, SigV4, retries, compression, ...) and calls its
methods; :mod:`vistag.engine.connect` builds one from a URL for the CLI. This
module is the only place that knows how the two libraries differ (``operations=``
vs ``body=``, ``searches=`` vs ``body=``, their exceptions) and which engine and
modules are behind them.

**One retry layer.** Every call goes through vistag's :class:`RetryPolicy`, so 429s,
502/503/504s and lost connections are retried with capped, jittered backoff
everywhere, not only in bulk -- and the client's own retries are switched off for
vistag's calls, so one call is tried at most ``max_retries + 1`` times (not the
product of both layers). The user's client object is never changed: vistag calls
through ``client.options(max_retries=0, retry_on_status=())`` (elasticsearch-py) or
through a shallow copy whose transport has ``max_retries = 0`` (opensearch-py), both
sharing the user's connection pool, auth, TLS and signer. A lost connection still
marks that node dead in the pool, so the next try goes to another node.

Examples:
    >>> from opensearchpy import OpenSearch                       # doctest: +SKIP
    >>> engine = EngineClient(OpenSearch("http://127.0.0.1:9200"))  # doctest: +SKIP
    >>> engine.info().engine                                       # doctest: +SKIP
    'opensearch'
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:  # pragma: no cover - the two libraries are imported only by the user
    from elasticsearch import Elasticsearch
    from opensearchpy import OpenSearch

from vistag.engine.retry import RetryPolicy
from vistag.errors import ConfigError, EngineError

logger = logging.getLogger(__name__)

#: What vistag accepts as "the client": the user's official client object, or vistag's own wrapper.
Client: TypeAlias = "Elasticsearch | OpenSearch | EngineClient"

#: Major versions vistag supports; others work with a warning.
SUPPORTED_MAJORS = {"opensearch": (2, 3), "elasticsearch": (8, 9)}


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


def library_of(client: object) -> str:
    """``elasticsearch`` or ``opensearchpy``: which official library ``client`` comes from.

    Raises:
        ConfigError: ``client`` is neither library's client.
    """
    for cls in type(client).__mro__:
        module = cls.__module__.split(".")[0]
        if cls.__name__ == "Elasticsearch" and module == "elasticsearch":
            return "elasticsearch"
        if cls.__name__ == "OpenSearch" and module == "opensearchpy":
            return "opensearchpy"
    raise ConfigError(
        f"expected an elasticsearch.Elasticsearch or opensearchpy.OpenSearch client, got {type(client).__name__}"
    )


class EngineClient:
    """vistag's view of one cluster, through the user's official client.

    Args:
        client: an ``Elasticsearch`` (8.x or 9.x) or ``OpenSearch`` (2.x or 3.x) object,
            or another :class:`EngineClient` (returned as is by :func:`as_engine`).
        retry: backoff for every call (bulk items have their own, see
            :mod:`vistag.indexer.bulk`).
        label: how messages name the cluster (never a secret); default: the first host.

    Examples:
        >>> from elasticsearch import Elasticsearch                      # doctest: +SKIP
        >>> engine = EngineClient(Elasticsearch("http://127.0.0.1:9200"))  # doctest: +SKIP
        >>> engine.count("products")                                      # doctest: +SKIP
        200
    """

    def __init__(self, client: Client, retry: RetryPolicy | None = None, label: str | None = None) -> None:
        self.library = library_of(client)
        self.user_client = client
        self.raw = without_client_retries(client, self.library)
        self.retry = retry or RetryPolicy()
        self.label = label or _first_host(client)
        self._info: EngineInfo | None = None

    def __repr__(self) -> str:
        return f"EngineClient({self.library}, {self.label!r})"

    # ------------------------------------------------------------------ plumbing
    def call(self, what: str, fn: Any, *args: Any, retry: RetryPolicy | None = None, **kwargs: Any) -> Any:
        """Call ``fn`` under the retry policy; unwrap elasticsearch's ``ObjectApiResponse`` to a dict."""
        result = (retry or self.retry).call(what, fn, *args, **kwargs)
        return getattr(result, "body", result)

    def perform(self, method: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        """A request the client has no method for (the only place vistag writes a REST path)."""
        what = f"{method} {path}"
        if self.library == "elasticsearch":
            headers = {"accept": "application/json"}
            if body is not None:
                headers["content-type"] = "application/json"
            return self.call(what, self.raw.perform_request, method, path, params=params, body=body, headers=headers)
        return self.call(what, self.raw.transport.perform_request, method, path, params=params, body=body)

    @property
    def _es(self) -> bool:
        return self.library == "elasticsearch"

    def _missing_ok(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """The call's result, or ``None`` when the engine answers 404."""
        try:
            return self.call(what, fn, *args, **kwargs)
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise

    # ------------------------------------------------------------------ metadata
    def info(self, refresh: bool = False) -> EngineInfo:
        """Detect the engine, its version and its modules (cached).

        Reads ``_nodes/plugins`` (both engines, and Elasticsearch 9 integ-test zips,
        whose ``GET /`` answers 405). Without the privilege to read it, the version
        comes from ``GET /`` and every module is assumed present.
        """
        if self._info is not None and not refresh:
            return self._info
        engine = "elasticsearch" if self._es else "opensearch"
        version = None
        modules: frozenset[str] = frozenset()
        try:
            nodes = self.call(
                "GET _nodes/plugins",
                self.raw.nodes.info,
                metric="plugins",
                filter_path="nodes.*.version,nodes.*.modules.name,nodes.*.plugins.name",
            )
            per_node = []
            for node in (nodes.get("nodes") or {}).values():
                version = version or node.get("version")
                per_node.append({m["name"] for m in node.get("modules", []) + node.get("plugins", [])})
            if per_node:
                modules = frozenset(set.intersection(*per_node))
        except EngineError as exc:
            if exc.status != 403:
                raise
            root = self.call("GET /", self.raw.info)
            version = (root.get("version") or {}).get("number")
        if not version:
            raise EngineError(f"could not read the version of the engine at {self.label}")
        if not self._es and "opensearch-knn" not in modules and any(m.startswith("x-pack") for m in modules):
            raise ConfigError(f"{self.label} is Elasticsearch: pass an elasticsearch.Elasticsearch client")
        self._info = EngineInfo(engine=engine, version=version, modules=modules)
        majors = SUPPORTED_MAJORS[engine]
        if self._info.major not in majors:
            logger.warning("%s %s is not a supported version (supported majors: %s)", engine, version, majors)
        return self._info

    @property
    def engine(self) -> str:
        """``elasticsearch`` or ``opensearch``."""
        return self.info().engine

    def cluster_health(self, timeout: str | None = None, wait_for_status: str | None = None) -> dict:
        """``GET _cluster/health``."""
        kwargs: dict[str, Any] = {k: v for k, v in (("timeout", timeout), ("wait_for_status", wait_for_status)) if v}
        if self._es:
            return self.call("GET _cluster/health", self.raw.cluster.health, **kwargs)
        # opensearch-py takes a `timeout` parameter as the HTTP timeout unless `request_timeout` is given too.
        params = {**kwargs, "request_timeout": 30} if timeout else kwargs
        return self.call("GET _cluster/health", self.raw.cluster.health, params=params or None)

    # ------------------------------------------------------------------ indices
    def index_exists(self, index: str) -> bool:
        """Whether an index or alias exists."""
        return bool(self.call(f"HEAD {index}", self.raw.indices.exists, index=index))

    def create_index(self, index: str, body: Mapping[str, Any] | None = None, exist_ok: bool = False) -> bool:
        """Create ``index``; returns False when it existed and ``exist_ok``.

        Raises:
            EngineError: any refusal, including "exists" unless ``exist_ok``.
        """
        try:
            if self._es:
                self.call(f"PUT {index}", self.raw.indices.create, index=index, **dict(body or {}))
            else:
                self.call(f"PUT {index}", self.raw.indices.create, index=index, body=dict(body or {}))
            return True
        except EngineError as exc:
            if exist_ok and exc.status == 400 and "resource_already_exists_exception" in str(exc):
                return False
            raise

    def delete_index(self, index: str, missing_ok: bool = True) -> None:
        """Delete an index (no error when it is missing and ``missing_ok``)."""
        fn = self._missing_ok if missing_ok else self.call
        fn(f"DELETE {index}", self.raw.indices.delete, index=index)

    def get_mapping(self, index: str) -> dict:
        """``GET <index>/_mapping`` (keys: concrete index names)."""
        return self.call(f"GET {index}/_mapping", self.raw.indices.get_mapping, index=index)

    def put_mapping(self, index: str, properties: Mapping[str, Any]) -> None:
        """Add fields to an index's mapping (``PUT <index>/_mapping``)."""
        if self._es:
            self.call(f"PUT {index}/_mapping", self.raw.indices.put_mapping, index=index, properties=dict(properties))
        else:
            self.call(
                f"PUT {index}/_mapping",
                self.raw.indices.put_mapping,
                index=index,
                body={"properties": dict(properties)},
            )

    def refresh(self, index: str) -> None:
        """Make recent writes searchable."""
        self.call(f"POST {index}/_refresh", self.raw.indices.refresh, index=index)

    def indices(self, pattern: str) -> list[str]:
        """Names of the open indices matching ``pattern`` (empty when none)."""
        resp = self._missing_ok(
            f"GET {pattern}",
            self.raw.indices.get,
            index=pattern,
            allow_no_indices=True,
            expand_wildcards="open",
            ignore_unavailable=True,
        )
        return sorted(resp or {})

    def put_index_template(self, name: str, body: Mapping[str, Any]) -> None:
        """Create or replace a composable index template."""
        if self._es:
            self.call(f"PUT _index_template/{name}", self.raw.indices.put_index_template, name=name, **dict(body))
        else:
            self.call(f"PUT _index_template/{name}", self.raw.indices.put_index_template, name=name, body=dict(body))

    def get_index_template(self, name: str) -> dict | None:
        """The body of index template ``name``, or ``None``."""
        resp = self._missing_ok(f"GET _index_template/{name}", self.raw.indices.get_index_template, name=name)
        for tpl in (resp or {}).get("index_templates", []):
            if tpl.get("name") == name:
                return tpl.get("index_template")
        return None

    def delete_index_template(self, name: str) -> None:
        """Delete an index template (no error when missing)."""
        self._missing_ok(f"DELETE _index_template/{name}", self.raw.indices.delete_index_template, name=name)

    # ------------------------------------------------------------------ aliases
    def alias_targets(self, alias: str) -> list[str]:
        """Indices ``alias`` points to (empty when it is not an alias)."""
        resp = self._missing_ok(f"GET _alias/{alias}", self.raw.indices.get_alias, name=alias)
        return sorted(k for k, v in (resp or {}).items() if isinstance(v, dict) and "aliases" in v)

    def update_aliases(self, actions: Sequence[Mapping[str, Any]]) -> None:
        """One atomic ``POST _aliases``."""
        if self._es:
            self.call("POST _aliases", self.raw.indices.update_aliases, actions=list(actions))
        else:
            self.call("POST _aliases", self.raw.indices.update_aliases, body={"actions": list(actions)})

    # ------------------------------------------------------------------ scripts
    def put_script(self, script_id: str, source: str, lang: str = "mustache") -> None:
        """Store a search template (or any script)."""
        script = {"lang": lang, "source": source}
        if self._es:
            self.call(f"PUT _scripts/{script_id}", self.raw.put_script, id=script_id, script=script)
        else:
            self.call(f"PUT _scripts/{script_id}", self.raw.put_script, id=script_id, body={"script": script})

    def get_script(self, script_id: str) -> str | None:
        """The source of a stored script, or ``None``."""
        resp = self._missing_ok(f"GET _scripts/{script_id}", self.raw.get_script, id=script_id)
        if not resp or not resp.get("found", True):
            return None
        return (resp.get("script") or {}).get("source")

    def put_search_pipeline(self, pipeline_id: str, body: Mapping[str, Any]) -> None:
        """Store a search pipeline (OpenSearch)."""
        if self._es:
            raise EngineError("search pipelines are an OpenSearch feature")
        self.call(f"PUT _search/pipeline/{pipeline_id}", self.raw.search_pipeline.put, id=pipeline_id, body=dict(body))

    def get_search_pipeline(self, pipeline_id: str) -> dict | None:
        """A stored search pipeline's body, or ``None`` (OpenSearch)."""
        if self._es:
            return None
        resp = self._missing_ok(f"GET _search/pipeline/{pipeline_id}", self.raw.search_pipeline.get, id=pipeline_id)
        return (resp or {}).get(pipeline_id)

    # ------------------------------------------------------------------ reading
    def search(self, index: str, body: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> dict:
        """``POST <index>/_search`` with a full body."""
        return self.call(f"POST {index}/_search", self.raw.search, index=index, body=dict(body), **dict(params or {}))

    def search_template(self, index: str, template_id: str, params: Mapping[str, Any]) -> dict:
        """Run a stored search template, as a storefront would."""
        body: dict[str, Any] = {"id": template_id, "params": dict(params)}
        if self._es:
            return self.call(f"POST {index}/_search/template", self.raw.search_template, index=index, **body)
        return self.call(f"POST {index}/_search/template", self.raw.search_template, index=index, body=body)

    def msearch(self, searches: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict]:
        """Several searches in one ``_msearch``: ``(index, body)`` pairs -> one response each."""
        lines: list[Mapping[str, Any]] = []
        for index, body in searches:
            lines.extend(({"index": index}, body))
        if self._es:
            resp = self.call("POST _msearch", self.raw.msearch, searches=lines)
        else:
            resp = self.call("POST _msearch", self.raw.msearch, body=lines)
        return resp["responses"]

    def existing_ids(self, index: str, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are documents of ``index`` (one ``_mget``, no sources)."""
        if not ids:
            return set()
        if self._es:
            resp = self.call(f"POST {index}/_mget", self.raw.mget, index=index, ids=list(ids), source=False)
        else:
            resp = self.call(
                f"POST {index}/_mget", self.raw.mget, index=index, body={"ids": list(ids)}, params={"_source": "false"}
            )
        return {d["_id"] for d in resp.get("docs", []) if d.get("found")}

    def sources(self, index: str, ids: Sequence[str]) -> dict[str, dict]:
        """The ``_source`` of each of ``ids`` that exists (one ``_mget``)."""
        if not ids:
            return {}
        if self._es:
            resp = self.call(f"POST {index}/_mget", self.raw.mget, index=index, ids=list(ids))
        else:
            resp = self.call(f"POST {index}/_mget", self.raw.mget, index=index, body={"ids": list(ids)})
        return {d["_id"]: d.get("_source", {}) for d in resp.get("docs", []) if d.get("found")}

    def get_source(self, index: str, doc_id: str, includes: Sequence[str] | None = None) -> dict | None:
        """The ``_source`` of one document (only ``includes`` fields), or ``None`` when missing."""
        kwargs: dict[str, Any] = {"index": index, "id": doc_id}
        if includes:
            if self._es:
                kwargs["source_includes"] = list(includes)
            else:
                kwargs["params"] = {"_source_includes": ",".join(includes)}
        resp = self._missing_ok(f"GET {index}/_doc/{doc_id}", self.raw.get, **kwargs)
        return resp.get("_source", {}) if resp and resp.get("found") else None

    def count(self, index: str, query: Mapping[str, Any] | None = None) -> int:
        """Number of documents matching ``query`` (all by default)."""
        if self._es:
            kwargs: dict[str, Any] = {"query": dict(query)} if query else {}
            return int(self.call(f"POST {index}/_count", self.raw.count, index=index, **kwargs)["count"])
        body = {"query": dict(query)} if query else None
        return int(self.call(f"POST {index}/_count", self.raw.count, index=index, body=body)["count"])

    def scan(
        self, index: str, query: Mapping[str, Any] | None = None, size: int = 500, sort_field: str = "id"
    ) -> Iterator[dict[str, Any]]:
        """Every matching hit of ``index`` (``_id``, ``_source``), page by page with ``search_after``.

        A page is one search sorted by ``sort_field`` (vistag's documents keep their
        unique product id in the ``id`` keyword) after the last value of the page
        before: retrying a page that failed, or whose answer was lost, asks the same
        question again, so no document is skipped or repeated (a scroll retried in
        the middle can do both, so vistag does not scroll).

        Args:
            index: the index or alias.
            query: a search body (``query``, ``_source``); default every document.
            size: hits per page.
            sort_field: a keyword field, unique per document, present in every one.

        Raises:
            EngineError: a document without ``sort_field``.
        """
        body: dict[str, Any] = {"query": {"match_all": {}}, **dict(query or {})}
        body.update(size=size, sort=[{sort_field: "asc"}], track_total_hits=False)
        while True:
            hits = self.search(index, body)["hits"]["hits"]
            yield from hits
            if len(hits) < size:
                return
            last = hits[-1].get("sort") or [None]
            if last[0] is None:
                raise EngineError(
                    f"document {hits[-1].get('_id')!r} of {index!r} has no {sort_field!r}: vistag reads "
                    f"an index page by page sorted on that unique keyword"
                )
            body["search_after"] = last

    # ------------------------------------------------------------------ writing
    def bulk(
        self,
        body: bytes,
        refresh: str | None = None,
        pipeline: str | None = None,
        routing: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> dict:
        """Send one NDJSON ``_bulk`` body (already encoded) and return the response.

        By default the request itself is not retried here: the bulk layer retries
        whole requests and single items (see :mod:`vistag.indexer.bulk`).
        """
        params = {k: v for k, v in (("refresh", refresh), ("pipeline", pipeline), ("routing", routing)) if v}
        policy = retry or RetryPolicy(max_retries=0)
        if self._es:
            return self.call("POST _bulk", self.raw.bulk, operations=body, retry=policy, **params)
        return self.call("POST _bulk", self.raw.bulk, body=body, params=params or None, retry=policy)

    def reindex(self, source: str, dest: str) -> dict:
        """Server-side ``_reindex`` (needs the engine's ``reindex`` module); waits for completion."""
        body: dict[str, Any] = {"source": {"index": source}, "dest": {"index": dest}}
        if self._es:
            return self.call(
                f"POST _reindex {source}->{dest}", self.raw.reindex, wait_for_completion=True, refresh=True, **body
            )
        return self.call(
            f"POST _reindex {source}->{dest}",
            self.raw.reindex,
            body=body,
            params={"wait_for_completion": "true", "refresh": "true"},
        )

    def close(self) -> None:
        """Close the wrapped client's connections (only when vistag built it; see :func:`as_engine`)."""
        self.user_client.close()


def as_engine(client: Client, retry: RetryPolicy | None = None) -> EngineClient:
    """An :class:`EngineClient` for a user's client (an ``EngineClient`` is returned as is).

    Examples:
        >>> from opensearchpy import OpenSearch                              # doctest: +SKIP
        >>> as_engine(OpenSearch("http://127.0.0.1:9200")).engine             # doctest: +SKIP
        'opensearch'
    """
    if isinstance(client, EngineClient):
        return client
    return EngineClient(client, retry=retry)


def without_client_retries(client: Any, library: str | None = None) -> Any:
    """The user's client with its own retries switched off (vistag's :class:`RetryPolicy` owns them).

    elasticsearch-py: ``client.options(max_retries=0, retry_on_status=())``. opensearch-py
    has no ``options()``: a shallow copy of the client whose (copied) transport has
    ``max_retries = 0`` and no retry statuses, sharing the connection pool (hosts, auth,
    TLS, signer), with its namespaces (``indices``, ``cluster``, ...) bound to the copy.
    The user's object is left as it was.
    """
    library = library or library_of(client)
    if library == "elasticsearch":
        return client.options(max_retries=0, retry_on_status=(), retry_on_timeout=False)
    from opensearchpy.client.utils import NamespacedClient

    clone = copy.copy(client)
    transport = copy.copy(client.transport)
    transport.max_retries = 0
    transport.retry_on_status = ()
    transport.retry_on_timeout = False
    clone.transport = transport
    with warnings.catch_warnings():  # the plugins namespace warns that the copy already has its namespaces
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, value in vars(client).items():
            if isinstance(value, NamespacedClient):
                setattr(clone, name, type(value)(clone))
    return clone


def _first_host(client: Any) -> str:
    """The first node's address, for messages (no credentials)."""
    try:
        if hasattr(client, "transport") and hasattr(client.transport, "node_pool"):  # elastic-transport
            node = client.transport.node_pool.all()[0]
            return node.base_url
        hosts = getattr(client.transport, "hosts", None) or []  # opensearch-py
        if hosts:
            host = hosts[0]
            scheme = "https" if host.get("use_ssl") or host.get("scheme") == "https" else "http"
            return f"{scheme}://{host.get('host', 'localhost')}:{host.get('port', 9200)}"
    except Exception:
        pass
    return "the cluster"
