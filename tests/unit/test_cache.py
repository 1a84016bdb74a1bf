import numpy as np

from vistag.models.cache import EmbeddingCache


def test_put_get_and_reopen(tmp_path):
    cache = EmbeddingCache(tmp_path, "m@1-64px", 4)
    vecs = np.arange(8, dtype=np.float32).reshape(2, 4)
    cache.put_many(["a", "b"], vecs)
    cache.put_many(["a"], vecs[:1] + 100)  # existing keys are not overwritten
    again = EmbeddingCache(tmp_path, "m@1-64px", 4)
    got, found = again.get_many(["b", "x", "a"])
    assert found == [True, False, True]
    assert np.array_equal(got[0], vecs[1]) and np.array_equal(got[2], vecs[0]) and not got[1].any()


def test_orphan_vector_after_crash_is_ignored(tmp_path):
    cache = EmbeddingCache(tmp_path, "m", 2)
    cache.put_many(["a"], np.ones((1, 2), np.float32))
    with open(cache.dir / "vectors.f32", "ab") as fh:  # a crash between vector and key
        fh.write(np.full(2, 7, np.float32).tobytes())
    reopened = EmbeddingCache(tmp_path, "m", 2)
    reopened.put_many(["b"], np.full((1, 2), 3, np.float32))
    got, found = EmbeddingCache(tmp_path, "m", 2).get_many(["a", "b"])
    assert found == [True, True] and got[1].tolist() == [3, 3]
