"""Fault drills on a real 3-node cluster of each engine (default lines) on loopback.

* kill -9 the elected cluster manager in the middle of ``vistag index`` of 1,500 rows: the
  run finishes on its own (no ``--resume``) with every row, exactly once;
* a query loop (keyword, tags, image) runs through the kill and the node's return: no
  failed query and no partial result (the replicas answer); latencies are reported;
* the node comes back, the cluster is green again, and ``--resume`` adds nothing;
* three ``--partition I/3`` jobs at once into the cluster give the exact catalog.

Each node is a real engine process; nothing is mocked. The cluster gets its own
instance name, so a developer's local cluster is never touched.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import write_slice
from tests.integration.conftest import wipe
from vistag.catalog.rows import in_partition
from vistag.documents.strategies import image, keyword, tags
from vistag.local.cluster import LocalCluster
from vistag.search import Searcher

pytest.importorskip("torch")
pytestmark = pytest.mark.slow

ROWS = 1500


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("opensearch", marks=pytest.mark.opensearch),
        pytest.param("elasticsearch", marks=pytest.mark.elasticsearch),
    ],
)
def cluster(request):
    cluster = LocalCluster(request.param, nodes=3, name="pytest")
    cluster.start()
    yield cluster
    cluster.stop()


def _exact(client, index: str = "products") -> tuple[int, int]:
    """(documents, distinct ids) of the index."""
    client.refresh(index)
    resp = client.search(
        index, {"size": 0, "track_total_hits": True, "aggs": {"ids": {"cardinality": {"field": "id"}}}}
    )
    return resp["hits"]["total"]["value"], int(resp["aggregations"]["ids"]["value"])


def _cluster_manager(client, cluster) -> int:
    """Index (0-based) in ``cluster.members`` of the elected cluster manager."""
    metric = "cluster_manager_node" if cluster.engine == "opensearch" else "master_node"
    node_id = client.perform("GET", f"/_cluster/state/{metric}")[metric]
    name = client.perform("GET", f"/_nodes/{node_id}")["nodes"][node_id]["name"]
    return cluster.node_names.index(name)


class QueryLoop(threading.Thread):
    """Keyword, tag and image queries in turn through a client with every node's address."""

    def __init__(self, cluster, vector: list[float]) -> None:
        super().__init__(daemon=True)
        self.client = cluster.client()
        self.searcher = Searcher(self.client, "products")
        self.bodies = [
            ("keyword", self.searcher.body(keyword, keyword.params("shirt", 10, 0, None, None))),
            ("tags", self.searcher.body(tags, tags.params({"tshirts": 1.0, "casual": 0.5}, 10, 0, None, None))),
            ("image", self.searcher.body(image, image.params(vector, 10, None))),
        ]
        self.latencies: dict[str, list[float]] = {name: [] for name, _ in self.bodies}
        self.failures: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.halt.is_set():
            name, body = self.bodies[i % len(self.bodies)]
            i += 1
            start = time.perf_counter()
            try:
                resp = self.client.search("products", body)
                shards = resp["_shards"]
                if shards.get("failed") or resp.get("timed_out") or not resp["hits"]["hits"]:
                    self.failures.append(f"{name}: partial or empty answer {shards}")
            except Exception as exc:
                self.failures.append(f"{name}: {type(exc).__name__}: {exc}")
            self.latencies[name].append(time.perf_counter() - start)
            time.sleep(0.02)

    def report(self) -> str:
        parts = []
        for name, values in self.latencies.items():
            ordered = sorted(values)
            p95 = ordered[int(0.95 * (len(ordered) - 1))] if ordered else float("nan")
            parts.append(
                f"{name} n={len(values)} p50={statistics.median(ordered) * 1000:.0f}ms "
                f"p95={p95 * 1000:.0f}ms max={max(ordered) * 1000:.0f}ms"
            )
        return "; ".join(parts)


def _index_cmd(cluster, catalog, images, reference, ref_images, dead_letter) -> list[str]:
    return [
        sys.executable,
        "-m",
        "vistag",
        "-q",
        "index",
        "--url",
        ",".join(cluster.urls),
        "--catalog",
        str(catalog),
        "--images",
        str(images),
        "--reference",
        str(reference),
        "--reference-images",
        str(ref_images),
        "--batch-size",
        "16",
        "--chunk-size",
        "50",
        "--decode-processes",
        "0",
        "--json",
        "--dead-letter",
        str(dead_letter),
    ]


