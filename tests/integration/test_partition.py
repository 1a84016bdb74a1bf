"""Three ``vistag index --partition I/3`` jobs at once share one catalog into one index:
the exact catalog count, no duplicate, and each job indexed only its own slice."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

from tests.conftest import write_slice
from vistag.catalog.rows import in_partition

pytest.importorskip("torch")
pytestmark = pytest.mark.slow


def test_three_partitions_at_once_give_the_exact_catalog(node, data_dir, tmp_path):
    catalog, images, rows = write_slice(data_dir, tmp_path, 45, start=19, step=977)
    env = {**os.environ, "VISTAG_HOME": str(tmp_path / "home")}
    jobs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vistag",
                "-q",
                "index",
                "--url",
                node.url,
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
    summaries = []
    for i, job in enumerate(jobs, start=1):
        out, err = job.communicate(timeout=600)
        assert job.returncode == 0, err[-2000:]
        summaries.append(json.loads(out))
        assert summaries[-1]["indexed"] == sum(in_partition(r["id"], (i, 3)) for r in rows)
    assert sum(s["indexed"] for s in summaries) == len(rows)
    requests.post(f"{node.url}/products/_refresh", timeout=30)
    body = {"size": 0, "aggs": {"ids": {"cardinality": {"field": "id"}}}}
    resp = requests.post(f"{node.url}/products/_search", json=body, timeout=30).json()
    assert resp["hits"]["total"]["value"] == len(rows) and resp["aggregations"]["ids"]["value"] == len(rows)


def test_a_bad_partition_is_refused_by_name(node, capsys):
    from vistag.cli.main import main

    assert main(["index", "--url", node.url, "--catalog", "x.csv", "--partition", "4/3"]) != 0
    assert "--partition" in capsys.readouterr().err
