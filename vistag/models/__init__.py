"""Image models: backbones by name, batched embedding through an on-disk cache, trained heads and their training
(torch, loaded only when used).

This package's ``__init__`` and :mod:`~vistag.models.config`,
:mod:`~vistag.models.registry` and :mod:`~vistag.models.preprocess` do not import
torch; a model is built, and its weights loaded, only by :func:`create_embedder` or
:func:`load_model`. The modules, in the order data flows:

* :mod:`~vistag.models.registry`, :mod:`~vistag.models.backbones` -- backbones by name;
* :mod:`~vistag.models.embedding` -- images to vectors: I/O threads, decode
  processes, batched forward, the :mod:`~vistag.models.cache`;
* :mod:`~vistag.models.dataset` -- a labelled catalog with its embeddings and splits;
* :mod:`~vistag.models.heads`, :mod:`~vistag.models.training`,
  :mod:`~vistag.models.trainer` -- the multi-task head and ``vistag train``;
* :mod:`~vistag.models.finetune` -- the network's last stages trained with the heads
  (``vistag train --fine-tune``) on cached middle-stage feature maps;
* :mod:`~vistag.models.tagging_model` -- a trained model directory;
* :mod:`~vistag.models.text_image` -- text into the image space;
* :mod:`~vistag.models.loading` -- open whatever a user names.

Examples:
    >>> from vistag.models import get_config
    >>> get_config("efficientnet-lite0").embedding_dim
    1840
"""

from vistag.models.config import BackboneConfig
from vistag.models.loading import (
    LoadedModel,
    create_embedder,
    is_model_dir,
    load_model,
    tag_images,
)
from vistag.models.registry import available_backbones, get_config

__all__ = [
    "BackboneConfig",
    "LoadedModel",
    "available_backbones",
    "create_embedder",
    "get_config",
    "is_model_dir",
    "load_model",
    "tag_images",
]
