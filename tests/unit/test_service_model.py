"""The document fields the inference service returns for each vector, as ``vistag index`` writes them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from vistag.analyzers.taggers import DocumentTags
from vistag.pipelines import ingest_pipeline_body
from vistag.service.model import InferenceModel


class ScriptedTagger:
    id = "heads:test"

    def tag(self, vectors, ids, claimed, exclude_rows=None):
        return [
            DocumentTags(
                [("tshirts", 0.91234567), ("men", 0.5), ("zero", 0.0)],
                {"accepted": True, "category": "Apparel > Topwear > Tshirts", "attributes": {"gender": "Men"}},
            ),
            DocumentTags([], {"accepted": False, "confidence": 0.2}),
        ]


def test_tag_fields_match_the_indexer_and_always_carry_a_category_object():
    config = SimpleNamespace(name="tiny", model_id="tiny@1", embedding_dim=4)
    model = InferenceModel(SimpleNamespace(config=config, dim=4), ScriptedTagger())
    assert model.info == {"name": "tiny", "version": "tiny@1", "embedding_dim": 4, "tagger": "heads:test"}
    kept, rejected = model.tag([np.ones(4, np.float32), np.ones(4, np.float32)])
    assert kept["tag_weights"] == {"tshirts": 0.912346, "men": 0.5}  # rounded as build_document rounds; zeros dropped
    assert kept["tags"] == ["tshirts", "men"] and kept["category"] == ["Apparel", "Topwear", "Tshirts"]
    assert kept["category_fields"]["path"] == "Apparel > Topwear > Tshirts"
    assert kept["category_fields"]["ancestors"] == ["Apparel", "Apparel > Topwear", "Apparel > Topwear > Tshirts"]
    assert kept["attributes"] == {"gender": "Men"}
    assert rejected == {
        "tags": [],
        "tag_weights": {},
        "predicted": {"accepted": False, "confidence": 0.2},
        "category_fields": {},
    }


def test_the_ingest_pipeline_maps_predictions_only_for_a_trained_model():
    knn = ingest_pipeline_body("m1")["processors"][0]["ml_inference"]
    assert knn["output_map"] == [
        {"image_vector": "embedding", "tags": "tags", "tag_weights": "tag_weights", "model": "model", "image": "image"}
    ]
    assert knn["override"] is True and knn["if"] == "ctx.image instanceof String"
    heads = ingest_pipeline_body("m1", with_predictions=True)["processors"][0]["ml_inference"]["output_map"][0]
    assert heads["predicted"] == "predicted" and heads["category"] == "category_fields"


def test_build_inference_model_takes_one_tag_source_and_refuses_two():
    pytest.importorskip("torch")
    from vistag.errors import ConfigError
    from vistag.service.model import build_inference_model

    model = build_inference_model("tiny-random", device="cpu")
    assert model.dim == 64 and model.tagger is None and model.info["version"].startswith("tiny-random")
    with pytest.raises(ConfigError, match="give one tag source"):
        build_inference_model(
            "tiny-random", device="cpu", reference=[{"id": "1", "image": "1.jpg"}], reference_index="labelled"
        )
    with pytest.raises(ConfigError, match="needs the client"):
        build_inference_model("tiny-random", device="cpu", reference_index="labelled")
