"""Client-side rank fusion."""

import pytest

from vistag.search.fusion import RRF_K, min_max, rrf, weighted_sum


def test_rrf_rewards_agreement():
    fused = rrf({"text": [("a", 9.0), ("b", 5.0)], "image": [("b", 0.9), ("c", 0.8)]})
    assert [d for d, _ in fused] == ["b", "a", "c"]
    assert fused[0][1] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))


def test_weighted_sum_normalises_each_list():
    assert min_max([("a", 10.0), ("b", 5.0), ("c", 0.0)]) == {"a": 1.0, "b": 0.5, "c": 0.0}
    assert min_max([("a", 3.0)]) == {"a": 1.0}
    fused = weighted_sum(
        {"text": [("a", 100.0), ("b", 50.0), ("z", 0.0)], "image": [("b", 0.9), ("a", 0.1)]},
        weights={"text": 1.0, "image": 2.0},
    )
    assert [d for d, _ in fused][:2] == ["b", "a"]
    assert dict(fused)["b"] == pytest.approx(0.5 + 2.0)


def test_a_known_item_bm25_puts_far_above_the_rest_stays_first():
    from vistag.search.queries import Hit, pin_known_item

    fused = [Hit(d, s, None, {}) for d, s in (("a", 0.05), ("b", 0.04), ("k", 0.03))]
    far = [Hit("k", 28.0, None, {}), Hit("b", 9.9, None, {})]
    assert [h.id for h in pin_known_item(fused, far, 2.0)] == ["k", "a", "b"]
    near = [Hit("k", 12.0, "Puma Men Black Shoes", {}), Hit("b", 9.9, None, {})]
    assert [h.id for h in pin_known_item(fused, near, 2.0, "black shoes men")] == ["a", "b", "k"]  # fusion decides
    assert [h.id for h in pin_known_item(fused, near, 2.0, "Puma Men Black Shoes")] == ["k", "a", "b"]  # named in full
    alone = [Hit("z", 3.0, None, {})]  # the only BM25 hit, not among the fused ones
    assert [h.id for h in pin_known_item(fused, alone, 2.0)] == ["z", "a", "b", "k"]
    assert pin_known_item(fused, [], 2.0) == fused
