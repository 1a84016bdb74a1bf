"""Where image bytes come from: a directory, a ``.tar``, http(s) URLs, in-memory bytes or a PIL image."""

from __future__ import annotations

import io
import os
import tarfile
import threading
from pathlib import Path

import requests
from PIL import Image

from vistag.images.decoding import MAX_BYTES, MAX_PIXELS, ImageLoadError, LoadedImage, decode_image


def limits_from_env() -> tuple[int, int]:
    """``(max_pixels, max_bytes)`` from ``VISTAG_MAX_IMAGE_PIXELS``/``VISTAG_MAX_IMAGE_BYTES`` (the CLI's defaults)."""
    return (int(os.environ.get("VISTAG_MAX_IMAGE_PIXELS") or MAX_PIXELS),
            int(os.environ.get("VISTAG_MAX_IMAGE_BYTES") or MAX_BYTES))


class ImageStore:
    """Reads image bytes by reference.

    Args:
        root: a directory, a ``.tar`` file, or ``None`` (references must then be
            absolute paths or URLs).
        timeout: seconds for each http(s) download.
    """

    def __init__(self, root: str | Path | None = None, timeout: float = 20.0, max_bytes: int = MAX_BYTES,
                 max_pixels: int = MAX_PIXELS) -> None:
        self.root = Path(root) if root else None
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self._tar_index: dict[str, tuple[int, int]] | None = None
        self._tar_fd: int | None = None
        self._local = threading.local()
        if self.root is not None:
            if not self.root.exists():
                raise FileNotFoundError(f"image source {self.root} does not exist")
            if self.root.is_file():
                if not tarfile.is_tarfile(self.root):
                    raise ValueError(f"image source {self.root} is neither a directory nor a .tar archive")
                self._index_tar()

    def _index_tar(self) -> None:
        index: dict[str, tuple[int, int]] = {}
        with tarfile.open(self.root, "r:") as tar:
            for member in tar:
                if member.isfile():
                    index[member.name] = (member.offset_data, member.size)
                    index.setdefault(os.path.basename(member.name), (member.offset_data, member.size))
        self._tar_index = index
        self._tar_fd = os.open(self.root, os.O_RDONLY)

    def close(self) -> None:
        """Release the tar file handle."""
        if self._tar_fd is not None:
            os.close(self._tar_fd)
            self._tar_fd = None

    def __enter__(self) -> "ImageStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def read(self, ref: str | bytes | Image.Image) -> bytes:
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
        try:
            with self._session().get(url, timeout=self.timeout, stream=True) as resp:
                if resp.status_code != 200:
                    raise ImageLoadError(f"download of {url} failed: HTTP {resp.status_code}")
                chunks, total = [], 0
                for chunk in resp.iter_content(1 << 16):
                    total += len(chunk)
                    if total > self.max_bytes:
                        raise ImageLoadError(f"download of {url} exceeds the {self.max_bytes}-byte limit")
                    chunks.append(chunk)
                return b"".join(chunks)
        except requests.RequestException as exc:
            raise ImageLoadError(f"download of {url} failed: {type(exc).__name__}") from None

    def read_member(self, ref: str) -> bytes:
        """The bytes of an image *of this source only*: a relative path below the folder,
        or a member of the ``.tar``. For serving catalog images to the public.

        Absolute paths, URLs (any ``scheme:``), ``..`` components, backslashes and
        paths that resolve outside the folder (symlinks) are refused.

        Raises:
            ImageLoadError: refused, missing or unreadable.

        Example:
            >>> ImageStore("images/").read_member("../etc/passwd")  # doctest: +SKIP
            Traceback (most recent call last):
            ImageLoadError: image reference '../etc/passwd' is not a catalog image
        """
        parts = ref.split("/")
        if (self.root is None or not ref or ":" in ref or "\\" in ref or "\0" in ref or ref.startswith("/")
                or any(part in ("..", "") for part in parts[1:] + parts[:1])):
            raise ImageLoadError(f"image reference {ref[:200]!r} is not a catalog image")
        if self._tar_index is None:
            root = self.root.resolve()
            if not (root / ref).resolve().is_relative_to(root):
                raise ImageLoadError(f"image reference {ref[:200]!r} is not a catalog image")
        return self.read(ref)

    def load(self, ref: str | bytes | Image.Image) -> LoadedImage:
        """Read and decode ``ref`` (see :meth:`read` and :func:`decode_image`)."""
        data = self.read(ref)
        name = str(ref) if isinstance(ref, (str, Path)) else f"<{type(ref).__name__} image>"
        return decode_image(data, name, max_pixels=self.max_pixels)


