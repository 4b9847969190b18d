"""Clusters of a pool of embeddings for the Discover view. Django-free, scikit-learn.

- ``kmeans``: k clusters on the normalised embeddings (Euclidean on unit vectors orders as
  cosine does), every image in one.
- ``hdbscan``: density clusters after a PCA to 50 dimensions (HDBSCAN's neighbour searches
  degrade to brute force in 1280 dimensions); the number of clusters is found, not given,
  and images in no dense region are noise (label -1), left out of every cluster.

Members of each cluster come nearest to its centre first (the most typical images lead the
grid); clusters come largest first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

Method = Literal["kmeans", "hdbscan"]
METHODS: tuple[Method, ...] = ("kmeans", "hdbscan")
PCA_DIMENSIONS = 50


@dataclass
class Cluster:
    rows: np.ndarray  # indices into the input, nearest the centre first
    distances: np.ndarray  # 1 - cosine to the centre, ascending


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cluster_pool(vectors: ArrayLike, *, method: Method, k: int = 12, seed: int = 0,
                 min_cluster_size: int | None = None) -> tuple[list[Cluster], int]:
    """(clusters largest first, number of noise images)."""
    x = _unit(np.asarray(vectors, dtype=np.float32))
    if len(x) == 0:
        return [], 0
    if method == "kmeans":
        from sklearn.cluster import KMeans

        k = max(1, min(k, len(x)))
        labels = KMeans(n_clusters=k, n_init=2, random_state=seed, max_iter=100).fit_predict(x)
    elif method == "hdbscan":
        from sklearn.cluster import HDBSCAN
        from sklearn.decomposition import PCA

        reduced = PCA(n_components=min(PCA_DIMENSIONS, len(x), x.shape[1]), random_state=seed).fit_transform(x) \
            if len(x) > 2 else x
        size = min_cluster_size or max(5, len(x) // 100)
        labels = HDBSCAN(min_cluster_size=min(size, max(2, len(x))), copy=True).fit_predict(reduced) \
            if len(x) > 2 else np.zeros(len(x), np.int64)
    else:
        raise ValueError(f"unknown clustering method {method!r}; one of {', '.join(METHODS)}")
    clusters = []
    for label in sorted(set(labels.tolist()) - {-1}):
        rows = np.flatnonzero(labels == label)
        centre = _unit(x[rows].mean(axis=0, keepdims=True))[0]
        distances = 1.0 - x[rows] @ centre
        order = np.argsort(distances, kind="stable")
        clusters.append(Cluster(rows[order], distances[order]))
    clusters.sort(key=lambda c: -len(c.rows))
    return clusters, int((labels == -1).sum())
