"""``vistag index --runner ray`` (Ray Data on a local Ray with 2 CPUs) writes the documents ``vistag index`` writes.

The local Ray starts once for the module (about 3 s; worker start-up on this 2-core machine is slow,
so the Ray tests are few and small). Marked slow: about 2.5 minutes for the module here (about 25 s
per engine line, and 40 s for the 429 storm).
"""

from __future__ import annotations

import csv
import json
import logging
import os

import numpy as np
import pytest

from tests.conftest import write_slice

pytest.importorskip("torch")
ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

ROWS = 48


@pytest.fixture(scope="module")
def local_ray():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")  # a throwaway local Ray; a real cluster keeps token auth
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=512 << 20, logging_level=logging.WARNING)
        yield ray
        ray.shutdown()


@pytest.fixture(scope="module")
def flawed_catalog(data_dir, tmp_path_factory):
    """48 real rows plus one whose image is missing, one repeated id and one row with too few fields."""
    tmp = tmp_path_factory.mktemp("ray-catalog")
    catalog, images, rows = write_slice(data_dir, tmp, ROWS, start=5, step=613)
    with open(catalog, "a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), quoting=csv.QUOTE_ALL)
        writer.writerow({**rows[0], "id": "900001", "file": "900001.jpg"})  # no such image
        writer.writerow(rows[1])  # the same id again
        fh.write('"900002","Men"\n')  # too few fields
    return catalog, images, rows


def _documents(client, index: str) -> dict[str, dict]:
    client.refresh(index)
    hits = client.search(index, {"size": 500, "query": {"match_all": {}}})["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def test_the_ray_runner_writes_the_documents_of_vistag_index(local_ray, node, flawed_catalog, tmp_path):
    import vistag
    import vistag.ray

    catalog, images, rows = flawed_catalog
    client = node.client()
    common = {"schema": "fashion-product-images", "model": "tiny-random", "knn_method": "exact"}
    one = vistag.index_catalog(client, catalog, images, "one-process", cache_dir=tmp_path / "c1", **common)
    by_ray = vistag.ray.index_catalog(
        node.url,
        catalog,
        images,
        "by-ray",
        cache_dir=tmp_path / "c2",
        dead_letter=tmp_path / "dead.jsonl",
        **common,
    )
    # The same counts: every row read once, the three bad rows dead-lettered with the same reasons.
    for name in ("read", "indexed", "failed", "dead_lettered", "embedded", "cache_hits", "reference_size", "tagger"):
        assert getattr(by_ray, name) == getattr(one, name), name
    assert by_ray.read == ROWS + 3 and by_ray.indexed == ROWS and by_ray.dead_lettered == 3
    # The dead letters (a file on the driver here, in the summary there): the same rows, stages and reasons.
    written = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    key = lambda d: (d["line"], d["id"], d["stage"], d["reason"], d["row"])  # noqa: E731
    assert sorted(map(key, written)) == sorted(map(key, one.dead_letters))
    assert {d["stage"] for d in written} == {"read", "image"}

    first, second = _documents(client, "one-process"), _documents(client, "by-ray")
    assert set(first) == set(second) == {r["id"] for r in rows}
    for doc_id, doc in first.items():
        other = second[doc_id]
        assert other["tags"] == doc["tags"], doc_id
        assert other["tag_weights"].keys() == doc["tag_weights"].keys()
        assert all(abs(other["tag_weights"][t] - w) <= 1e-5 for t, w in doc["tag_weights"].items())
        assert np.allclose(other["image_vector"], doc["image_vector"], atol=1e-5)
        same = {k for k in doc if k not in ("tag_weights", "image_vector", "indexed_at")}
        assert {k: other.get(k) for k in same} == {k: doc[k] for k in same}, doc_id

    # A second run with resume: every good row is there already; nothing is written twice.
    again = vistag.ray.index_catalog(
        node.url, catalog, images, "by-ray", cache_dir=tmp_path / "c2", resume=True, **common
    )
    assert (again.indexed, again.skipped_existing, again.cache_hits, again.embedded) == (0, ROWS, ROWS, 0)
    assert client.count("by-ray") == ROWS
    client.close()


def test_the_ray_runner_refuses_options_of_the_one_process_runner(local_ray, tmp_path):
    import vistag.ray
    from vistag.errors import ConfigError

    with pytest.raises(ConfigError, match="partition= is not an option of the Ray runner"):
        vistag.ray.index_catalog("http://127.0.0.1:9", tmp_path / "c.csv", partition="1/2")


def test_vistag_index_runner_ray_from_the_command_line(local_ray, node, flawed_catalog, tmp_path, capsys):
    from vistag.cli.main import main

    catalog, images, _ = flawed_catalog
    args = ["index", "--runner", "ray", "--url", node.url, "--catalog", str(catalog), "--images", str(images)]
    args += ["--index", "cli-ray", "--model", "tiny-random", "--schema", "fashion-product-images", "--json"]
    args += ["--dead-letter", str(tmp_path / "dl.jsonl")]
    assert main(args) == 1  # three rows dead-lettered: not ok
    summary = json.loads(capsys.readouterr().out)
    assert (summary["indexed"], summary["dead_lettered"], summary["read"]) == (ROWS, 3, ROWS + 3)
    assert os.path.getsize(tmp_path / "dl.jsonl") > 0


def test_a_cluster_that_refuses_every_bulk_request_stops_the_decoding_not_the_memory(
    local_ray, node, data_dir, tmp_path
):
    """Backpressure end to end: while every ``_bulk`` is answered 429, the stages upstream of the sink stop
    (the images embedded stop growing before the end of the catalog, within the run's object-store budget);
    once the engine accepts again, the run finishes with every row."""
    import threading
    import time

    import vistag.ray
    from tests.integration.proxy import ForwardingProxy
    from vistag.engine.retry import RetryPolicy
    from vistag.local.versions import DISTRIBUTIONS
    from vistag.models.cache import EmbeddingCache
    from vistag.ray.runner import RayOptions

    if node.dist is not DISTRIBUTIONS["opensearch"]:
        pytest.skip("runs on the default OpenSearch line only: it tests Ray's scheduling, not the engine's writes")
    rows = 1200
    catalog, images, _ = write_slice(data_dir, tmp_path / "cat", rows, start=2, step=31)
    reference, ref_images, _ = write_slice(data_dir, tmp_path / "ref", 40, start=9, step=211)
    storm = threading.Event()
    storm.set()
    refuse = b'{"error":{"type":"es_rejected_execution_exception"},"status":429}'
    with ForwardingProxy(
        node.url, lambda m, p, h, b: (429, refuse) if storm.is_set() and "_bulk" in p else None
    ) as proxy:
        result: dict = {}
        options = RayOptions(object_store_memory=8 << 20, batch_rows=32, read_tasks=1)

        def run() -> None:
            try:
                result["summary"] = vistag.ray.index_catalog(
                    proxy.url,
                    catalog,
                    images,
                    "storm",
                    schema="fashion-product-images",
                    model="tiny-random",
                    reference=reference,
                    reference_images=ref_images,
                    cache_dir=tmp_path / "cache",
                    ray_options=options,
                    chunk_size=50,
                    retry=RetryPolicy(max_retries=60, initial_backoff=0.2, max_backoff=1.0),
                )
            except BaseException as exc:  # reported by the assertions below
                result["error"] = exc

        runner = threading.Thread(target=run, daemon=True)
        runner.start()
        cache = EmbeddingCache(tmp_path / "cache", "tiny-random@1-64px", 64)

        def embedded() -> int:
            cache.refresh()
            return len(cache) - 40  # the reference's 40 are embedded first

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not proxy.paths(intercepted=True) and runner.is_alive():
            time.sleep(0.2)
        assert "error" not in result, repr(
            result.get("error")
        )  # the first refused write: the catalog is streaming through every stage
        last, still = -1, 0
        while time.monotonic() < deadline and still < 6:  # 3 s without growth
            time.sleep(0.5)
            now = embedded()
            still, last = (still + 1, now) if now == last else (0, now)
        assert "_bulk" in " ".join(proxy.paths(intercepted=True)), (
            f"no bulk request was refused: {proxy.paths()[-20:]} {result}"
        )
        assert 0 < last < rows, f"{last} of {rows} rows embedded while the cluster refused every write"
        storm.clear()
        runner.join(timeout=300)
        assert not runner.is_alive()
    summary = result["summary"]
    assert summary.indexed == rows and summary.ok and summary.retries > 0, summary.to_dict()
    client = node.client()
    assert client.count("storm") == rows
    client.close()
