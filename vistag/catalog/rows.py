"""Read catalog rows from CSV, TSV, JSONL or Python dicts, one at a time, flagging malformed rows instead of stopping.

A catalog whose columns do not match its schema stops at once (a
:class:`~vistag.errors.ConfigError` naming the missing columns and those found);
a single bad row is a :class:`MalformedRow` the caller dead-letters.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vistag.catalog.schema import CatalogSchema
from vistag.errors import ConfigError

#: Rows of a JSONL file or an iterable looked at for the schema's required columns.
PROBE_ROWS = 20


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
    fields: dict[str, Any]


@dataclass
class MalformedRow:
    """A row that cannot be used, with the reason and whatever could be read of it."""

    line: int
    reason: str
    raw: object
    id: str | None = None


def read_catalog(
    source: str | Path | Iterable[Mapping[str, Any]], schema: CatalogSchema
) -> Iterator[CatalogRow | MalformedRow]:
    """Yield the rows of a ``.csv``/``.tsv``, ``.jsonl``/``.ndjson`` or ``.parquet`` catalog in file order,
    or of an iterable of dicts (``line`` is then the 1-based position).

    Rows with a wrong number of fields, invalid JSON, no id or a repeated id are
    yielded as :class:`MalformedRow` so the caller can dead-letter them.

    Raises:
        ConfigError: the file is missing or of an unknown type; a CSV header lacks a
            column the schema names; none of the first rows of a JSONL file or an
            iterable has the id column, or the image column (unless the schema builds
            image references from an ``image_template``).

    Examples:
        >>> rows = list(read_catalog([{"id": "1", "title": "Red dress", "image": "1.jpg"}], CatalogSchema()))
        >>> rows[0].id
        '1'
    """
    if not isinstance(source, (str, Path)):
        yield from _checked(_probed(_read_dicts(source), schema, "the catalog rows"), schema)
        return
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"catalog {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        rows = _read_csv(path, "\t" if suffix == ".tsv" else ",", schema)
    elif suffix in (".jsonl", ".ndjson", ".json"):
        rows = _probed(_read_jsonl(path), schema, f"catalog {path}")
    elif suffix == ".parquet":
        rows = _read_parquet(path, schema)
    else:
        raise ConfigError(f"catalog {path}: unknown format {suffix!r}; use .csv, .tsv, .jsonl or .parquet")
    yield from _checked(rows, schema)


def _checked(
    rows: Iterable[tuple[int, dict | MalformedRow]], schema: CatalogSchema
) -> Iterator[CatalogRow | MalformedRow]:
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
        missing = [c for c in schema.columns() if c not in header]
        if missing:
            raise ConfigError(
                f"catalog {path}: the schema's column(s) {missing} are not in its header, which has "
                f"{header}; pass the schema that describes this catalog"
            )
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


def _read_parquet(path: Path, schema: CatalogSchema) -> Iterator[tuple[int, dict | MalformedRow]]:
    """Rows of a Parquet file, record batch by record batch (``line``: the 1-based row number)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - depends on the install
        raise ConfigError(f"catalog {path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        file = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid/OSError family
        raise ConfigError(f"catalog {path}: not a readable Parquet file: {exc}") from None
    names = list(file.schema_arrow.names)
    missing = [c for c in schema.columns() if c not in names]
    if missing:
        raise ConfigError(
            f"catalog {path}: the schema's column(s) {missing} are not in its columns, which are "
            f"{names}; pass the schema that describes this catalog"
        )
    line = 0
    for batch in file.iter_batches(batch_size=4096):
        for item in batch.to_pylist():
            line += 1
            yield line, item


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


def _probed(
    rows: Iterator[tuple[int, dict[str, Any] | MalformedRow]], schema: CatalogSchema, name: str
) -> Iterator[tuple[int, dict[str, Any] | MalformedRow]]:
    """``rows`` unchanged, once the first :data:`PROBE_ROWS` well-formed ones show that the
    schema's required columns are there (rows without a key are fine one by one, not all of them).
    """
    head = list(itertools.islice(rows, PROBE_ROWS))
    found = [item for _, item in head if not isinstance(item, MalformedRow)]
    if found:
        keys = list(dict.fromkeys(k for item in found for k in item))
        missing = [c for c in schema.required_columns() if not any(c in item for item in found)]
        if missing:
            raise ConfigError(
                f"{name}: no row among the first {len(found)} has the schema's column(s) {missing}; "
                f"they have {keys[:50]}; pass the schema that describes this catalog"
            )
    yield from head
    yield from rows


def parse_partition(text: str | None) -> tuple[int, int] | None:
    """``"2/3"`` -> ``(2, 3)``; ``None`` -> ``None``.

    Raises:
        ConfigError: not ``I/N`` with ``1 <= I <= N``.

    Examples:
        >>> parse_partition("2/3")
        (2, 3)
    """
    if text is None:
        return None
    try:
        part, _, total = str(text).partition("/")
        i, n = int(part), int(total)
    except ValueError:
        raise ConfigError(f"--partition (partition=) {text!r} is not I/N (e.g. 2/3)") from None
    if not 1 <= i <= n:
        raise ConfigError(f"--partition (partition=) {text!r}: I must be between 1 and N")
    return i, n


def in_partition(row_id: str, partition: tuple[int, int]) -> bool:
    """Whether ``row_id`` belongs to partition ``(I, N)``: a stable hash of the id, the same on
    every machine and run, so N jobs share one catalog with no overlap and no gap.

    Examples:
        >>> sum(in_partition("42", (i, 3)) for i in (1, 2, 3))
        1
    """
    i, n = partition
    return int(hashlib.sha1(str(row_id).encode()).hexdigest()[:12], 16) % n == i - 1


CatalogSource = str | Path | Iterable[Mapping[str, Any]]


def catalog_rows(
    source: CatalogSource, schema: CatalogSchema, limit: int | None = None, partition: str | None = None
) -> Callable[[], Iterator[CatalogRow | MalformedRow]]:
    """A function returning the catalog's rows afresh on each call (the indexer reads them twice).

    A file is read again each time; a list or tuple of dicts is iterated again; any
    other iterable (a generator) is read into a list once. With ``partition``
    (``"I/N"``) only that slice's rows come back (a malformed row without an id is
    reported by the partition its line number falls in).

    Examples:
        >>> rows = catalog_rows([{"id": "1", "image": "1.jpg"}, {"id": "2", "image": "2.jpg"}], CatalogSchema())
        >>> [r.id for r in rows()], [r.id for r in rows()]
        (['1', '2'], ['1', '2'])
    """
    if not isinstance(source, (str, Path, Sequence)):
        source = list(source)
    part = parse_partition(partition)

    def rows() -> Iterator[CatalogRow | MalformedRow]:
        it: Iterator[CatalogRow | MalformedRow] = read_catalog(source, schema)
        if part is not None:
            it = (r for r in it if in_partition(r.id if r.id else f"line:{r.line}", part))
        return itertools.islice(it, limit) if limit else it

    return rows
