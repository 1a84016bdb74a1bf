"""kNN tags from a labelled reference index searched by the engine (--reference-index)
equal the tags of the scanned reference catalog (--reference) on the same rows."""

from __future__ import annotations

import json

import requests

from tests.conftest import write_slice
from vistag.cli.main import main


def _docs(url: str, index: str) -> dict[str, dict]:
    requests.post(f"{url}/{index}/_refresh", timeout=30)
    hits = requests.post(f"{url}/{index}/_search", json={"size": 100, "query": {"match_all": {}}}, timeout=30).json()
    return {h["_id"]: h["_source"] for h in hits["hits"]["hits"]}


def test_reference_index_tags_match_the_scanned_reference(node, data_dir, tmp_path, capsys):
    reference, ref_images, _ = write_slice(data_dir, tmp_path / "ref", 80, start=2, step=211)
    catalog, images, rows = write_slice(data_dir, tmp_path / "new", 30, start=7, step=389)
    common = ["-q", "index", "--url", node.url, "--dead-letter", str(tmp_path / "dl.jsonl"), "--json"]
    assert main([*common, "--catalog", str(reference), "--images", str(ref_images), "--index", "reference"]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                *common,
                "--catalog",
                str(catalog),
                "--images",
                str(images),
                "--index",
                "scanned",
                "--reference",
                str(reference),
                "--reference-images",
                str(ref_images),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                *common,
                "--catalog",
                str(catalog),
                "--images",
                str(images),
                "--index",
                "by-engine",
                "--reference-index",
                "reference",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["indexed"] == len(rows) and summary["reference_size"] == 80
    assert summary["tagger"] == "knn-engine:reference:k=10" and summary["embedded"] == 0  # vectors from the cache

    scanned, by_engine = _docs(node.url, "scanned"), _docs(node.url, "by-engine")
    assert set(scanned) == set(by_engine) == {r["id"] for r in rows}
    for doc_id, doc in by_engine.items():
        mine, theirs = doc["tag_weights"], scanned[doc_id]["tag_weights"]
        assert mine, doc_id
        # The same scores; a tag kept by one side only ties with the other side's last kept tag.
        for tag in set(mine) | set(theirs):
            if tag in mine and tag in theirs:
                assert abs(mine[tag] - theirs[tag]) < 2e-3, (doc_id, tag)
            else:
                kept, other = (mine, theirs) if tag in mine else (theirs, mine)
                assert kept[tag] <= min(other.values()) + 2e-3, (doc_id, tag)
        assert doc["model"]["tagger"] == "knn-engine:reference:k=10"


def test_reference_index_must_exist(node, data_dir, tmp_path, capsys):
    catalog, images, _ = write_slice(data_dir, tmp_path, 5, start=1)
    code = main(
        [
            "-q",
            "index",
            "--url",
            node.url,
            "--catalog",
            str(catalog),
            "--images",
            str(images),
            "--reference-index",
            "no-such-index",
            "--dead-letter",
            str(tmp_path / "dl.jsonl"),
        ]
    )
    assert code != 0
    assert "no-such-index" in capsys.readouterr().err
