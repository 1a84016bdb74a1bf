"""``vistag serve``: a small demo storefront over a running engine (standard library HTTP server).

Routes (all JSON except ``/`` and ``/images/``):

* ``GET /`` -- the page (``static/index.html``);
* ``GET /api/search?q=&tags=a,b:0.5&category=&filter=gender=Men&fusion=rrf&expand=1&from=&size=``
  -- keyword, tag or hybrid search; answers ``{"hits", "expanded_tags", "mode"}``;
* ``POST /api/search-image`` -- the request body is an image (any format Pillow reads);
* ``GET /api/similar/<id>`` -- similar products;
* ``GET /api/related?tags=a,b`` -- tag recommendations from the tag relations;
* ``GET /api/popular-tags`` -- the most frequent tags (the page's tag chips);
* ``GET /images/<source>`` -- a product image from the catalog's image folder or tar.

Errors answer ``{"error": "..."}`` with a 4xx/5xx status; the server never exposes
credentials or stack traces.
"""

from __future__ import annotations

import io
import json
import logging
import mimetypes
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, unquote, urlparse

from PIL import Image

from vistag.errors import VistagError
from vistag.images import ImageLoadError, ImageStore, decode_image
from vistag.search import Searcher

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
MAX_UPLOAD = 16 * 1024 * 1024
HIT_FIELDS = ("title", "tags", "tag_weights", "category", "attributes", "image", "predicted")


@dataclass
class Storefront:
    """What the handlers need.

    Attributes:
        searcher: queries the index.
        images: serves thumbnails (``None``: no thumbnails).
        embed: image -> vector, created on the first image query (loads torch then).
        relations: tag relations for expansion and related tags (or ``None``).
    """

    searcher: Searcher
    images: ImageStore | None
    embed: Callable[[Image.Image], list[float]]
    relations: object | None = None


def _hit(h) -> dict:
    return {"id": h.id, "score": round(h.score, 5), **{k: h.source.get(k) for k in HIT_FIELDS if k in h.source}}


def _parse_tags(text: str) -> dict[str, float]:
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        tag, _, weight = item.partition(":")
        out[tag] = float(weight) if weight else 1.0
    return out


def make_handler(app: Storefront) -> type[BaseHTTPRequestHandler]:
    """The request handler class bound to ``app``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "vistag-serve"

        def log_message(self, fmt: str, *args) -> None:  # route to logging, not stderr
            logger.debug("%s %s", self.address_string(), fmt % args)

        # -- helpers
        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, data: object, status: int = 200) -> None:
            self._send(status, json.dumps(data, ensure_ascii=False, default=str).encode(), "application/json")

        def _error(self, status: int, message: str) -> None:
            self._json({"error": message}, status)

        # -- routes
        def do_GET(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                if url.path in ("/", "/index.html"):
                    self._send(200, (STATIC / "index.html").read_bytes(), "text/html; charset=utf-8")
                elif url.path == "/api/search":
                    self._json(self.search(query))
                elif url.path.startswith("/api/similar/"):
                    product = unquote(url.path.rsplit("/", 1)[1])
                    hits = app.searcher.similar(product, k=int(query.get("size", 8)))
                    self._json({"hits": [_hit(h) for h in hits], "mode": "similar", "of": product})
                elif url.path == "/api/related":
                    tags = [t for t in query.get("tags", "").split(",") if t]
                    recs = app.relations.recommend(tags) if app.relations is not None and tags else []
                    self._json({"tags": tags, "related": [{"tag": t, "score": s} for t, s in recs]})
                elif url.path == "/api/popular-tags":
                    self._json({"tags": self.popular_tags(int(query.get("size", 24)))})
                elif url.path.startswith("/images/"):
                    self.image(unquote(url.path[len("/images/"):]))
                else:
                    self._error(404, f"no route {url.path}")
            except KeyError as exc:
                self._error(404, str(exc.args[0]) if exc.args else "not found")
            except (ValueError, VistagError) as exc:
                self._error(400, str(exc))
            except Exception:  # noqa: BLE001 - never leak a traceback to the browser
                logger.exception("request %s failed", url.path)
                self._error(500, "internal error; see the server log")

        def do_POST(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            if url.path != "/api/search-image":
                self._error(404, f"no route {url.path}")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_UPLOAD:
                self._error(413 if length else 400, f"send an image of 1 byte to {MAX_UPLOAD // 2**20} MiB")
                return
            try:
                image = decode_image(self.rfile.read(length), "upload").image
                vector = app.embed(image)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                hits = app.searcher.image(vector, k=int(query.get("size", 12)))
                self._json({"hits": [_hit(h) for h in hits], "mode": "image"})
            except ImageLoadError as exc:
                self._error(400, str(exc))
            except VistagError as exc:  # e.g. the inference service is down
                self._error(502, str(exc))
            except Exception:  # noqa: BLE001
                logger.exception("image search failed")
                self._error(500, "internal error; see the server log")

        def search(self, query: dict) -> dict:
            text = query.get("q", "").strip()
            tags = _parse_tags(query.get("tags", ""))
            if not text and not tags:
                raise ValueError("type a query or pick a tag")
            filters = dict(f.split("=", 1) for f in query.get("filter", "").split(";") if "=" in f)
            where = {"category": query.get("category") or None, "attributes": filters}
            size, offset = int(query.get("size", 12)), int(query.get("from", 0))
            relations = app.relations if query.get("expand") == "1" else None
            expanded = app.searcher.expand(tags, relations) if tags else {}
            if text and tags:
                hits = app.searcher.hybrid(text, tags, None, size=size, offset=offset, fusion=query.get("fusion", "rrf"),
                                           relations=relations, **where)
                mode = "hybrid"
            elif text:
                hits, mode = app.searcher.keyword(text, size=size, offset=offset, **where), "keyword"
            else:
                hits, mode = app.searcher.tags(tags, size=size, offset=offset, relations=relations, **where), "tags"
            return {"hits": [_hit(h) for h in hits], "mode": mode,
                    "expanded_tags": {t: round(w, 4) for t, w in expanded.items() if t not in tags}}

        def popular_tags(self, size: int) -> list[dict]:
            body = {"size": 0, "aggs": {"tags": {"terms": {"field": "tags", "size": size}}}}
            resp = app.searcher.client.search(app.searcher.index, body)
            return [{"tag": b["key"], "count": b["doc_count"]} for b in resp["aggregations"]["tags"]["buckets"]]

        def image(self, ref: str) -> None:
            if app.images is None:
                self._error(404, "no image source configured")
                return
            try:  # only images of the configured catalog: no absolute paths, URLs or traversal
                loaded = decode_image(app.images.read_member(ref), ref, max_pixels=app.images.max_pixels)
            except ImageLoadError as exc:
                self._error(404, str(exc))
                return
            buf = io.BytesIO()
            loaded.image.convert("RGB").save(buf, "JPEG", quality=85)
            self._send(200, buf.getvalue(), mimetypes.types_map[".jpg"])

    return Handler


def serve(app: Storefront, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    """Create the server (call ``serve_forever`` on it, or run it in a thread)."""
    server = ThreadingHTTPServer((host, port), make_handler(app))
    server.daemon_threads = True
    return server


def serve_in_thread(app: Storefront, host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Start the server on a background thread; returns it and its base URL (tests, notebooks)."""
    server = serve(app, host, port)
    threading.Thread(target=server.serve_forever, name="vistag-serve", daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}"
