"""The text -> image projection: it learns a mapping, keeps its best epoch, and survives save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vistag.models.text_image import TextImageProjection, contrastive_loss, recall_at


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
    proj = TextImageProjection.fit(text, image, image_model_id="toy@1", val_texts=val_t, val_vectors=val_i,
                                   epochs=12, batch_size=128, hidden=256, lr=3e-3)
    before = recall_at(test_t[:, :48], test_i)  # an untrained guess: chance is 10 / 200
    after = recall_at(proj.encode(test_t), test_i)
    assert before < 0.2 < 0.6 < after
    best = max(h["val_recall@10"] for h in proj.config.history)
    assert recall_at(proj.encode(val_t), val_i) == pytest.approx(best, abs=1e-6)  # the best epoch was kept
    loaded = TextImageProjection.load(proj.save(tmp_path / "text-image"))
    assert loaded.config.image_model_id == "toy@1" and loaded.config.image_dim == 48
    np.testing.assert_allclose(loaded.encode(test_t), proj.encode(test_t), atol=1e-6)


def test_the_same_photo_under_two_ids_is_not_its_own_negative():
    text = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    image = text.clone()
    image[1] = image[0]  # rows 0 and 1: one photo
    masked = contrastive_loss(text, image, 0.05)
    plain = torch.nn.functional.cross_entropy(text @ image.T / 0.05, torch.arange(4))
    assert torch.isfinite(masked) and float(masked) < float(plain)


def test_loading_a_folder_without_a_projection_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no text->image projection"):
        TextImageProjection.load(tmp_path)


def test_weights_that_do_not_match_the_config_are_named(tmp_path):
    from vistag.models.text_image import ProjectionMLP, TextImageConfig

    config = TextImageConfig(image_model_id="toy@1", image_dim=48)
    folder = TextImageProjection(config, ProjectionMLP(config)).save(tmp_path / "p")
    (folder / "config.json").write_text((folder / "config.json").read_text().replace('"image_dim": 48', '"image_dim": 64'))
    with pytest.raises(ValueError, match="does not match"):
        TextImageProjection.load(folder)
