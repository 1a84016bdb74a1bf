"""Local single-node Elasticsearch/OpenSearch for development, tests and the demo.

A node is laid out in two folders below the engines home:

* ``<engine>-<version>/`` -- the unpacked distribution, plus the modules and
  plugins vistag adds (written once, then read-only);
* ``run/<engine>/`` -- its config copy, data, logs and ``node.json`` (pid, port).

The node binds to 127.0.0.1 only, with security off (loopback only), a small heap
and ``discovery.type=single-node``. This module supervises the process (start, wait
for health, stop, kill); laying out the distribution is in
:mod:`vistag.local.install`, Java discovery in :mod:`vistag.local.java`, and the
ports, processes and run-as-another-user helpers in :mod:`vistag.local.host`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vistag.config import ENGINES, ConnectionSettings, vistag_home
from vistag.engine.client import EngineClient
from vistag.engine.connect import connect
from vistag.engine.retry import RetryPolicy
from vistag.errors import LocalEngineError, VistagError
from vistag.local.host import (
    engine_user,
    engines_home,
    free_port,
    pid_alive,
    port_is_free,
    signal_group,
    tail,
)
from vistag.local.install import install_distribution
from vistag.local.java import find_java_home, java_env
from vistag.local.versions import DISTRIBUTIONS, Distribution, distribution

logger = logging.getLogger(__name__)

DEFAULT_HEAP = "1g"

#: Called with ``(config_dir, env)`` after the node's config folder is laid out (certificates, users files).
Configure = Callable[[Path, dict[str, str]], None]
#: Called with ``(node, process, url)`` once the process runs, before waiting for health.
AfterLaunch = Callable[["LocalNode", "subprocess.Popen[bytes]", str], None]

#: A catch-all index template (lowest priority) on local OpenSearch nodes: an index that maps a
#: ``knn_vector`` without ``"engine": "lucene"`` gets the k-NN plugin's default engine, faiss, whose
#: native library the Maven zip lacks; loading it kills the node at the first flush (and again at
#: every restart). With ``approximate_threshold: -1`` such an index builds no native graph: it
#: survives, with exact k-NN search. vistag's own templates (higher priority) map Lucene HNSW.
KNN_GUARD_TEMPLATE = "local-knn-faiss-guard"
KNN_GUARD_SETTINGS = {"knn.advanced.approximate_threshold": -1}
_INDEX_IN_LOG = re.compile(r"index:\[([^/\]]+)/([A-Za-z0-9_-]+)\]")


def explain_start_failure(log_text: str, data_dir: Path) -> str:
    """Why a node that exited while starting did so, and the way out, from its log (empty when unknown).

    Examples:
        >>> explain_start_failure("java.lang.UnsatisfiedLinkError: no opensearchknn_faiss_avx512",
        ...                       Path("/d")).splitlines()[0]
        'cause: the k-NN plugin tried to load faiss, whose native library the Maven zip lacks.'
    """
    if "UnsatisfiedLinkError" in log_text and "opensearchknn_faiss" in log_text:
        indices = dict(_INDEX_IN_LOG.findall(log_text))
        on_disk = {p.name for p in (data_dir / "nodes" / "0" / "indices").glob("*")}
        named = [f"{name} ({uuid})" for name, uuid in indices.items() if uuid in on_disk and not name.startswith(".")]
        which = ", ".join(named) or "see the folders under " + str(data_dir / "nodes" / "0" / "indices")
        return (
            "cause: the k-NN plugin tried to load faiss, whose native library the Maven zip lacks.\n"
            'An index maps a knn_vector without "engine": "lucene" (faiss is the default when the mapping '
            f"names no method), and the node replays its writes at every start. Indices on this node: {which}.\n"
            "way out: `vistag engine start --engine opensearch --drop-index NAME` removes that index's data and "
            "deletes it once the node is up (its documents are lost; map vectors with the Lucene engine)."
        )
    return ""


@dataclass(frozen=True)
class NodeStatus:
    """What ``vistag engine status`` reports."""

    engine: str
    version: str
    running: bool
    url: str | None
    pid: int | None
    health: str | None
    home: str


class LocalNode:
    """One local node of one engine.

    Args:
        engine: ``opensearch`` or ``elasticsearch``.
        home: ``$VISTAG_HOME``; downloads and nodes live below it.
        heap: JVM heap, e.g. ``"512m"`` or ``"1g"``.
        name: instance name; nodes with different names run side by side (the
            test suite uses its own, so it never touches a developer's node).
        settings: extra node settings passed as ``-E`` flags, e.g. a tiny
            ``thread_pool.write.queue_size`` to provoke real 429 rejections.
        configure: called with ``(config_dir, env)`` after the node's config folder
            is laid out and before the node starts (certificates, users files).
        scheme: ``https`` for a node with TLS on HTTP.
        auth: ``(user, password)`` the readiness checks use on a secured node.
        ca_cert: CA file the readiness checks verify TLS with.
        extras: optional plugin sets of the distribution, e.g. ``("ml",)`` for
            ml-commons (OpenSearch); such a node lays out its own folder.
        version: a pinned version or major (``"3"``, ``"9.5.0"``); default the
            engine's default line (see :mod:`vistag.local.versions`).
        after_launch: called with ``(node, process, url)`` once the process runs and
            before waiting for health (OpenSearch's security plugin loads its
            users and roles then); a cluster calls its first member's only.
        run_dir: the node's run folder (config, data, logs, ``node.json``); default
            ``run/<engine>[-name][-line]`` below the engines home. A member of a
            :class:`~vistag.local.cluster.LocalCluster` gets one inside the cluster's.

    A value of ``None`` in ``settings`` removes a default setting (a cluster member
    drops ``discovery.type=single-node``).
    """

    def __init__(
        self,
        engine: str,
        home: Path | None = None,
        heap: str = DEFAULT_HEAP,
        name: str = "default",
        settings: dict[str, str | None] | None = None,
        configure: Configure | None = None,
        scheme: str = "http",
        auth: tuple[str, str] | None = None,
        ca_cert: str | None = None,
        extras: tuple[str, ...] = (),
        version: str | None = None,
        run_dir: Path | None = None,
        after_launch: AfterLaunch | None = None,
    ) -> None:
        if engine not in ENGINES:
            raise LocalEngineError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        self.engine = engine
        try:
            self.dist: Distribution = distribution(engine, version)
        except KeyError as exc:
            raise LocalEngineError(str(exc.args[0])) from None
        self.home = Path(home) if home else vistag_home()
        self.heap = heap
        self.run_user = engine_user()
        self.engines_home = engines_home(self.home, self.run_user)
        self.extras = tuple(sorted(set(extras)))
        unknown = [e for e in self.extras if e not in self.dist.extras]
        if unknown:
            raise LocalEngineError(
                f"{engine} has no optional plugin set {', '.join(unknown)} "
                f"(known: {', '.join(self.dist.extras) or 'none'})"
            )
        extras_suffix = "".join(f"-{e}" for e in self.extras)
        self.install_dir = self.engines_home / f"{engine}-{self.dist.version}{extras_suffix}"
        # A node of another line (or with extras) runs beside the default one, with its own run folder.
        line = "" if self.dist is DISTRIBUTIONS[engine] else f"-{self.dist.version}"
        self._suffix = line + extras_suffix
        self.name = name
        self.extra_settings = dict(settings or {})
        self.configure = configure
        self.scheme = scheme
        self.auth = auth
        self.ca_cert = ca_cert
        self.after_launch = after_launch
        self.run_dir = run_dir or self.engines_home / "run" / (
            (engine if name == "default" else f"{engine}-{name}") + self._suffix
        )
        self.state_file = self.run_dir / "node.json"

    # ------------------------------------------------------------------ install
    def install(self) -> Path:
        """Download (cached, checksum-verified) and lay out the distribution; idempotent."""
        return install_distribution(self.engine, self.dist, self.home, self.install_dir, self.extras)

    # ------------------------------------------------------------------- state
    def _read_state(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None

    @property
    def url(self) -> str | None:
        """URL of the running node, or ``None``."""
        state = self._read_state()
        if state and pid_alive(state.get("pid")):
            return state["url"]
        return None

    def client(
        self, url: str | Sequence[str] | None = None, retry: RetryPolicy | None = None, timeout: float = 60.0
    ) -> EngineClient:
        """An :class:`EngineClient` for the node, or for ``url`` (one address or several, e.g. a
        cluster's), with this node's credentials and CA (through the official client of its engine).

        Raises:
            LocalEngineError: the node is not running and no ``url`` is given.
        """
        urls = (url,) if isinstance(url, str) else tuple(url or ())
        urls = urls or tuple(u for u in [self.url] if u)
        if not urls:
            raise LocalEngineError(
                f"the local {self.engine} node is not running: `vistag engine start --engine {self.engine}`"
            )
        user, password = self.auth or (None, None)
        settings = ConnectionSettings(
            urls=urls, engine=self.engine, username=user, password=password, ca_cert=self.ca_cert, timeout=timeout
        )
        return connect(settings, engine=self.engine, retry=retry)

    def health(self, url: str | None = None, timeout: float = 2.0, wait_for: str | None = None) -> str | None:
        """Cluster health colour, or ``None`` when the node does not answer."""
        return (self.health_report(url, timeout, wait_for) or {}).get("status")

    def health_report(
        self, url: str | Sequence[str] | None = None, timeout: float = 2.0, wait_for: str | None = None
    ) -> dict | None:
        """``_cluster/health`` through the node (or through ``url``), or ``None`` when nothing answers."""
        url = url or self.url
        if not url:
            return None
        try:
            client = self.client(url, RetryPolicy(max_retries=0), timeout=timeout + 3)
        except VistagError:
            return None
        try:
            wait = {"wait_for_status": wait_for, "timeout": f"{max(1, int(timeout))}s"} if wait_for else {}
            return client.cluster_health(**wait)
        except VistagError:
            return None
        finally:
            client.close()

    def status(self) -> NodeStatus:
        """Return what is known about the node without starting anything."""
        state = self._read_state() or {}
        running = pid_alive(state.get("pid"))
        url = state.get("url") if running else None
        return NodeStatus(
            engine=self.engine,
            version=self.dist.version,
            running=running,
            url=url,
            pid=state.get("pid") if running else None,
            health=self.health(url) if url else None,
            home=str(self.run_dir),
        )

    # ------------------------------------------------------------ start / stop
    def start(self, port: int | None = None, timeout: float = 180.0) -> str:
        """Start the node (or reuse the running one) and wait for yellow health.

        Args:
            port: HTTP port; ``None`` picks a free one.
            timeout: seconds to wait for the cluster to be at least yellow.

        Returns:
            The node URL, e.g. ``http://127.0.0.1:49213``.
        """
        current = self.url
        if current and self.health(current):
            if port and not current.endswith(f":{port}"):
                raise LocalEngineError(
                    f"the local {self.engine} node already runs at {current}; stop it to change the port"
                )
            logger.info("reusing the running %s node at %s", self.engine, current)
            return current
        proc, url, log_file = self.launch(port)
        if self.after_launch is not None:
            try:
                self.after_launch(self, proc, url)
            except Exception:
                self.stop()
                raise
        self.wait_ready(proc, url, log_file, timeout)
        self.guard_knn()
        return url

    def guard_knn(self, client: EngineClient | None = None) -> None:
        """On OpenSearch, install :data:`KNN_GUARD_TEMPLATE` and apply its settings to any index whose
        vectors would use faiss, so such a mapping cannot kill the node (see the template's comment).
        """
        if self.engine != "opensearch":
            return
        own = client is None
        client = client or self.client()
        try:
            body = {
                "index_patterns": ["*"],
                "priority": 0,
                "template": {"settings": {"index": KNN_GUARD_SETTINGS}},
                "_meta": {"managed_by": "vistag local node: faiss has no native library here"},
            }
            if client.get_index_template(KNN_GUARD_TEMPLATE) != body:
                client.put_index_template(KNN_GUARD_TEMPLATE, body)
            for index, mapping in client.get_mapping("*").items():
                if not index.startswith(".") and _maps_native_knn(mapping.get("mappings", {})):
                    logger.warning(
                        "index %s maps a knn_vector without the Lucene engine: it gets exact k-NN only "
                        "(no faiss on this local node)",
                        index,
                    )
                    client.perform("PUT", f"/{index}/_settings", {"index": KNN_GUARD_SETTINGS})
        except VistagError as exc:  # a secured node's client may lack the rights; the guard is best effort
            logger.warning("could not install the k-NN guard on the local node: %s", exc)
        finally:
            if own:
                client.close()

    def drop_index_data(self, index: str) -> bool:
        """Remove the data folder of ``index`` from a stopped node (the way out of an index that
        kills the node at start); ``True`` when one was found. Delete the index once the node runs.

        Raises:
            LocalEngineError: the node is running.
        """
        if pid_alive((self._read_state() or {}).get("pid")):
            raise LocalEngineError(f"stop the {self.engine} node before removing the data of {index!r}")
        logs = self.run_dir / "logs"
        uuids = {
            uuid
            for log in logs.glob("*.out")
            for name, uuid in _INDEX_IN_LOG.findall(log.read_text(errors="replace"))
            if name == index
        }
        found = False
        for uuid in uuids:
            folder = self.run_dir / "data" / "nodes" / "0" / "indices" / uuid
            if folder.is_dir():
                shutil.rmtree(folder)
                found = True
        return found

    def launch(self, port: int | None = None, transport_port: int | None = None) -> tuple[subprocess.Popen, str, Path]:
        """Start the node's process without waiting for it (a cluster launches all its nodes first).

        Returns:
            ``(process, url, log file)``.
        """
        java_home = find_java_home(self.dist.min_java)
        self.install()
        if port is None:
            port = free_port()
        elif not port_is_free(port):
            raise LocalEngineError(f"port {port} on 127.0.0.1 is already in use; pick another --port or leave it out")
        transport_port = transport_port or free_port()
        config_dir, log_file = self._prepare_run_dir()
        settings = {
            "cluster.name": f"vistag-{self.engine}-{self.name}{self._suffix}",
            "node.name": f"vistag-{self.engine}-{self.name}{self._suffix}",
            "network.host": "127.0.0.1",
            "http.port": str(port),
            "transport.port": str(transport_port),
            "discovery.type": "single-node",
            "path.data": str(self.run_dir / "data"),
            "path.logs": str(self.run_dir / "logs"),
            "cluster.routing.allocation.disk.threshold_enabled": "false",
        }
        if self.engine == "elasticsearch":
            settings["xpack.security.enabled"] = "false"
        for extra in self.extras:
            settings.update(self.dist.extra_settings.get(extra, {}))
        with_removals: dict[str, str | None] = {**settings, **self.extra_settings}  # None removes a default
        settings = {k: v for k, v in with_removals.items() if v is not None}
        env = {**os.environ, **java_env(self.engine, java_home)}
        if self.configure is not None:
            prefix = "OPENSEARCH" if self.engine == "opensearch" else "ES"
            self.configure(config_dir, {**env, f"{prefix}_PATH_CONF": str(config_dir)})
            if self.run_user:
                for path in [config_dir, *config_dir.rglob("*")]:
                    os.chown(path, self.run_user.pw_uid, self.run_user.pw_gid, follow_symlinks=False)
        binary = self.install_dir / "bin" / self.engine
        cmd = [str(binary), *(f"-E{k}={v}" for k, v in settings.items())]
        prefix = "OPENSEARCH" if self.engine == "opensearch" else "ES"
        env[f"{prefix}_JAVA_OPTS"] = f"-Xms{self.heap} -Xmx{self.heap}"
        env[f"{prefix}_PATH_CONF"] = str(config_dir)
        env[f"{prefix}_TMPDIR"] = str(self.run_dir / "tmp")
        env["HOME"] = str(self.run_dir)
        if self.run_user:
            cmd = [
                "setpriv",
                f"--reuid={self.run_user.pw_uid}",
                f"--regid={self.run_user.pw_gid}",
                "--clear-groups",
                *cmd,
            ]
        url = f"{self.scheme}://127.0.0.1:{port}"
        logger.info("starting %s %s at %s (logs: %s)", self.engine, self.dist.version, url, log_file)
        with open(log_file, "ab") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=self.run_dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.state_file.write_text(
            json.dumps(
                {
                    "pid": proc.pid,
                    "url": url,
                    "port": port,
                    "transport_port": transport_port,
                    "version": self.dist.version,
                }
            )
        )
        return proc, url, log_file

    def wait_ready(self, proc: subprocess.Popen, url: str, log_file: Path, timeout: float = 180.0) -> None:
        """Wait until the node answers with at least yellow health; stop it and raise otherwise.

        Raises:
            LocalEngineError: the process exited, or ``timeout`` passed (with the log's tail).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                try:
                    cause = explain_start_failure(log_file.read_text(errors="replace"), self.run_dir / "data")
                except OSError:
                    cause = ""
                raise LocalEngineError(
                    f"{self.engine} exited with code {proc.returncode} while starting"
                    + (f"\n{cause}" if cause else "")
                    + f"\nlog ({log_file}):\n{tail(log_file)}"
                )
            if self.health(url, timeout=1.0, wait_for="yellow") in ("yellow", "green"):
                return
            time.sleep(0.5)
        self.stop()
        raise LocalEngineError(f"{self.engine} did not become healthy within {timeout:.0f}s:\n{tail(log_file)}")

    def _prepare_run_dir(self) -> tuple[Path, Path]:
        for sub in ("data", "logs", "tmp"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        config_dir = self.run_dir / "config"
        shutil.rmtree(config_dir, ignore_errors=True)
        shutil.copytree(self.install_dir / "config", config_dir)
        # The launchers resolve the relative log/dump paths of jvm.options against the
        # (read-only) install folder; point them at the run folder instead.
        jvm_options = config_dir / "jvm.options"
        text = jvm_options.read_text()
        text = re.sub(r"(?<=[=:])logs/", f"{self.run_dir}/logs/", text)
        text = text.replace("HeapDumpPath=data", f"HeapDumpPath={self.run_dir}/data")
        jvm_options.write_text(text)
        if self.run_user:
            for path in [self.run_dir, *self.run_dir.rglob("*")]:
                os.chown(path, self.run_user.pw_uid, self.run_user.pw_gid, follow_symlinks=False)
        return config_dir, self.run_dir / "logs" / "vistag-node.out"

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the node cleanly (SIGTERM to its process group, SIGKILL after ``timeout``).

        Returns:
            ``True`` when a running node was stopped.
        """
        state = self._read_state()
        pid = state.get("pid") if state else None
        if not pid_alive(pid):
            self.state_file.unlink(missing_ok=True)
            return False
        assert pid is not None  # pid_alive(None) is False
        signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.2)
        if pid_alive(pid):
            logger.warning("%s did not stop within %.0fs; killing it", self.engine, timeout)
            signal_group(pid, signal.SIGKILL)
        self.state_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """Kill the node at once (SIGKILL), as a crash would; used by fault tests."""
        state = self._read_state()
        if state and pid_alive(state.get("pid")):
            signal_group(state["pid"], signal.SIGKILL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and pid_alive(state["pid"]):
                time.sleep(0.1)

    def restart(self, timeout: float = 180.0) -> str:
        """Start the node again on the port it had, keeping its data."""
        state = self._read_state() or {}
        port, transport_port = state.get("port"), state.get("transport_port")
        if self.url:
            self.stop()
        # A cluster member must come back on its transport port: the others' seed hosts name it.
        keep_transport = transport_port if transport_port and port_is_free(transport_port) else None
        proc, url, log_file = self.launch(port if port and port_is_free(port) else None, keep_transport)
        self.wait_ready(proc, url, log_file, timeout)
        return url


def _maps_native_knn(mapping: dict) -> bool:
    """Whether a mapping holds a ``knn_vector`` that would use a native engine (no Lucene method)."""
    for field in (mapping.get("properties") or {}).values():
        if not isinstance(field, dict):
            continue
        if field.get("type") == "knn_vector" and (field.get("method") or {}).get("engine") != "lucene":
            return True
        if _maps_native_knn(field):
            return True
    return False
