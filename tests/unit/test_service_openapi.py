"""The inference service's OpenAPI description tells the truth: property-based requests from it (Schemathesis)
never get a server error, and every request and answer conforms to it."""

from __future__ import annotations

import numpy as np
import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("torch")
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from schemathesis.config import SchemathesisConfig

pytestmark = pytest.mark.torch


def _image(colour: str, fmt: str) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (24, 18), colour).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def image_urls():
    """An image host the service may fetch from, and the formats that make valid requests carry real images
    (a string of the right type is not yet an image: the description names them ``image`` and ``image-url``)."""
    import base64

    from hypothesis import strategies as st

    from tests.image_server import ImageServer

    server = ImageServer()
    encoded = [base64.b64encode(_image(c, f)).decode() for c, f in (("red", "PNG"), ("blue", "JPEG"))]
    schemathesis.openapi.format("image", st.sampled_from([*encoded, f"data:image/png;base64,{encoded[0]}"]))
    schemathesis.openapi.format("image-url", st.just(f"{server.base}/img.jpg"))
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def service_url(image_urls):
    from vistag.analyzers.knn_tagger import KnnTagger, ReferenceSet
    from vistag.analyzers.taggers import KnnDocumentTagger
    from vistag.models import create_embedder
    from vistag.service.app import ServiceConfig, create_app
    from vistag.service.fetch import UrlPolicy
    from vistag.service.inputs import Limits
    from vistag.service.model import InferenceModel
    from vistag.service.server import ServerThread

    embedder = create_embedder("tiny-random", device="cpu")
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6, embedder.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    reference = ReferenceSet(
        [str(i) for i in range(6)],
        vectors,
        [["shirts"], ["shoes"], ["shirts", "blue"], ["bags"], ["shoes", "red"], ["caps"]],
    )
    model = InferenceModel(embedder, KnnDocumentTagger(KnnTagger(reference, k=3)))
    app = create_app(
        model,
        ServiceConfig(
            limits=Limits(max_body_bytes=2_000_000, max_images=4),
            max_wait_ms=1,
            urls=UrlPolicy(("127.0.0.1",), allow_private=True, timeout=5),
        ),
    )
    server = ServerThread(app, ready_path="/readyz")
    yield server.url
    server.shutdown()


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]
OPERATIONS = ["POST /v1/embed", "POST /v1/tag", "POST /v1/analyze", "GET /healthz", "GET /readyz", "GET /metrics"]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize("label", OPERATIONS)
def test_the_service_answers_as_its_openapi_description_says(service_url, label, mode):
    # 413 is the documented answer to a request over a limit (body, image or batch size): a rejection too
    config = SchemathesisConfig.from_dict(
        {
            "checks": {
                "negative_data_rejection": {
                    "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]
                }
            }
        }
    )
    schema = schemathesis.openapi.from_url(f"{service_url}/openapi.json", config=config)
    operation = schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the description"
    calls = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def check(case):
        # valid JSON requests carry real images (see image_urls) and must be answered 2xx; a raw body is random
        # bytes, which the service rightly refuses as "not an image" (422, documented)
        strict = mode is GenerationMode.POSITIVE and case.media_type in (None, "application/json")
        calls.append(
            case.call_and_validate(checks=CHECKS + ([checks.positive_data_acceptance] if strict else [])).status_code
        )

    try:
        check()
    except Exception as exc:  # a GET with no parameters has no invalid form to make: nothing to test there
        if mode is GenerationMode.NEGATIVE and "Unsatisfiable" in type(exc).__name__ + str(exc):
            pytest.skip(f"{label} takes no input that could be invalid")
        raise
    assert calls, "no request was made"


def test_the_description_says_exactly_one_of_image_or_images(service_url):
    import requests

    spec = requests.get(f"{service_url}/openapi.json", timeout=10).json()
    body = spec["paths"]["/v1/embed"]["post"]["requestBody"]["content"]
    assert {"application/json", "image/*", "application/octet-stream"} <= set(body)
    branches = body["application/json"]["schema"]["oneOf"]
    assert [b["required"] for b in branches] == [["image"], ["images"]]
    assert all(b["additionalProperties"] is False for b in branches)
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    # and the service does what it says: both keys, or null values, are refused
    for payload in ({"image": None, "images": None}, {"image": None}, {"images": []}, {"image": "x", "extra": 1}):
        resp = requests.post(f"{service_url}/v1/embed", json=payload, timeout=10)
        assert resp.status_code == 400 and "error" in resp.json(), (payload, resp.text)
