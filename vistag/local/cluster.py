"""A local cluster of several nodes of one engine on loopback (tests, demos, fault drills).

Each member is a :class:`~vistag.local.node.LocalNode` with its own run folder
(config, data, logs) inside the cluster's, its own HTTP and transport ports, and
the same cluster name. The cluster forms through seed hosts (every member's
transport port) and the list of initial cluster-manager (master) nodes; the
first formation is the only time that list is read, so a member that comes back
after a crash rejoins on its own transport port.

``cluster.json`` in the cluster's folder records the members; ``vistag engine
status``/``stop``/``url`` find a running cluster from it.

Examples:
    >>> cluster = LocalCluster("opensearch", nodes=3)       # doctest: +SKIP
    >>> urls = cluster.start()                              # doctest: +SKIP
    >>> cluster.members[1].kill(); cluster.members[1].restart()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vistag.config import vistag_home
from vistag.engine.client import EngineClient
from vistag.engine.retry import RetryPolicy
from vistag.errors import LocalEngineError
from vistag.local.host import engine_user, engines_home, free_port, tail
from vistag.local.node import AfterLaunch, Configure, LocalNode, NodeStatus
from vistag.local.versions import DISTRIBUTIONS, distribution

logger = logging.getLogger(__name__)

#: Heap per node of a local cluster: three nodes and a client fit a 24 GB, 2-core machine.
CLUSTER_HEAP = "768m"


@dataclass(frozen=True)
class ClusterStatus:
    """What ``vistag engine status`` reports for a cluster."""

    engine: str
    version: str
    nodes: list[NodeStatus]
    health: str | None
    number_of_nodes: int | None
    home: str


class LocalCluster:
    """``nodes`` local nodes of one engine forming one cluster.

    Args:
        engine: ``opensearch`` or ``elasticsearch``.
        nodes: how many nodes (2 or more; every one is cluster-manager eligible and holds data).
        home: ``$VISTAG_HOME``.
        heap: JVM heap per node.
        name: cluster instance name (the tests use their own).
        settings: extra ``-E`` settings for every node.
        configure: called per member with ``(config_dir, env)`` before it starts.
        scheme: as for :class:`~vistag.local.node.LocalNode` (a secured cluster).
        auth: as for :class:`~vistag.local.node.LocalNode`.
        ca_cert: as for :class:`~vistag.local.node.LocalNode`.
        extras: as for :class:`~vistag.local.node.LocalNode`.
        version: as for :class:`~vistag.local.node.LocalNode`.
        after_launch: as for :class:`~vistag.local.node.LocalNode`; it runs once, on the first member,
            after every member is launched.
    """

    def __init__(
        self,
        engine: str,
        nodes: int = 3,
        home: Path | None = None,
        heap: str = CLUSTER_HEAP,
        name: str = "default",
        settings: dict[str, str | None] | None = None,
        configure: Configure | None = None,
        scheme: str = "http",
        auth: tuple[str, str] | None = None,
        ca_cert: str | None = None,
        extras: tuple[str, ...] = (),
        version: str | None = None,
        after_launch: AfterLaunch | None = None,
    ) -> None:
        if nodes < 2:
            raise LocalEngineError(f"a cluster needs at least 2 nodes, not {nodes} (one node: `vistag engine start`)")
        try:
            dist = distribution(engine, version)
        except KeyError as exc:
            raise LocalEngineError(str(exc.args[0])) from None
        home = Path(home) if home else vistag_home()
        self.engine = engine
        self.version = dist.version
        self.run_dir = self._run_dir(engine, home, version, extras, name)
        self.cluster_name = f"vistag-{self.run_dir.name}"
        self.state_file = self.run_dir / "cluster.json"
        state = self._read_state()
        self.size = nodes
        self.node_names = [f"{self.cluster_name}-{i}" for i in range(1, self.size + 1)]
        self._member_args: dict[str, Any] = {
            "engine": engine,
            "home": home,
            "heap": heap,
            "configure": configure,
            "scheme": scheme,
            "auth": auth,
            "ca_cert": ca_cert,
            "extras": extras,
            "version": version,
            "after_launch": after_launch,
        }
        self._settings = dict(settings or {})
        self.members = [self._member(i, state) for i in range(self.size)]

    @staticmethod
    def _run_dir(engine: str, home: Path, version: str | None, extras: tuple[str, ...], name: str) -> Path:
        dist = distribution(engine, version)
        line = "" if dist is DISTRIBUTIONS[engine] else f"-{dist.version}"
        extras_suffix = "".join(f"-{e}" for e in sorted(set(extras)))
        base = engine if name == "default" else f"{engine}-{name}"
        return engines_home(home, engine_user()) / "run" / f"{base}{line}{extras_suffix}-cluster"

    @classmethod
    def find(
        cls,
        engine: str,
        home: Path | None = None,
        version: str | None = None,
        extras: tuple[str, ...] = (),
        name: str = "default",
        **kwargs: Any,
    ) -> LocalCluster | None:
        """The cluster recorded for ``engine`` (its line, extras and name) below ``home``, or ``None``."""
        try:
            run_dir = cls._run_dir(engine, Path(home) if home else vistag_home(), version, extras, name)
            state = json.loads((run_dir / "cluster.json").read_text())
        except (KeyError, OSError, ValueError):
            return None
        return cls(engine, nodes=int(state["nodes"]), home=home, version=version, extras=extras, name=name, **kwargs)

    # ------------------------------------------------------------------ state
    def _read_state(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None

    def _member(self, i: int, state: dict | None) -> LocalNode:
        ports = (state or {}).get("transport_ports") or []
        seeds = ",".join(f"127.0.0.1:{p}" for p in ports) if ports else None
        settings: dict[str, str | None] = {
            "cluster.name": self.cluster_name,
            "node.name": self.node_names[i],
            "discovery.type": None,
            "discovery.seed_hosts": seeds,
            # The first formation only; ignored once the cluster has formed.
            (
                "cluster.initial_cluster_manager_nodes"
                if self.engine == "opensearch"
                else "cluster.initial_master_nodes"
            ): ",".join(self.node_names),
            **self._settings,
        }
        return LocalNode(
            name=f"cluster-{i + 1}", settings=settings, run_dir=self.run_dir / f"node-{i + 1}", **self._member_args
        )

    @property
    def urls(self) -> list[str]:
        """URLs of the members that are running, in member order."""
        return [u for u in (m.url for m in self.members) if u]

    @property
    def url(self) -> str | None:
        """The running members' URLs, comma-separated (what ``--url`` and ``VISTAG_URL`` take), or ``None``."""
        return ",".join(self.urls) or None

    def client(self, retry: RetryPolicy | None = None, timeout: float = 60.0) -> EngineClient:
        """An :class:`~vistag.engine.client.EngineClient` with every running member's address."""
        urls = self.urls
        if not urls:
            raise LocalEngineError(
                f"the local {self.engine} cluster is not running: "
                f"`vistag engine start --engine {self.engine} --nodes {self.size}`"
            )
        return self.members[0].client(urls, retry, timeout)

    def health(self, wait_for: str | None = None, timeout: float = 2.0) -> dict | None:
        """``_cluster/health`` through any running member, or ``None`` when none answers."""
        return self.members[0].health_report(self.urls, timeout, wait_for)

    def status(self) -> ClusterStatus:
        """Every member's status and the cluster's health; starts nothing."""
        health = self.health() or {}
        return ClusterStatus(
            engine=self.engine,
            version=self.version,
            nodes=[m.status() for m in self.members],
            health=health.get("status"),
            number_of_nodes=health.get("number_of_nodes"),
            home=str(self.run_dir),
        )

    # ------------------------------------------------------------ start / stop
    def start(self, timeout: float = 240.0) -> list[str]:
        """Start every member (or reuse the running cluster) and wait for green with all nodes joined.

        Returns:
            The members' URLs.

        Raises:
            LocalEngineError: a member exited, or the cluster was not green with every node within ``timeout``.
        """
        if len(self.urls) == self.size and (self.health() or {}).get("number_of_nodes") == self.size:
            logger.info("reusing the running %s cluster at %s", self.engine, self.url)
            return self.urls
        self.stop()
        self.members[0].install()
        state = self._read_state()
        if state and int(state["nodes"]) != self.size:
            # Data of a cluster of another size cannot form this one: a local cluster is scratch, start afresh.
            logger.warning(
                "the local %s cluster had %s nodes, not %d: its data is removed", self.engine, state["nodes"], self.size
            )
            shutil.rmtree(self.run_dir, ignore_errors=True)
            state = None
        if not state:  # ports are chosen once, so members restart where the others look for them
            state = {
                "nodes": self.size,
                "transport_ports": [free_port() for _ in range(self.size)],
                "http_ports": [free_port() for _ in range(self.size)],
            }
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.state_file.write_text(json.dumps(state))
            self.members = [self._member(i, state) for i in range(self.size)]
        launched = [
            m.launch(port, transport)
            for m, port, transport in zip(self.members, state["http_ports"], state["transport_ports"])
        ]
        first = self.members[0]
        if first.after_launch is not None:
            try:
                first.after_launch(first, launched[0][0], launched[0][1])
            except Exception:
                self.stop()
                raise
        try:
            self.wait_green(timeout, launched)
        except LocalEngineError:
            self.stop()
            raise
        client = self.client()
        try:
            first.guard_knn(client)
        finally:
            client.close()
        return self.urls

    def wait_green(self, timeout: float = 120.0, launched: list | None = None) -> float:
        """Wait for green with every member joined; returns the seconds waited.

        Args:
            timeout: seconds to wait.
            launched: ``(process, url, log file)`` per member, from :meth:`LocalNode.launch`: a member
                that exits meanwhile is reported at once, with its log's tail.

        Raises:
            LocalEngineError: a launched member exited, or not green within ``timeout``.
        """
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            for member, (proc, _url, log_file) in zip(self.members, launched or ()):
                if proc.poll() is not None:
                    raise LocalEngineError(
                        f"{member.name} of the {self.engine} cluster exited with code "
                        f"{proc.returncode} while starting:\n{tail(log_file)}"
                    )
            health = self.health(wait_for="green", timeout=2.0) or {}
            if health.get("status") == "green" and health.get("number_of_nodes") == self.size:
                return time.monotonic() - start
            time.sleep(0.5)
        raise LocalEngineError(f"the {self.size}-node {self.engine} cluster was not green within {timeout:.0f}s")

    def stop(self) -> bool:
        """Stop every member; ``True`` when any was running."""
        stopped = [m.stop() for m in self.members]  # every member, not only up to the first running one
        return any(stopped)
