"""``vistag sync`` against a catalog that changed: added, re-titled, re-imaged and removed rows,
on both engines; untouched documents are not written (their ``indexed_at`` stays)."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import requests

from tests.conftest import write_slice
from vistag.cli.main import main

pytest.importorskip("torch")
pytestmark = pytest.mark.slow


def _docs(url: str) -> dict[str, dict]:
    requests.post(f"{url}/products/_refresh", timeout=30)
    hits = requests.post(f"{url}/products/_search", json={"size": 200}, timeout=30).json()["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def _write(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), quoting=csv.QUOTE_ALL)
        writer.writeheader()
        writer.writerows(rows)


def test_sync_does_only_what_changed(node, data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VISTAG_HOME", str(tmp_path / "home"))  # an empty embedding cache: `embedded` counts real work
    catalog, images, rows = write_slice(data_dir, tmp_path / "v1", 30, start=13, step=1301)
    extra_catalog, extra_images, extra = write_slice(data_dir, tmp_path / "extra", 5, start=77, step=2203)
    common = [
        "-q",
        "sync",
        "--url",
        node.url,
        "--images",
        str(images),
        "--json",
        "--dead-letter",
        str(tmp_path / "dl.jsonl"),
    ]

    def sync(path, *more):
        assert main([*common, "--catalog", str(path), *more]) == 0
        return json.loads(capsys.readouterr().out)

    first = sync(catalog)  # empty index: a full index run
    assert (first["added"], first["embedded"]) == (30, 30)
    before = _docs(node.url)
    again = sync(catalog)
    assert (again["unchanged"], again["added"], again["updated"], again["embedded"]) == (30, 0, 0, 0)
    assert _docs(node.url) == before  # nothing was written

    # Today's catalog: 4 rows gone, 4 re-titled, 3 with new image bytes, 5 new.
    removed, retitled, reimaged = rows[:4], rows[4:8], rows[8:11]
    today = [dict(r) for r in rows[4:]]
    for row in today[:4]:
        row["productDisplayName"] = row["productDisplayName"] + " (new season)"
    for row, donor in zip(reimaged, extra[:3]):  # the same file name, another product's photo
        shutil.copy(extra_images / donor["file"], images / row["file"])
    for row in extra:
        shutil.copy(extra_images / row["file"], images / row["file"])
    today += extra
    path = tmp_path / "today.csv"
    _write(path, today)

    dry = sync(path, "--dry-run")
    assert (dry["added"], dry["retagged"], dry["updated"], dry["deleted"], dry["unchanged"]) == (5, 3, 4, 4, 19)
    assert _docs(node.url) == before and dry["embedded"] == 0

    done = sync(path)
    assert (done["added"], done["retagged"], done["updated"], done["deleted"], done["unchanged"]) == (5, 3, 4, 4, 19)
    assert done["embedded"] == 8  # only the new rows and the new images
    after = _docs(node.url)
    assert set(after) == {r["id"] for r in today} and not {r["id"] for r in removed} & set(after)
    for row in retitled:
        doc, old = after[row["id"]], before[row["id"]]
        assert doc["title"].endswith("(new season)") and doc["image_vector"] == old["image_vector"]
        assert doc["tag_weights"] == old["tag_weights"] and doc["row_hash"] != old["row_hash"]
    for row in reimaged:
        doc, old = after[row["id"]], before[row["id"]]
        assert doc["image"]["sha256"] != old["image"]["sha256"] and doc["image_vector"] != old["image_vector"]
        assert doc["tags"] and doc["model"]["tagger"].startswith("knn-engine:products")
    for row in extra:
        assert after[row["id"]]["tags"] and len(after[row["id"]]["image_vector"]) == 1840
    untouched = [r["id"] for r in rows[11:]]
    assert all(after[i] == before[i] for i in untouched)  # indexed_at included

    last = sync(path)  # idempotent
    assert (last["unchanged"], last["added"], last["updated"], last["retagged"], last["deleted"]) == (31, 0, 0, 0, 0)
    assert _docs(node.url) == after


def test_python_sync_with_the_users_client_and_a_generator(node, data_dir, tmp_path):
    import vistag

    _, images, rows = write_slice(data_dir, tmp_path, 6, start=31, step=3001)
    user_client = node.client().raw  # the official Elasticsearch / OpenSearch object a user has
    first = vistag.sync(user_client, rows, images=images, schema="fashion-product-images", cache_dir=tmp_path / "c")
    assert first.added == 6 and first.ok
    second = vistag.sync(
        user_client, (r for r in rows[1:]), images=images, schema="fashion-product-images", cache_dir=tmp_path / "c"
    )
    assert (second.deleted, second.unchanged, second.embedded) == (1, 5, 0) and second.ok
    assert rows[0]["id"] not in _docs(node.url)
