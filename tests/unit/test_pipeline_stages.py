"""The pieces of the indexing pipeline: on-disk vectors, the streamed reference set,
pread cache reads, the embedding stream and the decode workers."""

import functools
import io
import operator

import numpy as np
import pytest
from PIL import Image

from vistag.analyzers.knn_tagger import KnnTagger, ReferenceBuilder, ReferenceSet
from vistag.analyzers.vector_file import VectorFile, VectorFileWriter
from vistag.models.cache import EmbeddingCache


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_vector_file_chunks_slices_and_rows(tmp_path):
    rng = np.random.default_rng(0)
    data = _unit(rng, 1000, 24)
    writer = VectorFileWriter(tmp_path / "v.f32", 24)
    writer.append(data[:300])
    writer.append(data[300:])
    with writer.close() as vf:
        assert len(vf) == 1000 and vf.shape == (1000, 24)
        seen = np.concatenate([block.copy() for _, block in vf.chunks(128)])
        assert np.array_equal(seen, data)
        assert np.array_equal(vf[5:17], data[5:17])  # pages released after a read stay readable
        assert np.array_equal(vf[np.array([999, 3, 500])], data[[999, 3, 500]])
        assert np.array_equal(vf[5:17], data[5:17])


def test_vector_file_refuses_a_torn_file(tmp_path):
    (tmp_path / "bad.f32").write_bytes(b"\0" * 10)
    with pytest.raises(ValueError, match="whole number"):
        VectorFile(tmp_path / "bad.f32", 4)


def test_reference_builder_matches_an_in_memory_reference(tmp_path):
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 900, 16)
    tags = [[f"c{rng.integers(0, 12)}", f"colour{rng.integers(0, 4)}"] for _ in range(900)]
    memory = ReferenceSet([str(i) for i in range(900)], vectors, tags)
    builder = ReferenceBuilder(16, tmp_path / "ref.f32")
    for start in range(0, 900, 128):
        builder.add(vectors[start : start + 128], tags[start : start + 128])
    disk = builder.build()
    try:
        assert disk.vocabulary == memory.vocabulary and disk.tags == memory.tags and disk.ids is None
        queries = vectors[:40]
        by_id = KnnTagger(memory, chunk_size=100).score(queries, exclude_ids=[str(i) for i in range(40)])
        by_row = KnnTagger(disk, chunk_size=100).score(queries, exclude_rows=list(range(40)))
        assert np.allclose(by_id, by_row)
    finally:
        disk.vectors.close()
    assert not (tmp_path / "ref.f32").exists()


def test_reference_builder_keeping_ids_needs_them(tmp_path):
    builder = ReferenceBuilder(4, tmp_path / "r.f32", keep_ids=True)
    with pytest.raises(ValueError, match="ids"):
        builder.add(np.zeros((1, 4), np.float32), [["a"]])
    builder.add(np.ones((1, 4), np.float32) / 2, [["a"]], ["x"])
    ref = builder.build()
    assert ref.row_of("x") == 0
    ref.vectors.close()


def test_cache_reads_runs_gaps_and_duplicates(tmp_path):
    rng = np.random.default_rng(2)
    vectors = _unit(rng, 50, 8)
    cache = EmbeddingCache(tmp_path, "m@1", 8)
    cache.put_many([f"k{i}" for i in range(50)], vectors)
    keys = ["k7", "k8", "k9", "missing", "k30", "k7", "k0", "k49"]
    got, found = EmbeddingCache(tmp_path, "m@1", 8).get_many(keys)
    assert found == [True, True, True, False, True, True, True, True]
    assert np.array_equal(got[[0, 1, 2, 4, 5, 6, 7]], vectors[[7, 8, 9, 30, 7, 0, 49]])
    assert not got[3].any()


def _jpeg(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (60, 80), colour).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.torch
@pytest.mark.parametrize("processes", [0, 1])
def test_embed_stream_keeps_order_reports_bad_images_and_uses_the_cache(tmp_path, processes):
    pytest.importorskip("torch")
    from vistag.images import ImageStore
    from vistag.models import create_embedder
    from vistag.models.embedding import BatchEmbedder

    folder = tmp_path / "img"
    folder.mkdir()
    for i in range(12):
        (folder / f"{i}.jpg").write_bytes(_jpeg((20 * i, 100, 200 - 10 * i)))
    (folder / "broken.jpg").write_bytes(_jpeg((1, 2, 3))[:200])
    (folder / "empty.jpg").write_bytes(b"")
    refs = [f"{i}.jpg" for i in range(12)]
    refs[3], refs[7], refs[9] = "broken.jpg", "empty.jpg", "absent.jpg"
    refs.append(None)
    embedder = create_embedder("tiny-random", device="cpu", batch_size=4)
    cache = EmbeddingCache(tmp_path / "cache", embedder.model_id, embedder.dim)
    with ImageStore(folder) as store, BatchEmbedder(embedder, store, cache, processes=processes, prefetch=5) as batch:
        first = list(batch.embed_stream((i, ref, None) for i, ref in enumerate(refs)))
        assert [tag for tag, _ in first] == list(range(len(refs)))
        bad = {i: res.error for i, res in first if res.vector is None}
        assert set(bad) == {3, 7, 9, 12}
        assert "corrupt or truncated" in bad[3] and "empty" in bad[7] and "does not exist" in bad[9]
        assert batch.computed == 9
        expected = embedder.embed_images([Image.open(folder / refs[0])])[0]
        assert np.allclose(first[0][1].vector, expected, atol=1e-5)
        # Second pass: everything good comes from the cache, by meta (no read) or by content hash.
        known = [res.meta if i % 2 == 0 else None for i, res in first]
        again = list(batch.embed_stream((i, ref, known[i]) for i, ref in enumerate(refs)))
        assert batch.computed == 9 and batch.cache_hits == 9
        for (_, a), (_, b) in zip(first, again):
            assert (a.vector is None) == (b.vector is None)
            if a.vector is not None:
                assert np.array_equal(a.vector, b.vector) and a.meta == b.meta


def test_partitions_are_disjoint_cover_the_catalog_and_are_stable():
    from vistag.catalog.rows import in_partition, parse_partition

    ids = [str(i) for i in range(3000)]
    slices = [[i for i in ids if in_partition(i, (p, 3))] for p in (1, 2, 3)]
    assert sorted(functools.reduce(operator.iadd, slices, [])) == sorted(ids)  # no gap, no overlap
    assert all(800 < len(s) < 1200 for s in slices)  # roughly even
    # stable across processes and machines: pinned assignments (Python's salted hash() would break them)
    pinned = {"15970": (2, 3), "1": (2, 4), "2": (3, 2), "abc": (3, 4), "39386": (2, 2)}
    for row_id, (of_3, of_7) in pinned.items():
        assert [p for p in (1, 2, 3) if in_partition(row_id, (p, 3))] == [of_3], row_id
        assert [p for p in range(1, 8) if in_partition(row_id, (p, 7))] == [of_7], row_id
    assert parse_partition("1/1") == (1, 1) and all(in_partition(i, (1, 1)) for i in ids[:50])
    for bad in ("0/3", "4/3", "x/3", "2"):
        with pytest.raises(ValueError):
            parse_partition(bad)
