"""The index run on a Ray cluster: decode tasks, model actors, tagger actors and a bulk ``Datasink`` in Ray Data.

Ray Data reads the catalog, decodes images in CPU tasks, embeds them in a pool of model actors
(one GPU each when there are GPUs), tags them in a pool of tagger actors that share one labelled
reference set, and writes through vistag's bulk layer in a Ray ``Datasink``
(:mod:`vistag.ray.runner` has the design).

``ray`` is the ``ray`` extra (``pip install 'vistag[ray]'``); nothing here imports it until a run
starts. The one-process runner (:func:`vistag.index_catalog`, with ``partition=`` to share a
catalog between machines by hand) stays the dependency-free default.

Examples:
    >>> import vistag.ray                                                          # doctest: +SKIP
    >>> summary = vistag.ray.index_catalog("http://127.0.0.1:9200", "labels.csv", images="images.tar",
    ...                                    index="products", schema="fashion-product-images")  # doctest: +SKIP
    >>> summary.ok                                                                 # doctest: +SKIP
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from vistag.ray.runner import RayOptions, index_catalog

__all__ = ["RayOptions", "index_catalog"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from vistag.ray import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'vistag.ray' has no attribute {name!r}")
