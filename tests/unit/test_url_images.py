"""Images over http(s): downloads, failures named by URL, and retries of transient failures (5xx, 429, lost connections)."""

import http.server
import io
import threading
from collections import Counter

import pytest
from PIL import Image

from vistag.images import ImageLoadError, ImageStore


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (30, 40), (0, 128, 0)).save(buf, "JPEG")
    return buf.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    """``/ok.jpg``; ``/flaky/<status>/<n>.jpg`` answers ``status`` (or drops the connection for ``drop``) to the
    first ``n`` requests of that path, then the image; anything else is a 404."""

    def log_message(self, *args: object) -> None:  # quiet: the handler class itself, not a partial
        pass

    def do_GET(self) -> None:
        hits = self.server.hits  # type: ignore[attr-defined]
        hits[self.path] += 1
        parts = self.path.strip("/").split("/")
        if parts[0] == "flaky" and hits[self.path] <= int(parts[2].split(".")[0]):
            if parts[1] == "drop":
                self.close_connection = True
                self.connection.shutdown(2)  # no answer at all: a lost connection
                return
            self.send_response(int(parts[1]))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/ok.jpg" or parts[0] == "flaky":
            body = _jpeg()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.hits = Counter()  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _base(srv) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def test_downloads_images_and_names_failures(server):
    pauses: list[float] = []
    store = ImageStore(timeout=5, sleep=pauses.append)
    loaded = store.load(f"{_base(server)}/ok.jpg")
    assert (loaded.width, loaded.height) == (30, 40)
    with pytest.raises(ImageLoadError, match="HTTP 404"):
        store.load(f"{_base(server)}/missing.jpg")
    assert server.hits["/missing.jpg"] == 1 and pauses == []  # a 404 is final: no retry
    with pytest.raises(ImageLoadError, match="download of http://127.0.0.1:9/x.jpg failed: ConnectionError"):
        store.load("http://127.0.0.1:9/x.jpg")


@pytest.mark.parametrize("status", ["503", "500", "429", "drop"])
def test_transient_failures_are_retried_with_backoff_before_the_image_is_given_up(server, status):
    pauses: list[float] = []
    store = ImageStore(timeout=5, sleep=pauses.append, download_retries=3, download_backoff=0.5)
    loaded = store.load(f"{_base(server)}/flaky/{status}/2.jpg")  # two failures, then the image
    assert loaded.width == 30
    assert server.hits[f"/flaky/{status}/2.jpg"] == 3
    assert len(pauses) == 2 and 0.25 <= pauses[0] <= 0.5 and 0.5 <= pauses[1] <= 1.0  # capped exponential, jittered
    with pytest.raises(ImageLoadError, match=r"failed: (HTTP \d+|ConnectionError) \(after 4 tries\)"):
        store.load(f"{_base(server)}/flaky/{status}/9.jpg")  # more failures than retries: given up, with the reason
    assert server.hits[f"/flaky/{status}/9.jpg"] == 4
