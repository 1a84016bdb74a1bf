"""Render and install the index template and the stored search templates."""

from __future__ import annotations

import hashlib
import json
import logging
from types import ModuleType
from typing import Any

from vistag.documents import mustache
from vistag.documents.spec import DocumentSpec
from vistag.documents.strategies import STRATEGIES, hybrid
from vistag.engine.adapter import EngineAdapter
from vistag.engine.client import Client, EngineClient, as_engine
from vistag.errors import ConfigError
from vistag.version import __version__

logger = logging.getLogger(__name__)


#: The catalog row's digest (see :func:`vistag.documents.build.row_hash`), read back by `vistag sync`.
ROW_HASH_MAPPING = {"type": "keyword", "index": False}


def template_name(spec: DocumentSpec) -> str:
    """Name of the index template for ``spec``."""
    return f"vistag-{spec.name}"


def search_template_id(spec: DocumentSpec, strategy: ModuleType | str) -> str:
    """Id of a stored search template, e.g. ``products-keyword``."""
    name = strategy if isinstance(strategy, str) else strategy.NAME
    return f"{spec.name}-{name}"


def mappings(adapter: EngineAdapter, spec: DocumentSpec) -> dict:
    """The ``mappings`` section: common fields plus every strategy's fields."""
    properties: dict = {
        "id": {"type": "keyword"},
        "category": {
            "properties": {
                **{f"lvl{i}": {"type": "keyword"} for i in range(spec.category_levels)},
                "path": {"type": "keyword"},
                "ancestors": {"type": "keyword"},
            }
        },
        "attributes": {"type": "object", "dynamic": True},
        "image": {
            "properties": {
                "source": {"type": "keyword", "ignore_above": 2048},
                "sha256": {"type": "keyword"},
                "width": {"type": "integer"},
                "height": {"type": "integer"},
            }
        },
        "model": {
            "properties": {
                "name": {"type": "keyword"},
                "version": {"type": "keyword"},
                "embedding_dim": {"type": "integer"},
                "tagger": {"type": "keyword"},
                "expansion": {"type": "keyword"},
            }
        },
        "predicted": {
            "properties": {
                "accepted": {"type": "boolean"},
                "claimed_type_outlier": {"type": "boolean"},
                "confidence": {"type": "float"},
                "category": {"type": "keyword"},
                "attributes": {"type": "object", "dynamic": True},
            }
        },
        "indexed_at": {"type": "date"},
        "row_hash": ROW_HASH_MAPPING,
        "extra": {"type": "object", "enabled": False},
    }
    for strategy in STRATEGIES:
        properties.update(strategy.properties(adapter, spec))
    return {
        "dynamic": "strict",
        "dynamic_templates": [
            {
                "attributes_as_keywords": {
                    "path_match": "attributes.*",
                    "mapping": {"type": "keyword", "ignore_above": 256},
                }
            },
            {
                "predicted_attributes_as_keywords": {
                    "path_match": "predicted.attributes.*",
                    "mapping": {"type": "keyword", "ignore_above": 256},
                }
            },
        ],
        "_meta": {
            "vistag_version": __version__,
            "document": spec.name,
            "vector_dim": spec.vector_dim,
            "vector_quantization": spec.vector_quantization,
        },
        "properties": properties,
    }


def index_template(adapter: EngineAdapter, spec: DocumentSpec) -> dict:
    """The composable index template body for ``spec`` on this engine."""
    body = {
        "index_patterns": [spec.name, f"{spec.name}-*"],
        # Longer names are more specific: `products-v2` (products-v2-*) must win over
        # `products` (products-*) and the engines refuse overlapping patterns of equal priority.
        "priority": 200 + len(spec.name),
        "template": {"settings": {"index": adapter.index_settings()}, "mappings": mappings(adapter, spec)},
    }
    # The digest makes re-installing idempotent: an unchanged template is never written again.
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    body["_meta"] = {"managed_by": "vistag", "vistag_version": __version__, "digest": digest}
    return body


def search_templates(adapter: EngineAdapter, spec: DocumentSpec) -> dict[str, str]:
    """Mustache sources of every stored search template, by id (``<index>-hybrid`` where the engine fuses)."""
    templates = {search_template_id(spec, s): s.template(adapter, spec) for s in STRATEGIES}
    if adapter.hybrid:
        templates[search_template_id(spec, hybrid)] = hybrid.template(adapter, spec)
    return templates


def install_search_pipelines(client: EngineClient, adapter: EngineAdapter) -> list[str]:
    """Store the fusion pipelines where neural-search is present (only when changed); returns their ids."""
    if not adapter.hybrid:
        return []
    for pipeline_id, body in hybrid.pipelines().items():
        if client.get_search_pipeline(pipeline_id) != body:
            client.put_search_pipeline(pipeline_id, body)
            logger.info("installed search pipeline %s", pipeline_id)
    return list(hybrid.pipelines())


def render_search(adapter: EngineAdapter, spec: DocumentSpec, strategy: ModuleType, params: dict) -> dict:
    """Render a strategy's template with ``params`` into a search body, exactly as the engine would."""
    return json.loads(mustache.render(strategy.template(adapter, spec), params))


