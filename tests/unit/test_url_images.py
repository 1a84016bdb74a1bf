import functools
import http.server
import io
import threading

import pytest
from PIL import Image

from vistag.images import ImageLoadError, ImageStore


@pytest.fixture
def http_root(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (30, 40), (0, 128, 0)).save(buf, "JPEG")
    (tmp_path / "ok.jpg").write_bytes(buf.getvalue())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_downloads_images_and_names_failures(http_root):
    store = ImageStore(timeout=5)
    loaded = store.load(f"{http_root}/ok.jpg")
    assert (loaded.width, loaded.height) == (30, 40)
    with pytest.raises(ImageLoadError, match="HTTP 404"):
        store.load(f"{http_root}/missing.jpg")
    with pytest.raises(ImageLoadError, match="download of http://127.0.0.1:9/x.jpg failed"):
        store.load("http://127.0.0.1:9/x.jpg")
