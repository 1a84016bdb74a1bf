"""Colour evidence: CIELAB conversion, the background mask, and features that tell colours apart."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vistag.models.colour import ColourConfig, colour_features, foreground_mask, srgb_to_lab


@pytest.mark.parametrize("rgb,lab", [((255, 255, 255), (100.0, 0.0, 0.0)), ((0, 0, 0), (0.0, 0.0, 0.0)),
                                     ((255, 0, 0), (53.24, 80.09, 67.20)), ((0, 0, 255), (32.30, 79.19, -107.86))])
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
