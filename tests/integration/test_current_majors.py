"""The current majors, OpenSearch 3.6.0 and Elasticsearch 9.5.0 (Java 21+), through the same CLI,
Python API and templates as the default lines: index, keyword, image, hybrid, similar."""

from __future__ import annotations

import json

import pytest

from tests.conftest import write_slice
from vistag.cli.main import main
from vistag.engine import LocalNode
from vistag.engine.java import find_java_home
from vistag.errors import LocalEngineError

pytest.importorskip("torch")
pytestmark = pytest.mark.slow

LINES = [pytest.param(("opensearch", "3.6.0"), marks=pytest.mark.opensearch, id="opensearch-3.6.0"),
         pytest.param(("elasticsearch", "9.5.0"), marks=pytest.mark.elasticsearch, id="elasticsearch-9.5.0")]


@pytest.fixture(scope="module", params=LINES)
def major_node(request):
    engine, version = request.param
    try:
        find_java_home(21)
    except LocalEngineError as exc:
        pytest.skip(f"{engine} {version} needs Java 21+, and this machine has none: {exc}")
    node = LocalNode(engine, heap="512m", name="pytest", version=version)
    node.start()
    yield node
    node.stop()


def test_index_and_query_on_the_current_major(major_node, data_dir, tmp_path, capsys):
    catalog, images, rows = write_slice(data_dir, tmp_path, 30, start=23, step=1439)
    url = major_node.url
    common = ["--url", url]
    assert main(["-q", "index", *common, "--catalog", str(catalog), "--images", str(images), "--index", "majors",
                 "--dead-letter", str(tmp_path / "dl.jsonl"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["indexed"] == 30 and summary["failed"] == 0
    target = rows[5]
    assert main(["search", *common, "--index", "majors", "--image", str(images / target["file"]), "--k", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == target["id"]
    assert main(["search", *common, "--index", "majors", "--query", target["productDisplayName"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == target["id"]
    assert main(["search", *common, "--index", "majors", "--query", target["productDisplayName"], "--image",
                 str(images / target["file"]), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)[0]["id"] == target["id"]
    fused_in_engine = major_node.engine == "opensearch"  # neural-search 3.6.0.0 is laid out with OpenSearch 3
    assert ("inside the engine" in captured.err) == fused_in_engine, captured.err
    assert main(["search", *common, "--index", "majors", "--similar", target["id"], "--json"]) == 0
    assert target["id"] not in [h["id"] for h in json.loads(capsys.readouterr().out)]


def test_python_api_with_the_users_client_on_the_current_major(major_node, data_dir, tmp_path):
    import vistag

    _, images, rows = write_slice(data_dir, tmp_path, 8, start=41, step=2711)
    client = major_node.client().raw
    summary = vistag.index_catalog(client, rows, images=images, index="majors-api", schema="fashion-product-images")
    assert summary.ok and summary.indexed == 8
    assert vistag.Searcher(client, "majors-api").image(images / rows[2]["file"], k=3)[0].id == rows[2]["id"]
