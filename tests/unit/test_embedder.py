import numpy as np
import pytest
from PIL import Image

from vistag.errors import ConfigError, NotFoundError

torch = pytest.importorskip("torch")

from vistag.models import available_backbones, create_embedder, get_config

pytestmark = pytest.mark.torch


def test_registry():
    assert {"efficientnet-lite0", "resnet50", "vgg16", "vgg19", "tiny-random"} <= set(available_backbones())
    with pytest.raises(ConfigError, match="available"):
        get_config("nope")


def test_tiny_random_is_deterministic_and_normalised():
    images = [Image.new("RGB", (60, 80), c) for c in ((255, 0, 0), (0, 0, 255), (10, 200, 10))]
    a = create_embedder("tiny-random", device="cpu", batch_size=2).embed_images(images)
    b = create_embedder("tiny-random", device="cpu").embed_images(images)
    assert a.shape == (3, 64) and np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.allclose(a, b, atol=1e-6)


def test_flip_averages_the_image_and_its_mirror():
    from dataclasses import replace

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (80, 60, 3), dtype=np.uint8))
    mirror = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    plain = create_embedder("tiny-random", device="cpu")
    a, b = plain.embed_images([image, mirror])
    assert not np.allclose(a, b, atol=1e-3)  # the plain vector depends on which way the product faces
    flip = create_embedder("tiny-random", device="cpu")
    flip.config = replace(flip.config, flip=True)
    c, d = flip.embed_images([image, mirror])
    assert np.allclose(c, d, atol=1e-5) and np.isclose(np.linalg.norm(c), 1.0, atol=1e-5)
    assert not np.allclose(c, a, atol=1e-3)  # both sides, not one
    assert flip.model_id.endswith("-flip") and not plain.model_id.endswith("-flip")


def test_efficientnet_lite0_loads_packaged_weights():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        embedder = create_embedder("efficientnet-lite0", device="cpu")
        assert torch.get_num_threads() == 1  # the caller's thread setting is left alone (was reset to cpu_count)
    finally:
        torch.set_num_threads(threads)
    vec = embedder.embed_images([Image.new("RGB", (60, 80), (200, 30, 30))])
    assert vec.shape == (1, 1840) and embedder.model_id == "efficientnet-lite0@1-128px-meanmidgrid"


def test_torchvision_backbones_need_a_local_file():
    with pytest.raises(ValueError, match="local weights file"):
        create_embedder("resnet50", device="cpu")


def test_cuda_unavailable_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        create_embedder("tiny-random", device="cuda")


def test_mean_pooling_variant_and_torchvision_from_a_local_file(tmp_path):
    from dataclasses import replace

    from vistag.models.backbones import build_efficientnet_lite, build_torchvision

    config = replace(get_config("efficientnet-lite0"), pooling="mean", embedding_dim=1280)
    assert config.model_id == "efficientnet-lite0@1-128px"
    out = build_efficientnet_lite(config).eval()(torch.zeros(1, 3, 128, 128))
    assert out.shape == (1, 1280)
    torchvision = pytest.importorskip("torchvision")
    weights = tmp_path / "resnet50.pth"
    state = torchvision.models.resnet50(weights=None).state_dict()
    torch.save(state, weights)
    net = build_torchvision(get_config("resnet50"), str(weights))
    assert torch.equal(
        net.layer1[0].conv1.weight, state["layer1.0.conv1.weight"]
    )  # the file's weights, not a fresh init
    with pytest.raises(NotFoundError, match="missing.pth"):
        build_torchvision(get_config("resnet50"), str(tmp_path / "missing.pth"))
    embedder = create_embedder("resnet50", device="cpu", weights=str(weights), input_size=64)
    assert embedder.embed_images([Image.new("RGB", (60, 80), (0, 0, 0))]).shape == (1, 2048)
