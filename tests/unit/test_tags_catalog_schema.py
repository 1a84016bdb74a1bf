import json

import pytest

from vistag.catalog import normalize_tag, tags_from_labels
from vistag.catalog.rows import CatalogRow, MalformedRow, read_catalog
from vistag.catalog.schema import CatalogSchema
from vistag.errors import ConfigError


@pytest.mark.parametrize(
    "value,tag",
    [
        ("Navy Blue", "navy-blue"),
        ("T-Shirts", "t-shirts"),
        ("Café ", "cafe"),
        ("", None),
        ("NA", None),
        (None, None),
        ("  Tshirts", "tshirts"),
    ],
)
def test_normalize_tag(value, tag):
    assert normalize_tag(value) == tag


def test_tags_from_labels_masks_missing_and_dedups():
    labels = {"sub": "Watches", "leaf": "Watches", "colour": "", "season": "Fall"}
    assert tags_from_labels(labels, ["sub", "leaf", "colour", "season", "absent"]) == ["watches", "fall"]


def test_bundled_schema():
    schema = CatalogSchema.bundled()
    assert schema.id == "id" and schema.category == ("masterCategory", "subCategory", "articleType")
    assert schema.image_ref({"file": "1.jpg"}) == "1.jpg"


def test_schema_errors_name_the_file(tmp_path):
    bad = tmp_path / "s.json"
    bad.write_text(json.dumps({"id": "id", "imgae": "file"}))
    with pytest.raises(ConfigError, match="s.json.*unknown schema keys"):
        CatalogSchema.load(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        CatalogSchema.load(tmp_path / "missing.json")


def test_csv_malformed_rows(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('id,title,file\n1,Red shirt,1.jpg\n2,"too",many,fields\n,no id,3.jpg\n1,dup,1.jpg\n4,ok,4.jpg\n')
    rows = list(read_catalog(path, CatalogSchema(title="title", image="file")))
    kinds = [(type(r).__name__, r.line) for r in rows]
    assert kinds == [
        ("CatalogRow", 1),
        ("MalformedRow", 2),
        ("MalformedRow", 3),
        ("MalformedRow", 4),
        ("CatalogRow", 5),
    ]
    assert "expected 3 fields, found 4" in rows[1].reason
    assert "missing id" in rows[2].reason and "duplicate id" in rows[3].reason


def test_jsonl_malformed_rows(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "1", "image": "a.jpg"}\n{not json\n[1,2]\n')
    rows = list(read_catalog(path, CatalogSchema()))
    assert isinstance(rows[0], CatalogRow)
    assert isinstance(rows[1], MalformedRow) and "invalid JSON" in rows[1].reason
    assert isinstance(rows[2], MalformedRow)


def test_catalog_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        list(read_catalog(tmp_path / "nope.csv", CatalogSchema()))
    path = tmp_path / "c.csv"
    path.write_text("sku,title\n1,a\n")
    with pytest.raises(
        ConfigError, match=r"column\(s\) \['id', 'image'\] are not in its header, which has \['sku', 'title'\]"
    ):
        list(read_catalog(path, CatalogSchema()))


def test_a_catalog_that_does_not_match_its_schema_stops_at_once_naming_the_columns(tmp_path):
    # labels.csv of the sample data read without its schema: no row can be used, and nothing is dead-lettered one by one
    path = tmp_path / "labels.csv"
    path.write_text("id,gender,productDisplayName,file\n1,Men,Red shirt,1.jpg\n")
    with pytest.raises(
        ConfigError,
        match=r"\['title', 'image'\] are not in its header, which has \['id', 'gender', "
        r"'productDisplayName', 'file'\]",
    ):
        next(iter(read_catalog(path, CatalogSchema())))
    rows = [{"id": str(i), "productDisplayName": "x", "file": f"{i}.jpg"} for i in range(30)]
    with pytest.raises(
        ConfigError,
        match=r"no row among the first 20 has the schema's column\(s\) \['image'\]; "
        r"they have \['id', 'productDisplayName', 'file'\]",
    ):
        next(iter(read_catalog(rows, CatalogSchema())))
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text("\n".join(json.dumps({"sku": str(i), "image": "a.jpg"}) for i in range(3)))
    with pytest.raises(ConfigError, match=r"\['id'\]"):
        list(read_catalog(jsonl, CatalogSchema()))


def test_rows_that_lack_a_column_one_by_one_are_only_malformed_rows():
    rows = [{"id": "1", "image": "1.jpg"}, {"id": "2"}, {"image": "3.jpg"}]
    read = list(read_catalog(rows, CatalogSchema()))
    assert [type(r).__name__ for r in read] == ["CatalogRow", "CatalogRow", "MalformedRow"]
    assert "missing id" in read[2].reason
    # an image template builds the reference: the image column is not required
    assert [r.id for r in read_catalog([{"id": "7"}], CatalogSchema(image=None, image_template="{id}.jpg"))] == ["7"]
