"""Read catalog rows from CSV or JSONL, one at a time, flagging malformed rows instead of stopping."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from vistag.errors import ConfigError
from vistag.catalog.schema import CatalogSchema


@dataclass
class CatalogRow:
    """A well-formed row.

    Attributes:
        line: 1-based record number in the file (the header is not counted).
        id: product id.
        fields: column -> value (strings for CSV; JSON values for JSONL).
    """

    line: int
    id: str
    fields: dict


@dataclass
class MalformedRow:
    """A row that cannot be used, with the reason and whatever could be read of it."""

    line: int
    reason: str
    raw: object
    id: str | None = None


def read_catalog(source: str | Path | Iterable[Mapping], schema: CatalogSchema) -> Iterator[CatalogRow | MalformedRow]:
    """Yield the rows of a ``.csv``/``.tsv`` or ``.jsonl``/``.ndjson`` catalog in file order,
    or of an iterable of dicts (``line`` is then the 1-based position).

    Rows with a wrong number of fields, invalid JSON, no id or a repeated id are
    yielded as :class:`MalformedRow` so the caller can dead-letter them.

    Raises:
        ConfigError: the file is missing, of an unknown type, or lacks the id column.

    Example:
        >>> rows = list(read_catalog([{"id": "1", "title": "Red dress"}], CatalogSchema(id="id", title="title")))
        >>> rows[0].id
        '1'
    """
    if not isinstance(source, (str, Path)):
        yield from _checked(_read_dicts(source), schema)
        return
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"catalog {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        rows = _read_csv(path, "\t" if suffix == ".tsv" else ",", schema)
    elif suffix in (".jsonl", ".ndjson", ".json"):
        rows = _read_jsonl(path)
    else:
        raise ConfigError(f"catalog {path}: unknown format {suffix!r}; use .csv, .tsv or .jsonl")
    yield from _checked(rows, schema)


def _checked(rows: Iterable[tuple[int, dict | MalformedRow]], schema: CatalogSchema) -> Iterator[CatalogRow | MalformedRow]:
    """Rows with an id, checked for missing, duplicate and over-long ids."""
    seen: set[str] = set()
    for line, item in rows:
        if isinstance(item, MalformedRow):
            yield item
            continue
        raw_id = item.get(schema.id)
        item_id = str(raw_id).strip() if raw_id is not None else ""
        if not item_id:
            yield MalformedRow(line, f"missing id (column {schema.id!r})", item)
        elif item_id in seen:
            yield MalformedRow(line, f"duplicate id {item_id!r}", item, item_id)
        elif len(item_id.encode()) > 512:
            yield MalformedRow(line, "id longer than 512 bytes", item, item_id[:64])
        else:
            seen.add(item_id)
            yield CatalogRow(line, item_id, item)


def _read_dicts(items: Iterable[Mapping]) -> Iterator[tuple[int, dict | MalformedRow]]:
    for line, item in enumerate(items, start=1):
        if isinstance(item, Mapping):
            yield line, dict(item)
        else:
            yield line, MalformedRow(line, f"a row must be a dict, got {type(item).__name__}", repr(item)[:2000])


def _read_csv(path: Path, delimiter: str, schema: CatalogSchema) -> Iterator[tuple[int, dict | MalformedRow]]:
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ConfigError(f"catalog {path}: unreadable header: {exc}") from None
        header = [h.strip().lstrip("\ufeff") for h in header]
        if schema.id not in header:
            raise ConfigError(f"catalog {path}: the id column {schema.id!r} is not in the header {header}")
        line = 0
        while True:
            line += 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield line, MalformedRow(line, f"CSV error: {exc}", None)
                continue
            if not values or values == [""]:
                continue
            if len(values) != len(header):
                yield line, MalformedRow(line, f"expected {len(header)} fields, found {len(values)}", values)
                continue
            yield line, dict(zip(header, values))


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict | MalformedRow]]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                item = json.loads(text)
            except ValueError as exc:
                yield line, MalformedRow(line, f"invalid JSON: {exc}", text[:2000])
                continue
            if not isinstance(item, dict):
                yield line, MalformedRow(line, "a JSONL row must be a JSON object", text[:2000])
                continue
            yield line, item
