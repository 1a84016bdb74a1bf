import socket

import pytest

from vistag.errors import LocalEngineError
from vistag.local.node import LocalNode


def test_detects_engine_version_and_modules(node, client):
    info = client.info()
    assert info.engine == node.engine
    assert info.version == node.dist.version
    if node.engine == "opensearch":
        assert {"opensearch-knn", "mapper-extras", "lang-mustache", "analysis-common"} <= info.modules
    else:  # the integ-test zip: x-pack core and security, none of the modules vistag adapts to
        assert {"x-pack-core", "x-pack-security"} <= info.modules
        assert not {"mapper-extras", "lang-mustache", "analysis-common"} & info.modules


def test_start_twice_reuses_the_running_node(node):
    again = LocalNode(node.engine, heap="512m", name="pytest", version=node.dist.version)
    assert again.start() == node.url
    status = again.status()
    assert status.running and status.health in ("green", "yellow")


def test_taken_port_is_a_clear_error(node):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(LocalEngineError, match=f"port {port} .* already in use"):
            LocalNode(node.engine, name="porttest", version=node.dist.version).start(port=port)
