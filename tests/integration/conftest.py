"""Real local Elasticsearch and OpenSearch nodes for the integration tests.

One node per engine for the whole session (instance name ``pytest``, so a
developer's own node is never touched), started on first use and stopped at the
end; every test starts with no indices or vistag index templates.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_slice
from vistag.engine import EngineClient
from vistag.errors import EngineError
from vistag.local.cluster import LocalCluster
from vistag.local.node import LocalNode

ENGINES = ("opensearch", "elasticsearch")
#: Every test with the ``node`` fixture runs on each line: the defaults and the current majors
#: (OpenSearch 3, Elasticsearch 9; they need Java 21+ and are skipped, with the reason, without it).
LINES = (("opensearch", None), ("elasticsearch", None), ("opensearch", "3.6.0"), ("elasticsearch", "9.5.0"))
_NODES: dict[tuple[str, str | None], LocalNode] = {}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


def start_node(engine: str, version: str | None = None) -> LocalNode:
    """Start (once per session) and return the test node of ``engine`` (of ``version``'s line)."""
    key = (engine, version)
    if key not in _NODES:
        if version is not None:
            from vistag.errors import LocalEngineError
            from vistag.local.java import find_java_home
            from vistag.local.versions import distribution

            try:
                find_java_home(distribution(engine, version).min_java)
            except LocalEngineError as exc:
                pytest.skip(f"{engine} {version} needs a newer Java than this machine has: {exc}")
        node = LocalNode(engine, heap="512m", name="pytest", version=version)
        node.start()
        _NODES[key] = node
    return _NODES[key]


@pytest.fixture(scope="session", autouse=True)
def _stop_nodes():
    yield
    for node in _NODES.values():
        node.stop()


def wipe(node: LocalNode | LocalCluster) -> None:
    """Delete every non-system index, vistag index template, stored script (search template) and vistag
    search pipeline of a node or cluster: each test starts from nothing and leaves nothing behind."""
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
    state = client.perform("GET", "/_cluster/state/metadata", params={"filter_path": "metadata.stored_scripts"})
    for script_id in (state.get("metadata") or {}).get("stored_scripts") or {}:
        client.perform("DELETE", f"/_scripts/{script_id}")
    if client.engine == "opensearch":
        try:
            pipelines = client.perform("GET", "/_search/pipeline/vistag-*")
        except EngineError:  # 404: none
            pipelines = {}
        for pipeline_id in pipelines:
            client.perform("DELETE", f"/_search/pipeline/{pipeline_id}")
    client.close()


@pytest.fixture(
    params=[
        pytest.param(
            line, marks=getattr(pytest.mark, line[0]), id=line[0] if line[1] is None else f"{line[0]}-{line[1]}"
        )
        for line in LINES
    ]
)
def node(request) -> Iterator[LocalNode]:
    """A running, empty node of each engine line in turn, emptied again after the test."""
    node = start_node(*request.param)
    if not node.health():
        node.restart()
    wipe(node)
    yield node
    if node.health():
        wipe(node)


@pytest.fixture
def client(node) -> Iterator[EngineClient]:
    """A client for :func:`node`."""
    client = node.client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def small_catalog(tmp_path_factory, data_dir) -> tuple[Path, Path, list[dict]]:
    """60 real products spread over the catalog, with their images in a folder."""
    return write_slice(data_dir, tmp_path_factory.mktemp("catalog60"), 60)
