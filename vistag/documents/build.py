"""Build the engine document of a catalog row (see :mod:`vistag.documents.spec`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from vistag.catalog.schema import CatalogSchema
from vistag.catalog.vocabulary import normalize_tag
from vistag.documents.spec import category_fields


def row_hash(fields: Mapping[str, Any]) -> str:
    """A digest of a catalog row's own content (every column), stored in the document as
    ``row_hash`` so that :mod:`vistag.indexer.sync` can tell a changed row without reading
    the document back in full.

    Examples:
        >>> row_hash({"id": "1", "title": "Red shirt"}) == row_hash({"title": "Red shirt", "id": "1"})
        True
    """
    canonical = json.dumps(
        {str(k): v for k, v in fields.items() if not isinstance(v, (bytes, bytearray))},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def row_fields(row_id: str, fields: Mapping[str, Any], schema: CatalogSchema) -> dict:
    """The part of a document that comes from the catalog row alone (no image, tags or model):
    what an in-place update of a changed row writes (``extra`` is ``None`` when empty).
    """
    title = _text(fields.get(schema.title)) if schema.title else None
    text_parts = [title] if title else []
    for column in schema.text:
        value = _text(fields.get(column))
        if value and value not in text_parts:
            text_parts.append(value)
    path = [p for p in (_text(fields.get(c)) for c in schema.category) if p]
    attributes = {c: v for c, v in ((c, _text(fields.get(c))) for c in schema.attributes) if v and normalize_tag(v)}
    extra = {c: fields.get(c) for c in schema.extra if fields.get(c) not in (None, "")}
    return {
        "id": row_id,
        "title": title,
        "text": " ".join(text_parts + path + list(attributes.values())) or None,
        "category": category_fields(path),
        "attributes": attributes,
        "extra": extra or None,
        "row_hash": row_hash(fields),
    }


def tag_weights(tags: Sequence[tuple[str, float]]) -> dict[str, float]:
    """``(tag, score)`` pairs as a document's ``tag_weights``: positive scores, 6 digits.

    Examples:
        >>> tag_weights([("tshirts", 0.91234567), ("men", 0.0)])
        {'tshirts': 0.912346}
    """
    return {t: round(float(s), 6) for t, s in tags if s > 0}


def build_document(
    row_id: str,
    fields: dict,
    schema: CatalogSchema,
    *,
    tags: Sequence[tuple[str, float]],
    vector: Sequence[float] | np.ndarray,
    image: dict,
    model: dict,
    indexed_at: str | None = None,
    predicted: dict | None = None,
    related: dict[str, float] | None = None,
) -> dict:
    """Return the document (with ``_id``) for one row.

    Args:
        row_id: product id (the document id, so reruns overwrite, never duplicate).
        fields: the row's columns.
        schema: column mapping.
        tags: ``(tag, presence score)`` pairs, best first.
        vector: the image embedding.
        image: ``source``, ``sha256``, ``width``, ``height``.
        model: ``name``, ``version``, ``embedding_dim``.
        indexed_at: ISO timestamp (default now).
        predicted: a trained model's predicted category/attributes, confidence and
            type check (see :class:`vistag.analyzers.taggers.ModelDocumentTagger`).
        related: index-time expansion: related tags and their discounted weights,
            added to ``tag_weights`` only (``tags`` keeps the product's own tags).
    """
    own = row_fields(row_id, fields, schema)
    weights = tag_weights(tags)
    expanded = {t: round(float(w), 6) for t, w in (related or {}).items() if w > 0 and t not in weights}
    doc: dict = {
        "_id": row_id,
        **own,
        "tags": list(weights),
        "tag_weights": {**weights, **expanded},
        "image_vector": np.asarray(vector, dtype=np.float32),  # written as float32 by the bulk layer
        "image": image,
        "model": model,
        "indexed_at": indexed_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if predicted is not None:
        doc["predicted"] = predicted
    if doc["extra"] is None:
        del doc["extra"]
    return doc


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
