"""``vistag service`` over HTTP: a real uvicorn server with the default model and a kNN tagger
over a labelled slice of the catalog (no engine needed for these)."""

from __future__ import annotations

import base64
import io
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from PIL import Image

from tests.conftest import write_slice
from tests.image_server import ImageServer

pytest.importorskip("torch")
uvicorn = pytest.importorskip("uvicorn")


class Service:
    """The app on a real uvicorn server in a thread (:class:`vistag.service.server.ServerThread`), ready when /readyz is."""

    def __init__(self, app):
        from vistag.service.server import ServerThread

        self.server = ServerThread(app, ready_path="/readyz")
        self.url = self.server.url

    def stop(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def parts(data_dir, tmp_path_factory):
    from vistag.analyzers.tagger import Tagger
    from vistag.models import create_embedder
    from vistag.service.model import InferenceModel

    tmp = tmp_path_factory.mktemp("service")
    reference, ref_images, _ = write_slice(data_dir, tmp / "ref", 60, start=1, step=97)
    _, images, rows = write_slice(data_dir, tmp / "queries", 6, start=5, step=1013)
    embedder = create_embedder("efficientnet-lite0", device="cpu")
    tagger = Tagger(reference, ref_images, schema="fashion-product-images", model=embedder)
    model = InferenceModel(embedder, tagger.document_tagger())
    return model, tagger, images, rows


@pytest.fixture(scope="module")
def image_server():
    srv = ImageServer()
    yield srv
    srv.shutdown()


@pytest.fixture(scope="module")
def service(parts, image_server):
    from vistag.service.app import ServiceConfig, create_app
    from vistag.service.fetch import UrlPolicy
    from vistag.service.inputs import Limits

    config = ServiceConfig(
        limits=Limits(max_body_bytes=2_000_000, max_pixels=4_000_000, max_images=8),
        urls=UrlPolicy(("127.0.0.1",), allow_private=True, timeout=3),
        max_batch=16,
        max_wait_ms=20,
    )
    svc = Service(create_app(parts[0], config))
    yield svc
    svc.stop()


def _image_bytes(images, row) -> bytes:
    return (images / f"{row['id']}.jpg").read_bytes()


def test_embed_matches_the_embedder_and_tag_matches_the_tagger(parts, service):
    model, tagger, images, rows = parts
    data = _image_bytes(images, rows[0])
    resp = requests.post(f"{service.url}/v1/embed", data=data, headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["dim"] == model.dim == 1840 and body["model"]["version"] == model.embedder.model_id
    expected = model.embedder.embed_images([Image.open(io.BytesIO(data)).convert("RGB")])[0]
    assert np.allclose(body["vectors"][0], expected, atol=1e-5)

    b64 = base64.b64encode(data).decode()
    tagged = requests.post(f"{service.url}/v1/tag", json={"image": b64}, timeout=30).json()
    assert tagged["model"]["tagger"] == "knn:k=10"
    want = tagger.tag([data])[0]
    assert tagged["tag_weights"] == pytest.approx({t: round(s, 6) for t, s in want.items()}, abs=1e-4)
    assert tagged["tags"] == list(tagged["tag_weights"]) and tagged["results"][0]["tags"] == tagged["tags"]


def test_analyze_a_batch_mixing_bytes_and_urls(parts, service, image_server):
    _, _, images, rows = parts
    b64 = [base64.b64encode(_image_bytes(images, r)).decode() for r in rows[:2]]
    body = {"images": [b64[0], {"base64": b64[1]}, f"{image_server.base}/img.jpg"]}
    resp = requests.post(f"{service.url}/v1/analyze", json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert len(out["vectors"]) == len(out["results"]) == 3 and "embedding" not in out
    assert all(abs(np.linalg.norm(v) - 1) < 1e-4 for v in out["vectors"])
    assert "/img.jpg" in image_server.seen


@pytest.mark.parametrize(
    "body,status,match",
    [
        ({"image": "http://evil.example/x.jpg"}, 400, "not allowed"),
        ({"image": "http://localhost:{port}/img.jpg"}, 400, "'localhost' is not allowed"),
        ({"image": "http://127.0.0.1:{port}/redirect?to=http://localhost:{port}/img.jpg"}, 400, "not allowed"),
        ({"image": "http://127.0.0.1:{port}/text"}, 422, "not a decodable image"),
        ({"images": ["aGk="] * 9}, 413, "over the limit of 8"),
        ({"image": "file:///etc/passwd"}, 400, "scheme 'file'"),
    ],
)
def test_refusals_are_4xx_with_a_message_and_no_fetch(service, image_server, body, status, match):
    port = image_server.server_address[1]
    body = json.loads(json.dumps(body).replace("{port}", str(port)))
    before = list(image_server.seen)
    resp = requests.post(f"{service.url}/v1/embed", json=body, timeout=30)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json" and match.replace("\\", "") in resp.json()["error"]
    fetched = image_server.seen[len(before) :]
    assert all(p in ("/text",) or p.startswith("/redirect") for p in fetched), fetched  # never the forbidden target


def test_bombs_oversized_bodies_and_garbage(service):
    bomb = io.BytesIO()
    Image.new("1", (3000, 3000)).save(bomb, "PNG")  # 9 MP over the 4 MP limit, a few kB
    resp = requests.post(
        f"{service.url}/v1/embed", data=bomb.getvalue(), headers={"Content-Type": "image/png"}, timeout=30
    )
    assert resp.status_code == 422 and "pixel limit" in resp.json()["error"]
    resp = requests.post(
        f"{service.url}/v1/embed", data=b"x" * 2_100_000, headers={"Content-Type": "image/png"}, timeout=30
    )
    assert resp.status_code == 413
    resp = requests.post(
        f"{service.url}/v1/tag", data=b"\x00garbage", headers={"Content-Type": "image/jpeg"}, timeout=30
    )
    assert resp.status_code == 422 and "Traceback" not in resp.text
    resp = requests.post(f"{service.url}/v1/tag", data="{", headers={"Content-Type": "application/json"}, timeout=30)
    assert resp.status_code == 400


def test_concurrent_requests_are_micro_batched(parts, service):
    _, _, images, rows = parts
    payloads = [_image_bytes(images, r) for r in rows] * 4

    def metric(text, name):
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))

    before = requests.get(f"{service.url}/metrics", timeout=10).text
    with ThreadPoolExecutor(12) as pool:
        codes = list(
            pool.map(
                lambda d: (
                    requests.post(
                        f"{service.url}/v1/embed", data=d, timeout=60, headers={"Content-Type": "image/jpeg"}
                    ).status_code
                ),
                payloads,
            )
        )
    assert codes == [200] * len(payloads)
    after = requests.get(f"{service.url}/metrics", timeout=10).text
    images_done = metric(after, "vistag_batch_size_sum") - metric(before, "vistag_batch_size_sum")
    forwards = metric(after, "vistag_batch_size_count") - metric(before, "vistag_batch_size_count")
    assert images_done == len(payloads)
    assert forwards < len(payloads), "every image ran its own forward: no micro-batching"
    assert 'vistag_requests_total{route="/v1/embed",status="200"}' in after


def test_health_readiness_openapi(service):
    assert requests.get(f"{service.url}/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(f"{service.url}/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["model"]["embedding_dim"] == 1840
    spec = requests.get(f"{service.url}/openapi.json", timeout=5).json()
    assert {"/v1/embed", "/v1/tag", "/v1/analyze", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
    body = spec["paths"]["/v1/embed"]["post"]["requestBody"]["content"]
    assert {"application/json", "image/*"} <= set(body)


def test_bearer_token(parts):
    from vistag.service.app import ServiceConfig, create_app
    from vistag.service.model import InferenceModel

    svc = Service(create_app(InferenceModel(parts[0].embedder), ServiceConfig(token="s3cret")))
    try:
        data = {"image": base64.b64encode(_image_bytes(parts[2], parts[3][0])).decode()}
        assert requests.post(f"{svc.url}/v1/embed", json=data, timeout=30).status_code == 401
        wrong = requests.post(f"{svc.url}/v1/embed", json=data, headers={"Authorization": "Bearer nope"}, timeout=30)
        assert wrong.status_code == 401 and "s3cret" not in wrong.text
        good = requests.post(f"{svc.url}/v1/embed", json=data, headers={"Authorization": "Bearer s3cret"}, timeout=30)
        assert good.status_code == 200 and len(good.json()["embedding"]) == 1840
        assert requests.get(f"{svc.url}/metrics", timeout=5).status_code == 401
        assert requests.get(f"{svc.url}/healthz", timeout=5).status_code == 200
        # No tagger on this one: /v1/tag says so.
        notag = requests.post(f"{svc.url}/v1/tag", json=data, headers={"Authorization": "Bearer s3cret"}, timeout=30)
        assert notag.status_code == 404 and "no tagger" in notag.json()["error"]
    finally:
        svc.stop()


def test_cli_serves_until_stopped(parts, tmp_path, data_dir):
    import os
    import signal
    import subprocess
    import sys

    reference, ref_images, _ = write_slice(data_dir, tmp_path / "ref", 12, start=3, step=211)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vistag",
            "service",
            "--reference",
            str(reference),
            "--reference-images",
            str(ref_images),
            "--port",
            str(port),
            "--max-images",
            "2",
        ],
        env={**os.environ, "VISTAG_HOME": str(tmp_path / "home")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.3)
        assert proc.poll() is None, proc.stdout.read()
        data = base64.b64encode(_image_bytes(parts[2], parts[3][1])).decode()
        resp = requests.post(f"{url}/v1/analyze", json={"images": [data, data]}, timeout=30)
        assert resp.status_code == 200 and len(resp.json()["results"]) == 2
        assert resp.json()["model"]["tagger"] == "knn:k=10"
        assert requests.post(f"{url}/v1/analyze", json={"images": [data] * 3}, timeout=30).status_code == 413
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=30)[0]
    assert "Traceback" not in out, out
