"""The demo page's ``/images/<ref>`` route serves images of the configured catalog only."""

from __future__ import annotations

import io
import tarfile

import pytest
import requests
from PIL import Image

from vistag.images import ImageLoadError, ImageStore
from vistag.service.storefront import Storefront, serve_in_thread


def _jpeg(colour=(200, 10, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def catalog_dir(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    (root / "1.jpg").write_bytes(_jpeg())
    (root / "sub").mkdir()
    (root / "sub" / "2.jpg").write_bytes(_jpeg())
    secret = tmp_path / "secret.jpg"  # outside the catalog
    secret.write_bytes(_jpeg((0, 0, 255)))
    (root / "escape.jpg").symlink_to(secret)
    return root, secret


REFUSED = [
    "../secret.jpg",
    "sub/../../secret.jpg",
    "{secret}",
    "file://{secret}",
    "http://127.0.0.1:9/x.jpg",
    "https://example.com/x.jpg",
    "escape.jpg",
    "sub//2.jpg",
    "c:\\\\x.jpg",
    "",
]


@pytest.mark.parametrize("ref", REFUSED)
def test_read_member_refuses_what_is_not_a_catalog_image(catalog_dir, ref):
    root, secret = catalog_dir
    with ImageStore(root) as store, pytest.raises(ImageLoadError, match="not a catalog image"):
        store.read_member(ref.format(secret=secret))


def test_read_member_reads_folder_and_tar_members(catalog_dir, tmp_path):
    root, _ = catalog_dir
    with ImageStore(root) as store:
        assert store.read_member("sub/2.jpg") == (root / "sub" / "2.jpg").read_bytes()
    tar_path = tmp_path / "images.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(root / "1.jpg", arcname="images/1.jpg")
    with ImageStore(tar_path) as store:
        assert store.read_member("images/1.jpg") == (root / "1.jpg").read_bytes()
        with pytest.raises(ImageLoadError, match="not a catalog image"):
            store.read_member("/images/1.jpg")


def test_the_demo_route_serves_catalog_images_and_refuses_the_rest(catalog_dir):
    root, secret = catalog_dir
    with ImageStore(root) as store:
        server, url = serve_in_thread(Storefront(searcher=None, images=store, embed=None))
        try:
            ok = requests.get(f"{url}/images/sub/2.jpg", timeout=10)
            assert ok.status_code == 200 and ok.headers["Content-Type"] == "image/jpeg"
            for ref in [
                "..%2Fsecret.jpg",
                "sub/%2E%2E/%2E%2E/secret.jpg",
                f"{secret}".lstrip("/"),
                "%2F" + str(secret).lstrip("/").replace("/", "%2F"),
                "http:%2F%2F127.0.0.1:9%2Fx.jpg",
                "escape.jpg",
            ]:
                resp = requests.get(f"{url}/images/{ref}", timeout=10)
                assert resp.status_code == 404, (ref, resp.status_code)
                assert resp.headers["Content-Type"].startswith("application/json"), ref
        finally:
            server.shutdown()
