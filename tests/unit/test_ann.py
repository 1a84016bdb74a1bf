"""The approximate (HNSW) neighbour index of the kNN tagger against the exact scan."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from vistag.analyzers.knn_tagger import KnnTagger, ReferenceSet, top_k_rows, with_neighbour_index
from vistag.errors import ConfigError

pytest.importorskip("faiss")
from vistag.analyzers.ann import APPROXIMATE_FROM, HnswNeighbours, choose_method, principal_directions


def _clustered(n: int, dim: int = 48, clusters: int = 20, seed: int = 0) -> tuple[np.ndarray, list[list[str]]]:
    """Unit vectors around ``clusters`` centres; each vector's tags name its cluster (and its parity).

    Most of the variance lies in 12 of the ``dim`` dimensions (as in real embeddings, whose
    variance sits in their first principal components), plus a little noise in all of them.
    """
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((dim, 12)))[0].T.astype(np.float32)  # 12 orthonormal rows
    centres = rng.standard_normal((clusters, 12)).astype(np.float32)
    label = rng.integers(0, clusters, n)
    vectors = (centres[label] + 0.35 * rng.standard_normal((n, 12)).astype(np.float32)) @ basis
    vectors += 0.03 * rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, [[f"c{c}", "even" if c % 2 == 0 else "odd"] for c in label]


#: The graph over the full vectors, and over their projection onto 16 of the 48 dimensions with
#: exact re-ranking (the default for embeddings longer than HNSW_PROJECT_TO).
GRAPHS = [pytest.param(0, id="full"), pytest.param(16, id="projected")]


@pytest.mark.parametrize("project_to", GRAPHS)
def test_hnsw_finds_what_the_exact_scan_finds_with_exact_similarities(project_to):
    vectors, _ = _clustered(4000)
    index = HnswNeighbours.build(vectors, project_to=project_to)
    assert index.refine == (4 if project_to else 0)
    queries = vectors[:300]
    exclude = np.arange(300)
    rows, sims = index.search(queries, 10, exclude)
    exact_rows, exact_sims = top_k_rows(queries, vectors, 10, exclude)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, exact_rows)])
    assert recall >= 0.95, recall
    # the similarities are the true inner products of the rows returned, best first
    assert np.allclose(sims, np.einsum("nd,nkd->nk", queries, vectors[rows]), atol=1e-5)
    assert np.all(np.diff(sims, axis=1) <= 1e-6)
    assert not np.any(rows == exclude[:, None])  # never the row itself
    assert np.mean(rows[:, 0] == exact_rows[:, 0]) >= 0.97


@pytest.mark.parametrize("project_to", GRAPHS)
def test_a_query_that_is_its_own_nearest_neighbour_is_excluded_and_the_list_stays_k_long(project_to):
    vectors, _ = _clustered(500)
    index = HnswNeighbours.build(vectors, project_to=project_to)
    rows, sims = index.search(vectors[:50], 5, np.arange(50))
    assert rows.shape == sims.shape == (50, 5) and np.isfinite(sims).all()
    assert not np.any(rows == np.arange(50)[:, None])
    rows, _ = index.search(vectors[:50], 5)  # no exclusion: itself first
    assert np.array_equal(rows[:, 0], np.arange(50))


@pytest.mark.parametrize("project_to", [pytest.param(0, id="full"), pytest.param(2, id="projected")])
def test_fewer_references_than_k_pad_with_no_neighbour_and_weigh_nothing(project_to):
    vectors = np.eye(3, dtype=np.float32)
    index = HnswNeighbours.build(vectors, project_to=project_to)
    rows, sims = index.search(vectors[:1], 5, np.array([0]))
    assert rows.shape == (1, 5) and list(rows[0, 2:]) == [-1, -1, -1] and np.isneginf(sims[0, 2:]).all()
    ref = ReferenceSet(["a", "b", "c"], vectors, [["x"], ["y"], ["y"]])
    tagger = KnnTagger(ref, k=5, index=index)
    tags = dict(tagger.tag(vectors[:1], exclude_ids=["a"])[0])
    assert set(tags) == {"y"} and tags["y"] == pytest.approx(1.0)  # 'x' is only the excluded row's


@pytest.mark.parametrize("project_to", GRAPHS)
def test_the_graph_survives_pickling_as_for_rays_object_store(project_to):
    vectors, _ = _clustered(1000)
    index = HnswNeighbours.build(vectors, project_to=project_to)
    again = pickle.loads(pickle.dumps(index))
    assert len(again) == 1000 and again.ef_search == index.ef_search and again.refine == index.refine
    assert again.memory_bytes == index.memory_bytes > 1000 * 48 * 4
    first, second = index.search(vectors[:20], 5), again.search(vectors[:20], 5)
    assert np.array_equal(first[0], second[0]) and np.allclose(first[1], second[1])


@pytest.mark.parametrize("project_to", GRAPHS)
def test_tags_from_the_graph_agree_with_the_exact_tagger(project_to):
    vectors, tags = _clustered(4000)
    ref = ReferenceSet([str(i) for i in range(4000)], vectors, tags)
    exact = KnnTagger(ref, k=10, top_d=3)
    approx = with_neighbour_index(KnnTagger(ref, k=10, top_d=3), "hnsw", project_to=project_to)
    assert approx.method == "hnsw" and exact.method == "exact"
    ids = [str(i) for i in range(500)]
    a, b = exact.tag(vectors[:500], exclude_ids=ids), approx.tag(vectors[:500], exclude_ids=ids)
    assert np.mean([x[0][0] == y[0][0] for x, y in zip(a, b)]) >= 0.99
    diffs = [abs(dict(x).get(t, 0.0) - s) for x, y in zip(a, b) for t, s in y]
    assert np.mean(diffs) <= 0.01


def test_auto_picks_the_graph_only_for_large_reference_sets_on_cpu():
    assert choose_method("auto", APPROXIMATE_FROM - 1) == "exact"
    assert choose_method("auto", APPROXIMATE_FROM) == "hnsw"
    assert choose_method("auto", APPROXIMATE_FROM, on_device=True) == "exact"
    assert choose_method("exact", 10**9) == "exact" and choose_method("hnsw", 1) == "hnsw"
    with pytest.raises(ConfigError, match="unknown kNN method 'annoy'"):
        choose_method("annoy", 10)


def test_the_ray_runner_refuses_stage_sizes_that_would_wait_forever():
    pytest.importorskip("ray")
    from vistag.ray.runner import RayOptions, _check_resources

    _check_resources(RayOptions(), 2.0)  # 1 + 0.5 for the actors, 0.5 for a task beside them
    with pytest.raises(ConfigError, match="the Ray cluster has 2 CPUs: .* need 2.5"):
        _check_resources(RayOptions(read_cpus=1.0), 2.0)
    with pytest.raises(ConfigError, match="lower embed_cpus"):
        _check_resources(RayOptions(), 1.0)


def test_the_projection_keeps_inner_products_uncentred():
    # Vectors far from the origin along one axis: a centring PCA would drop that axis's share of
    # every inner product; the uncentred directions keep it as the first direction.
    rng = np.random.default_rng(3)
    vectors = np.concatenate([np.full((500, 1), 3.0), 0.1 * rng.standard_normal((500, 7))], axis=1).astype(np.float32)
    first = principal_directions(vectors, 1)[0]
    assert abs(first[0]) > 0.99


def test_a_search_uses_its_own_thread_count_and_leaves_the_callers_setting_alone():
    import faiss

    vectors, _ = _clustered(2000)
    index = HnswNeighbours.build(vectors, project_to=16)
    assert index.search_threads == 1
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        index.search(vectors[:300], 5)
        assert faiss.omp_get_max_threads() == 2  # restored after the call
        index.search_threads = 2
        again = pickle.loads(pickle.dumps(index))
        assert again.search_threads == 2  # a Ray tagger actor sets its reserved CPUs, and they travel
    finally:
        faiss.omp_set_num_threads(before)
