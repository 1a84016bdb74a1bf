"""Index templates and stored search templates for Elasticsearch 8 and OpenSearch 2.

One description of the product document (:class:`DocumentSpec`) is rendered for
each engine by an :class:`EngineAdapter`. Each retrieval strategy keeps its field
mapping, its query and its stored search template side by side in
:mod:`vistag.documents.strategies`. Queries are *always* produced by rendering the
same mustache template the engine stores, so the CLI and a storefront calling
``_search/template`` send identical queries.
"""

from vistag.engine.adapter import EngineAdapter
from vistag.documents.spec import DocumentSpec
from vistag.documents.templates import index_template, install_index_template, install_search_templates, create_index

__all__ = [
    "DocumentSpec",
    "EngineAdapter",
    "create_index",
    "index_template",
    "install_index_template",
    "install_search_templates",
]
