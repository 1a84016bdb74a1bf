"""``vistag service``: the inference API a storefront backend and an engine call (FastAPI on uvicorn).

Endpoints (JSON in and out; OpenAPI at ``/openapi.json``, docs at ``/docs``):

* ``POST /v1/embed`` -> ``{"model", "dim", "vectors": [[...]]}`` (and ``embedding``
  when the request held a single ``image``, the shape an ml-commons connector maps);
* ``POST /v1/tag`` -> ``{"model", "results": [{"tags", "tag_weights", ...}]}``;
* ``POST /v1/analyze`` -> both, from one forward pass;
* ``GET /healthz`` (the process answers), ``GET /readyz`` (model loaded and warmed
  up, engine reachable when the tagger needs one), ``GET /metrics`` (Prometheus).

A request carries raw image bytes, or JSON with base64, data: URIs or URLs (see
:mod:`vistag.service.inputs`); URLs are fetched only from allowed hosts (see
:mod:`vistag.service.fetch`). Concurrent requests share model forwards
(:mod:`vistag.service.batcher`). Every refusal is a 4xx with ``{"error": ...}``;
an unexpected failure is a 500 with no traceback. With a token, every route but
``/healthz`` and ``/readyz`` needs ``Authorization: Bearer <token>``.

Examples:
    >>> app = create_app(InferenceModel(create_embedder("efficientnet-lite0")), ServiceConfig())  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)                                          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from vistag.service.batcher import Busy, MicroBatcher
from vistag.service.fetch import UrlPolicy
from vistag.service.inputs import (
    ImageInput,
    InputError,
    Limits,
    check_urls,
    load_image,
    parse_request,
)
from vistag.service.metrics import ServiceMetrics
from vistag.service.model import InferenceModel
from vistag.version import __version__

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceConfig:
    """How the service runs.

    Attributes:
        limits: request, image and batch limits.
        urls: which image URLs may be fetched.
        token: bearer token every client must send (``None``: no auth).
        max_batch: images per model forward (1: micro-batching off).
        max_wait_ms: how long the first image of a batch waits for company.
        max_queue: images waiting for the model at most (more: 503).
    """

    limits: Limits = field(default_factory=Limits)
    urls: UrlPolicy = field(default_factory=UrlPolicy)
    token: str | None = None
    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 512


def request_schema(max_images: int) -> dict[str, Any]:
    """The JSON body the image routes take: exactly one of ``image`` or ``images`` (nothing else).

    Examples:
        >>> [sorted(branch["required"]) for branch in request_schema(32)["oneOf"]]
        [['image'], ['images']]
    """
    one = {
        "type": "string",
        "minLength": 1,
        "format": "image",
        "description": "an image: an http(s) URL of an allowed host, base64, or a base64 data: URI",
    }
    url = {
        "type": "string",
        "minLength": 1,
        "format": "image-url",
        "description": "an http(s) URL of an image on an allowed host",
    }
    encoded = {"type": "string", "minLength": 1, "format": "image", "description": "the image's bytes in base64"}
    item = {
        "oneOf": [
            one,
            {"type": "object", "properties": {"url": url}, "required": ["url"], "additionalProperties": False},
            {
                "type": "object",
                "properties": {"base64": encoded},
                "required": ["base64"],
                "additionalProperties": False,
            },
        ]
    }
    return {
        "oneOf": [
            {
                "type": "object",
                "title": "one image",
                "properties": {"image": one},
                "required": ["image"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "title": "a batch",
                "required": ["images"],
                "additionalProperties": False,
                "properties": {"images": {"type": "array", "items": item, "minItems": 1, "maxItems": max_images}},
            },
        ]
    }


def request_body(max_images: int) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of the image routes: JSON (:func:`request_schema`) or the raw image bytes."""
    raw = {"schema": {"type": "string", "format": "binary"}}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": request_schema(max_images)},
                "image/*": raw,
                "application/octet-stream": raw,
            },
        }
    }


class ImageInfo(BaseModel):
    """What the service read of one image (the ``image`` object of a document)."""

    source: str | None = Field(None, description="the URL, or null for bytes sent in the request")
    sha256: str
    width: int
    height: int


