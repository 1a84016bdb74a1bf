"""Which official client the CLI's connection settings build (no engine is contacted)."""

from __future__ import annotations

import pytest

from vistag.config import ConnectionSettings
from vistag.engine.connect import connect
from vistag.errors import ConfigError


def test_settings_build_the_right_client_with_their_auth():
    es = connect(
        ConnectionSettings(urls=("https://a:9200", "https://b:9200"), api_key="aWQ6a2V5"), engine="elasticsearch"
    )
    assert es.library == "elasticsearch" and len(es.raw.transport.node_pool.all()) == 2
    assert es.raw._headers["authorization"] == "ApiKey aWQ6a2V5"
    bearer = connect(ConnectionSettings(urls=("http://a:9200",), bearer_token="tok"), engine="opensearch")
    assert bearer.library == "opensearchpy" and bearer.raw.transport.kwargs["headers"]["Authorization"] == "Bearer tok"
    cloud = connect(ConnectionSettings(cloud_id="name:" + "ZXhhbXBsZS5jb20kYWJjJGRlZg=="))  # no probe: Elastic Cloud
    assert cloud.library == "elasticsearch"
    assert "aWQ6a2V5" not in repr(es) and "tok" not in repr(bearer)


def test_contradictory_settings_are_refused():
    with pytest.raises(ConfigError, match="needs an OpenSearch cluster"):
        connect(
            ConnectionSettings(urls=("http://a:9200",), aws_sigv4="es", aws_region="eu-west-1"), engine="elasticsearch"
        )
    with pytest.raises(ConfigError, match="needs an Elasticsearch cluster"):
        connect(ConnectionSettings(cloud_id="x:eA=="), engine="opensearch")
    with pytest.raises(ConfigError, match="needs --aws-region"):
        connect(ConnectionSettings(urls=("http://a:9200",), aws_sigv4="es"))
    with pytest.raises(ConfigError, match="no engine URL"):
        connect(ConnectionSettings())
