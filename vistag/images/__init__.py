"""Where images come from (a folder, a ``.tar``, http(s) URLs, bytes, PIL) and how they are decoded safely.

Examples:
    >>> from vistag.images import ImageStore
    >>> with ImageStore() as store:
    ...     store.read(b"not an image")[:3]
    b'not'
"""

from vistag.images.decoding import (
    ImageLoadError,
    LoadedImage,
    decode_image,
    image_size,
    sha256_of,
)
from vistag.images.store import ImageRef, ImageStore

__all__ = ["ImageLoadError", "ImageRef", "ImageStore", "LoadedImage", "decode_image", "image_size", "sha256_of"]
