"""One-shot proposals, the similarity index and Discover's clustering, without Django."""
import numpy as np
import pytest

from ml.clustering import cluster_pool
from ml.oneshot import NotEnoughExamples, ProposalModel, normalised, proposal_model_fit
from ml.similarity import VectorIndex, brute_force_neighbours, index_build

DIM = 64


def blobs(n_per, centres, spread, seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([c + spread * rng.standard_normal((n_per, len(c))) for c in centres])
    y = np.repeat(np.arange(len(centres)), n_per)
    return normalised(x), y


def test_prototypes_propose_the_class_of_the_nearest_examples_with_a_distribution():
    centres = np.eye(3, DIM) * 3
    x, y = blobs(40, centres, 0.3)
    pick = [0, 40, 80]  # one example a class
    model = proposal_model_fit(method="prototype", vectors=x[pick], example_classes=[10, 20, 30],
                               classes=[10, 20, 30])
    probs = model.predict_proba(x)
    assert probs.shape == (120, 3) and np.allclose(probs.sum(axis=1), 1.0)
    assert (probs.argmax(axis=1) == y).mean() == 1.0
    assert model.classes == [10, 20, 30]


def test_propagation_follows_a_chain_that_the_prototype_cuts_short():
    # two parallel lines one unit apart, points 0.1 apart along each; the examples sit at
    # opposite ends, so half of each line is nearer the other line's example
    e = np.eye(3, DIM)
    s = np.linspace(0, 10, 101)
    lines = [10 * e[2] + np.outer(s, e[0]) + side * e[1] for side in (0, 1)]
    x = normalised(np.concatenate(lines))
    y = np.repeat([0, 1], 101)
    examples = [0, 201]
    kwargs = dict(vectors=x[examples], example_classes=[0, 1], classes=[0, 1])
    prototype = proposal_model_fit(method="prototype", **kwargs).predict_proba(x).argmax(axis=1)
    spread = proposal_model_fit(method="propagation", **kwargs).predict_proba(x).argmax(axis=1)
    assert (prototype == y).mean() < 0.8
    assert (spread == y).mean() >= 0.95


def test_classes_without_examples_are_left_out_and_one_class_is_refused():
    x, _ = blobs(5, np.eye(2, DIM) * 3, 0.1)
    model = proposal_model_fit(method="prototype", vectors=x[[0, 5]], example_classes=[7, 9], classes=[5, 7, 9])
    assert model.classes == [7, 9]
    with pytest.raises(NotEnoughExamples):
        proposal_model_fit(method="prototype", vectors=x[[0, 1]], example_classes=[7, 7], classes=[7, 9])


def test_a_proposal_model_round_trips_as_numbers():
    x, _ = blobs(5, np.eye(2, DIM) * 3, 0.1)
    model = proposal_model_fit(method="propagation", vectors=x[[0, 5]], example_classes=[1, 2], classes=[1, 2])
    again = ProposalModel.from_bytes(model.to_bytes())
    assert again.method == "propagation" and again.classes == [1, 2]
    assert np.array_equal(again.examples, model.examples) and np.array_equal(again.labels, model.labels)


def test_the_hnsw_index_finds_the_exact_neighbours_of_clustered_vectors():
    # like image embeddings: groups of similar images, not uniform noise (on which every
    # approximate index loses recall; bench/bench_similarity.py measures both)
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((30, DIM))
    vectors = normalised(centres[rng.integers(0, 30, 3000)] + 0.5 * rng.standard_normal((3000, DIM)))
    ids = np.arange(1000, 4000)
    index = index_build(ids[:2000], vectors[:2000])
    index.add(ids[2000:], vectors[2000:])  # incrementally, past the first capacity
    assert len(index) == 3000
    queries = vectors[rng.choice(3000, 50, replace=False)] + 0.01 * rng.standard_normal((50, DIM))
    exact = ids[brute_force_neighbours(vectors, queries, 10)]
    found = [[i for i, _ in index.query(q, 10)] for q in queries]
    recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact)])
    assert recall >= 0.95
    top, score = index.query(vectors[5], 1)[0]
    assert top == ids[5] and score == pytest.approx(1.0, abs=1e-4)


def test_query_leaves_out_excluded_and_disallowed_ids_and_survives_a_save():
    x, _ = blobs(20, np.eye(2, DIM) * 3, 0.1)
    index = VectorIndex.from_bytes(index_build(np.arange(40), x).to_bytes(), DIM)
    hits = index.query(x[0], 5, exclude={0, 1}, allowed=lambda i: i % 2 == 0)
    assert len(hits) == 5 and all(i % 2 == 0 and i not in (0, 1) for i, _ in hits)
    assert all(i < 20 for i, _ in hits)  # the same blob first
    assert [s for _, s in hits] == sorted([s for _, s in hits], reverse=True)


def test_kmeans_clusters_come_largest_first_with_members_nearest_the_centre_first():
    x, y = blobs(30, np.eye(3, DIM) * 3, 0.2)
    x = np.concatenate([x[:30], x[30:90], x[30:60]])  # sizes 30, 60 (two copies of blob 1), 30
    clusters, noise = cluster_pool(x, method="kmeans", k=3, seed=0)
    assert noise == 0 and [len(c.rows) for c in clusters][0] == 60
    for cluster in clusters:
        assert np.all(np.diff(cluster.distances) >= 0)
        assert len({tuple(np.round(x[r], 3)) for r in cluster.rows[:1]}) == 1


def test_hdbscan_finds_the_dense_groups_and_calls_scattered_points_noise():
    x, y = blobs(40, np.eye(3, DIM) * 4, 0.1)
    scattered = normalised(np.random.default_rng(3).standard_normal((10, DIM)))
    clusters, noise = cluster_pool(np.concatenate([x, scattered]), method="hdbscan", min_cluster_size=10)
    assert len(clusters) == 3
    assert noise >= 5
    for cluster in clusters:
        assert len(set(y[cluster.rows[cluster.rows < 120]].tolist())) == 1
