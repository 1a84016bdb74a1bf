"""`vistag reindex`: a new versioned index and an atomic alias swap, with queries running throughout."""

from __future__ import annotations

import json
import threading

import requests

from tests.conftest import write_slice
from vistag.cli.main import main


def _alias_target(url: str, alias: str) -> list[str]:
    return sorted(requests.get(f"{url}/_alias/{alias}", timeout=10).json())


def test_reindex_swaps_the_alias_while_queries_keep_answering(node, data_dir, tmp_path, capsys):
    small, images, _ = write_slice(data_dir, tmp_path / "a", 40, start=3)
    big, images_b, _ = write_slice(data_dir, tmp_path / "b", 70, start=3)  # the same 40 rows + 30 more
    common = ["--url", node.url, "--alias", "shop", "--json", "--dead-letter", str(tmp_path / "dead.jsonl")]

    # Dry run on an empty cluster: a plan, no change.
    assert main(["reindex", *common, "--catalog", str(small), "--images", str(images), "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["dry_run"] and plan["new_index"].startswith("shop-")
    assert requests.head(f"{node.url}/shop", timeout=10).status_code == 404

    assert main(["-q", "reindex", *common, "--catalog", str(small), "--images", str(images)]) == 0
    first = json.loads(capsys.readouterr().out)["alias"]["shop"]
    assert _alias_target(node.url, "shop") == [first]

    # Query the alias without pause while the bigger catalog is reindexed.
    totals, failures, stop = [], [], threading.Event()

    def loop():
        session = requests.Session()
        while not stop.is_set():
            try:
                resp = session.post(
                    f"{node.url}/shop/_search",
                    json={"size": 0, "track_total_hits": True, "query": {"match_all": {}}},
                    timeout=10,
                )
                if resp.status_code != 200:
                    failures.append(resp.status_code)
                else:
                    totals.append(resp.json()["hits"]["total"]["value"])
            except requests.RequestException as exc:
                failures.append(repr(exc))

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        assert main(["-q", "reindex", *common, "--catalog", str(big), "--images", str(images_b)]) == 0
        second = json.loads(capsys.readouterr().out)["alias"]["shop"]
        for _ in range(20):  # some queries after the swap too
            if totals and totals[-1] == 70:
                break
            threading.Event().wait(0.1)
    finally:
        stop.set()
        thread.join()
    assert not failures, failures
    assert totals and set(totals) <= {40, 70}, "every answer comes from one complete index"
    assert totals[0] == 40 and totals[-1] == 70
    assert _alias_target(node.url, "shop") == [second] and second > first
    assert requests.head(f"{node.url}/{first}", timeout=10).status_code == 404  # old index deleted

    # From the current index, keeping the old one: same documents, stored vectors reused.
    assert main(["-q", "reindex", *common, "--from-index", "--keep-old"]) == 0
    third = json.loads(capsys.readouterr().out)["alias"]["shop"]
    assert requests.post(f"{node.url}/{third}/_count", timeout=10).json()["count"] == 70
    assert requests.head(f"{node.url}/{second}", timeout=10).status_code == 200


def test_reindex_over_a_concrete_index_name(node, data_dir, tmp_path, capsys):
    catalog, images, _ = write_slice(data_dir, tmp_path, 12, start=9)
    base = [
        "--url",
        node.url,
        "--catalog",
        str(catalog),
        "--images",
        str(images),
        "--json",
        "--dead-letter",
        str(tmp_path / "dead.jsonl"),
    ]
    assert main(["-q", "index", *base, "--index", "legacy"]) == 0
    capsys.readouterr()
    assert main(["-q", "reindex", *base, "--alias", "legacy"]) == 0
    target = json.loads(capsys.readouterr().out)["alias"]["legacy"]
    assert _alias_target(node.url, "legacy") == [target]
    assert requests.post(f"{node.url}/legacy/_count", timeout=10).json()["count"] == 12
