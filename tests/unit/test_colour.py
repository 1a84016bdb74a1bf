"""Colour evidence: CIELAB conversion, the background mask, and features that tell colours apart."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vistag.models.colour import ColourConfig, colour_features, foreground_mask, srgb_to_lab


@pytest.mark.parametrize(
    "rgb,lab",
    [
        ((255, 255, 255), (100.0, 0.0, 0.0)),
        ((0, 0, 0), (0.0, 0.0, 0.0)),
        ((255, 0, 0), (53.24, 80.09, 67.20)),
        ((0, 0, 255), (32.30, 79.19, -107.86)),
    ],
)
def test_srgb_to_lab_matches_reference_values(rgb, lab):
    assert srgb_to_lab(np.array(rgb, np.uint8)) == pytest.approx(lab, abs=0.3)


def _product(colour, background=(255, 255, 255), size=(60, 80), box=(15, 20, 45, 60)):
    image = Image.new("RGB", size, background)
    image.paste(Image.new("RGB", (box[2] - box[0], box[3] - box[1]), colour), box[:2])
    return image


def test_the_white_background_is_masked_out():
    image = _product((20, 40, 160))
    lab = srgb_to_lab(np.asarray(image)).reshape(-1, 3)
    assert foreground_mask(lab).sum() == 30 * 40
    features = colour_features(image)
    assert features.shape == (ColourConfig().dim,)
    assert features[-1] == pytest.approx(30 * 40 / (60 * 80))  # foreground share
    # The statistics describe the product, not the background: mean L* of that navy, not of white.
    assert features[-10] * 100 == pytest.approx(float(srgb_to_lab(np.array((20, 40, 160), np.uint8))[0]), abs=0.5)


def test_same_colour_on_another_background_share_gives_near_features_and_other_colours_far():
    red_small, red_large = _product((200, 30, 30)), _product((200, 30, 30), box=(5, 5, 55, 75))
    blue = _product((30, 40, 200))
    f_small, f_large, f_blue = (colour_features(i)[:-1] for i in (red_small, red_large, blue))
    assert np.abs(f_small - f_large).sum() < 0.01 < np.abs(f_small - f_blue).sum()


def test_a_white_product_falls_back_to_every_pixel():
    features = colour_features(Image.new("RGB", (60, 80), (250, 250, 250)))
    assert features[-1] == 0.0  # no foreground found
    assert features[-10] * 100 > 95  # ... and its lightness is still described


def test_a_batch_gives_each_image_its_own_features():
    import torch

    from vistag.models.colour import colour_batch

    images = [_product((200, 30, 30)), _product((30, 40, 200), box=(5, 5, 55, 75)), Image.new("RGB", (60, 80), "white")]
    batch = torch.stack([torch.from_numpy(np.asarray(i, np.float32) / 255).permute(2, 0, 1) for i in images])
    np.testing.assert_allclose(colour_batch(batch).numpy(), np.stack([colour_features(i) for i in images]), atol=1e-5)
    hist = ColourConfig().histogram_dim
    assert colour_batch(batch)[:2, :180].sum(1).numpy() == pytest.approx([1.0, 1.0], abs=1e-5)  # joint histogram mass
    assert hist == 198


def test_the_colour_backbone_keeps_the_cnn_vector_and_appends_colour():
    pytest.importorskip("efficientnet_lite_pytorch")
    from vistag.models import create_embedder

    plain = create_embedder("efficientnet-lite0", device="cpu")
    joined = create_embedder("efficientnet-lite0-colour", device="cpu")
    assert joined.model_id == "efficientnet-lite0-colour@1-128px-meanmidgrid-lab0.5" and joined.dim == plain.dim + 208
    images = [_product((200, 30, 30)), _product((30, 40, 200))]
    a, b = plain.embed_images(images), joined.embed_images(images)
    assert b.shape == (2, 2048)
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    # The CNN part is the plain embedding scaled by 1 / sqrt(1 + 0.5^2); the rest has norm 0.5 of it.
    np.testing.assert_allclose(b[:, :1840] * np.sqrt(1.25), a, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(b[:, 1840:], axis=1) * np.sqrt(1.25), 0.5, atol=1e-5)
    # Red and blue products differ much more in the colour block than in the CNN block.
    assert float(b[0, 1840:] @ b[1, 1840:]) / 0.2 < float(b[0, :1840] @ b[1, :1840]) / 0.8
