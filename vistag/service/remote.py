"""The demo page on top of ``vistag service``: image queries embedded by the service over HTTP
(so the page process needs no torch and shares the service's model and batching).
"""

from __future__ import annotations

import io
from collections.abc import Callable

import requests
from PIL import Image

from vistag.errors import VistagError


def service_embedder(url: str, token: str | None = None, timeout: float = 30.0) -> Callable[[Image.Image], list[float]]:
    """An ``embed`` function for :class:`~vistag.service.storefront.Storefront` that calls ``POST {url}/v1/embed``.

    Args:
        url: the service's base URL, e.g. ``http://127.0.0.1:8000``.
        token: its bearer token, if it has one.
        timeout: seconds per call.

    Raises:
        VistagError: (from the returned function) the service refused or did not answer.

    Examples:
        >>> embed = service_embedder("http://127.0.0.1:8000")  # doctest: +SKIP
        >>> len(embed(Image.open("photo.jpg")))                # doctest: +SKIP
        1840
    """
    session = requests.Session()
    headers = {"Content-Type": "image/png", **({"Authorization": f"Bearer {token}"} if token else {})}
    endpoint = url.rstrip("/") + "/v1/embed"

    def embed(image: Image.Image) -> list[float]:
        buf = io.BytesIO()
        image.convert("RGB").save(buf, "PNG")  # lossless: the same pixels the page decoded
        try:
            resp = session.post(endpoint, data=buf.getvalue(), headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            raise VistagError(f"the inference service at {url} did not answer: {type(exc).__name__}") from None
        if resp.status_code != 200:
            try:
                reason = resp.json().get("error", resp.text[:200])
            except ValueError:
                reason = resp.text[:200]
            raise VistagError(f"the inference service answered HTTP {resp.status_code}: {reason}")
        return resp.json()["vectors"][0]

    return embed
