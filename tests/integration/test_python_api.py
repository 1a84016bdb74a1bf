"""The Python front door with a client the user made: no vistag connection code at all."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import write_slice
from tests.integration.conftest import start_node, wipe

pytest.importorskip("torch")

README = Path(__file__).resolve().parents[2] / "README.md"


def _users_client(engine: str, url: str):
    if engine == "opensearch":
        from opensearchpy import OpenSearch

        return OpenSearch(url)
    from elasticsearch import Elasticsearch

    return Elasticsearch(url)


@pytest.fixture(scope="module")
def catalog200(data_dir, tmp_path_factory):
    return write_slice(data_dir, tmp_path_factory.mktemp("catalog200"), 200, start=5)


@pytest.mark.slow
def test_index_and_query_by_image_with_the_users_own_client(node, catalog200):
    import vistag

    catalog, images, rows = catalog200
    client = _users_client(node.engine, node.url)  # the user's object: vistag never sees a URL
    summary = vistag.index_catalog(client, catalog, images=images, index="products", schema="fashion-product-images")
    assert summary.ok and summary.indexed == 200 and summary.dead_letters == []
    searcher = vistag.Searcher(client, "products")
    assert searcher.spec.vector_dim == 1840  # read from the index mapping
    for row in rows[:3]:
        hits = searcher.image(str(images / row["file"]), k=5)
        assert hits[0].id == row["id"], f"{row['id']} ({row['productDisplayName']}) was not its own first hit"
    assert searcher.keyword(rows[0]["productDisplayName"], size=5)


@pytest.mark.slow
def test_dict_rows_with_in_memory_images_and_bad_rows_kept_in_the_summary(node, catalog200, tmp_path, monkeypatch):
    import vistag
    from PIL import Image

    _, images, rows = catalog200
    monkeypatch.chdir(tmp_path)
    dict_rows = [{"id": r["id"], "title": r["productDisplayName"], "image": (images / r["file"]).read_bytes()}
                 for r in rows[:6]]
    dict_rows[1]["image"] = Image.open(images / rows[1]["file"])
    dict_rows.append({"id": "broken", "title": "no picture", "image": b"not an image"})
    dict_rows.append({"title": "no id"})
    summary = vistag.index_catalog(_users_client(node.engine, node.url), iter(dict_rows), index="mem")
    assert summary.indexed == 6 and summary.dead_lettered == 2 and not summary.ok
    assert {d["stage"] for d in summary.dead_letters} == {"read", "image"}
    assert any(d["id"] == "broken" and "not a decodable image" in d["reason"] for d in summary.dead_letters)
    assert list(tmp_path.iterdir()) == []  # nothing written to the working directory


@pytest.mark.slow
@pytest.mark.opensearch
def test_readme_python_block_runs_as_written(catalog200, tmp_path, monkeypatch):
    """The README's "Use from Python" block, run as it stands in a folder with the files it names
    (on the local OpenSearch node; the test above covers an Elasticsearch client)."""
    catalog, images, rows = catalog200
    node = start_node("opensearch")
    wipe(node)
    block = re.search(r"## Use from Python.*?```python\n(.*?)```", README.read_text(), re.S).group(1)
    assert 'OpenSearch("http://127.0.0.1:9200")' in block
    shutil.copy(catalog, tmp_path / "catalog.csv")
    shutil.copytree(images, tmp_path / "images")
    shutil.copy(images / rows[7]["file"], tmp_path / "photo.jpg")
    shutil.copy(images / rows[8]["file"], tmp_path / "a.jpg")
    monkeypatch.chdir(tmp_path)
    import PIL.Image

    scope = {"PIL": PIL}
    exec(compile(block.replace("http://127.0.0.1:9200", node.url), "README.md", "exec"), scope)  # noqa: S102
    assert scope["summary"].indexed == 200
    assert scope["hits"][0].id == rows[7]["id"]
    tags = scope["tags"]
    assert len(tags) == 3  # a path, a PIL image and raw bytes of the same picture tag alike
    assert tags[1] == pytest.approx(tags[0], abs=1e-4)
    assert tags[2] == pytest.approx(tags[0], abs=1e-4)
    assert rows[8]["articleType"].lower().replace(" ", "-") in tags[0]