class EmbedResponse(BaseModel):
    """The answer of ``/v1/embed``: one unit vector per image."""

    model: dict
    dim: int
    vectors: list[list[float]]
    images: list[ImageInfo]
    embedding: list[float] | None = Field(None, description="the vector, when the request held a single image")
    image: ImageInfo | None = Field(None, description="the image, when the request held a single image")


class TagResult(BaseModel):
    """The tags of one image, as ``vistag index`` writes them into a document."""

    tags: list[str]
    tag_weights: dict[str, float]
    category: list[str] | None = Field(None, description="a trained model's predicted category path")
    category_fields: dict | None = Field(None, description="that path as the document's `category` object")
    attributes: dict[str, str] | None = None
    predicted: dict | None = None


class TagResponse(BaseModel):
    """The answer of ``/v1/tag``: one result per image."""

    model: dict
    images: list[ImageInfo]
    results: list[TagResult]


class AnalyzeResponse(BaseModel):
    """The answer of ``/v1/analyze``: vectors and tags from one forward pass."""

    model: dict
    dim: int
    vectors: list[list[float]]
    images: list[ImageInfo]
    results: list[TagResult]


class ErrorResponse(BaseModel):
    """A refusal: what was wrong, naming the image or the limit."""

    error: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (400, "malformed request, or a URL that is refused or cannot be fetched"),
        (401, "missing or wrong token"),
        (413, "body, image or batch too large"),
        (415, "unsupported Content-Type"),
        (422, "not a decodable image, or a decompression bomb"),
        (503, "the model queue is full, or not ready"),
    )
}


