"""What vistag writes and how a storefront reads it: the product document, its index template and the stored search
templates, for both engines.

One description of the product document (:class:`~vistag.documents.spec.DocumentSpec`,
:mod:`~vistag.documents.build`) is rendered for each engine through the
:class:`~vistag.engine.adapter.EngineAdapter`. Each retrieval strategy keeps its
field mapping, its query and its stored search template side by side in
:mod:`vistag.documents.strategies`. Queries are *always* produced by rendering the
same mustache template the engine stores (:mod:`~vistag.documents.templates`), so
the CLI and a storefront calling ``_search/template`` send identical queries.

Examples:
    >>> from vistag.documents import render_templates, spec_for
    >>> render_templates("elasticsearch", spec_for("products"))["index_template"]["index_patterns"]
    ['products', 'products-*']
"""

from vistag.documents.build import build_document
from vistag.documents.spec import DocumentSpec
from vistag.documents.templates import (
    create_index,
    index_template,
    install_index_template,
    install_search_templates,
    install_templates,
    render_templates,
    spec_for,
)

__all__ = [
    "DocumentSpec",
    "build_document",
    "create_index",
    "index_template",
    "install_index_template",
    "install_search_templates",
    "install_templates",
    "render_templates",
    "spec_for",
]
