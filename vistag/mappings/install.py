"""Render and install the index template and the stored search templates."""

from __future__ import annotations

import json
import logging
from types import ModuleType

from vistag import __version__
from vistag.engine.client import EngineClient
from vistag.mappings import mustache
from vistag.mappings.adapter import EngineAdapter
from vistag.mappings.document import DocumentSpec
from vistag.mappings.strategies import STRATEGIES

logger = logging.getLogger(__name__)


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
        "extra": {"type": "object", "enabled": False},
    }
    for strategy in STRATEGIES:
        properties.update(strategy.properties(adapter, spec))
    return {
        "dynamic": "strict",
        "dynamic_templates": [
            {"attributes_as_keywords": {"path_match": "attributes.*", "mapping": {"type": "keyword", "ignore_above": 256}}},
            {"predicted_attributes_as_keywords": {"path_match": "predicted.attributes.*",
                                                  "mapping": {"type": "keyword", "ignore_above": 256}}},
        ],
        "_meta": {"vistag_version": __version__, "document": spec.name, "vector_dim": spec.vector_dim,
                  "vector_quantization": spec.vector_quantization},
        "properties": properties,
    }


def index_template(adapter: EngineAdapter, spec: DocumentSpec) -> dict:
    """The composable index template body for ``spec`` on this engine."""
    return {
        "index_patterns": [spec.name, f"{spec.name}-*"],
        # Longer names are more specific: `products-v2` (products-v2-*) must win over
        # `products` (products-*) and the engines refuse overlapping patterns of equal priority.
        "priority": 200 + len(spec.name),
        "template": {"settings": {"index": adapter.index_settings()}, "mappings": mappings(adapter, spec)},
        "_meta": {"managed_by": "vistag", "vistag_version": __version__},
    }


def search_templates(adapter: EngineAdapter, spec: DocumentSpec) -> dict[str, str]:
    """Mustache sources of every stored search template, by id."""
    return {search_template_id(spec, s): s.template(adapter, spec) for s in STRATEGIES}


def render_search(adapter: EngineAdapter, spec: DocumentSpec, strategy: ModuleType, params: dict) -> dict:
    """Render a strategy's template with ``params`` into a search body, exactly as the engine would."""
    return json.loads(mustache.render(strategy.template(adapter, spec), params))


def install_index_template(client: EngineClient, spec: DocumentSpec) -> dict:
    """Create or update the index template; returns its body."""
    adapter = EngineAdapter(client.info())
    for note in adapter.limitations():
        logger.warning("%s: %s", client.url, note)
    body = index_template(adapter, spec)
    client.request("PUT", f"/_index_template/{template_name(spec)}", body)
    return body


def install_search_templates(client: EngineClient, spec: DocumentSpec) -> list[str]:
    """Store every search template (``PUT _scripts/<id>``); returns their ids (none without lang-mustache)."""
    adapter = EngineAdapter(client.info())
    if not adapter.search_templates:
        logger.warning("%s has no lang-mustache module; search templates were not stored", client.url)
        return []
    ids = []
    for template_id, source in search_templates(adapter, spec).items():
        client.request("PUT", f"/_scripts/{template_id}", {"script": {"lang": "mustache", "source": source}})
        ids.append(template_id)
    return ids


def create_index(client: EngineClient, spec: DocumentSpec, index: str | None = None) -> str:
    """Install the templates and create ``index`` (default ``spec.name``) unless it exists.

    Returns:
        The index name.

    Raises:
        ValueError: the index exists with another vector dimension.
    """
    index = index or spec.name
    install_index_template(client, spec)
    install_search_templates(client, spec)
    if client.index_exists(index):
        current = client.request("GET", f"/{index}/_mapping")
        for body in current.values():
            meta = body.get("mappings", {}).get("_meta", {})
            if meta.get("vector_dim") not in (None, spec.vector_dim):
                raise ValueError(
                    f"index {index!r} holds {meta['vector_dim']}-d vectors but the model gives {spec.vector_dim}-d; "
                    "use another index or `vistag reindex`"
                )
        return index
    client.request("PUT", f"/{index}", {}, ok_statuses=(400,))
    return index
