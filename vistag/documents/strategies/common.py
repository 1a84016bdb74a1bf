"""Pieces shared by the strategy templates: paging, source filtering and filters.

Filter parameters (all optional) are the same for every query type:

* ``category`` -- a category path or prefix, e.g. ``"Apparel > Topwear"``;
* ``attributes`` -- a list of ``{"name": ..., "value": ...}``, e.g. ``gender = Men``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Union

from vistag.errors import ConfigError

#: Attribute filters: ``{"gender": "Men"}`` or ``[("gender", "Men")]``.
Attributes = Union[Mapping[str, str], Sequence[tuple[str, str]], None]  # noqa: UP007 - a runtime alias on 3.10

PAGING = (
    '"size":{{size}}{{^size}}10{{/size}},"from":{{from}}{{^from}}0{{/from}},"_source":{"excludes":["image_vector"]}'
)

#: A JSON list body of filter clauses; it always ends with match_all so it is never empty.
FILTER_CLAUSES = (
    '{{#category}}{"term":{"category.ancestors":"{{category}}"}},{{/category}}'
    '{{#attributes}}{"term":{"attributes.{{name}}":"{{value}}"}},{{/attributes}}'
    '{"match_all":{}}'
)


def filter_params(
    category: str | None = None, attributes: Mapping[str, str] | Sequence[tuple[str, str]] | None = None
) -> dict:
    """Template parameters for the filters."""
    params: dict = {}
    if category:
        params["category"] = category
    if attributes:
        items = attributes.items() if isinstance(attributes, Mapping) else attributes
        params["attributes"] = [{"name": k, "value": v} for k, v in items]
    return params


def paging_params(size: int = 10, offset: int = 0) -> dict:
    """Template parameters for paging."""
    if size < 0 or offset < 0:
        raise ConfigError("size and from must not be negative")
    return {"size": size, "from": offset}