def test_kill_the_cluster_manager_mid_index_then_it_returns(cluster, data_dir, tmp_path, capsys):
    wipe(cluster)
    catalog, images, rows = write_slice(data_dir, tmp_path / "cat", ROWS, start=7, step=29)
    reference, ref_images, _ = write_slice(data_dir, tmp_path / "ref", 60, start=3, step=101)
    # An empty embedding cache: embedding paces the bulk, so the kill lands mid-run.
    env = {**os.environ, "VISTAG_HOME": str(tmp_path / "home")}
    cmd = _index_cmd(cluster, catalog, images, reference, ref_images, tmp_path / "dl.jsonl")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = cluster.client()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if client.index_exists("products") and client.count("products") >= 300:
                break
        except Exception:
            pass
        time.sleep(0.2)
    assert proc.poll() is None, "indexing finished before the node could be killed:\n" + proc.stderr.read()[-2000:]
    vector = client.search("products", {"size": 1, "query": {"match_all": {}}})["hits"]["hits"][0]["_source"][
        "image_vector"
    ]
    loop = QueryLoop(cluster, vector)
    loop.start()
    time.sleep(1.0)

    victim = cluster.members[_cluster_manager(client, cluster)]
    indexed_at_kill = client.count("products")
    victim.kill()
    killed_at = time.monotonic()
    out, err = proc.communicate(timeout=600)
    run_seconds = time.monotonic() - killed_at
    assert proc.returncode == 0, err[-3000:]
    summary = json.loads(out)
    assert summary["indexed"] == ROWS and summary["failed"] == 0, summary

    victim.restart()
    green_after = cluster.wait_green(timeout=180)
    time.sleep(1.0)
    loop.halt.set()
    loop.join(timeout=60)
    client.close()
    client = cluster.client()  # every node's address again
    assert _exact(client) == (ROWS, ROWS)  # every row, no duplicate id
    assert not loop.failures, loop.failures[:5]
    assert all(len(v) >= 3 for v in loop.latencies.values()), loop.report()

    resumed = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = json.loads(resumed.stdout)
    assert again["indexed"] == 0 and again["skipped_existing"] == ROWS, again
    assert _exact(client) == (ROWS, ROWS)
    client.close()
    with capsys.disabled():
        print(
            f"\n[{cluster.engine} 3 nodes] killed {victim.name} (cluster manager) at {indexed_at_kill} of {ROWS} "
            f"documents; the run finished {run_seconds:.1f}s later with all {ROWS}, retries {summary.get('retries')}; "
            f"green {green_after:.1f}s after the restart; queries: {loop.report()}"
        )


def test_three_partitions_at_once_into_the_cluster(cluster, data_dir, tmp_path):
    wipe(cluster)
    catalog, images, rows = write_slice(data_dir, tmp_path, 45, start=19, step=977)
    env = {**os.environ, "VISTAG_HOME": str(tmp_path / "home")}
    url = ",".join(cluster.urls)
    jobs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vistag",
                "-q",
                "index",
                "--url",
                url,
                "--catalog",
                str(catalog),
                "--images",
                str(images),
                "--partition",
                f"{i}/3",
                "--json",
                "--decode-processes",
                "0",
                "--dead-letter",
                str(tmp_path / f"dl{i}.jsonl"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 2, 3)
    ]
    for i, job in enumerate(jobs, start=1):
        out, err = job.communicate(timeout=600)
        assert job.returncode == 0, err[-2000:]
        assert json.loads(out)["indexed"] == sum(in_partition(r["id"], (i, 3)) for r in rows)
    client = cluster.client()
    assert _exact(client) == (len(rows), len(rows))
    settings = client.perform("GET", "/products/_settings")
    index_settings = next(iter(settings.values()))["settings"]["index"]
    assert index_settings["auto_expand_replicas"] == "0-1"
    shards = client.perform("GET", "/_cat/shards/products", params={"format": "json"})
    assert sorted(s["prirep"] for s in shards) == ["p", "r"]  # one replica, from the cluster's size
    client.close()
