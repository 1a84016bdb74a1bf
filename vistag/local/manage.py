"""What ``vistag engine install|start|stop|status|url`` do: one local node, or a cluster of several, plain or secured.

Examples:
    >>> started = start_engine("opensearch")          # doctest: +SKIP
    >>> started.urls                                  # doctest: +SKIP
    ['http://127.0.0.1:49213']
    >>> stop_engine("opensearch")                     # doctest: +SKIP
    ['opensearch: node stopped']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vistag.config import vistag_home
from vistag.errors import LocalEngineError
from vistag.local.cluster import CLUSTER_HEAP, ClusterStatus, LocalCluster
from vistag.local.node import DEFAULT_HEAP, LocalNode, NodeStatus
from vistag.local.security import SecureSetup


@dataclass(frozen=True)
class LocalEngine:
    """Which local engine: ``vistag engine`` flags as one value.

    Attributes:
        engine: ``opensearch`` or ``elasticsearch``.
        version: another pinned line (``"3"``, ``"9.5.0"``); ``None``: the default line.
        extras: optional plugin sets (``ml``, ``security``; OpenSearch).
        secure: TLS and internal users with least-privilege roles.
        nodes: 1 for a single node, more for a cluster on loopback.
        heap: JVM heap per node (default 1g, 768m per member of a cluster).
        name: instance name: nodes of different names run side by side (tests use their own).
    """

    engine: str = "opensearch"
    version: str | None = None
    extras: tuple[str, ...] = ()
    secure: bool = False
    nodes: int = 1
    heap: str | None = None
    name: str = "default"

    def setup(self) -> SecureSetup | None:
        """The secured node's certificates and passwords (made on first use), or ``None``."""
        if not self.secure:
            return None
        from vistag.local.security import load_or_create_setup

        return load_or_create_setup(vistag_home() / "security" / self.engine)

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"extras": tuple(self.extras), "version": self.version, "name": self.name}
        setup = self.setup()
        if setup is not None:
            from vistag.local.security import secure_options

            options.update(secure_options(self.engine, setup), name="secure")
            if self.engine == "opensearch":
                options["extras"] = tuple(sorted({*self.extras, "security"}))
        return options

    def node(self) -> LocalNode:
        """The single node."""
        return LocalNode(self.engine, heap=self.heap or DEFAULT_HEAP, **self._options())

    def cluster(self, running_only: bool = True) -> LocalCluster | None:
        """The cluster: of ``nodes`` members when more than one, else the one running (if any)."""
        if self.nodes > 1:
            return LocalCluster(self.engine, nodes=self.nodes, heap=self.heap or CLUSTER_HEAP, **self._options())
        return LocalCluster.find(self.engine, **self._options()) if running_only else None


@dataclass
class StartedEngine:
    """What :func:`start_engine` started.

    Attributes:
        urls: the node URLs.
        setup: for a secured node, where its CA certificate and passwords are.
        dropped: the index whose data was removed (``drop_index``), if any.
    """

    urls: list[str]
    setup: SecureSetup | None = None
    dropped: str | None = None


@dataclass
class EngineStatus:
    """What :func:`engine_status` found: the single node, and a cluster if one is recorded."""

    node: NodeStatus
    cluster: ClusterStatus | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        out: dict[str, Any] = dict(self.node.__dict__)
        if self.cluster is not None:
            out["cluster"] = {**self.cluster.__dict__, "nodes": [n.__dict__ for n in self.cluster.nodes]}
        return out


def install_engine(local: LocalEngine) -> Path:
    """Download (checksum-verified) and lay out the distribution without starting it; returns its folder."""
    return local.node().install()


def start_engine(local: LocalEngine, *, port: int | None = None, drop_index: str | None = None) -> StartedEngine:
    """Start the node (or cluster), or reuse the running one, and wait until it is healthy.

    Args:
        local: which engine.
        port: the HTTP port of a single node (default: a free one).
        drop_index: remove this index's data before starting and delete it once the node
            runs (the way out of an index that kills the node at start).

    Raises:
        LocalEngineError: no Java, a port in use, or the node did not start (with the cause
            found in its log and the way out).
    """
    node = local.node()
    if drop_index:
        if local.nodes > 1:
            raise LocalEngineError("--drop-index works on a single node")
        node.stop()
        if not node.drop_index_data(drop_index):
            raise LocalEngineError(f"no data of an index {drop_index!r} found in {node.run_dir}")
    if local.nodes > 1:
        cluster = local.cluster()
        assert cluster is not None
        return StartedEngine(cluster.start(), local.setup())
    url = node.start(port=port)
    if drop_index:
        client = node.client()
        try:
            client.delete_index(drop_index)
        finally:
            client.close()
    return StartedEngine([url], local.setup(), drop_index)


def stop_engine(local: LocalEngine) -> list[str]:
    """Stop the node and any recorded cluster; one line per thing stopped or not running."""
    node = local.node()
    lines = [f"{local.engine}: node {'stopped' if node.stop() else 'not running'}"]
    cluster = local.cluster()
    if cluster is not None:
        lines.append(f"{local.engine}: {cluster.size}-node cluster {'stopped' if cluster.stop() else 'not running'}")
    return lines


def engine_status(local: LocalEngine) -> EngineStatus:
    """The node's state, and the recorded cluster's."""
    cluster = local.cluster()
    return EngineStatus(local.node().status(), cluster.status() if cluster else None)


def engine_url(local: LocalEngine) -> str | None:
    """The URL of the running cluster or node, or ``None``."""
    cluster = local.cluster()
    return (cluster.url if cluster else None) or local.node().url


def local_urls(engine: str) -> list[str]:
    """The URLs of the running local cluster of ``engine``, else of its node (empty when none runs).

    The CLI connects there when no ``--url`` is given.
    """
    cluster = LocalCluster.find(engine)
    return (cluster.urls if cluster else []) or [u for u in [LocalNode(engine).url] if u]
