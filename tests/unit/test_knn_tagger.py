import numpy as np
import pytest

from vistag.analyzers import KnnTagger, ReferenceSet


def _unit(rows):
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _brute_force(query, ref_vectors, ref_tags, k, eps=1e-4):
    sims = ref_vectors @ query
    order = np.argsort(-sims)[:k]
    weights = {j: 1.0 / max(1.0 - sims[j], eps) for j in order}
    total = sum(weights.values())
    scores = {}
    for j, w in weights.items():
        for t in ref_tags[j]:
            scores[t] = scores.get(t, 0.0) + w / total
    return scores


def test_matches_the_idw_formula():
    rng = np.random.default_rng(0)
    vectors = _unit(rng.normal(size=(200, 16)))
    vocab = [f"t{i}" for i in range(12)]
    tags = [list(rng.choice(vocab, size=rng.integers(1, 4), replace=False)) for _ in range(200)]
    ref = ReferenceSet([str(i) for i in range(200)], vectors, tags)
    queries = _unit(rng.normal(size=(5, 16)))
    tagger = KnnTagger(ref, k=7, top_d=50, chunk_size=33)  # chunking must not change results
    result = tagger.tag(queries)
    for q, got in zip(queries, result):
        expected = _brute_force(q, vectors, tags, 7)
        assert dict(got) == pytest.approx(expected, rel=1e-5)
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)


def test_item_is_not_its_own_neighbour_and_top_d():
    vectors = _unit([[1, 0], [1, 0.01], [0, 1]])
    ref = ReferenceSet(["a", "b", "c"], vectors, [["red"], ["blue"], ["green"]])
    tagger = KnnTagger(ref, k=1, top_d=1)
    assert tagger.tag(vectors[:1], exclude_ids=["a"])[0][0][0] == "blue"
    assert tagger.tag(vectors[:1])[0][0][0] == "red"  # a duplicate dominates


def test_scores_sum_to_one_per_single_tag_items():
    vectors = _unit(np.eye(4) + 0.1)
    ref = ReferenceSet(list("abcd"), vectors, [["x"], ["y"], ["x"], ["z"]])
    scores = KnnTagger(ref, k=4, top_d=3).tag(_unit([[1, 0.2, 0.1, 0]]))[0]
    assert sum(s for _, s in scores) == pytest.approx(1.0)


def test_empty_reference():
    ref = ReferenceSet([], np.zeros((0, 3), np.float32), [])
    assert KnnTagger(ref).tag(_unit([[1, 0, 0]])) == [[]]


def test_idw_scores_of_given_neighbours_match_the_tagger():
    from vistag.analyzers.knn_tagger import idw_tag_scores

    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((200, 12)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    tags = [[f"a{rng.integers(0, 6)}", f"b{rng.integers(0, 3)}"] for _ in range(200)]
    ref = ReferenceSet([str(i) for i in range(200)], vectors, tags)
    tagger = KnnTagger(ref, k=7)
    rows, sims = tagger.neighbours(vectors[:5], exclude_ids=[str(i) for i in range(5)])
    dense = tagger.score(vectors[:5], exclude_ids=[str(i) for i in range(5)])
    for q in range(5):
        scores = idw_tag_scores([tags[r] for r in rows[q]], sims[q].tolist())
        for tag, value in scores.items():
            assert abs(dense[q, ref.vocabulary.index(tag)] - value) < 1e-6
