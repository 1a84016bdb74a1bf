"""429 storms on the reads of a run, through a loopback proxy in front of the real node.

The bulk writes have their own storm test (test_rejections.py). Here the proxy
answers 429 (as a node with a full search queue does) to the ``_msearch`` of
``--reference-index`` or to the ``_mget`` of ``--resume``. A short storm is ridden
out with backoff; a storm that outlasts ``--max-retries`` stops the run cleanly: a
summary with ``aborted``, exit code 1, no traceback, and a later ``--resume``
finishes the job with every row exactly once.
"""

from __future__ import annotations

import json
import threading

import pytest
import requests

from tests.conftest import write_slice
from tests.integration.proxy import ForwardingProxy
from vistag.cli.main import main

pytestmark = pytest.mark.slow

REJECTED = (
    429,
    json.dumps(
        {
            "error": {
                "root_cause": [
                    {"type": "rejected_execution_exception", "reason": "rejected execution (queue capacity 1000)"}
                ],
                "type": "rejected_execution_exception",
                "reason": "rejected execution (queue capacity 1000)",
            },
            "status": 429,
        }
    ).encode(),
)


class Storm:
    """Answer 429 to requests whose path contains ``endpoint``, following a script.

    ``script`` holds one entry per matching request: ``True`` rejects it, ``False``
    lets it through; past the end, ``then`` decides.
    """

    def __init__(self, endpoint: str, script: list[bool], then: bool) -> None:
        self.endpoint, self.script, self.then = endpoint, list(script), then
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, method, path, headers, body):
        if self.endpoint not in path.split("?")[0]:
            return None
        with self.lock:
            n, self.calls = self.calls, self.calls + 1
        reject = self.script[n] if n < len(self.script) else self.then
        return REJECTED if reject else None


def _ids(url: str, index: str) -> list[str]:
    requests.post(f"{url}/{index}/_refresh", timeout=30)
    body = {"size": 500, "_source": False, "query": {"match_all": {}}}
    return [h["_id"] for h in requests.post(f"{url}/{index}/_search", json=body, timeout=30).json()["hits"]["hits"]]


def _run(capsys, args: list[str]) -> tuple[int, dict, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_storms_on_msearch_and_mget_end_in_clean_resumable_stops(node, data_dir, tmp_path, capsys):
    reference, ref_images, _ = write_slice(data_dir, tmp_path / "ref", 40, start=2, step=211)
    catalog, images, rows = write_slice(data_dir, tmp_path / "new", 48, start=7, step=389)
    common = ["-q", "index", "--json", "--dead-letter", str(tmp_path / "dl.jsonl"), "--max-retries", "2"]
    assert (
        main(
            [
                *common,
                "--url",
                node.url,
                "--catalog",
                str(reference),
                "--images",
                str(ref_images),
                "--index",
                "reference",
            ]
        )
        == 0
    )
    capsys.readouterr()
    run = [
        *common,
        "--catalog",
        str(catalog),
        "--images",
        str(images),
        "--index",
        "products",
        "--reference-index",
        "reference",
        "--knn-batch",
        "8",
        "--chunk-size",
        "8",
        "--bulk-threads",
        "1",
    ]

    # 1. _msearch: the first scan is rejected twice and goes through on the third try (2 retries
    #    allowed); the second scan goes through; then the node rejects every scan.
    msearch = Storm("_msearch", [True, True, False, False], then=True)
    with ForwardingProxy(node.url, msearch) as proxy:
        code, summary, err = _run(capsys, [*run, "--url", proxy.url])
    assert code == 1, summary
    assert "429" in summary["aborted"] and "_msearch" in summary["aborted"]
    assert "Traceback" not in err
    assert msearch.calls == 4 + 3  # two rejected tries + one good, one good, then three rejected tries
    partial = _ids(node.url, "products")
    assert 16 <= len(partial) < len(rows)  # the two scans that got through were indexed
    assert summary["indexed"] == len(partial) and summary["failed"] == 0

    # 2. _mget of --resume: every lookup of what is already in is rejected.
    mget = Storm("_mget", [], then=True)
    with ForwardingProxy(node.url, mget) as proxy:
        code, summary, err = _run(capsys, [*run, "--url", proxy.url, "--resume"])
    assert code == 1, summary
    assert "429" in summary["aborted"] and "_mget" in summary["aborted"]
    assert "Traceback" not in err and mget.calls == 3
    assert sorted(_ids(node.url, "products")) == sorted(partial)  # nothing indexed blind

    # 3. The node is fine again: --resume finishes, each row once.
    code, summary, _ = _run(capsys, [*run, "--url", node.url, "--resume"])
    assert code == 0, summary
    assert summary["skipped_existing"] == len(partial) and summary["indexed"] == len(rows) - len(partial)
    ids = _ids(node.url, "products")
    assert sorted(ids) == sorted(r["id"] for r in rows)
