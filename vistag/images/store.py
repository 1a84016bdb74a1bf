"""Where image bytes come from: a directory, a ``.tar``, http(s) URLs, in-memory bytes or a PIL image."""

from __future__ import annotations

import io
import logging
import os
import random
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests
from PIL import Image

from vistag.errors import ConfigError, NotFoundError
from vistag.images.decoding import MAX_BYTES, MAX_PIXELS, ImageLoadError, LoadedImage, decode_image

logger = logging.getLogger(__name__)

#: Answers that mean "try again later" from a CDN or an image server.
RETRY_DOWNLOAD_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Retries of one image download before it is given up.
DOWNLOAD_RETRIES = 3


#: What names or holds an image: a path or URL, encoded bytes, or a PIL image.
ImageRef = str | Path | bytes | bytearray | memoryview | Image.Image


class _Transient(Exception):
    """A download failure worth another try (its message is the reason)."""


def limits_from_env() -> tuple[int, int]:
    """``(max_pixels, max_bytes)`` from ``VISTAG_MAX_IMAGE_PIXELS``/``VISTAG_MAX_IMAGE_BYTES``.

    The CLI and ``vistag service`` read them (library calls take the limits as arguments
    and never read the environment); unset, the defaults :data:`~vistag.images.decoding.MAX_PIXELS`
    and :data:`~vistag.images.decoding.MAX_BYTES`.

    Raises:
        ConfigError: a value that is not a positive integer.

    Examples:
        >>> limits_from_env() == (MAX_PIXELS, MAX_BYTES)  # doctest: +SKIP
        True
    """
    out = []
    for name, default in (("VISTAG_MAX_IMAGE_PIXELS", MAX_PIXELS), ("VISTAG_MAX_IMAGE_BYTES", MAX_BYTES)):
        text = os.environ.get(name, "").strip()
        try:
            value = int(text) if text else default
        except ValueError:
            raise ConfigError(f"{name}={text!r} is not a whole number") from None
        if value < 1:
            raise ConfigError(f"{name} must be positive, got {value}")
        out.append(value)
    return out[0], out[1]


