"""Parquet catalogs, and the stable slices the Ray runner's read tasks keep."""

from __future__ import annotations

import csv

import pytest

from vistag.catalog.rows import CatalogRow, MalformedRow, read_catalog
from vistag.catalog.schema import CatalogSchema
from vistag.errors import ConfigError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ROWS = [{"id": str(i), "title": f"Shirt {i}", "image": f"{i}.jpg"} for i in range(1, 301)]


def _csv(path, rows, extra_lines=()):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "title", "image"])
        writer.writeheader()
        writer.writerows(rows)
        for line in extra_lines:
            fh.write(line)
    return path


def test_a_parquet_catalog_reads_like_its_csv(tmp_path):
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "c.parquet", row_group_size=64)
    from_parquet = list(read_catalog(tmp_path / "c.parquet", CatalogSchema()))
    from_csv = list(read_catalog(_csv(tmp_path / "c.csv", ROWS), CatalogSchema()))
    assert [(r.line, r.id, r.fields) for r in from_parquet] == [(r.line, r.id, r.fields) for r in from_csv]


def test_a_parquet_catalog_without_a_schema_column_stops_at_once(tmp_path):
    pq.write_table(pa.Table.from_pylist([{"sku": "1", "image": "1.jpg"}]), tmp_path / "c.parquet")
    with pytest.raises(ConfigError, match=r"\['id', 'title'\] are not in its columns, which are \['sku', 'image'\]"):
        list(read_catalog(tmp_path / "c.parquet", CatalogSchema()))


def test_parquet_ids_are_strings_and_repeats_are_malformed(tmp_path):
    table = pa.Table.from_pylist([{"id": 7, "title": "a", "image": "7.jpg"}, {"id": 7, "title": "b", "image": "x.jpg"}])
    pq.write_table(table, tmp_path / "c.parquet")
    first, second = read_catalog(tmp_path / "c.parquet", CatalogSchema())
    assert isinstance(first, CatalogRow) and first.id == "7"
    assert isinstance(second, MalformedRow) and second.reason == "duplicate id '7'"


def test_the_read_slices_cover_the_catalog_once_whatever_their_number(tmp_path):
    pytest.importorskip("ray")
    from vistag.ray.source import read_slice

    catalog = _csv(tmp_path / "c.csv", [*ROWS, ROWS[5]], extra_lines=['"only-two","fields"\n'])
    for parts in (1, 3, 7):
        records = [
            r
            for part in range(1, parts + 1)
            for t in read_slice(catalog, CatalogSchema(), part, parts)
            for r in t.to_pylist()
        ]
        lines = sorted(r["line"] for r in records)
        assert lines == list(range(1, len(ROWS) + 3)), parts  # every row once: 300 good, a repeat, a short one
        bad = {r["line"]: r["error"] for r in records if r["error"]}
        assert bad == {301: "duplicate id '6'", 302: "expected 3 fields, found 2"}
    limited = [r for t in read_slice(catalog, CatalogSchema(), 1, 1, limit=10) for r in t.to_pylist()]
    assert [r["id"] for r in limited] == [str(i) for i in range(1, 11)]
