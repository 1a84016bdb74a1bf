from vistag.search.text_tags import tags_from_text

DF = {"men": 20000, "navy-blue": 2000, "blue": 9000, "jeans": 600, "tshirts": 7000, "watches": 2500}


def test_words_and_pairs_become_idf_weighted_tags():
    tags = tags_from_text("Men Navy Blue Denim Jeans", DF, 44000)
    assert list(tags) == ["jeans", "navy-blue", "men"]  # "blue" is covered by "navy blue"
    assert tags["jeans"] == 1.0 and tags["men"] < tags["navy-blue"] < 1.0


def test_plural_singular_and_hyphen_forms():
    assert set(tags_from_text("red T-shirt", DF, 44000)) == {"tshirts"}
    assert set(tags_from_text("steel watch", DF, 44000)) == {"watches"}
    assert tags_from_text("nothing here", DF, 44000) == {}


def test_tag_name_encoder_loads_offline_without_touching_the_environment(monkeypatch):
    import os

    import pytest

    pytest.importorskip("sentence_transformers")
    from vistag.models.text import TagNameEncoder

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    before = dict(os.environ)
    vectors = TagNameEncoder()(["red shirt", "red shirts", "blue jeans"])
    assert dict(os.environ) == before  # a library call sets nothing process-wide
    assert vectors.shape == (3, 384)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])


def test_tags_a_title_aware_model_wrote_never_vote_in_the_seller_check():
    from vistag.search.seller_check import neighbour_labels

    unlabelled = {"tags": ["shirts", "blue"], "tag_weights": {"shirts": 0.9, "blue": 0.7}}
    assert neighbour_labels({**unlabelled, "model": {"tagger": "heads:fashion@0123456789ab"}}) == {
        "shirts": 0.9,
        "blue": 0.7,
    }
    assert neighbour_labels({**unlabelled, "model": {"tagger": "heads:fashion@0123456789ab+title"}}) == {}
    labelled = {
        "category": {"lvl0": "Apparel"},
        "attributes": {"baseColour": "Navy Blue"},
        "model": {"tagger": "heads:fashion@0123456789ab+title"},
    }
    assert neighbour_labels(labelled) == {"apparel": 1.0, "navy-blue": 1.0}  # the catalog's own labels still vote
