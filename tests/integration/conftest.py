"""Real local Elasticsearch and OpenSearch nodes for the integration tests.

One node per engine for the whole session (instance name ``pytest``, so a
developer's own node is never touched), started on first use and stopped at the
end; every test starts with no indices or vistag index templates.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_slice
from vistag.engine import EngineClient, LocalNode
from vistag.errors import EngineError

ENGINES = ("opensearch", "elasticsearch")
_NODES: dict[str, LocalNode] = {}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


def start_node(engine: str) -> LocalNode:
    """Start (once per session) and return the test node of ``engine``."""
    if engine not in _NODES:
        node = LocalNode(engine, heap="512m", name="pytest")
        node.start()
        _NODES[engine] = node
    return _NODES[engine]


@pytest.fixture(scope="session", autouse=True)
def _stop_nodes():
    yield
    for node in _NODES.values():
        node.stop()


def wipe(node: LocalNode) -> None:
    """Delete every non-system index and vistag index template (stored scripts stay; installs overwrite them)."""
    client = node.client()
    for index in client.indices("*"):
        if not index.startswith("."):
            client.delete_index(index)
    try:
        templates = client.perform("GET", "/_index_template/vistag-*")
    except EngineError:  # 404: none
        templates = {}
    for tpl in templates.get("index_templates", []):
        client.delete_index_template(tpl["name"])
    client.close()


@pytest.fixture(params=[pytest.param(e, marks=getattr(pytest.mark, e)) for e in ENGINES])
def node(request) -> LocalNode:
    """A running, empty node of each engine in turn."""
    node = start_node(request.param)
    if not node.health():
        node.restart()
    wipe(node)
    return node


@pytest.fixture
def client(node) -> EngineClient:
    """A client for :func:`node`."""
    return node.client()


@pytest.fixture(scope="session")
def small_catalog(tmp_path_factory, data_dir) -> tuple[Path, Path, list[dict]]:
    """60 real products spread over the catalog, with their images in a folder."""
    return write_slice(data_dir, tmp_path_factory.mktemp("catalog60"), 60)
