"""The demo storefront's JSON routes over a real index, outside the browser: answers, bounds and refusals."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import write_slice
from vistag.analyzers.relations import build_relations
from vistag.images import ImageStore
from vistag.indexer.pipeline import index_catalog
from vistag.service.server import ServerThread
from vistag.service.storefront import create_storefront_app, open_storefront

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def catalog(data_dir, tmp_path_factory):
    return write_slice(data_dir, tmp_path_factory.mktemp("storefront"), 40, start=3, step=53)


@pytest.fixture
def shop(node, catalog):
    path, images, rows = catalog
    client = node.client()
    summary = index_catalog(client, path, images, "shop", schema="fashion-product-images", model="tiny-random")
    assert summary.ok and summary.indexed == len(rows)
    relations = build_relations(path, schema="fashion-product-images", semantic=False)
    app = open_storefront(client, "shop", images=images, relations=relations, model="tiny-random", device="cpu")
    server = ServerThread(create_storefront_app(app))
    yield server.url, rows, images
    server.shutdown()
    client.delete_index("shop")
    client.close()


def get(url: str, **params: object) -> requests.Response:
    return requests.get(url, params=params, timeout=60)


def test_search_routes_answer_keyword_tags_and_hybrid(shop):
    url, rows, _ = shop
    keyword = get(f"{url}/api/search", q="shirt", size=5).json()
    assert keyword["mode"] == "keyword" and 0 < len(keyword["hits"]) <= 5
    assert "shirt" in (keyword["hits"][0]["title"] or "").lower()
    tags = get(f"{url}/api/search", tags="apparel", size=5).json()
    assert tags["mode"] == "tags" and all("apparel" in h["tags"] for h in tags["hits"])
    hybrid = get(f"{url}/api/search", q="shirt", tags="apparel", expand="1").json()
    assert hybrid["mode"] == "hybrid" and hybrid["hits"]
    assert hybrid["expanded_tags"] and "apparel" not in hybrid["expanded_tags"]
    page2 = get(f"{url}/api/search", q="shirt", size=2, **{"from": 2}).json()["hits"]
    page1 = get(f"{url}/api/search", q="shirt", size=4).json()["hits"]
    assert [h["id"] for h in page2] == [h["id"] for h in page1[2:4]]


@pytest.mark.parametrize(
    "params,status,message",
    [
        ({"q": "x", "size": 0}, 422, "size"),
        ({"q": "x", "size": 101}, 422, "size"),
        ({"q": "x", "from": -1}, 422, "from"),
        ({"q": "x", "from": 9995, "size": 10}, 400, "from + size"),
        ({"q": "x" * 1001}, 422, "q"),
        ({"q": "x", "fusion": "magic"}, 422, "fusion"),
        ({"tags": "a:heavy"}, 400, "bad tag weight"),
        ({}, 400, "type a query or pick a tag"),
    ],
)
def test_search_parameters_are_bounded_and_refusals_say_why(shop, params, status, message):
    url, _, _ = shop
    resp = get(f"{url}/api/search", **params)
    assert resp.status_code == status, resp.text
    assert message in resp.json()["error"]


def test_similar_popular_related_and_unknown_products(shop):
    url, rows, _ = shop
    product = rows[0]["id"]
    similar = get(f"{url}/api/similar/{product}", size=5).json()
    assert similar["mode"] == "similar" and similar["hits"] and product not in [h["id"] for h in similar["hits"]]
    missing = get(f"{url}/api/similar/no-such-product")
    assert missing.status_code == 404 and "no-such-product" in missing.json()["error"]
    assert get(f"{url}/api/similar/{product}", size=1000).status_code == 422
    popular = get(f"{url}/api/popular-tags", size=5).json()["tags"]
    assert len(popular) == 5 and popular[0]["count"] >= popular[-1]["count"]
    related = get(f"{url}/api/related", tags="tshirts").json()
    assert related["tags"] == ["tshirts"] and all(r["tag"] != "tshirts" for r in related["related"])


def test_image_search_and_catalog_images(shop):
    url, rows, images = shop
    target = rows[5]
    photo = (images / target["file"]).read_bytes()
    hits = requests.post(
        f"{url}/api/search-image", data=photo, params={"size": 3}, headers={"Content-Type": "image/jpeg"}, timeout=60
    ).json()["hits"]
    assert hits[0]["id"] == target["id"]
    for body, status in ((b"", 400), (b"not an image", 400), (b"\xff" * (16 * 1024 * 1024 + 1), 413)):
        resp = requests.post(f"{url}/api/search-image", data=body, timeout=60)
        assert resp.status_code == status and "error" in resp.json(), (status, resp.text[:200])
    thumb = requests.get(f"{url}/images/{target['file']}", timeout=30)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    with ImageStore(images) as store:
        assert store.load(thumb.content).width > 0
    assert requests.get(f"{url}/images/..%2F..%2Fetc%2Fpasswd", timeout=30).status_code == 404


def test_the_openapi_description_lists_every_route_with_its_bounds(shop):
    url, _, _ = shop
    spec = requests.get(f"{url}/openapi.json", timeout=30).json()
    assert {
        "/api/search",
        "/api/search-image",
        "/api/similar/{product_id}",
        "/api/related",
        "/api/popular-tags",
        "/images/{source}",
    } <= set(spec["paths"])
    size = next(p for p in spec["paths"]["/api/search"]["get"]["parameters"] if p["name"] == "size")
    assert size["schema"]["minimum"] == 1 and size["schema"]["maximum"] == 100