def install_index_template(client: EngineClient, spec: DocumentSpec) -> dict:
    """Create or update the index template, only when it differs from the stored one; returns its body.

    Idempotent: a second call with the same ``spec`` and vistag version sends no write.
    """
    adapter = EngineAdapter(client.info())
    for note in adapter.limitations():
        logger.info("%s: %s", client.label, note)
    install_search_pipelines(client, adapter)  # the template names the default pipeline: it must exist first
    body = index_template(adapter, spec)
    name = template_name(spec)
    current = client.get_index_template(name)
    if current is None or current.get("_meta") != body["_meta"]:
        client.put_index_template(name, body)
        logger.info("installed index template %s (vistag %s)", name, __version__)
    return body


def install_search_templates(client: EngineClient, spec: DocumentSpec) -> list[str]:
    """Store every search template that is missing or different; returns their ids (none without lang-mustache)."""
    adapter = EngineAdapter(client.info())
    if not adapter.search_templates:
        logger.info("%s has no lang-mustache module; search templates were not stored", client.label)
        return []
    ids = []
    for template_id, source in search_templates(adapter, spec).items():
        if client.get_script(template_id) != source:
            client.put_script(template_id, source)
        ids.append(template_id)
    return ids


def spec_for(
    index: str,
    *,
    vector_dim: int | None = None,
    model: str = "efficientnet-lite0",
    category_levels: int = 3,
    vector_quantization: str = "none",
) -> DocumentSpec:
    """The document spec of ``index``: the vector dimension given, or that of the registered backbone ``model``.

    Raises:
        ConfigError: an unknown backbone, or an invalid index name or dimension.

    Examples:
        >>> spec_for("products", model="efficientnet-lite0-colour").vector_dim
        2048
    """
    if vector_dim is None:
        from vistag.models.registry import get_config  # the registry imports no torch

        vector_dim = get_config(model).embedding_dim
    return DocumentSpec(
        name=index, vector_dim=vector_dim, category_levels=category_levels, vector_quantization=vector_quantization
    )


def render_templates(engine: str | Any, spec: DocumentSpec) -> dict[str, Any]:
    """The index template and stored search templates of ``spec`` as the engine would receive them.

    Args:
        engine: ``"elasticsearch"`` or ``"opensearch"`` (rendered offline, every module
            assumed present), or a client of a running cluster (rendered for what it has).
        spec: the document spec.

    Returns:
        ``{"engine", "index_template", "search_templates", "limitations"}``.

    Examples:
        >>> sorted(render_templates("opensearch", spec_for("products"))["search_templates"])
        ['products-hybrid', 'products-image', 'products-keyword', 'products-similar', 'products-tags']
    """
    adapter = EngineAdapter.for_engine(engine) if isinstance(engine, str) else EngineAdapter(as_engine(engine).info())
    return {
        "engine": adapter.engine,
        "index_template": index_template(adapter, spec),
        "search_templates": search_templates(adapter, spec),
        "limitations": adapter.limitations(),
    }


def install_templates(
    client: Client,
    index: str = "products",
    vector_dim: int | None = None,
    *,
    model: str = "efficientnet-lite0",
    category_levels: int = 3,
    vector_quantization: str = "none",
) -> list[str]:
    """Install (only when changed) the index template and stored search templates for ``index``.

    Args:
        client: an ``Elasticsearch`` or ``OpenSearch`` client (or an :class:`EngineClient`).
        index: the index or alias name the templates serve.
        vector_dim: the image embedding's dimension (default: that of ``model``).
        model: the registered backbone whose vectors the index holds.
        category_levels: depth of the category path.
        vector_quantization: ``none`` or ``int8``.

    Returns:
        The stored search template ids (empty on a cluster without lang-mustache).

    Examples:
        >>> install_templates(OpenSearch("http://127.0.0.1:9200"), "products")  # doctest: +SKIP
        ['products-keyword', 'products-tags', 'products-image', 'products-similar', 'products-hybrid']
    """
    engine = as_engine(client)
    spec = spec_for(
        index,
        vector_dim=vector_dim,
        model=model,
        category_levels=category_levels,
        vector_quantization=vector_quantization,
    )
    install_index_template(engine, spec)
    return install_search_templates(engine, spec)


def create_index(client: EngineClient, spec: DocumentSpec, index: str | None = None) -> str:
    """Install the templates (when changed) and create ``index`` (default ``spec.name``) unless it exists.

    Returns:
        The index name.

    Raises:
        ConfigError: the index exists with another vector dimension.
        EngineError: the engine refused to create the index (a bad name, a template
            the engine rejects, ...), with its reason.
    """
    index = index or spec.name
    install_index_template(client, spec)
    install_search_templates(client, spec)
    if client.index_exists(index):
        for name, body in client.get_mapping(index).items():
            meta = body.get("mappings", {}).get("_meta", {})
            if meta.get("vector_dim") not in (None, spec.vector_dim):
                raise ConfigError(
                    f"index {index!r} holds {meta['vector_dim']}-d vectors but the model gives {spec.vector_dim}-d; "
                    "use another index or `vistag reindex`"
                )
            if "row_hash" not in body.get("mappings", {}).get("properties", {}):  # made by vistag before `sync`
                client.put_mapping(name, {"row_hash": ROW_HASH_MAPPING})
        return index
    client.create_index(index, exist_ok=True)  # another writer may create it first; any other refusal raises
    return index
