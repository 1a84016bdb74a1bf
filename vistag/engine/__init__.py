"""The adapter over the user's official client: calls, retries and every difference between Elasticsearch and
OpenSearch.

:class:`~vistag.engine.client.EngineClient` wraps an ``elasticsearch.Elasticsearch``
or ``opensearchpy.OpenSearch`` object; :class:`~vistag.engine.retry.RetryPolicy` is
the one retry layer; :class:`~vistag.engine.adapter.EngineAdapter` holds the mapping
and query syntax that differs between the engines; :mod:`~vistag.engine.connect`
builds a client from a URL for the CLI; :mod:`~vistag.engine.roles` writes down the
least-privilege roles.
"""

from vistag.engine.client import EngineClient, EngineInfo, as_engine
from vistag.engine.retry import RetryPolicy

__all__ = ["EngineClient", "EngineInfo", "RetryPolicy", "as_engine"]
