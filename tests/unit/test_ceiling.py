"""The label ceiling: byte-identical photos under several ids, and how often their labels disagree."""

from __future__ import annotations

import numpy as np
import pytest

from vistag.evaluation.ceiling import conflicting_ids, label_disagreement, near_twin_groups, twin_groups


def _row(row_id: str, digest: str, colour: str = "", kind: str = "Tshirts") -> dict[str, str]:
    return {"id": row_id, "sha256": digest, "baseColour": colour, "articleType": kind}


def test_twins_are_rows_with_one_hash_and_several_ids():
    rows = [_row("1", "a"), _row("2", "a"), _row("2", "a"), _row("3", "b"), _row("4", ""), _row("5", "")]
    groups = twin_groups(rows)
    assert [[r["id"] for r in g] for g in groups] == [["1", "2"]]  # a repeated id is one row; no hash, no twin


def test_disagreement_counts_pairs_within_a_group_and_skips_missing_labels():
    groups = twin_groups(
        [
            _row("1", "a", "Blue"),
            _row("2", "a", "Blue"),
            _row("3", "a", "Navy Blue"),  # 3 pairs in this group: 2 differ
            _row("4", "b", "Red"),
            _row("5", "b", ""),  # unlabelled: no pair
            _row("6", "c", "Black", kind="Shirts"),
            _row("7", "c", "Black"),
        ]
    )
    table = label_disagreement(groups, ["baseColour", "articleType"])
    assert (table["baseColour"].pairs, table["baseColour"].disagreeing) == (4, 2)
    assert table["baseColour"].rate == pytest.approx(0.5)
    assert (table["articleType"].pairs, table["articleType"].disagreeing) == (5, 1)
    assert conflicting_ids(groups, "baseColour") == {"1", "2", "3"}
    assert conflicting_ids(groups, "articleType") == {"6", "7"}


def test_no_twins_no_pairs_and_a_zero_rate():
    table = label_disagreement(twin_groups([_row("1", "a"), _row("2", "b")]), ["baseColour"])
    assert table["baseColour"].pairs == 0 and table["baseColour"].rate == 0.0


def test_near_twins_join_chains_of_close_vectors_and_nothing_else():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((6, 32)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    nudge = 0.012 * rng.standard_normal((1, 32)).astype(np.float32)
    second = base[0] + nudge[0]
    third = second + nudge[0]  # close to the second, a little further from the first
    vectors = np.vstack([base, second, third]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert float(vectors[0] @ vectors[7]) < 0.995 < float(vectors[6] @ vectors[7])
    rows = [{"id": str(i)} for i in range(8)]
    groups = near_twin_groups(rows, vectors, threshold=0.995, k=3)
    assert [sorted(r["id"] for r in g) for g in groups] == [["0", "6", "7"]]  # one group, through the chain
    assert near_twin_groups(rows[:1], vectors[:1]) == []
