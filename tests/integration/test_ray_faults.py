"""Fault drill of the Ray runner: a two-node Ray cluster on loopback writing into a three-node OpenSearch
cluster; ``kill -9`` of a model actor's worker process while it runs a batch, and of a data node once
150 documents are in (mid-write). Both are found by state (the process title, the count), not by timing.

Every document arrives exactly once (the write tasks Ray runs again overwrite by ``_id``), the run
finishes on its own, and the cluster is green again once the node is back. About 2 minutes here
(marked slow); every wait has a deadline, so a hang fails instead of blocking CI.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time

import pytest

from tests.conftest import write_slice
from tests.integration.test_cluster_faults import _exact
from vistag.local.cluster import LocalCluster

pytest.importorskip("torch")
ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.opensearch]

ROWS = 900


@pytest.fixture
def two_ray_nodes():
    from ray.cluster_utils import Cluster

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")  # a throwaway local cluster; a real one keeps token auth
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "object_store_memory": 256 << 20})
        cluster.add_node(num_cpus=2, object_store_memory=256 << 20)
        ray.init(address=cluster.address, logging_level=logging.WARNING)
        yield cluster
        ray.shutdown()
        try:
            cluster.shutdown()
        except ValueError:  # a failed drill's runner thread auto-started Ray again; remove_node shut it down
            cluster.shutdown()


@pytest.fixture
def opensearch_cluster():
    cluster = LocalCluster("opensearch", nodes=3, name="pytest-ray")
    cluster.start()  # a local cluster keeps its data from run to run: the drill starts on an empty one
    _drop_products(cluster)
    yield cluster
    _drop_products(cluster)
    cluster.stop()


def _drop_products(cluster: LocalCluster) -> None:
    client = cluster.client()
    client.delete_index("products")
    client.close()


def _worker_pids(name: str) -> list[int]:
    """Ray worker processes whose title names ``name`` (Ray sets ``ray::<actor or task>``)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return [int(line.split(None, 1)[0]) for line in out.splitlines() if f"ray::{name}" in line]


def test_a_killed_ray_worker_and_a_killed_data_node_lose_and_duplicate_nothing(
    two_ray_nodes, opensearch_cluster, data_dir, tmp_path
):
    import vistag.ray
    from vistag.config import ConnectionSettings
    from vistag.ray.runner import RayOptions

    assert len(ray.nodes()) == 2
    catalog, images, _ = write_slice(data_dir, tmp_path / "cat", ROWS, start=11, step=41)
    settings = ConnectionSettings(urls=tuple(opensearch_cluster.urls))
    options = RayOptions(embed_actors=2, tag_actors=1, embed_cpus=1.0, tag_cpus=0.5, load_cpus=0.5, batch_rows=32)
    result: dict = {}

    def run() -> None:
        try:
            result["summary"] = vistag.ray.index_catalog(
                settings,
                catalog,
                images,
                "products",
                schema="fashion-product-images",
                model="efficientnet-lite0",
                ray_options=options,
                chunk_size=50,
            )
        except BaseException as exc:  # reported by the assertion below
            result["error"] = exc

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    client = opensearch_cluster.client()

    def count_now() -> int:
        try:
            return client.count("products") if client.index_exists("products") else 0
        except Exception:  # a node is down; the other two answer the next poll
            return 0

    def wait_for(count: int, deadline: float) -> int:
        while time.monotonic() < deadline and runner.is_alive():
            if (now := count_now()) >= count:
                return now
            time.sleep(0.3)
        raise AssertionError(f"the run did not reach {count} documents: {result}")

    def working_model_actor() -> int:
        """A model actor running a batch (``.submit`` in its title)."""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and runner.is_alive():
            busy = _worker_pids("MapWorker(MapBatches(EmbedImages)).submit")
            if busy:
                return busy[0]
            time.sleep(0.1)
        raise AssertionError(f"no model actor took a batch: {result}")

    # The catalog is its own reference: every row is embedded before the first is tagged and
    # written, so a model actor that runs a batch is mid-run whatever the speed of the machine.
    victim = working_model_actor()
    at_worker_kill = count_now()
    assert at_worker_kill == 0, "the kill did not land in the embedding phase"
    os.kill(victim, signal.SIGKILL)

    at_node_kill = wait_for(150, time.monotonic() + 300)
    node = opensearch_cluster.members[1]
    assert at_node_kill < ROWS, "the node kill did not land mid-run"
    node.kill()

    runner.join(timeout=600)
    assert not runner.is_alive(), "the run hung after the kills"
    assert "error" not in result, repr(result.get("error"))
    summary = result["summary"]
    assert summary.ok and summary.indexed == ROWS, summary.to_dict()
    node.restart()
    opensearch_cluster.wait_green(timeout=180)
    client.close()
    client = opensearch_cluster.client()
    assert _exact(client) == (ROWS, ROWS)  # every row, no duplicate id
    client.close()
    print(
        f"\n[ray 2 nodes -> opensearch 3 nodes] killed a model actor at {at_worker_kill} and {node.name} at "
        f"{at_node_kill} of {ROWS} documents; all {ROWS} indexed once in {summary.seconds:.1f}s, "
        f"retries {summary.retries}"
    )
