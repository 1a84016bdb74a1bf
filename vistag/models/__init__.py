"""Image backbones and batched embedding extraction.

This package's ``__init__`` and :mod:`~vistag.models.config`,
:mod:`~vistag.models.registry` and :mod:`~vistag.models.preprocess` do not import
torch; :mod:`~vistag.models.backbones` and :mod:`~vistag.models.embedder` do, and
weights load only when a model is created.
"""

from vistag.models.config import BackboneConfig
from vistag.models.registry import available_backbones, get_config

__all__ = ["BackboneConfig", "available_backbones", "get_config", "create_embedder"]


def create_embedder(name: str = "efficientnet-lite0", **kwargs):
    """Create an :class:`~vistag.models.embedder.ImageEmbedder` (imports torch).

    Args:
        name: registered backbone name.
        **kwargs: passed to :class:`~vistag.models.embedder.ImageEmbedder`.
    """
    from vistag.models.embedder import ImageEmbedder

    return ImageEmbedder(name, **kwargs)
