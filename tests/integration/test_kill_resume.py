"""Kill the engine during `vistag index`, restart it, rerun with --resume: every good row once."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import write_slice

pytestmark = pytest.mark.slow


def _count(url: str) -> int:
    try:
        resp = requests.get(f"{url}/products/_count", timeout=2)
        return resp.json().get("count", 0) if resp.ok else 0
    except requests.RequestException:
        return 0


def test_kill_mid_bulk_then_resume(node, data_dir, tmp_path):
    catalog, images, rows = write_slice(data_dir, tmp_path / "cat", 600, start=11, step=53)
    reference, ref_images, _ = write_slice(data_dir, tmp_path / "ref", 40, start=3, step=101)
    env = {**os.environ, "VISTAG_HOME": str(tmp_path / "home")}  # empty embedding cache: embedding paces the bulk
    cmd = [
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
        "--reference",
        str(reference),
        "--reference-images",
        str(ref_images),
        "--batch-size",
        "8",
        "--chunk-size",
        "8",
        "--max-retries",
        "2",
        "--decode-processes",
        "0",
        "--dead-letter",
        str(tmp_path / "dl.jsonl"),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while _count(node.url) < 24 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "indexing finished before the node could be killed:\n" + proc.stdout.read()
    node.kill()
    output = proc.communicate(timeout=240)[0]
    assert proc.returncode == 1, output
    assert "stopped early" in output

    node.restart()
    cmd[cmd.index("--url") + 1] = node.url
    partial = _count(node.url)
    assert 0 < partial < len(rows)
    resumed = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"skipped (already indexed) {partial}" in resumed.stdout
    requests.post(f"{node.url}/products/_refresh", timeout=30)
    assert _count(node.url) == len(rows)
    body = {"size": 0, "aggs": {"ids": {"cardinality": {"field": "id"}}}}
    aggs = requests.post(f"{node.url}/products/_search", json=body, timeout=30).json()["aggregations"]
    assert aggs["ids"]["value"] == len(rows)  # no duplicates
