"""``vistag serve``: a demo storefront page and its JSON API over a running engine, as a FastAPI router.

Routes (JSON except ``/`` and ``/images/``), every parameter bounded:

* ``GET /`` -- the page (``static/index.html``);
* ``GET /api/search?q=&tags=a,b:0.5&category=&filter=gender=Men;usage=Casual&fusion=rrf&expand=1&from=&size=``
  -- keyword, tag or hybrid search; answers ``{"hits", "expanded_tags", "mode"}``;
* ``POST /api/search-image?size=`` -- the request body is an image (any format Pillow reads);
* ``GET /api/similar/{id}?size=`` -- similar products;
* ``GET /api/related?tags=a,b`` -- tag recommendations from the tag relations;
* ``GET /api/popular-tags?size=`` -- the most frequent tags (the page's tag chips);
* ``GET /images/{source}`` -- a product image from the catalog's image folder or ``.tar``
  (only its own images: no absolute paths, URLs, ``..`` or symlinks out of it).

Errors answer ``{"error": "..."}`` with a 4xx/5xx status; the server never exposes
credentials or stack traces. The router is mounted by :func:`create_storefront_app`;
it shares the FastAPI stack of the inference service (:mod:`vistag.service.app`).

Examples:
    >>> app = create_storefront_app(open_storefront(OpenSearch("http://127.0.0.1:9200"), "products"))  # doctest: +SKIP
    >>> uvicorn.run(app, port=8080)                                                                  # doctest: +SKIP
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image
from starlette.concurrency import run_in_threadpool

from vistag.engine.client import Client
from vistag.errors import (
    ConfigError,
    EngineUnavailable,
    ImageLoadError,
    NotFoundError,
    VistagError,
)
from vistag.images import ImageStore, decode_image
from vistag.search.queries import Hit, Searcher
from vistag.service.server import ServerThread
from vistag.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from vistag.models.loading import ModelSpec

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
#: Largest image accepted by ``POST /api/search-image``.
MAX_UPLOAD = 16 * 1024 * 1024
#: Largest ``size`` of any list route, and deepest ``from`` + ``size`` (the engines' default result window).
MAX_SIZE, MAX_WINDOW = 100, 10_000
HIT_FIELDS = ("title", "tags", "tag_weights", "category", "attributes", "image", "predicted")

Embed = Callable[[Image.Image], list[float]]


@dataclass
class Storefront:
    """What the routes need.

    Attributes:
        searcher: queries the index (``None``: only the image route works).
        images: serves thumbnails (``None``: no thumbnails).
        embed: image -> vector for image queries (``None``: image search is off).
        relations: tag relations for expansion and related tags (or ``None``).
    """

    searcher: Searcher | None
    images: ImageStore | None
    embed: Embed | None
    relations: Any = None

    def _searcher(self) -> Searcher:
        if self.searcher is None:
            raise ConfigError("this storefront has no index to search")
        return self.searcher


def _hit(h: Hit) -> dict[str, Any]:
    return {"id": h.id, "score": round(h.score, 5), **{k: h.source.get(k) for k in HIT_FIELDS if k in h.source}}


def parse_tags(text: str) -> dict[str, float]:
    """``"a,b:0.5"`` -> ``{"a": 1.0, "b": 0.5}``.

    Raises:
        ConfigError: a weight that is not a number.

    Examples:
        >>> parse_tags("tshirts, casual:0.5")
        {'tshirts': 1.0, 'casual': 0.5}
    """
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        tag, _, weight = item.partition(":")
        try:
            out[tag.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise ConfigError(f"bad tag weight in {item[:100]!r}: use tag or tag:weight") from None
    return out


def parse_filters(text: str) -> dict[str, str]:
    """``"gender=Men;usage=Casual"`` -> ``{"gender": "Men", "usage": "Casual"}``.

    Examples:
        >>> parse_filters("gender=Men;usage=Casual")
        {'gender': 'Men', 'usage': 'Casual'}
    """
    return {
        name.strip(): value.strip()
        for name, _, value in (f.partition("=") for f in text.split(";") if "=" in f)
        if name.strip()
    }


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"Cache-Control": "no-store"})


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {
        "description": text,
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
            }
        },
    }
    for code, text in (
        (400, "a query the storefront cannot run"),
        (404, "no such product or image"),
        (413, "upload too large"),
        (422, "a parameter out of its bounds"),
        (502, "the inference service failed"),
        (503, "the engine does not answer"),
    )
}
_HITS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "ranked products",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"hits": {"type": "array", "items": {"type": "object"}}, "mode": {"type": "string"}},
                    "required": ["hits", "mode"],
                }
            }
        },
    }
}
_IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def storefront_router(app: Storefront) -> APIRouter:
    """The storefront's routes over ``app`` (see the module docstring)."""
    router = APIRouter()

    @router.get("/", response_class=HTMLResponse, summary="The storefront page", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"})

    @router.get("/api/search", summary="Keyword, tag or hybrid search", responses={**_HITS, **_ERRORS})
    async def search(
        q: str = Query("", max_length=1000, description="keywords"),
        tags: str = Query("", max_length=2000, description="tags, e.g. tshirts,casual:0.5"),
        category: str = Query("", max_length=500, description='category path prefix, "Apparel > Topwear"'),
        filters: str = Query(
            "", alias="filter", max_length=2000, description="attribute filters, gender=Men;usage=Casual"
        ),
        fusion: str = Query("rrf", pattern="^(rrf|weighted)$"),
        expand: str = Query("0", pattern="^[01]$", description="1: expand the tags with their relations"),
        offset: int = Query(0, alias="from", ge=0, le=MAX_WINDOW - 1),
        size: int = Query(12, ge=1, le=MAX_SIZE),
    ) -> dict[str, Any]:
        if offset + size > MAX_WINDOW:
            raise ConfigError(f"from + size must be at most {MAX_WINDOW}")
        return await run_in_threadpool(
            _search,
            app,
            q.strip(),
            parse_tags(tags),
            category or None,
            parse_filters(filters),
            fusion,
            expand == "1",
            offset,
            size,
        )

    @router.post(
        "/api/search-image",
        summary="Products that look like the uploaded image",
        responses={**_HITS, **_ERRORS},
        openapi_extra=_IMAGE_BODY,
    )
    async def search_image(request: Request, size: int = Query(12, ge=1, le=MAX_SIZE)) -> Response:
        if app.embed is None:
            return _error(404, "image search is off: start `vistag serve` with a model or --service")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_UPLOAD:
            return _error(413, f"send an image of 1 byte to {MAX_UPLOAD // 2**20} MiB")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_UPLOAD:
                return _error(413, f"send an image of 1 byte to {MAX_UPLOAD // 2**20} MiB")
        if not body:
            return _error(400, "send the image as the request body")
        image = decode_image(bytes(body), "upload").image
        embed = app.embed
        try:
            vector = await run_in_threadpool(embed, image)
        except VistagError as exc:  # e.g. the inference service is down or refused
            return _error(502, str(exc))
        hits = await run_in_threadpool(app._searcher().image, vector, size)
        return JSONResponse({"hits": [_hit(h) for h in hits], "mode": "image"})

    @router.get("/api/similar/{product_id}", summary="Products similar to one product", responses={**_HITS, **_ERRORS})
    async def similar(product_id: str, size: int = Query(8, ge=1, le=MAX_SIZE)) -> dict[str, Any]:
        hits = await run_in_threadpool(app._searcher().similar, product_id, size)
        return {"hits": [_hit(h) for h in hits], "mode": "similar", "of": product_id}

    @router.get("/api/related", summary="Tags related to some tags (recommendations)", responses=_ERRORS)
    async def related(tags: str = Query("", max_length=2000)) -> dict[str, Any]:
        wanted = [t for t in (x.strip() for x in tags.split(",")) if t]
        recs = app.relations.recommend(wanted) if app.relations is not None and wanted else []
        return {"tags": wanted, "related": [{"tag": t, "score": s} for t, s in recs]}

    @router.get("/api/popular-tags", summary="The most frequent tags", responses=_ERRORS)
    async def popular_tags(size: int = Query(24, ge=1, le=200)) -> dict[str, Any]:
        searcher = app._searcher()
        body = {"size": 0, "aggs": {"tags": {"terms": {"field": "tags", "size": size}}}}
        resp = await run_in_threadpool(searcher.client.search, searcher.index, body)
        return {"tags": [{"tag": b["key"], "count": b["doc_count"]} for b in resp["aggregations"]["tags"]["buckets"]]}

    @router.get(
        "/images/{source:path}",
        summary="A catalog image as JPEG",
        responses={
            200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
            404: _ERRORS[404],
        },
        response_class=Response,
    )
    async def image(source: str) -> Response:
        if app.images is None:
            return _error(404, "no image source configured")
        store = app.images
        try:  # only images of the configured catalog: no absolute paths, URLs or traversal
            data = await run_in_threadpool(_thumbnail, store, source)
        except ImageLoadError as exc:
            return _error(404, str(exc))
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    return router


def _search(
    app: Storefront,
    text: str,
    tags: dict[str, float],
    category: str | None,
    filters: dict[str, str],
    fusion: str,
    expand: bool,
    offset: int,
    size: int,
) -> dict[str, Any]:
    if not text and not tags:
        raise ConfigError("type a query or pick a tag")
    searcher = app._searcher()
    where: dict[str, Any] = {"category": category, "attributes": filters}
    relations = app.relations if expand else None
    expanded = searcher.expand(tags, relations) if tags else {}
    if text and tags:
        hits = searcher.hybrid(text, tags, None, size=size, offset=offset, fusion=fusion, relations=relations, **where)
        mode = "hybrid"
    elif text:
        hits, mode = searcher.keyword(text, size=size, offset=offset, **where), "keyword"
    else:
        hits, mode = searcher.tags(tags, size=size, offset=offset, relations=relations, **where), "tags"
    return {
        "hits": [_hit(h) for h in hits],
        "mode": mode,
        "expanded_tags": {t: round(w, 4) for t, w in expanded.items() if t not in tags},
    }


def _thumbnail(store: ImageStore, source: str) -> bytes:
    loaded = decode_image(store.read_member(source), source, max_pixels=store.max_pixels)
    buf = io.BytesIO()
    loaded.image.convert("RGB").save(buf, "JPEG", quality=85)
    return buf.getvalue()


def create_storefront_app(app: Storefront) -> FastAPI:
    """The FastAPI application of the storefront: its router, and errors as ``{"error": ...}``."""
    api = FastAPI(
        title="vistag demo storefront",
        version=__version__,
        description="A search page and its JSON API over a vistag index.",
    )
    api.include_router(storefront_router(app))
    install_error_handlers(api)
    return api


def install_error_handlers(api: FastAPI) -> None:
    """Map vistag's errors to statuses with ``{"error": ...}`` bodies, never a traceback."""

    @api.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body"))
        return _error(422, f"{where or 'request'}: {first.get('msg', 'invalid')}")

    @api.exception_handler(NotFoundError)
    async def not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return _error(404, str(exc))

    @api.exception_handler(ImageLoadError)
    async def bad_image(_: Request, exc: ImageLoadError) -> JSONResponse:
        return _error(400, str(exc))

    @api.exception_handler(EngineUnavailable)
    async def unavailable(_: Request, exc: EngineUnavailable) -> JSONResponse:
        return _error(503, f"the engine does not answer: {exc}")

    @api.exception_handler(VistagError)
    async def refused(_: Request, exc: VistagError) -> JSONResponse:
        return _error(400, str(exc))

    @api.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal error; see the server log")


def open_storefront(
    client: Client,
    index: str = "products",
    *,
    images: str | Path | None = None,
    relations: Any = None,
    model: ModelSpec = "efficientnet-lite0",
    device: str = "auto",
    service_url: str | None = None,
    service_token: str | None = None,
) -> Storefront:
    """A :class:`Storefront` over ``index``.

    Args:
        client: an ``Elasticsearch``/``OpenSearch`` client (or an :class:`~vistag.engine.client.EngineClient`).
        index: the index or alias.
        images: the catalog's images (folder or ``.tar``) for thumbnails; ``None``: none.
        relations: :class:`~vistag.analyzers.relations.TagRelations` (or their file) for expansion.
        model: the backbone image queries are embedded with (loaded on the first image query).
        device: where that model runs.
        service_url: embed image queries with a running ``vistag service`` instead (no torch here).
        service_token: its bearer token.

    Raises:
        NotFoundError: the index does not exist.
    """
    if relations is not None and not hasattr(relations, "recommend"):
        from vistag.analyzers.relations import TagRelations

        relations = TagRelations.load(relations)
    store = ImageStore(images) if images else None
    embed: Embed
    if service_url:
        from vistag.service.remote import service_embedder

        embed = service_embedder(service_url, service_token)
    else:
        loaded: dict[str, Any] = {}
        lock = threading.Lock()

        def embed(image: Image.Image) -> list[float]:
            with lock:
                if "model" not in loaded:  # loads torch on the first image query only
                    from vistag.models.loading import load_model

                    loaded["model"] = load_model(model, device=device).embedder
            return [float(x) for x in loaded["model"].embed_images([image])[0]]

    return Storefront(Searcher(client, index), store, embed, relations)


def serve_in_thread(app: Storefront | FastAPI, host: str = "127.0.0.1", port: int = 0) -> tuple[ServerThread, str]:
    """Serve a storefront (or any FastAPI app) on a background thread; returns the server and its base URL.

    Examples:
        >>> server, url = serve_in_thread(open_storefront(client, "products"))  # doctest: +SKIP
        >>> server.shutdown()                                                    # doctest: +SKIP
    """
    api = create_storefront_app(app) if isinstance(app, Storefront) else app
    server = ServerThread(api, host, port)
    return server, server.url
