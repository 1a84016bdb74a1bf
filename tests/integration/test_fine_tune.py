"""`vistag train --fine-tune` on a real catalog slice: it beats the frozen heads on held-out rows, the model
directory carries its own network and id, and an index embedded by one network refuses queries from another."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_slice
from vistag.cli.main import main
from vistag.errors import ConfigError

pytest.importorskip("torch")
pytestmark = [pytest.mark.torch, pytest.mark.slow]

ROWS, TEST_FRACTION = 900, 0.3
#: The task and the margin the fine-tuned model must beat the frozen heads by, on its held-out rows.
TASK, MARGIN = "gender", 0.02


def _train(catalog: Path, images: Path, out: Path, cache: Path, *flags: str) -> None:
    argv = [
        "-q",
        "train",
        "--catalog",
        str(catalog),
        "--images",
        str(images),
        "--out",
        str(out),
        "--test-fraction",
        str(TEST_FRACTION),
        "--val-fraction",
        "0.3",  # enough validation rows to choose the epoch by
        "--levels",
        "--tag-columns",
        "--attributes",
        TASK,
        "--hidden",
        "0",
        "--min-count",
        "5",
        "--device",
        "cpu",
        *flags,
    ]
    assert main(argv) == 0


@pytest.fixture(scope="module")
def models(tmp_path_factory, data_dir) -> dict:
    """A frozen and a fine-tuned model trained by the CLI on the same slice of real products."""
    root = tmp_path_factory.mktemp("finetune")
    catalog, images, rows = write_slice(data_dir, root, ROWS, start=5, step=47)
    frozen, tuned = root / "frozen", root / "tuned"
    with pytest.MonkeyPatch.context() as mp:  # caches of its own, removed with the folder
        mp.setenv("VISTAG_HOME", str(root / "home"))
        _train(catalog, images, frozen, root)
        _train(
            catalog,
            images,
            tuned,
            root,
            "--fine-tune",
            "--fine-tune-epochs",
            "8",
            "--backbone-lr",
            "1e-3",
            "--fine-tune-lr",
            "1e-3",
        )
    return {
        "frozen": frozen,
        "tuned": tuned,
        "catalog": catalog,
        "images": images,
        "rows": rows,
        "cache": root / "home" / "cache" / "embeddings",
    }


def _held_out_accuracy(model_dir: Path, catalog: Path, images: Path) -> float:
    from vistag.catalog.schema import CatalogSchema
    from vistag.models.dataset import TEST, assign_splits, embed_catalog
    from vistag.models.embedding import open_batch_embedder
    from vistag.models.loading import load_model

    loaded = load_model(model_dir, device="cpu")
    assert loaded.tagging is not None
    with open_batch_embedder(loaded.embedder, images) as batch:  # a fresh forward pass: no cached vectors
        data = embed_catalog(catalog, CatalogSchema.bundled(), batch)
    test = data.subset(assign_splits(data, None, TEST_FRACTION, 0.3, 0) == TEST)
    vocab = loaded.tagging.attributes[0]
    guess = loaded.tagging.predict(test.x).attributes[TASK].argmax(1)
    return float(np.mean([vocab.classes[g] == t for g, t in zip(guess, test.column(TASK))]))


def test_fine_tuning_beats_the_frozen_heads_on_held_out_rows(models):
    frozen = _held_out_accuracy(models["frozen"], models["catalog"], models["images"])
    tuned = _held_out_accuracy(models["tuned"], models["catalog"], models["images"])
    assert tuned >= frozen + MARGIN, (frozen, tuned)


def test_the_model_directory_carries_its_network_and_id(models, tmp_path):
    from vistag.images import ImageStore
    from vistag.models.backbones import weights_digest
    from vistag.models.loading import load_model
    from vistag.models.tagging_model import TaggingModel

    tuned = models["tuned"]
    config = json.loads((tuned / "vistag-model.json").read_text())
    digest = weights_digest(tuned / "backbone.pt")
    assert config["model_id"] == f"efficientnet-lite0@1-128px-meanmidgrid-att-ft{digest}"
    info = config["info"]["training"]["fine_tune"]
    assert info["config"]["stages"] == 2 and info["feature_maps"]["bytes_per_image"] == 2 * 2 * 112 * 8 * 8
    assert not (models["frozen"] / "backbone.pt").exists()
    loaded = load_model(tuned, device="cpu")
    assert loaded.embedder.model_id == config["model_id"]
    assert loaded.tagging is not None and loaded.tagging.backbone.tuned == digest
    # save/load round trip: the same id, the same weights, the same vectors
    copy = loaded.tagging.save(tmp_path / "copy")
    assert TaggingModel.load(copy).backbone.model_id == config["model_id"]
    store = ImageStore(models["images"])
    photos = [store.load(r["file"]).image for r in models["rows"][:4]]
    again = load_model(copy, device="cpu").embedder.embed_images(photos)
    first = loaded.embedder.embed_images(photos)
    assert np.allclose(again, first, atol=1e-6)
    # the fine-tuned network is not the published one, and training cached its vectors under its own id
    published = load_model(models["frozen"], device="cpu").embedder.embed_images(photos)
    assert float(np.min(np.sum(first * published, axis=1))) < 0.999
    from vistag.images import sha256_of
    from vistag.models.cache import EmbeddingCache

    cache = EmbeddingCache(models["cache"], config["model_id"], loaded.embedder.dim)
    cached, found = cache.get_many([sha256_of(store.read(r["file"])) for r in models["rows"][:4]])
    assert all(found)
    assert float(np.min(np.sum(cached * first, axis=1))) > 0.999  # float16 feature maps: within rounding
    # weights that are not those the id names are refused
    (copy / "backbone.pt").write_bytes((copy / "backbone.pt").read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ConfigError, match="are not those of"):
        load_model(copy, device="cpu")


def test_an_index_embedded_by_one_network_refuses_queries_from_another(models, node, tmp_path):
    from vistag.models.loading import load_model
    from vistag.search import Searcher
    from vistag.search.reference_tagger import reference_index_tagger

    catalog, images = models["catalog"], models["images"]
    argv = ["-q", "index", "--url", node.url, "--catalog", str(catalog), "--images", str(images), "--limit", "30"]
    assert main([*argv, "--model", str(models["tuned"]), "--dead-letter", str(tmp_path / "dead.jsonl")]) == 0
    client = node.client()
    try:
        tuned = load_model(models["tuned"], device="cpu").embedder
        frozen = load_model(models["frozen"], device="cpu").embedder
        photo = str(images / models["rows"][0]["file"])
        with pytest.raises(ConfigError, match="fine-tuned network"):
            Searcher(client, "products").image(photo)  # no embedder given: the index's own cannot be guessed
        with pytest.raises(ConfigError, match="query by efficientnet-lite0@1-128px-meanmidgrid:"):
            Searcher(client, "products", embedder=frozen).image(photo)
        hits = Searcher(client, "products", embedder=tuned).image(photo, k=3)
        assert hits[0].id == models["rows"][0]["id"]
        from vistag.catalog.schema import CatalogSchema

        with pytest.raises(ConfigError, match="reference index 'products' was embedded by"):
            reference_index_tagger(client, "products", CatalogSchema.bundled(), model_id=frozen.model_id)
        reference_index_tagger(client, "products", CatalogSchema.bundled(), model_id=tuned.model_id)
    finally:
        client.close()


def test_a_colour_backbone_fine_tunes_its_network_and_keeps_each_photos_colour_block(data_dir, tmp_path, monkeypatch):
    """``--backbone efficientnet-lite0-colour --fine-tune``: the network is fine-tuned under the colour block
    (read from the pixels), and the saved model embeds a photo as training embedded it."""
    from vistag.images import ImageStore, sha256_of
    from vistag.models.backbones import weights_digest
    from vistag.models.cache import EmbeddingCache
    from vistag.models.loading import load_model

    catalog, images, rows = write_slice(data_dir, tmp_path, 80, start=11, step=97)
    monkeypatch.setenv("VISTAG_HOME", str(tmp_path / "home"))
    tuned = tmp_path / "tuned"
    _train(
        catalog,
        images,
        tuned,
        tmp_path,
        "--backbone",
        "efficientnet-lite0-colour",
        "--fine-tune",
        "--fine-tune-epochs",
        "1",
    )
    config = json.loads((tuned / "vistag-model.json").read_text())
    digest = weights_digest(tuned / "backbone.pt")
    assert config["model_id"] == f"efficientnet-lite0-colour@1-128px-meanmidgrid-lab0.5-att-ft{digest}"
    cache = tmp_path / "home" / "cache" / "embeddings"
    assert (cache / "efficientnet-lite0@1-128px-meanmidgrid-mid10-views2-seed0").is_dir()  # the plain network's maps
    loaded = load_model(tuned, device="cpu")
    store = ImageStore(images)
    photos = [store.load(r["file"]).image for r in rows[:4]]
    first = loaded.embedder.embed_images(photos)
    assert first.shape == (4, 2048)
    trained, found = EmbeddingCache(cache, config["model_id"], 2048).get_many(
        [sha256_of(store.read(r["file"])) for r in rows[:4]]
    )
    assert all(found)
    assert float(np.min(np.sum(trained * first, axis=1))) > 0.999  # the vectors the heads were trained on
    # the colour block is the published backbone's, read from the pixels (a rebuild that dropped or
    # shuffled it would differ: the photos' colours differ)
    from vistag.models.finetune import extra_block
    from vistag.models.loading import create_embedder

    published = create_embedder("efficientnet-lite0-colour", device="cpu").embed_images(photos)
    assert np.allclose(extra_block(first, 1840), extra_block(published, 1840), atol=1e-4)


@pytest.mark.parametrize("fine_tune", [False, True], ids=["published", "fine-tuned"])
def test_head_vectors_embed_through_the_trained_hidden_layer(data_dir, tmp_path, monkeypatch, fine_tune):
    """``--head-vectors``: the model embeds with its network and the trained head's hidden layer, a photo from its
    pixels as training embedded it, under an id of its own; a tampered weights file is refused."""
    from vistag.images import ImageStore, sha256_of
    from vistag.models.backbones import weights_digest
    from vistag.models.cache import EmbeddingCache
    from vistag.models.loading import load_model

    catalog, images, rows = write_slice(data_dir, tmp_path, 80, start=13, step=89)
    monkeypatch.setenv("VISTAG_HOME", str(tmp_path / "home"))
    out = tmp_path / "hv"
    flags = ["--fine-tune", "--fine-tune-epochs", "1"] if fine_tune else []
    _train(catalog, images, out, tmp_path, "--hidden", "64", "--head-vectors", *flags)
    config = json.loads((out / "vistag-model.json").read_text())
    digest = weights_digest(out / "backbone.pt")
    stem = "efficientnet-lite0@1-128px-meanmidgrid" + ("-att" if fine_tune else "")
    assert config["model_id"] == f"{stem}-hv64-ft{digest}"
    assert config["info"]["training"]["head_vectors"]["width"] == 64
    loaded = load_model(out, device="cpu")
    assert loaded.embedder.dim == 64 and loaded.tagging is not None
    store = ImageStore(images)
    photos = [store.load(r["file"]).image for r in rows[:4]]
    fresh = loaded.embedder.embed_images(photos)
    cache = EmbeddingCache(tmp_path / "home" / "cache" / "embeddings", config["model_id"], 64)
    trained, found = cache.get_many([sha256_of(store.read(r["file"])) for r in rows[:4]])
    assert all(found)
    tolerance = 0.99 if fine_tune else 0.9999  # fine-tuned: from float16 feature maps
    assert float(np.min(np.sum(trained * fresh, axis=1))) > tolerance
    assert loaded.tagging.predict(fresh).attributes[TASK].shape == (4, len(loaded.tagging.attributes[0].classes))
    (out / "backbone.pt").write_bytes((out / "backbone.pt").read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ConfigError, match="are not those of"):
        load_model(out, device="cpu")
