"""Safe decoding of image bytes: empty, truncated, corrupt and oversized images are refused with a reason.

Limits are arguments, not process state: nothing here reads the environment at
import or changes a PIL global (``ImageFile.LOAD_TRUNCATED_IMAGES`` is left as the
host application set it; its default refuses truncated files).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from vistag.errors import ImageLoadError

#: Decompression-bomb guard: images with more pixels are refused (64 MP).
MAX_PIXELS = 64_000_000
#: Largest encoded image read, in bytes (32 MiB).
MAX_BYTES = 32 * 1024 * 1024


@dataclass
class LoadedImage:
    """A decoded image and what the document records about it."""

    image: Image.Image
    sha256: str
    width: int
    height: int
    source: str


def image_size(data: bytes, name: str) -> tuple[int, int]:
    """(width, height) from the image header, without decoding the pixels.

    Raises:
        ImageLoadError: not an image.
    """
    try:
        with Image.open(io.BytesIO(data)) as probe:
            return probe.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageLoadError(f"image {name!r} is not a decodable image: {type(exc).__name__}") from None


def sha256_of(data: bytes) -> str:
    """The hex sha256 of image bytes (the embedding cache key)."""
    return hashlib.sha256(data).hexdigest()


def decode_image(data: bytes, name: str, sha256: str | None = None, max_pixels: int | None = None) -> LoadedImage:
    """Decode image bytes fully, refusing empty, truncated, corrupt and oversized images.

    Raises:
        ImageLoadError: with a reason that names ``name``.
    """
    if not data:
        raise ImageLoadError(f"image {name!r} is empty (0 bytes)")
    digest = sha256 or sha256_of(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                width, height = probe.size
                limit = max_pixels or MAX_PIXELS
                if width * height > limit:
                    raise ImageLoadError(f"image {name!r} is {width}x{height}, over the {limit}-pixel limit")
                probe.load()  # animated images: the first frame
                image = probe.copy()
    except ImageLoadError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(f"image {name!r} is not a decodable image: {type(exc).__name__}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageLoadError(f"image {name!r} is corrupt or truncated: {exc}") from None
    return LoadedImage(image=image, sha256=digest, width=width, height=height, source=name)
