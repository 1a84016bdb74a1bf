"""The adapter's error mapping and retry policy, with both libraries' real exception types."""

from __future__ import annotations

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import ApiError, Elasticsearch
from elasticsearch import ConnectionError as ESConnectionError
from opensearchpy import OpenSearch, TransportError
from opensearchpy.exceptions import AuthenticationException
from opensearchpy.exceptions import ConnectionError as OSConnectionError

from vistag.engine.client import EngineClient, library_of
from vistag.engine.retry import RetryPolicy, map_error
from vistag.errors import ConfigError, EngineError, EngineUnavailable


def _es_error(status: int, body: dict) -> ApiError:
    meta = ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=HttpHeaders(),
        duration=0.0,
        node=NodeConfig("http", "127.0.0.1", 9200),
    )
    return ApiError("error", meta, body)


BODY = {"error": {"root_cause": [{"type": "index_not_found_exception", "reason": "no such index [x]"}]}, "status": 404}


@pytest.mark.parametrize("exc", [_es_error(404, BODY), TransportError(404, "index_not_found_exception", BODY)])
def test_http_errors_keep_status_and_root_cause(exc):
    error = map_error(exc, "GET x/_doc/1")
    assert type(error) is EngineError and error.status == 404
    assert str(error) == "GET x/_doc/1 -> HTTP 404: index_not_found_exception: no such index [x]"


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retryable_statuses_become_unavailable(status):
    assert isinstance(map_error(_es_error(status, {}), "x"), EngineUnavailable)
    assert isinstance(map_error(TransportError(status, "x", {}), "x"), EngineUnavailable)


def test_connection_errors_become_unavailable_and_auth_errors_say_so_without_secrets():
    assert isinstance(map_error(ESConnectionError("refused"), "x"), EngineUnavailable)
    assert isinstance(map_error(OSConnectionError("N/A", "refused", None), "x"), EngineUnavailable)
    error = map_error(AuthenticationException(401, "security_exception", {"error": "unable to authenticate"}), "GET /")
    assert error.status == 401 and "check the credentials" in str(error)
    assert map_error(ValueError("a bug"), "x") is None  # programming errors are not swallowed


def test_policy_retries_with_backoff_then_gives_up():
    pauses, calls = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise TransportError(503, "unavailable", {})
        return "done"

    assert RetryPolicy(max_retries=5, initial_backoff=0.2, sleep=pauses.append).call("x", flaky) == "done"
    assert len(calls) == 3 and len(pauses) == 2 and pauses[1] >= 0.2
    with pytest.raises(EngineUnavailable, match="giving up after 3 tries"):
        RetryPolicy(max_retries=2, sleep=lambda s: None).call(
            "x", lambda: (_ for _ in ()).throw(TransportError(429, "busy", {}))
        )
    with pytest.raises(EngineError, match="HTTP 400"):  # not retried
        RetryPolicy(max_retries=5, sleep=pauses.append).call(
            "x", lambda: (_ for _ in ()).throw(TransportError(400, "bad", {}))
        )


def test_adapter_accepts_only_official_clients_and_wraps_calls():
    assert library_of(Elasticsearch("http://127.0.0.1:9")) == "elasticsearch"
    assert library_of(OpenSearch("http://127.0.0.1:9")) == "opensearchpy"
    with pytest.raises(ConfigError, match="expected an elasticsearch.Elasticsearch or opensearchpy.OpenSearch"):
        EngineClient(object())

    class Missing(OpenSearch):
        def get(self, **kwargs):
            raise TransportError(404, "not_found", {"found": False})

    engine = EngineClient(Missing("http://127.0.0.1:9"), retry=RetryPolicy(max_retries=0))
    assert engine.get_source("products", "1") is None
    assert engine.label == "http://127.0.0.1:9"
