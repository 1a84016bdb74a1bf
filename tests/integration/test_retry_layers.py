"""One retry layer: vistag's policy retries, the client's own retries are off for vistag's calls, and a
read that is retried never skips or repeats a document."""

from __future__ import annotations

import json

import pytest

from tests.integration.proxy import ForwardingProxy
from vistag.engine.client import EngineClient
from vistag.engine.retry import RetryPolicy
from vistag.errors import EngineUnavailable

UNAVAILABLE = (503, json.dumps({"error": {"type": "unavailable", "reason": "busy"}, "status": 503}).encode())


def _user_client(engine: str, url: str):
    """A client as a user builds it, with the library's default retries (3, on 502/503/504)."""
    if engine == "elasticsearch":
        from elasticsearch import Elasticsearch

        return Elasticsearch(url, retry_on_status=(502, 503, 504), max_retries=3)
    from opensearchpy import OpenSearch

    return OpenSearch([url], max_retries=3, retry_on_status=(502, 503, 504))


def test_a_call_is_tried_max_retries_plus_one_times_not_the_product_of_two_layers(node):
    engine = node.engine
    client = node.client()
    client.create_index("retry-layers")
    client.close()
    with ForwardingProxy(node.url, lambda m, path, h, b: UNAVAILABLE if "_count" in path else None) as proxy:
        user = _user_client(engine, proxy.url)
        vistag_client = EngineClient(user, retry=RetryPolicy(max_retries=2, initial_backoff=0.01, max_backoff=0.02))
        with pytest.raises(EngineUnavailable, match="giving up after 3 tries"):
            vistag_client.count("retry-layers")
        assert len([p for p in proxy.paths(intercepted=True) if "_count" in p]) == 3  # 3 x 4 with both layers
        # the user's own client keeps its settings, and retries for the user as configured
        assert len([p for p in proxy.paths() if "_count" in p]) == 3
        with pytest.raises(Exception, match="503|unavailable"):  # the library's own error class
            user.count(index="retry-layers")
        assert len([p for p in proxy.paths() if "_count" in p]) == 3 + 4
        user.close()


def _flaky(method, fail_on: set[int]):
    """``method``, but on the calls numbered in ``fail_on`` the request is answered and the answer is lost."""
    calls = {"n": 0}

    def call(*args, **kwargs):
        calls["n"] += 1
        result = method(*args, **kwargs)
        if calls["n"] in fail_on:
            module = type(method.__self__).__module__.split(".")[0]
            if module == "elasticsearch":
                from elastic_transport import ConnectionError as Lost

                raise Lost("connection reset after the answer was sent")
            from opensearchpy import ConnectionError as Lost  # type: ignore[assignment]

            raise Lost("N/A", "connection reset after the answer was sent", None)
        return result

    return call


def test_a_scan_retried_mid_way_yields_every_document_exactly_once(node):
    client = node.client()
    client.create_index("scan-retry", {"mappings": {"properties": {"id": {"type": "keyword"}}}})
    body = b"".join(b'{"index":{"_index":"scan-retry","_id":"%d"}}\n{"id":"%d"}\n' % (i, i) for i in range(23))
    client.bulk(body, refresh="true")
    engine = EngineClient(client.raw, retry=RetryPolicy(max_retries=3, initial_backoff=0.01, max_backoff=0.02))
    # the 2nd and 4th page requests reach the node but their answers are lost; scroll requests too, should any be made
    for name in ("search", "scroll"):
        setattr(engine.raw, name, _flaky(getattr(engine.raw, name), {2, 4}))
    ids = [hit["_id"] for hit in engine.scan("scan-retry", size=5)]
    assert sorted(ids, key=int) == [str(i) for i in range(23)]  # none skipped, none twice
    client.close()
