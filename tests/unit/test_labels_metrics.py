"""Pure logic of label vocabularies, hierarchy decoding, metrics, thresholds and the type validator."""

import numpy as np
import pytest

from vistag.evaluation.metrics import (
    classification_report,
    coverage_vs_error,
    ranked_tag_prf,
    set_metrics,
    topk_accuracy,
)
from vistag.models.labels import OTHER, Hierarchy, Vocabulary, tag_targets
from vistag.models.thresholds import hamming_score, tune_global, tune_per_tag
from vistag.models.validator import TypeValidator


def test_vocabulary_folds_rare_classes_and_masks_missing():
    vocab = Vocabulary.fit("colour", ["Red"] * 5 + ["Blue"] * 3 + ["Teal"] + ["", None, "NA"], min_count=3)
    assert vocab.classes == ["Blue", "Red", OTHER] and vocab.counts == [3, 5, 1] and vocab.folded == {"Teal": 1}
    assert vocab.encode(["Red", "Teal", "", None, "Mauve"]).tolist() == [1, 2, -1, -1, 2]
    tags = Vocabulary.fit("tags", ["a"] * 4 + ["b"], min_count=2, fold_rare=False)
    assert tags.classes == ["a"] and tags.encode(["b"]).tolist() == [-1]
    assert Vocabulary.from_dict(vocab.to_dict()) == vocab


def test_hierarchy_decoding_is_consistent():
    # Two paths: (A, a1) and (B, b1). The leaf softmax prefers b1, the root strongly prefers A.
    levels = [Vocabulary("root", ["A", "B"], [1, 1]), Vocabulary("leaf", ["a1", "b1"], [1, 1])]
    hierarchy = Hierarchy.fit(levels, np.array([[0, 0], [1, 1], [0, 0]]))
    assert hierarchy.paths.tolist() == [[0, 0], [1, 1]]
    root = np.log(np.array([[0.95, 0.05]]))
    leaf = np.log(np.array([[0.4, 0.6]]))
    best, per_level = hierarchy.decode([root, leaf], top_k=2)
    assert best[0, 0].tolist() == [0, 0]  # A > a1, although b1 alone scored higher
    assert per_level[1][0].tolist() == [0, 1]
    assert Hierarchy.from_dict(hierarchy.to_dict()).paths.tolist() == hierarchy.paths.tolist()


def test_tag_targets_mask_unknown_columns():
    vocab = Vocabulary("tags", ["red", "shirts", "blue"], [1, 1, 1])
    rows = [{"colour": "Red", "type": "Shirts"}, {"colour": "", "type": "Shirts"}, {"colour": "Blue", "type": None}]
    y, mask = tag_targets(rows, ["colour", "type"], vocab)
    assert y.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    # Row 2 has no colour: red/blue are unknown there, not negatives.
    assert mask.tolist() == [[1, 1, 1], [0, 1, 0], [1, 0, 1]]


def test_classification_metrics():
    y = np.array([0, 0, 1, 2, -1])
    ranked = np.array([[0, 1], [1, 0], [1, 2], [0, 1], [0, 1]])
    assert topk_accuracy(ranked, y, 1) == pytest.approx(0.5)
    assert topk_accuracy(ranked, y, 2) == pytest.approx(0.75)
    report = classification_report(ranked, y, ["a", "b", "c"])
    assert report["n"] == 4 and report["top1"] == 0.5
    assert report["macc"] == pytest.approx((0.5 + 1 + 0) / 3, abs=1e-4)
    assert report["confusion"].tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert report["per_class"][1] == {"class": "b", "support": 1, "precision": 0.5, "recall": 1.0, "f1": 0.6667}


def test_tag_metrics():
    prf = ranked_tag_prf([["a", "x", "b"]], [{"a", "b"}], ks=(1, 3))
    assert prf["1"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667}
    assert prf["3"]["precision"] == pytest.approx(0.6667, abs=1e-4) and prf["3"]["recall"] == 1.0
    sets = set_metrics([{"a", "b"}, {"c"}], [{"a", "b"}, {"d"}])
    assert sets["hamming_score"] == 0.5 and sets["exact_match"] == 0.5
    table = coverage_vs_error(np.array([0.9, 0.8, 0.3, 0.2]), np.array([True, False, True, False]), [0.0, 0.5, 0.85])
    assert [r["coverage"] for r in table] == [1.0, 0.5, 0.25] and [r["error"] for r in table] == [0.5, 0.5, 0.0]


def test_thresholds_are_tuned_per_tag():
    rng = np.random.default_rng(0)
    targets = (rng.random((400, 2)) < 0.5).astype(np.float32)
    # Tag 0 is well separated around 0.8, tag 1 around 0.2.
    probs = np.where(
        targets > 0,
        np.c_[rng.uniform(0.8, 1, 400), rng.uniform(0.2, 1, 400)],
        np.c_[rng.uniform(0, 0.8, 400), rng.uniform(0, 0.2, 400)],
    )
    mask = np.ones_like(targets)
    t = tune_per_tag(probs, targets, mask)
    assert 0.75 <= t[0] <= 0.85 and 0.15 <= t[1] <= 0.25
    assert hamming_score(probs >= t, targets, mask) == pytest.approx(1.0)
    assert hamming_score(probs >= tune_global(probs, targets, mask), targets, mask) < 1.0


def test_type_validator_flags_far_images():
    rng = np.random.default_rng(1)
    centres = np.eye(4, 16, dtype=np.float32)
    y = rng.integers(0, 4, 400)
    x = centres[y] + rng.normal(0, 0.05, (400, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    validator = TypeValidator.fit(x, y, 4, quantile=0.99)
    assert validator.is_outlier(x, y).mean() <= 0.02
    assert validator.is_outlier(x, (y + 1) % 4).all()
    assert not validator.is_outlier(x[:3], np.array([-1, -1, -1])).any()
