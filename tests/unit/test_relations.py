"""Tag co-occurrence relations, recommendations and expansion (pure logic)."""

import numpy as np
import pytest

from vistag.analyzers.relations import TagRelations, cooccurrence_cosine, incidence

SETS = [
    ["sneakers", "men", "casual"],
    ["sneakers", "men", "sports"],
    ["sports-shoes", "men", "sports"],
    ["tshirts", "men", "casual"],
    ["tshirts", "women", "casual"],
    ["heels", "women", "party"],
]


def test_cooccurrence_cosine_matches_the_dense_formula():
    x, vocab = incidence(SETS)
    dense = (x.T @ x).toarray().astype(float)
    d = np.sqrt(np.diag(dense))
    expected = dense / np.outer(d, d)
    np.fill_diagonal(expected, 0)
    got = cooccurrence_cosine(x, top_n=100).toarray()
    assert np.allclose(got, expected, atol=1e-6)
    i, j = vocab.index("sneakers"), vocab.index("men")
    assert got[i, j] == pytest.approx(2 / np.sqrt(2 * 4))


def test_top_n_keeps_the_strongest_relations_only():
    x, _ = incidence(SETS)
    sim = cooccurrence_cosine(x, top_n=1)
    assert (np.diff(sim.indptr) <= 1).all()


def test_recommend_accumulates_drops_own_tags_and_cuts_off():
    relations = TagRelations.fit(SETS)
    recs = relations.recommend(["sneakers", "sports"], cutoff=0.2)
    tags = [t for t, _ in recs]
    assert "sneakers" not in tags and "sports" not in tags
    assert tags[0] == "men" and "sports-shoes" in tags and "heels" not in tags
    assert [s for _, s in recs] == sorted((s for _, s in recs), reverse=True)
    assert all(s > 0.2 for _, s in recs)


def test_expand_discounts_related_tags_below_the_originals():
    relations = TagRelations.fit(SETS)
    expanded = relations.expand({"sneakers": 1.0}, discount=0.5)
    assert expanded["sneakers"] == 1.0
    assert 0 < expanded["men"] < 1.0 and "sports" in expanded
    assert "heels" not in expanded


def test_semantic_blend_and_round_trip(tmp_path):
    names = {
        "sneakers": [1, 0, 0],
        "sports shoes": [0.9, 0.436, 0],
        "men": [0, 0, 1],
        "casual": [0, 1, 0],
        "sports": [0, 0.7, 0.714],
        "tshirts": [0.1, 0.1, 0.99],
        "women": [0, 0.1, 0.995],
        "heels": [0.6, 0, 0.8],
        "party": [0, 0.6, 0.8],
    }

    def encoder(texts):
        v = np.array([names[t] for t in texts], dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    relations = TagRelations.fit(SETS, names_encoder=encoder, weight=0.7)
    why = relations.explain("sneakers", "sports-shoes")
    assert why["cooccurrence"] == 0.0 and why["semantic"] > 0.5
    assert why["blended"] == pytest.approx(0.3 * why["semantic"], abs=1e-4)
    relations.save(tmp_path / "rel")
    again = TagRelations.load(tmp_path / "rel")
    assert again.vocabulary == relations.vocabulary
    assert again.recommend(["sneakers"]) == relations.recommend(["sneakers"])
