"""The adapter against real nodes: engine detection from flags, and templates written only when they change."""

from __future__ import annotations

from vistag.config import ConnectionSettings
from vistag.documents import DocumentSpec
from vistag.documents.templates import install_index_template, install_search_templates, search_templates
from vistag.engine.adapter import EngineAdapter
from vistag.engine.client import EngineClient
from vistag.engine.connect import connect


class CountingWrites(EngineClient):
    """An adapter that counts template and script writes."""

    writes: list[str]

    def put_index_template(self, name, body):
        self.writes.append(name)
        super().put_index_template(name, body)

    def put_script(self, script_id, source, lang="mustache"):
        self.writes.append(script_id)
        super().put_script(script_id, source, lang)


def test_engine_is_detected_from_the_url_with_a_bearer_token_too(node):
    # The test nodes run without security, so the token is sent and ignored: detection must still probe.
    engine = connect(ConnectionSettings(urls=(node.url,), bearer_token="not-checked-here"))
    assert engine.library == ("opensearchpy" if node.engine == "opensearch" else "elasticsearch")
    assert engine.info().engine == node.engine


def test_templates_are_written_once_and_again_only_when_they_change(node):
    engine = CountingWrites(node.client().raw)
    engine.writes = []
    spec = DocumentSpec(name="products", vector_dim=1840)
    adapter = EngineAdapter(engine.info())
    for template_id in search_templates(adapter, spec):  # the node fixture starts with no stored script
        assert engine.get_script(template_id) is None
    install_index_template(engine, spec)
    install_search_templates(engine, spec)
    first = list(engine.writes)
    assert "vistag-products" in first
    # every query template once (hybrid too where the engine fuses); the Elasticsearch zip has no mustache
    assert sorted(first) == sorted(
        ["vistag-products", *(search_templates(adapter, spec) if adapter.search_templates else [])]
    )
    engine.writes.clear()
    install_index_template(engine, spec)
    install_search_templates(engine, spec)
    assert engine.writes == []  # unchanged: nothing written
    install_index_template(engine, DocumentSpec(name="products", vector_dim=512))
    install_search_templates(engine, DocumentSpec(name="products", vector_dim=512))
    assert engine.writes == ["vistag-products"]  # the mapping changed; the query templates did not
    stored = engine.get_index_template("vistag-products")
    assert stored["template"]["mappings"]["_meta"]["vector_dim"] == 512