class FastJSONResponse(JSONResponse):
    """JSON by orjson: numpy float32 vectors are written directly, in their shortest exact form."""

    def render(self, content: Any) -> bytes:
        """The body's bytes."""
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return FastJSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(model: InferenceModel, config: ServiceConfig | None = None) -> FastAPI:
    """The ASGI application serving ``model`` (run it with uvicorn).

    Args:
        model: the embedder and tagger.
        config: limits, URL policy, token and batching.
    """
    config = config or ServiceConfig()
    metrics = ServiceMetrics()
    batcher: MicroBatcher = MicroBatcher(
        model.embed,
        max_batch=config.max_batch,
        max_wait=config.max_wait_ms / 1000,
        max_queue=config.max_queue,
        observe=metrics.batch_size.observe,
    )
    state = {"warm": False}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        # One forward before the first request, so readiness means "answers at full speed".
        from PIL import Image

        await batcher.submit(await run_in_threadpool(model.prepare, Image.new("RGB", (64, 64))))
        state["warm"] = True
        logger.info(
            "vistag service ready: %s (%d-d)%s",
            model.info["version"],
            model.dim,
            f", tagger {model.info['tagger']}" if "tagger" in model.info else "",
        )
        yield
        await batcher.stop()

    app = FastAPI(
        title="vistag inference service",
        version=__version__,
        lifespan=lifespan,
        description="Image embeddings and tags for a storefront backend or a search engine's "
        "ingest and search pipelines.",
    )
    app.state.metrics = metrics
    app.state.batcher = batcher

    app.add_middleware(_Guard, token=config.token, metrics=metrics)

    async def read_images(request: Request) -> list[ImageInput]:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > config.limits.max_body_bytes:
            raise InputError(
                413, f"the request body is {declared} bytes, over the {config.limits.max_body_bytes}-byte limit"
            )
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > config.limits.max_body_bytes:
                raise InputError(413, f"the request body is over the {config.limits.max_body_bytes}-byte limit")
            chunks.append(chunk)
        inputs = parse_request(b"".join(chunks), request.headers.get("content-type", ""), config.limits)
        check_urls(inputs, config.urls)  # every URL checked before any is fetched
        return inputs

    async def vectors_of(inputs: list[ImageInput]) -> tuple[list[np.ndarray], list[dict]]:
        def load_and_prepare(inp: ImageInput) -> tuple[np.ndarray, dict]:
            loaded = load_image(inp, config.urls, config.limits)
            image = {
                "source": loaded.source or None,
                "sha256": loaded.sha256,
                "width": loaded.width,
                "height": loaded.height,
            }
            return model.prepare(loaded.image), image

        with batcher.incoming(len(inputs)):  # a batch forming now waits for these
            prepared = await asyncio.gather(*(run_in_threadpool(load_and_prepare, i) for i in inputs))
            futures = [batcher.enqueue(array) for array, _ in prepared]  # queued before the announcement ends
        metrics.images.inc(len(prepared))
        return list(await asyncio.gather(*futures)), [image for _, image in prepared]

    async def handle(request: Request, want_vectors: bool, want_tags: bool) -> Response:
        if want_tags and model.tagger is None:
            return _error(404, "this service has no tagger: start it with --reference, --reference-index or --model")
        try:
            inputs = await read_images(request)
            vectors, images = await vectors_of(inputs)
            single = len(inputs) == 1 and inputs[0].name == "image"  # flattened: what an ingest processor maps
            body: dict[str, Any] = {"model": model.info, "images": images}
            if single:
                body["image"] = images[0]
            if want_vectors:
                body["dim"] = model.dim
                body["vectors"] = np.stack(vectors)
                if single:
                    body["embedding"] = body["vectors"][0]
            if want_tags:
                body["results"] = await run_in_threadpool(model.tag, vectors)
                if single:
                    body.update(body["results"][0])
            return FastJSONResponse(body)
        except InputError as exc:
            metrics.errors.labels(kind=str(exc.status)).inc()
            return _error(exc.status, str(exc))
        except Busy as exc:
            metrics.errors.labels(kind="busy").inc()
            return _error(503, str(exc), {"Retry-After": "1"})

    body = request_body(config.limits.max_images)

    @app.post(
        "/v1/embed",
        response_model=EmbedResponse,
        responses=_ERRORS,
        openapi_extra=body,
        summary="Embedding vectors of one image or a batch",
    )
    async def embed(request: Request) -> Response:
        return await handle(request, want_vectors=True, want_tags=False)

    @app.post(
        "/v1/tag",
        response_model=TagResponse,
        responses={**_ERRORS, 404: {"model": ErrorResponse, "description": "the service has no tagger"}},
        openapi_extra=body,
        summary="Tags with scores (and a model's category path and attributes)",
    )
    async def tag(request: Request) -> Response:
        return await handle(request, want_vectors=False, want_tags=True)

    @app.post(
        "/v1/analyze",
        response_model=AnalyzeResponse,
        responses={**_ERRORS, 404: {"model": ErrorResponse, "description": "the service has no tagger"}},
        openapi_extra=body,
        summary="Vectors and tags from one forward pass",
    )
    async def analyze(request: Request) -> Response:
        return await handle(request, want_vectors=True, want_tags=True)

    @app.get("/healthz", summary="The process answers")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="Model warmed up and engine reachable", responses={503: {"model": ErrorResponse}})
    async def readyz() -> Response:
        if not state["warm"]:
            return _error(503, "the model is loading")
        reason = await run_in_threadpool(model.not_ready)
        if reason:
            return _error(503, reason)
        return FastJSONResponse({"status": "ready", "model": model.info})

    @app.get(
        "/metrics",
        summary="Prometheus metrics (text exposition format 0.0.4)",
        response_class=Response,
        responses={
            200: {"description": "the metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
            401: {"model": ErrorResponse, "description": "missing or wrong token"},
        },
    )
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    return app


class _Guard:
    """Bearer-token check and request metrics, as plain ASGI (no per-request task or body copy)."""

    def __init__(self, app: Any, token: str | None, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route = scope["path"] if scope["path"] in _ROUTES else "other"
        status = {"code": 500}

        async def send_status(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            if self.expected is not None and route not in ("/healthz", "/readyz"):
                sent = dict(scope["headers"]).get(b"authorization", b"")
                if not hmac.compare_digest(sent, self.expected):
                    await _error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})(
                        scope, receive, send_status
                    )
                    return
            await self.app(scope, receive, send_status)
        except Exception:
            logger.exception("%s %s failed", scope.get("method"), scope["path"])
            await _error(500, "internal error (logged by the service)")(scope, receive, send_status)
        finally:
            self.metrics.observe(route, status["code"], time.perf_counter() - started)


_ROUTES = frozenset(
    {"/v1/embed", "/v1/tag", "/v1/analyze", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"}
)
