"""Fine-tuning pieces: Chen et al.'s spatial attention, the split forward pass, trainable stages, views,
the float16 feature-map cache and the fine-tuned backbone's id and weights check."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vistag.errors import ConfigError
from vistag.models.backbones import SpatialAttention, load_tuned, weights_digest
from vistag.models.cache import EmbeddingCache
from vistag.models.config import BackboneConfig
from vistag.models.finetune import FineTuneConfig, augment, trainable_parameters
from vistag.models.registry import builder_for, get_config

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def lite():
    config = get_config("efficientnet-lite0")
    return builder_for(config.name)(config).eval()


def test_attention_shape_identity_at_start_and_gradients_reach_every_part():
    attention = SpatialAttention(8, 4)
    x = torch.randn(3, 8, 4, 4, requires_grad=True)
    y = attention(x)
    assert y.shape == x.shape
    assert torch.allclose(y, x)  # the identity until trained: fine-tuning starts from the published features
    target = torch.zeros_like(y)
    target[:, :, 0, 0] = 1.0  # a loss that wants the top-left cell weighted up
    ((y - target) ** 2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert attention.score.weight.grad is not None and attention.score.weight.grad.abs().sum() > 0
    assert attention.template.grad is not None and attention.template.grad.abs().sum() > 0
    # one step changes the weights of the cells, and differently per cell
    with torch.no_grad():
        attention.template -= 0.5 * attention.template.grad
        attention.score.weight -= 0.5 * attention.score.weight.grad
    w = attention.weights(torch.randn(1, 8, 4, 4)).detach()
    assert w.shape == (1, 1, 4, 4)
    assert float(w.max() - w.min()) > 1e-3


def test_attention_template_follows_another_grid():
    attention = SpatialAttention(4, 4)
    assert attention(torch.ones(2, 4, 6, 6)).shape == (2, 4, 6, 6)


def test_split_forward_and_attention_at_start_leave_the_embedding_unchanged(lite):
    x = torch.randn(2, 3, 128, 128)
    with torch.inference_mode():
        plain = lite(x)
        mid = lite.to_mid(x)
        assert mid.shape == (2, 112, 8, 8)
        lite.add_attention(128)
        try:
            with_attention = lite.from_mid(mid)
        finally:
            lite.attention = None
    assert plain.shape == (2, 1840)
    assert torch.allclose(plain, with_attention, atol=1e-5)


def test_trainable_stages_are_the_last_ones(lite):
    stages = lite.stages()
    assert [len(s) for s in stages] == [1, 2, 2, 3, 3, 4, 1]  # EfficientNet-Lite0's 16 blocks
    one = {name.split(".")[2] for name, _ in trainable_parameters(lite, 1) if name.startswith("net._blocks")}
    two = {name.split(".")[2] for name, _ in trainable_parameters(lite, 2) if name.startswith("net._blocks")}
    assert one == {"15"}
    assert two == {"11", "12", "13", "14", "15"}
    names = [name for name, _ in trainable_parameters(lite, 2)]
    assert any(n.startswith("net._conv_head") for n in names)
    frozen = [n for n, p in lite.named_parameters() if not p.requires_grad]
    assert any(n.startswith("net._blocks.10.") for n in frozen) and any(n.startswith("net._conv_stem") for n in frozen)
    three = {name.split(".")[2] for name, _ in trainable_parameters(lite, 3) if name.startswith("net._blocks")}
    assert three == {"8", "9", "10"} | two  # the middle stage too: its maps are cut earlier
    with pytest.raises(ConfigError, match="1 to 6 of the network's stages, got 7"):
        trainable_parameters(lite, 7)
    for p in lite.parameters():
        p.requires_grad_(True)


def test_maps_cut_before_the_middle_stage_give_the_same_vector(lite):
    assert [lite.cut_before(n) for n in (1, 2, 3, 4)] == [10, 10, 7, 4]
    x = torch.randn(2, 3, 128, 128)
    with torch.inference_mode():
        early = lite.to_mid(x, lite.cut_before(3))
        assert early.shape == (2, 80, 8, 8)
        assert torch.allclose(lite.from_mid(early, 7), lite(x), atol=1e-5)
        with pytest.raises(RuntimeError):  # maps of another block do not pass for these
            lite.from_mid(early)


def test_views_mirror_and_crop_without_changing_colour():
    x = torch.zeros(4, 3, 32, 32)
    x[:, :, :, 16:] = 1.0  # right half bright
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(augment(x, 0, generator), x)
    mirrored = augment(x, 1, generator)
    assert (mirrored[:, :, :, :12].mean() > 0.9) and (mirrored[:, :, :, 20:].mean() < 0.1)  # bright half moved left
    cropped = augment(x, 2, generator)  # even views: crop only
    assert cropped[:, :, :, :12].mean() < 0.1 and cropped[:, :, :, 20:].mean() > 0.9
    assert float(cropped.min()) >= 0.0 and float(cropped.max()) <= 1.0  # no colour change: values stay in range


def test_config_checks():
    with pytest.raises(ValueError, match="at least one stage"):
        FineTuneConfig(stages=0)
    with pytest.raises(ValueError, match="views"):
        FineTuneConfig(views=0)
    with pytest.raises(ValueError, match="head_epochs"):
        FineTuneConfig(head_epochs=-1)


def test_the_cli_defaults_are_the_configs():
    """`vistag train --fine-tune` spells its defaults out (the parser does not import torch): they must
    stay those of FineTuneConfig."""
    from vistag.cli.parser import build_parser

    args = build_parser().parse_args(["train", "--catalog", "c.csv", "--out", "m", "--fine-tune"])
    default = FineTuneConfig()
    given = {
        "stages": args.fine_tune_stages,
        "attention": args.attention,
        "views": args.views,
        "epochs": args.fine_tune_epochs,
        "lr": args.fine_tune_lr,
        "backbone_lr": args.backbone_lr,
        "head_epochs": args.fine_tune_head_epochs,
        "refit_head": args.refit_head,
    }
    assert given == {name: getattr(default, name) for name in given}
    assert default.patience >= default.epochs  # the CLI passes patience=epochs: no early stop by default


def test_float16_cache_round_trip(tmp_path):
    cache = EmbeddingCache(tmp_path, "m-mid", 6, np.float16)
    rows = np.arange(12, dtype=np.float32).reshape(2, 6) / 7
    cache.put_many(["a", "b"], rows)
    again = EmbeddingCache(tmp_path, "m-mid", 6, np.float16)
    got, found = again.get_many(["b", "x", "a"])
    assert found == [True, False, True] and got.dtype == np.float16
    assert np.allclose(got[0], rows[1], atol=1e-3) and np.allclose(got[2], rows[0], atol=1e-3)
    assert (tmp_path / "m-mid" / "vectors.f16").stat().st_size == 2 * 6 * 2
    with pytest.raises(ValueError, match="float32 or float16"):
        EmbeddingCache(tmp_path, "m-int", 6, np.int8)


def test_tuned_model_id_and_weights_check(tmp_path, lite):
    base = get_config("efficientnet-lite0")
    torch.save(lite.state_dict(), tmp_path / "backbone.pt")
    digest = weights_digest(tmp_path / "backbone.pt")
    tuned = BackboneConfig(**{**base.to_dict(), "tuned": digest, "attention": False})
    assert tuned.model_id == f"{base.model_id}-ft{digest}"
    assert BackboneConfig(**{**base.to_dict(), "attention": True}).model_id.endswith("-att")
    load_tuned(lite, tmp_path / "backbone.pt", tuned)  # the right file loads
    other = BackboneConfig(**{**base.to_dict(), "tuned": "0" * 12})
    with pytest.raises(ConfigError, match="are not those of"):
        load_tuned(lite, tmp_path / "backbone.pt", other)
    with pytest.raises(ConfigError, match="fine-tuned network: load it from its model directory"):
        builder_for(base.name)(tuned, None)


def test_a_colour_backbone_shares_the_maps_and_its_vectors_are_rebuilt_from_them():
    """``-colour``: the cached maps are the published network's (one cache for both backbones), and the
    network's vector from the maps joined with the row's colour block is the embedder's vector."""
    from PIL import Image

    from vistag.models.finetune import MidActivations, embed_maps, extra_block
    from vistag.models.loading import create_embedder

    colour = create_embedder("efficientnet-lite0-colour", device="cpu")
    plain = create_embedder("efficientnet-lite0", device="cpu")
    rng = np.random.default_rng(0)
    photos = [Image.new("RGB", (60, 80), (245, 245, 245)) for _ in range(3)]
    for photo, rgb in zip(photos, [(200, 20, 30), (20, 40, 160), (30, 30, 30)]):
        patch = np.clip(np.array(rgb) + rng.integers(-20, 20, (40, 30, 3)), 0, 255).astype(np.uint8)
        photo.paste(Image.fromarray(patch), (15, 20))
    acts = MidActivations(colour, views=1)
    assert (
        acts.model_id
        == MidActivations(plain, views=1).model_id
        == "efficientnet-lite0@1-128px-meanmidgrid-mid10-views1-seed0"
    )
    arrays = [colour.prepare(p) for p in photos]
    maps = acts.embed_prepared(arrays).reshape(len(photos), *acts.shape)
    vectors = colour.embed_images(photos)
    extra = extra_block(vectors, acts.lite.dim)
    assert extra is not None and extra.shape == (3, 208)
    assert np.allclose(np.linalg.norm(extra, axis=1), 0.5, atol=1e-4)  # the colour block's weight
    assert extra_block(plain.embed_images(photos), acts.lite.dim) is None
    rebuilt = embed_maps(acts.lite, maps, extra)
    assert rebuilt.shape == vectors.shape
    assert float(np.min(np.sum(rebuilt * vectors, axis=1))) > 0.999  # float16 maps: within rounding
    # the colours differ, so a rebuild that dropped or shuffled the block would not match
    shuffled = embed_maps(acts.lite, maps, extra[[1, 2, 0]])
    assert float(np.min(np.sum(shuffled * vectors, axis=1))) < 0.99


