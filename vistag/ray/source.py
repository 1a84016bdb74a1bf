"""Catalog rows into Ray Data: a ``Datasource`` whose read tasks each keep one stable slice of the file.

Each read task reads the catalog with vistag's own reader (:func:`~vistag.catalog.rows.read_catalog`:
malformed rows, duplicate ids and the schema check behave exactly as in ``vistag index``) and keeps
the rows whose id hashes into its slice (:func:`~vistag.catalog.rows.in_partition`, the hash of
``--partition``). A file is therefore parsed once per read task, which is cheap next to decoding its
images; in exchange no row can be read by two tasks or by none, whatever Ray retries.

A row travels as one Arrow record (:data:`ROW_COLUMNS`): its line, its id, its fields as JSON
text (catalog columns differ from shop to shop; one text column keeps Arrow's schema fixed) and,
for a row that cannot be used, the stage and reason it goes to the dead letters with.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from ray.data import Datasource, ReadTask
from ray.data.block import BlockMetadata

from vistag.catalog.rows import CatalogRow, MalformedRow, in_partition, read_catalog
from vistag.catalog.schema import CatalogSchema

#: The columns of a row record between stages.
ROW_COLUMNS = ("line", "id", "row", "stage", "error")
#: Rows per Arrow block a read task yields.
BLOCK_ROWS = 1024


def row_record(row: CatalogRow | MalformedRow) -> dict[str, Any]:
    """The record of one catalog row (a malformed one carries its reason, stage ``read``)."""
    if isinstance(row, MalformedRow):
        raw = row.raw if isinstance(row.raw, (dict, list, str)) or row.raw is None else repr(row.raw)
        return {"line": row.line, "id": row.id or "", "row": _json(raw), "stage": "read", "error": row.reason}
    return {"line": row.line, "id": row.id, "row": _json(row.fields), "stage": "", "error": ""}


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _table(records: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pydict({c: [r[c] for r in records] for c in ROW_COLUMNS})


def read_slice(
    source: str | Path, schema: CatalogSchema, part: int, parts: int, limit: int | None = None
) -> Iterator[pa.Table]:
    """The records of slice ``part`` of ``parts`` of the catalog file (of its first ``limit`` rows)."""
    rows: Iterable[CatalogRow | MalformedRow] = read_catalog(source, schema)
    if limit:
        rows = itertools.islice(rows, limit)
    mine = (r for r in rows if in_partition(r.id if r.id else f"line:{r.line}", (part, parts)))
    batch: list[dict[str, Any]] = []
    for row in mine:
        batch.append(row_record(row))
        if len(batch) >= BLOCK_ROWS:
            yield _table(batch)
            batch = []
    if batch:
        yield _table(batch)


class CatalogDatasource(Datasource):
    """A CSV/TSV/JSONL/Parquet catalog read in ``parts`` stable slices (see the module docstring).

    Args:
        source: the catalog file (it must be readable at the same path on every node).
        schema: its column mapping.
        parts: read tasks (slices).
        limit: only the first rows of the file.
    """

    def __init__(self, source: str | Path, schema: CatalogSchema, parts: int = 4, limit: int | None = None) -> None:
        super().__init__()
        self.source = str(source)
        self.schema = schema
        self.parts = max(1, parts)
        self.limit = limit

    def estimate_inmemory_data_size(self) -> int | None:
        """About the file's size (the records hold its text)."""
        return Path(self.source).stat().st_size

    def get_read_tasks(
        self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
    ) -> list[ReadTask]:
        """One read task per slice, whatever ``parallelism`` Ray asks for (the slices are the unit of retry)."""
        size = self.estimate_inmemory_data_size() or 0
        return [
            ReadTask(
                functools.partial(read_slice, self.source, self.schema, part, self.parts, self.limit),
                BlockMetadata(num_rows=None, size_bytes=size, exec_stats=None, input_files=(self.source,)),
                per_task_row_limit=per_task_row_limit,
            )
            for part in range(1, self.parts + 1)
        ]


def records_of(rows: Iterable[Mapping[str, Any]], schema: CatalogSchema) -> list[dict[str, Any]]:
    """The records of an in-memory catalog (an iterable of dicts), checked as ``vistag index`` checks them."""
    return [row_record(r) for r in read_catalog(rows, schema)]
