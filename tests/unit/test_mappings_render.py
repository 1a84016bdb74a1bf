import json

import pytest

from vistag.documents import DocumentSpec, index_template
from vistag.documents.strategies import image, keyword, similar, tags
from vistag.documents.templates import render_search, search_templates
from vistag.engine.adapter import EngineAdapter
from vistag.errors import ConfigError

SPEC = DocumentSpec(name="products", vector_dim=8)
ADAPTERS = [EngineAdapter.for_engine(e, full) for e in ("opensearch", "elasticsearch") for full in (True, False)]


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: f"{a.engine}-{'full' if a.rank_features else 'bare'}")
def test_templates_render_to_valid_queries(adapter):
    filters = {"category": "Apparel > Topwear", "attributes": {"gender": "Men", "usage": 'Ca"sual'}}
    bodies = [
        render_search(adapter, SPEC, keyword, keyword.params("red shirt", **filters)),
        render_search(adapter, SPEC, tags, tags.params({"tshirts": 1.0, "red": 0.5}, **filters)),
        render_search(adapter, SPEC, image, image.params([0.1] * 8, k=5, **filters)),
        render_search(adapter, SPEC, keyword, keyword.params("plain")),
    ]
    assert bodies[0]["query"]["bool"]["filter"][:2] == [
        {"term": {"category.ancestors": "Apparel > Topwear"}},
        {"term": {"attributes.gender": "Men"}},
    ]
    assert bodies[0]["query"]["bool"]["filter"][2] == {"term": {"attributes.usage": 'Ca"sual'}}
    assert len(bodies[1]["query"]["bool"]["should"]) == 3
    assert bodies[3]["size"] == 10 and bodies[3]["from"] == 0
    expected = ["products-image", "products-keyword", "products-similar", "products-tags"]
    if adapter.engine == "opensearch" and adapter.rank_features:  # a full OpenSearch: neural-search fuses hybrids
        expected = ["products-hybrid", *expected]
    assert sorted(search_templates(adapter, SPEC)) == expected
    sim = render_search(
        adapter, SPEC, similar, similar.params("42", [0.1] * 8, {"tshirts": 0.9, "red": 0.5}, k=5, **filters)
    )
    exclude = {"ids": {"values": ["42"]}}
    if adapter.engine == "elasticsearch":
        assert exclude in sim["knn"]["filter"]["bool"]["must_not"] and exclude in sim["query"]["bool"]["must_not"]
        assert len(sim["query"]["bool"]["should"]) == 3
    else:
        knn = sim["query"]["bool"]["should"][-1]["knn"]["image_vector"]
        assert exclude in knn["filter"]["bool"]["must_not"] and knn["k"] == 5
        assert exclude in sim["query"]["bool"]["must_not"]


def test_engine_differences():
    es, os_ = EngineAdapter.for_engine("elasticsearch"), EngineAdapter.for_engine("opensearch")
    es_map = index_template(es, SPEC)["template"]["mappings"]["properties"]
    os_map = index_template(os_, SPEC)["template"]["mappings"]["properties"]
    assert es_map["image_vector"]["type"] == "dense_vector" and es_map["image_vector"]["similarity"] == "cosine"
    assert os_map["image_vector"]["method"]["engine"] == "lucene"
    assert os_map["image_vector"]["dimension"] == 8 and es_map["image_vector"]["dims"] == 8
    assert es_map["tag_weights"] == os_map["tag_weights"] == {"type": "rank_features"}
    bare = EngineAdapter.for_engine("elasticsearch", full=False)
    assert index_template(bare, SPEC)["template"]["mappings"]["properties"]["tag_weights"] == {"type": "sparse_vector"}
    assert "knn" in render_search(es, SPEC, image, image.params([1.0] * 8))
    assert "knn" in render_search(os_, SPEC, image, image.params([1.0] * 8))["query"]


def test_param_validation():
    with pytest.raises(ConfigError, match="at least one tag"):
        tags.params({})
    with pytest.raises(ConfigError, match="invalid tag 'a.b'"):
        tags.params({"a.b": 1.0})
    with pytest.raises(ConfigError, match="needs some text"):
        keyword.params("  ")
    with pytest.raises(ConfigError, match="k must be at least 1"):
        image.params([1.0], k=0)
    with pytest.raises(ConfigError, match="invalid index name"):
        DocumentSpec(name="Bad Name", vector_dim=8)
    with pytest.raises(ConfigError, match="vector_dim"):
        DocumentSpec(name="products", vector_dim=0)


def test_index_template_is_plain_json_that_reads_back_the_same():
    body = index_template(EngineAdapter.for_engine("opensearch"), SPEC)
    assert json.loads(json.dumps(body)) == body  # no numpy, sets or tuples that an engine client would choke on
    assert body["template"]["mappings"]["_meta"]["vector_dim"] == SPEC.vector_dim


def test_more_specific_index_names_get_higher_template_priority():
    adapter = ADAPTERS[0]
    base = index_template(adapter, DocumentSpec(name="products", vector_dim=8))
    versioned = index_template(adapter, DocumentSpec(name="products-v2", vector_dim=8))
    # products-* also matches products-v2: the engines refuse overlapping templates of equal priority.
    assert versioned["priority"] > base["priority"]
    assert base["template"]["mappings"]["properties"]["model"]["properties"]["tagger"] == {"type": "keyword"}
    assert "predicted" in base["template"]["mappings"]["properties"]


def test_hybrid_template_nests_the_strategies_own_sub_queries():
    from vistag.documents.strategies import hybrid

    adapter = EngineAdapter.for_engine("opensearch")
    filters = {"category": "Apparel", "attributes": {"gender": "Men"}}
    body = render_search(
        adapter,
        SPEC,
        hybrid,
        hybrid.params("red shirt", {"tshirts": 1.0}, [0.1] * 8, size=5, offset=5, window=40, **filters),
    )
    queries = body["query"]["hybrid"]["queries"]
    assert body["query"]["hybrid"]["pagination_depth"] == 40 and (body["size"], body["from"]) == (5, 5)
    assert queries[0] == render_search(adapter, SPEC, keyword, keyword.params("red shirt", **filters))["query"]
    assert queries[1] == render_search(adapter, SPEC, tags, tags.params({"tshirts": 1.0}, **filters))["query"]
    assert queries[2] == render_search(adapter, SPEC, image, image.params([0.1] * 8, k=40, **filters))["query"]
    assert queries[3] == {"match_none": {}} and len(queries) == 4
    only_image = render_search(adapter, SPEC, hybrid, hybrid.params(None, None, [0.1] * 8))
    assert [next(iter(q)) for q in only_image["query"]["hybrid"]["queries"]] == ["knn", "match_none"]
    with pytest.raises(ValueError, match="needs text, tags or an image"):
        hybrid.params("  ", None, None)
    with pytest.raises(ValueError, match="neural-search"):
        hybrid.template(EngineAdapter.for_engine("elasticsearch"), SPEC)
    weights = hybrid.weighted_pipeline([1, 3])["phase_results_processors"][0]["normalization-processor"]
    assert weights["combination"]["parameters"]["weights"] == [0.25, 0.75]  # normalised to sum 1


def test_indices_default_to_the_rrf_pipeline_only_where_it_exists():
    full_os = EngineAdapter.for_engine("opensearch")
    assert full_os.index_settings()["search"] == {"default_pipeline": "vistag-hybrid-rrf"}
    assert "search" not in EngineAdapter.for_engine("opensearch", full=False).index_settings()
    assert "search" not in EngineAdapter.for_engine("elasticsearch").index_settings()
