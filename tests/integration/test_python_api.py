"""The Python front door with a client the user made: no vistag connection code at all."""

from __future__ import annotations

import pytest

from tests.conftest import write_slice

pytest.importorskip("torch")


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
    from PIL import Image

    import vistag

    _, images, rows = catalog200
    monkeypatch.chdir(tmp_path)
    dict_rows = [
        {"id": r["id"], "title": r["productDisplayName"], "image": (images / r["file"]).read_bytes()} for r in rows[:6]
    ]
    dict_rows[1]["image"] = Image.open(images / rows[1]["file"])
    dict_rows.append({"id": "broken", "title": "no picture", "image": b"not an image"})
    dict_rows.append({"title": "no id"})
    summary = vistag.index_catalog(_users_client(node.engine, node.url), iter(dict_rows), index="mem")
    assert summary.indexed == 6 and summary.dead_lettered == 2 and not summary.ok
    assert {d["stage"] for d in summary.dead_letters} == {"read", "image"}
    assert any(d["id"] == "broken" and "not a decodable image" in d["reason"] for d in summary.dead_letters)
    assert list(tmp_path.iterdir()) == []  # nothing written to the working directory


@pytest.mark.slow
def test_the_tagger_tags_a_path_a_pil_image_and_bytes_alike_with_no_engine(catalog200):
    """``vistag.Tagger`` (no engine): the same picture as a path, a PIL image and raw bytes gets the same
    tags, scores within [MIN_TAG_SCORE, 1], and the product's own type among them."""
    import PIL.Image

    import vistag
    from vistag.analyzers import MIN_TAG_SCORE

    catalog, images, rows = catalog200
    photo = images / rows[8]["file"]
    tagger = vistag.Tagger(reference=catalog, images=images, schema="fashion-product-images")
    tags = tagger.tag([str(photo), PIL.Image.open(photo), photo.read_bytes()])
    assert len(tags) == 3
    assert tags[1] == pytest.approx(tags[0], abs=1e-4)
    assert tags[2] == pytest.approx(tags[0], abs=1e-4)
    assert rows[8]["articleType"].lower().replace(" ", "-") in tags[0]
    assert all(MIN_TAG_SCORE <= score <= 1.0 for score in tags[0].values())
    with pytest.raises(vistag.VistagError, match="image 1: .*not a decodable image"):
        tagger.tag([str(photo), b"not an image"])
