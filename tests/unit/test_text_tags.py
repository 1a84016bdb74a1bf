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
