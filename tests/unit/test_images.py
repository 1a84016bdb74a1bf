import io

import numpy as np
import pytest
from PIL import Image

from vistag.indexer import images
from vistag.indexer.images import ImageLoadError, ImageStore, decode_image
from vistag.models.config import BackboneConfig
from vistag.models.preprocess import pad_to_square, preprocess, to_rgb


def _jpeg(size=(60, 80), mode="RGB", fmt="JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 128 if mode != "RGB" else (200, 30, 30)).save(buf, fmt, **kw)
    return buf.getvalue()


def test_good_jpeg():
    loaded = decode_image(_jpeg(), "a.jpg")
    assert (loaded.width, loaded.height) == (60, 80) and len(loaded.sha256) == 64


@pytest.mark.parametrize("data,reason", [
    (b"", "empty"),
    (b"this is not an image", "not a decodable image"),
])
def test_bad_bytes(data, reason):
    with pytest.raises(ImageLoadError, match=reason):
        decode_image(data, "bad.jpg")


def test_truncated_jpeg():
    data = _jpeg((400, 400))
    with pytest.raises(ImageLoadError, match="truncated|corrupt|decodable"):
        decode_image(data[: len(data) // 2], "cut.jpg")


def test_pixel_bomb_is_refused_before_decoding(monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 100 * 100)
    with pytest.raises(ImageLoadError, match="pixel limit"):
        decode_image(_jpeg((200, 200)), "big.jpg")


def test_cmyk_16bit_and_animated_decode():
    cmyk = decode_image(_jpeg(mode="CMYK"), "cmyk.jpg")
    assert to_rgb(cmyk.image).mode == "RGB"
    buf = io.BytesIO()
    Image.fromarray(np.full((20, 20), 40000, dtype=np.uint16)).save(buf, "PNG")
    sixteen = decode_image(buf.getvalue(), "16.png")
    assert to_rgb(sixteen.image).mode == "RGB"
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    assert decode_image(buf.getvalue(), "anim.gif").width == 10


def test_store_reports_missing_files(tmp_path):
    store = ImageStore(tmp_path)
    with pytest.raises(ImageLoadError, match="does not exist"):
        store.read("nope.jpg")


def test_pad_to_white_square_and_preprocess():
    image = Image.new("RGB", (60, 80), (0, 0, 0))
    square = pad_to_square(image)
    assert square.size == (80, 80)
    assert square.getpixel((0, 0)) == (255, 255, 255) and square.getpixel((40, 40)) == (0, 0, 0)
    cfg = BackboneConfig("t", 32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 8, "random")
    array = preprocess(image, cfg)
    assert array.shape == (3, 32, 32) and array.dtype == np.float32
    assert array[:, 0, 0] == pytest.approx([1.0, 1.0, 1.0])  # white padding -> +1
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    assert to_rgb(rgba).getpixel((0, 0)) == (255, 255, 255)  # transparency -> white