def test_maps_cut_for_three_stages_have_their_own_cache_and_rebuild_the_vectors():
    """``stages=3``: the maps are the 80-channel stage's (``-mid7``, never mixed with the middle stage's
    cache) and the network's vector rebuilt from them, through the middle stage, is the embedder's."""
    from PIL import Image

    from vistag.models.finetune import MidActivations, embed_maps
    from vistag.models.loading import create_embedder

    plain = create_embedder("efficientnet-lite0", device="cpu")
    rng = np.random.default_rng(1)
    photos = [Image.fromarray(rng.integers(0, 255, (70, 50, 3), dtype=np.uint8)) for _ in range(2)]
    acts = MidActivations(plain, views=1, stages=3)
    assert acts.model_id == "efficientnet-lite0@1-128px-meanmidgrid-mid7-views1-seed0"
    assert acts.shape == (80, 8, 8)
    maps = acts.embed_prepared([plain.prepare(p) for p in photos]).reshape(len(photos), *acts.shape)
    vectors = plain.embed_images(photos)
    assert float(np.min(np.sum(embed_maps(acts.lite, maps, cut=acts.cut) * vectors, axis=1))) > 0.999
    assert float(np.min(np.sum(embed_maps(acts.lite, maps[:, :, :4, :4], cut=acts.cut) * vectors, axis=1))) < 0.99
    with pytest.raises(ConfigError, match="got 0"):
        MidActivations(plain, views=1, stages=0)


@pytest.mark.parametrize(
    ("config", "title_aware", "message"),
    [
        (FineTuneConfig(stages=7), False, "1 to 6 of the network's stages, got 7"),
        (FineTuneConfig(), True, "drop --title-aware"),
    ],
)
def test_train_refuses_a_fine_tune_it_cannot_run_before_reading_any_image(tmp_path, config, title_aware, message):
    """The check comes first: the catalog named here does not exist, so a late check would fail on it instead."""
    from vistag.catalog import CatalogSchema
    from vistag.models.trainer import TrainSettings, train

    schema = CatalogSchema(category=("articleType",))
    settings = TrainSettings.for_schema(schema, title_aware=title_aware)
    with pytest.raises(ConfigError, match=message):
        train(
            tmp_path / "no-such-catalog.csv",
            tmp_path / "model",
            images=tmp_path / "no-such-images",
            schema=schema,
            backbone="efficientnet-lite0",
            settings=settings,
            device="cpu",
            fine_tune=config,
        )
    assert not (tmp_path / "model").exists()
