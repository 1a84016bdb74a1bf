import io

import numpy as np
import pytest
from PIL import Image

from vistag import images
from vistag.images import ImageLoadError, ImageStore, decode_image
from vistag.models.config import BackboneConfig
from vistag.models.preprocess import pad_to_square, preprocess, to_rgb


def _jpeg(size=(60, 80), mode="RGB", fmt="JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 128 if mode != "RGB" else (200, 30, 30)).save(buf, fmt, **kw)
    return buf.getvalue()


def test_good_jpeg():
    loaded = decode_image(_jpeg(), "a.jpg")
    assert (loaded.width, loaded.height) == (60, 80) and len(loaded.sha256) == 64


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"", "empty"),
        (b"this is not an image", "not a decodable image"),
    ],
)
def test_bad_bytes(data, reason):
    with pytest.raises(ImageLoadError, match=reason):
        decode_image(data, "bad.jpg")


def test_truncated_jpeg():
    data = _jpeg((400, 400))
    with pytest.raises(ImageLoadError, match="truncated|corrupt|decodable"):
        decode_image(data[: len(data) // 2], "cut.jpg")


def test_pixel_bomb_is_refused_before_decoding():
    with pytest.raises(ImageLoadError, match="bomb.png.*(pixel limit|DecompressionBomb)"):
        decode_image(_bomb_png(40000, 40000), "bomb.png")
    with pytest.raises(ImageLoadError, match="pixel limit"):
        decode_image(_jpeg((200, 200)), "big.jpg", max_pixels=100 * 100)
    assert decode_image(_jpeg((200, 200)), "ok.jpg", max_pixels=200 * 200).width == 200


def test_store_takes_bytes_and_pil_images_and_limits_bytes():
    store = images.ImageStore(max_bytes=1000)
    pil = Image.new("RGB", (30, 20), (200, 10, 10))
    assert store.load(pil).width == 30
    with pytest.raises(ImageLoadError, match="over the 1000-byte limit"):
        store.load(_jpeg((400, 400)))


def test_image_limits_come_from_the_environment_only_where_the_cli_and_service_read_it(monkeypatch, tmp_path):
    from vistag.cli.commands.service import service_config
    from vistag.cli.options import loading_kwargs
    from vistag.cli.parser import build_parser
    from vistag.errors import ConfigError
    from vistag.images.decoding import MAX_PIXELS
    from vistag.images.store import limits_from_env

    monkeypatch.delenv("VISTAG_MAX_IMAGE_PIXELS", raising=False)
    monkeypatch.delenv("VISTAG_MAX_IMAGE_BYTES", raising=False)
    assert limits_from_env() == (MAX_PIXELS, 32 * 1024 * 1024)
    monkeypatch.setenv("VISTAG_MAX_IMAGE_PIXELS", "100")
    monkeypatch.setenv("VISTAG_MAX_IMAGE_BYTES", "5000")
    assert limits_from_env() == (100, 5000)
    assert images.ImageStore().max_pixels == MAX_PIXELS  # a library call does not read the environment
    # the CLI's indexing, training and evaluation runs and the service take it
    index_args = build_parser().parse_args(["index", "--catalog", "c.csv"])
    assert loading_kwargs(index_args)["max_pixels"] == 100
    service_args = build_parser().parse_args(["service"])
    assert service_config(service_args).limits.max_pixels == 100
    assert service_config(build_parser().parse_args(["service", "--max-pixels", "7"])).limits.max_pixels == 7
    monkeypatch.setenv("VISTAG_MAX_IMAGE_PIXELS", "many")
    with pytest.raises(ConfigError, match="VISTAG_MAX_IMAGE_PIXELS='many' is not a whole number"):
        limits_from_env()


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG header that claims a huge image (no pixel data)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


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
