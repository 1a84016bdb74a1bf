"""Training the multi-task head on synthetic embeddings, saving and loading the model directory."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vistag.errors import NotFoundError
from vistag.models.dataset import EmbeddedCatalog, assign_splits
from vistag.models.registry import get_config
from vistag.models.tagging_model import TaggingModel
from vistag.models.trainer import TrainSettings, train_model
from vistag.models.training import TrainConfig

pytestmark = pytest.mark.torch

PATHS = [
    ("Apparel", "Topwear", "Tshirts"),
    ("Apparel", "Topwear", "Shirts"),
    ("Apparel", "Bottomwear", "Jeans"),
    ("Footwear", "Shoes", "Sneakers"),
]
COLOURS = ["Red", "Blue"]


def synthetic(n=600, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(PATHS) * 2, dim)).astype(np.float32)
    fields, xs = [], []
    for i in range(n):
        p, c = i % len(PATHS), (i // len(PATHS)) % 2
        x = centres[2 * p + c] + rng.normal(0, 0.3, dim)
        xs.append(x / np.linalg.norm(x))
        colour = "" if i % 7 == 3 else COLOURS[c]  # every 7th row has no colour label: masked, not negative
        fields.append(
            {
                "id": str(i),
                "masterCategory": PATHS[p][0],
                "subCategory": PATHS[p][1],
                "articleType": PATHS[p][2],
                "baseColour": colour,
                "split": "test" if i % 10 == 0 else "train",
            }
        )
    return EmbeddedCatalog(
        [f["id"] for f in fields], fields, np.stack(xs).astype(np.float32), [f"sha{i}" for i in range(n)]
    )


def test_train_save_load_predict(tmp_path):
    data = synthetic()
    splits = assign_splits(data, "split", val_fraction=0.15)
    assert (splits == "test").sum() == 60 and (splits == "val").sum() > 0
    settings = TrainSettings(
        levels=["masterCategory", "subCategory", "articleType"],
        attributes=["baseColour"],
        tag_columns=["articleType", "baseColour"],
        min_count=5,
        train=TrainConfig(hidden=64, epochs=30, batch_size=64, lr=5e-3),
    )
    backbone = get_config("tiny-random")
    model = train_model(data, splits, backbone, settings, name="synthetic")
    test = data.subset(splits == "test")
    pred = model.predict(test.x)
    names = [tuple(model.levels[i].classes[c] for i, c in enumerate(p)) for p in pred.path_ranked[:, 0]]
    truth = [(f["masterCategory"], f["subCategory"], f["articleType"]) for f in test.fields]
    assert np.mean([a == b for a, b in zip(names, truth)]) > 0.95
    assert all(n in PATHS for n in names)  # decoding only ever returns observed paths
    colour = model.attributes[0]
    known = [i for i, f in enumerate(test.fields) if f["baseColour"]]
    assert (
        np.mean(pred.attributes["baseColour"][known].argmax(1) == colour.encode(test.column("baseColour"))[known]) > 0.9
    )
    assert model.info["training"]["rare_classes"]["min_count"] == 5
    assert model.tag_thresholds.shape == (len(model.tags),)

    model.save(tmp_path / "m")
    loaded = TaggingModel.load(tmp_path / "m")
    again = loaded.predict(test.x)
    assert np.allclose(again.tag_probs, pred.tag_probs, atol=1e-6)
    assert loaded.tagger_id.startswith("synthetic@") and loaded.backbone == backbone
    record = loaded.to_records(test.x[:1])[0]
    assert record["category"]["path"] == list(truth[0]) and record["accepted"] is True
    assert {"tshirts", "red", "blue", "jeans"} & {t["tag"] for t in record["tags"]}

    # A row with a claimed type far from its centroid is flagged.
    wrong = ["Sneakers" if f["articleType"] != "Sneakers" else "Jeans" for f in test.fields]
    assert loaded.claimed_type_outliers(test.x, wrong).mean() > 0.9
    assert loaded.claimed_type_outliers(test.x, test.column("articleType")).mean() < 0.1


def test_load_rejects_a_non_model_directory(tmp_path):
    with pytest.raises(NotFoundError, match="not a vistag model directory"):
        TaggingModel.load(tmp_path)


def test_training_is_reproducible_and_leaves_the_callers_random_state_alone():
    # Heads and the text -> image projection seed torch for themselves; a library call must
    # neither reset the caller's generator (was torch.manual_seed) nor depend on it.
    from vistag.models.heads import HeadConfig
    from vistag.models.text_image import TextImageProjection
    from vistag.models.training import Split, train_head

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16)).astype(np.float32)
    text = rng.normal(size=(200, 384)).astype(np.float32)  # sentence vectors
    split = Split(x=x, targets={"t": (x[:, 0] > 0).astype(np.int64)})
    config = TrainConfig(hidden=16, epochs=2, batch_size=32)

    def state_after(run):
        torch.manual_seed(123)
        out = run()
        return out, torch.rand(3)

    runs = [
        lambda: train_head(HeadConfig(in_dim=16, hidden=16, tasks={"t": 2}), split, None, config)[0].state_dict(),
        lambda: TextImageProjection.fit(
            text, x, image_model_id="toy@1", epochs=1, batch_size=32, hidden=16
        ).module.state_dict(),
    ]
    torch.manual_seed(123)
    untouched = torch.rand(3)
    for run in runs:
        (first, after_first), (second, after_second) = state_after(run), state_after(run)
        assert torch.equal(after_first, untouched) and torch.equal(after_second, untouched)
        assert all(torch.equal(first[k], second[k]) for k in first)
        torch.manual_seed(7)  # a different caller state gives the same model
        third = run()
        assert all(torch.equal(first[k], third[k]) for k in first)
