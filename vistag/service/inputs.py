"""What a request to the inference service may carry, and how each image is read.

A request body is either raw image bytes (``Content-Type: image/*`` or
``application/octet-stream``: one image) or JSON::

    {"image": "<URL | base64 | data: URI>"}
    {"images": ["<URL | base64 | data: URI>", {"url": "..."}, {"base64": "..."}]}

(``${parameters.image}`` of an OpenSearch ml-commons connector arrives as the
first form). Every refusal is an :class:`InputError` with the HTTP status and a
message that names the image (``images[2]``); nothing is fetched or decoded
before the whole request passed the cheap checks.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from vistag.images import ImageLoadError, LoadedImage, decode_image
from vistag.service.fetch import UrlFetchFailed, UrlPolicy, UrlRefused, fetch_url


class InputError(ValueError):
    """A request the service refuses, with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """Request limits.

    Attributes:
        max_body_bytes: largest request body.
        max_image_bytes: largest encoded image (after base64 decoding, or fetched).
        max_pixels: largest decoded image (width x height); bigger is a bomb.
        max_images: most images in one request.
    """

    max_body_bytes: int = 24 * 1024 * 1024
    max_image_bytes: int = 16 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_images: int = 32


@dataclass(frozen=True)
class ImageInput:
    """One image of a request: encoded ``data``, or a ``url`` to fetch."""

    name: str
    data: bytes | None = None
    url: str | None = None


def parse_request(body: bytes, content_type: str, limits: Limits) -> list[ImageInput]:
    """The images of a request body.

    Raises:
        InputError: 413 too many images or bytes, 415 an unsupported body, 400 malformed.

    Examples:
        >>> [i.url for i in parse_request(b'{"image": "https://x.example/a.jpg"}', "application/json", Limits())]
        ['https://x.example/a.jpg']
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind.startswith("image/") or kind == "application/octet-stream":
        if not body:
            raise InputError(400, "the request body is empty")
        _check_size("the request body", len(body), limits)
        return [ImageInput("image", data=body)]
    if kind not in ("application/json", ""):
        raise InputError(415, f"unsupported Content-Type {kind!r}: send JSON or the image bytes (image/*)")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InputError(400, "the request body is not valid JSON") from None
    if not isinstance(payload, dict) or ("image" in payload) == ("images" in payload):
        raise InputError(400, 'send {"image": ...} or {"images": [...]}: exactly one of the two')
    unknown = sorted(set(payload) - {"image", "images"})
    if unknown:
        raise InputError(400, f'unknown key(s) {unknown[:5]}: send {{"image": ...}} or {{"images": [...]}}')
    if "image" in payload:
        items, names = [payload["image"]], ["image"]
    else:
        items = payload["images"]
        if not isinstance(items, list) or not items:
            raise InputError(400, '"images" must be a non-empty list')
        if len(items) > limits.max_images:
            raise InputError(413, f"{len(items)} images in one request, over the limit of {limits.max_images}")
        names = [f"images[{i}]" for i in range(len(items))]
    return [_one(item, name, limits) for item, name in zip(items, names)]


def _one(item: Any, name: str, limits: Limits) -> ImageInput:
    if isinstance(item, dict):
        if set(item) == {"url"} and isinstance(item["url"], str):
            return ImageInput(name, url=item["url"])
        if set(item) == {"base64"} and isinstance(item["base64"], str):
            return ImageInput(name, data=_b64(_strip_data_uri(item["base64"], name), name, limits))
        raise InputError(400, f'{name}: an object must be {{"url": ...}} or {{"base64": ...}}')
    if not isinstance(item, str) or not item:
        raise InputError(400, f"{name}: expected a URL or base64 string")
    if item.startswith(("http://", "https://")):
        return ImageInput(name, url=item)
    if "://" in item[:16]:
        raise InputError(400, f"{name}: URL scheme {item.split('://', 1)[0]!r} is not allowed (http or https only)")
    return ImageInput(name, data=_b64(_strip_data_uri(item, name), name, limits))


def _strip_data_uri(text: str, name: str) -> str:
    """The base64 payload of a ``data:...;base64,`` URI (the text itself when it is not one)."""
    if not text.startswith("data:"):
        return text
    head, _, data = text.partition(",")
    if not head.endswith(";base64"):
        raise InputError(400, f"{name}: only base64 data: URIs are accepted")
    return data


def _b64(text: str, name: str, limits: Limits) -> bytes:
    _check_size(name, len(text) * 3 // 4, limits)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(
            400, f"{name}: not valid base64 (or a URL that does not start with http:// or https://)"
        ) from None


def _check_size(name: str, size: int, limits: Limits) -> None:
    if size > limits.max_image_bytes:
        raise InputError(413, f"{name} is about {size} bytes, over the {limits.max_image_bytes}-byte image limit")


def check_urls(inputs: list[ImageInput], policy: UrlPolicy) -> None:
    """Refuse the request before any fetch when one of its URLs is not allowed.

    Raises:
        InputError: 400 naming the image and the reason.
    """
    for inp in inputs:
        if inp.url is not None:
            try:
                policy.check_url(inp.url)
            except UrlRefused as exc:
                raise InputError(400, f"{inp.name}: {exc}") from None


def load_image(inp: ImageInput, policy: UrlPolicy, limits: Limits) -> LoadedImage:
    """Fetch (when a URL) and decode one image; blocking, run it on a worker thread.

    The result's ``source`` is the URL, or ``None`` for bytes sent in the request.

    Raises:
        InputError: 400 a refused or failed URL, 413 too large, 422 not an image or a bomb.
    """
    data = inp.data
    if inp.url is not None:
        try:
            data = fetch_url(
                inp.url,
                UrlPolicy(
                    policy.allowed_hosts,
                    policy.allow_private,
                    policy.timeout,
                    min(policy.max_bytes, limits.max_image_bytes),
                    policy.max_redirects,
                ),
            )
        except UrlRefused as exc:
            raise InputError(400, f"{inp.name}: {exc}") from None
        except UrlFetchFailed as exc:
            raise InputError(413 if exc.too_large else 400, f"{inp.name}: {exc}") from None
    assert data is not None
    try:
        loaded = decode_image(data, inp.name, max_pixels=limits.max_pixels)
    except ImageLoadError as exc:
        raise InputError(422, str(exc)) from None
    loaded.source = inp.url or ""  # "" for bytes sent in the request; the service reports it as null
    return loaded
