"""Catalog schema: which catalog columns feed which document fields.

A schema is a small JSON file (or the equivalent CLI flags)::

    {
      "id": "id",                          # required, unique product id
      "title": "productDisplayName",       # product title
      "image": "file",                     # image file name, path below --images, or URL
      "text": ["productDisplayName"],      # more searchable text columns
      "category": ["masterCategory", "subCategory", "articleType"],   # root -> leaf
      "attributes": ["gender", "baseColour", "season", "usage"],      # keyword attributes
      "tags": ["articleType", "baseColour", "season", "usage"],       # label columns for kNN tags
      "extra": ["split"]                   # kept in _source, not indexed
    }

``image`` may instead be ``"image_template": "{id}.jpg"`` when no column holds it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vistag.errors import ConfigError

_BUNDLED = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class CatalogSchema:
    """Column mapping of a catalog (see the module docstring)."""

    id: str = "id"
    title: str | None = "title"
    image: str | None = "image"
    image_template: str | None = None
    text: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    extra: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.id:
            raise ConfigError("the schema needs an id column")
        if not self.image and not self.image_template:
            raise ConfigError("the schema needs an image column or an image_template such as '{id}.jpg'")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "schema") -> CatalogSchema:
        """Build from a parsed JSON object.

        Raises:
            ConfigError: unknown keys or wrong types, naming ``source``.
        """
        known = set(cls.__dataclass_fields__)
        data = {k: v for k, v in data.items() if k not in ("description", "$schema")}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"{source}: unknown schema keys {sorted(unknown)}; known: {sorted(known)}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("text", "category", "attributes", "tags", "extra"):
                if isinstance(value, str):
                    value = [value]
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ConfigError(f"{source}: {key!r} must be a list of column names")
                values[key] = tuple(value)
            elif value is not None and not isinstance(value, str):
                raise ConfigError(f"{source}: {key!r} must be a column name")
            else:
                values[key] = value
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> CatalogSchema:
        """Load a schema file; ``fashion-product-images`` names the bundled one."""
        path = Path(path)
        if not path.exists() and (_BUNDLED / f"{path.name}.schema.json").is_file():
            path = _BUNDLED / f"{path.name}.schema.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"schema file {path} does not exist") from None
        except ValueError as exc:
            raise ConfigError(f"schema file {path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"schema file {path} must hold a JSON object")
        return cls.from_dict(data, str(path))

    @classmethod
    def bundled(cls, name: str = "fashion-product-images") -> CatalogSchema:
        """A schema shipped with vistag."""
        return cls.load(_BUNDLED / f"{name}.schema.json")

    def columns(self) -> list[str]:
        """Every column the schema names, in order, without repeats.

        Examples:
            >>> CatalogSchema(text=("description",)).columns()
            ['id', 'title', 'image', 'description']
        """
        named = [self.id, self.title, self.image, *self.text, *self.category, *self.attributes, *self.tags, *self.extra]
        return list(dict.fromkeys(c for c in named if c))

    def required_columns(self) -> list[str]:
        """The columns every row needs: the id, and the image column unless an ``image_template`` builds it."""
        return [self.id] + ([self.image] if self.image and not self.image_template else [])

    def image_ref(self, row: dict[str, Any]) -> Any:
        """The image reference of a row: a file name, path or URL, or in-memory bytes or a PIL image."""
        value = row.get(self.image) if self.image else None
        if value is not None and not isinstance(value, (str, bytes, int, float)):
            return value  # a PIL image (or a Path) from a Python caller
        if isinstance(value, bytes):
            return value or None
        if value:
            return str(value).strip()
        if self.image_template:
            try:
                return self.image_template.format(**row)
            except (KeyError, IndexError, ValueError):
                return None
        return None


def as_schema(schema: CatalogSchema | str | Path | None) -> CatalogSchema:
    """A schema from what a caller gave: a :class:`CatalogSchema`, a schema file, the name of a
    bundled one (``"fashion-product-images"``), or ``None`` for the default ``id``/``title``/``image``.

    Examples:
        >>> as_schema("fashion-product-images").image
        'file'
    """
    if schema is None:
        return CatalogSchema()
    if isinstance(schema, CatalogSchema):
        return schema
    return CatalogSchema.load(schema)
