"""The text -> image projection: it learns a mapping, keeps its best epoch, and survives save/load."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from vistag.errors import NotFoundError
from vistag.models.text_image import TextImageProjection, contrastive_loss, query_like, recall_at


def _pairs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mapping = np.random.default_rng(99).normal(size=(384, 48))  # the same hidden map for every split
    text = rng.normal(size=(n, 384)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    image = np.tanh(text @ mapping) + 0.05 * rng.normal(size=(n, 48))
    return text, (image / np.linalg.norm(image, axis=1, keepdims=True)).astype(np.float32)


def test_the_projection_finds_unseen_pairs_far_above_chance(tmp_path):
    text, image = _pairs(1500, 0)
    val_t, val_i = _pairs(200, 1)
    test_t, test_i = _pairs(200, 2)
    proj = TextImageProjection.fit(
        text,
        image,
        image_model_id="toy@1",
        val_texts=val_t,
        val_vectors=val_i,
        epochs=12,
        batch_size=128,
        hidden=256,
        lr=3e-3,
    )
    before = recall_at(test_t[:, :48], test_i)  # an untrained guess: chance is 10 / 200
    after = recall_at(proj.encode(test_t), test_i)
    assert before < 0.2 < 0.6 < after
    best = max(h["val_recall@10"] for h in proj.config.history)
    assert recall_at(proj.encode(val_t), val_i) == pytest.approx(best, abs=1e-6)  # the best epoch was kept
    loaded = TextImageProjection.load(proj.save(tmp_path / "text-image"))
    assert loaded.config.image_model_id == "toy@1" and loaded.config.image_dim == 48
    np.testing.assert_allclose(loaded.encode(test_t), proj.encode(test_t), atol=1e-6)


def test_the_same_photo_under_two_ids_is_not_its_own_negative():
    text = torch.nn.functional.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    image = text.clone()
    image[1] = image[0]  # rows 0 and 1: one photo
    masked = contrastive_loss(text, image, 0.05)
    logits, target = text @ image.T / 0.05, torch.arange(4)
    plain = (
        torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)
    ) / 2
    # Leaving a logit out of a row's softmax can only lower its loss; rows 0 and 1 lose one each.
    assert torch.isfinite(masked) and float(masked) < float(plain) - 0.01
    distinct = text.clone()
    assert float(contrastive_loss(text, distinct, 0.05)) == pytest.approx(
        float(
            (
                torch.nn.functional.cross_entropy(text @ distinct.T / 0.05, target)
                + torch.nn.functional.cross_entropy(distinct @ text.T / 0.05, target)
            )
            / 2
        ),
        rel=1e-5,
    )


def test_loading_a_folder_without_a_projection_names_it(tmp_path):
    with pytest.raises(NotFoundError, match="no text->image projection"):
        TextImageProjection.load(tmp_path)


def test_weights_that_do_not_match_the_config_are_named(tmp_path):
    from vistag.models.text_image import ProjectionMLP, TextImageConfig

    config = TextImageConfig(image_model_id="toy@1", image_dim=48)
    folder = TextImageProjection(config, ProjectionMLP(config)).save(tmp_path / "p")
    (folder / "config.json").write_text(
        (folder / "config.json").read_text().replace('"image_dim": 48', '"image_dim": 64')
    )
    with pytest.raises(ValueError, match="does not match"):
        TextImageProjection.load(folder)


def test_a_query_like_copy_drops_the_leading_word_and_some_others_but_never_all():
    rng = random.Random(3)
    copies = [query_like("Nike Men Navy Blue Running Shoes", rng) for _ in range(200)]
    assert all(
        c and not c.startswith("Nike") and set(c.split()) <= {"Men", "Navy", "Blue", "Running", "Shoes"} for c in copies
    )
    lengths = [len(c.split()) for c in copies]
    assert min(lengths) >= 1 and 2.5 < np.mean(lengths) < 4  # a third of 5 words dropped on average
    assert query_like("Shoes", random.Random(0)) == "Shoes"  # one word: kept
    assert query_like("Nike Men Navy", random.Random(0), drop=1.0) == "Navy"  # everything dropped: the last word stays


class _Words:
    """A sentence encoder stand-in: each known word adds its own random direction."""

    def __init__(self, words):
        rng = np.random.default_rng(5)
        self.vec = {w: rng.normal(size=384).astype(np.float32) for w in words}

    def __call__(self, texts, progress=False):
        out = np.stack(
            [sum((self.vec[w] for w in t.split() if w in self.vec), np.zeros(384, np.float32)) for t in texts]
        )
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)


def test_the_text_learns_to_read_labels_and_turns_them_into_weighted_index_tags(tmp_path):
    colours, types = ["Navy Blue", "Red", "Off White"], ["Tshirts", "Jeans"]
    enc = _Words(["navy", "red", "offwhite", "tee", "denim", "men", "cotton", "brand"])
    rng = np.random.default_rng(0)
    rows = [(colours[rng.integers(3)], types[rng.integers(2)]) for _ in range(600)]
    word = {"Navy Blue": "navy", "Red": "red", "Off White": "offwhite", "Tshirts": "tee", "Jeans": "denim"}
    titles = [f"brand men {word[c]} cotton {word[t]}" for c, t in rows]
    image = np.eye(6, dtype=np.float32)[[colours.index(c) * 2 + types.index(t) for c, t in rows]]
    proj = TextImageProjection.fit(
        titles,
        image,
        image_model_id="toy@1",
        encoder=enc,
        epochs=20,
        batch_size=64,
        labels={"baseColour": [c for c, _ in rows], "articleType": [t for _, t in rows]},
    )
    assert proj.config.labels == {"baseColour": sorted(colours), "articleType": sorted(types)}
    read = proj.query_tags(["red denim", "navy tee", "offwhite"], per_column=1)
    assert set(read[0]) == {"red", "jeans"} and set(read[1]) == {"navy-blue", "tshirts"}  # slugged as the index slugs
    assert "off-white" in read[2] and all(0.2 <= w <= 1 for tags in read for w in tags.values())
    assert all(
        w >= 0.5 for tags in proj.query_tags(["red denim", "navy tee", "offwhite"], min_prob=0.5) for w in tags.values()
    )
    vector, tags = proj.encode_query("red denim")
    np.testing.assert_allclose(vector, proj.encode(["red denim"])[0], atol=1e-6)
    assert tags == proj.query_tags(["red denim"])[0]
    loaded = TextImageProjection.load(proj.save(tmp_path / "p"), encoder=enc)
    assert loaded.query_tags(["red denim"], per_column=1) == read[:1]
    # Without labels nothing is read, and the projection still works.
    plain = TextImageProjection.fit(
        titles[:100], image[:100], image_model_id="toy@1", encoder=enc, epochs=1, batch_size=32, query_noise=0
    )
    assert plain.encode_query("red denim")[1] == {} and not plain.config.labels