class ImageStore:
    """Reads image bytes by reference.

    Args:
        root: a directory, a ``.tar`` file, or ``None`` (references must then be
            absolute paths or URLs).
        timeout: seconds for each http(s) download.
        max_bytes: largest encoded image read.
        max_pixels: decompression-bomb guard of :meth:`load`.
        download_retries: retries of a download that got a 429 or 5xx answer, or lost its
            connection, with capped exponential backoff (``download_backoff`` seconds first)
            before the image is given up (and its row dead-lettered).
        download_backoff: seconds before the first retry.
        sleep: the pause function (tests pass a recorder).

    Raises:
        NotFoundError: ``root`` does not exist.
        ConfigError: ``root`` is a file that is not a ``.tar``.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        timeout: float = 20.0,
        max_bytes: int = MAX_BYTES,
        max_pixels: int = MAX_PIXELS,
        download_retries: int = DOWNLOAD_RETRIES,
        download_backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.root = Path(root) if root else None
        self.timeout = timeout
        self.download_retries = download_retries
        self.download_backoff = download_backoff
        self._sleep = sleep
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self._tar_index: dict[str, tuple[int, int]] | None = None
        self._tar_fd: int | None = None
        self._local = threading.local()
        if self.root is not None:
            if not self.root.exists():
                raise NotFoundError(f"image source {self.root} does not exist")
            if self.root.is_file():
                if not tarfile.is_tarfile(self.root):
                    raise ConfigError(f"image source {self.root} is neither a directory nor a .tar archive")
                self._index_tar()

    def _index_tar(self) -> None:
        index: dict[str, tuple[int, int]] = {}
        with tarfile.open(self.root, "r:") as tar:
            for member in tar:
                if member.isfile():
                    index[member.name] = (member.offset_data, member.size)
                    index.setdefault(os.path.basename(member.name), (member.offset_data, member.size))
        self._tar_index = index
        self._tar_fd = os.open(str(self.root), os.O_RDONLY)

    def close(self) -> None:
        """Release the tar file handle."""
        if self._tar_fd is not None:
            os.close(self._tar_fd)
            self._tar_fd = None

    def __enter__(self) -> ImageStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def read(self, ref: ImageRef) -> bytes:
        """Return the encoded bytes of ``ref``: a path (below ``root`` when relative), a
        member of the ``.tar``, an http(s) URL, encoded bytes, or a PIL image (encoded as PNG).

        Raises:
            ImageLoadError: missing, unreadable, too large or a failed download.
        """
        if isinstance(ref, (bytes, bytearray, memoryview)):
            data = bytes(ref)
            if len(data) > self.max_bytes:
                raise ImageLoadError(f"image bytes are {len(data)} bytes, over the {self.max_bytes}-byte limit")
            return data
        if isinstance(ref, Image.Image):
            buffer = io.BytesIO()
            ref.save(buffer, format="PNG")
            return buffer.getvalue()
        if isinstance(ref, Path):
            ref = str(ref)
        if ref.startswith(("http://", "https://")):
            return self._download(ref)
        if self._tar_index is not None and not os.path.isabs(ref):
            entry = self._tar_index.get(ref) or self._tar_index.get(ref.lstrip("./"))
            if entry is None:
                raise ImageLoadError(f"image {ref!r} is not in {self.root}")
            offset, size = entry
            if size > self.max_bytes:
                raise ImageLoadError(f"image {ref!r} is {size} bytes, over the {self.max_bytes}-byte limit")
            assert self._tar_fd is not None  # set with the index
            return os.pread(self._tar_fd, size, offset)
        path = Path(ref) if os.path.isabs(ref) or self.root is None else self.root / ref
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                raise ImageLoadError(f"image file {path} is {size} bytes, over the {self.max_bytes}-byte limit")
            return path.read_bytes()
        except FileNotFoundError:
            raise ImageLoadError(f"image file {path} does not exist") from None
        except OSError as exc:
            raise ImageLoadError(f"image file {path} cannot be read: {exc.strerror}") from None

    def _download(self, url: str) -> bytes:
        """The bytes at ``url``; 429, 5xx and lost connections are retried with backoff, other failures are not."""
        attempt = 0
        while True:
            try:
                return self._fetch(url)
            except _Transient as exc:
                if attempt >= self.download_retries:
                    raise ImageLoadError(f"download of {url} failed: {exc} (after {attempt + 1} tries)") from None
                pause = min(8.0, self.download_backoff * 2**attempt) * (0.5 + random.random() / 2)
                logger.info("download of %s failed (%s); retry %d in %.1fs", url, exc, attempt + 1, pause)
                self._sleep(pause)
                attempt += 1

    def _fetch(self, url: str) -> bytes:
        try:
            with self._session().get(url, timeout=self.timeout, stream=True) as resp:
                if resp.status_code in RETRY_DOWNLOAD_STATUSES:
                    raise _Transient(f"HTTP {resp.status_code}")
                if resp.status_code != 200:
                    raise ImageLoadError(f"download of {url} failed: HTTP {resp.status_code}")
                chunks, total = [], 0
                for chunk in resp.iter_content(1 << 16):
                    total += len(chunk)
                    if total > self.max_bytes:
                        raise ImageLoadError(f"download of {url} exceeds the {self.max_bytes}-byte limit")
                    chunks.append(chunk)
                return b"".join(chunks)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise _Transient(type(exc).__name__) from None
        except requests.RequestException as exc:
            raise ImageLoadError(f"download of {url} failed: {type(exc).__name__}") from None

    def read_member(self, ref: str) -> bytes:
        """The bytes of an image *of this source only*: a relative path below the folder,
        or a member of the ``.tar``. For serving catalog images to the public.

        Absolute paths, URLs (any ``scheme:``), ``..`` components, backslashes and
        paths that resolve outside the folder (symlinks) are refused.

        Raises:
            ImageLoadError: refused, missing or unreadable.

        Examples:
            >>> ImageStore("images/").read_member("../etc/passwd")  # doctest: +SKIP
            Traceback (most recent call last):
            ImageLoadError: image reference '../etc/passwd' is not a catalog image
        """
        parts = ref.split("/")
        if (
            self.root is None
            or not ref
            or ":" in ref
            or "\\" in ref
            or "\0" in ref
            or ref.startswith("/")
            or any(part in ("..", "") for part in parts[1:] + parts[:1])
        ):
            raise ImageLoadError(f"image reference {ref[:200]!r} is not a catalog image")
        if self._tar_index is None:
            root = self.root.resolve()
            if not (root / ref).resolve().is_relative_to(root):
                raise ImageLoadError(f"image reference {ref[:200]!r} is not a catalog image")
        return self.read(ref)

    def load(self, ref: ImageRef) -> LoadedImage:
        """Read and decode ``ref`` (see :meth:`read` and :func:`decode_image`)."""
        data = self.read(ref)
        name = str(ref) if isinstance(ref, (str, Path)) else f"<{type(ref).__name__} image>"
        return decode_image(data, name, max_pixels=self.max_pixels)
