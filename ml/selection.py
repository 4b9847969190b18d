"""What to label next, from embeddings and the queue model: the one ranking that both the
live queue (training/ranking.py) and the simulation (training/simulation.py) call.

Django-free. ``rank_pool`` turns the pool's embeddings, the labeled images' embeddings and
the current head (or none yet) into queue priorities: cold start by typical cluster picks
before a head exists, then the project's strategy over the head's probabilities, with a
class-balance guard on each batch and the random control arm interleaved.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ml import sampling
from ml.queue_model import LinearHead, multilabel_uncertainty

# The measure inside "hybrid" and for strategies that name none: margin beats entropy on
# many-class data, where entropy favours confusion among many unlikely classes.
DEFAULT_MEASURE = "margin"
# k-means on more points than this clusters a seeded subsample and assigns the rest.
_KMEANS_SAMPLE = 20_000


@dataclass
class Ranking:
    priorities: np.ndarray  # (n,) in [0, 1], higher is served first
    is_random: np.ndarray  # (n,) bool, the random control arm
    cold_start: bool  # True when no head ranked the pool
    uncertainty: np.ndarray | None  # (n,) what the strategy ranked by, when it used the head


def cold_start_order(embeddings: ArrayLike, k: int, *, labeled_embeddings: ArrayLike | None = None,
                     seed: int = 0) -> np.ndarray:
    """All pool indices, the first k typical and spread out (TypiClust-style).

    The pool and the labeled images are clustered into (labeled + k) clusters with k-means;
    clusters holding no labeled image are taken largest first, and from each the image
    nearest its centre (the most typical one). Outliers, which k-center greedy would pick
    first, come last here; the rest follow in a seeded random order.
    """
    from sklearn.cluster import KMeans

    x = np.asarray(embeddings, dtype=np.float32)
    n = len(x)
    rng = np.random.default_rng(seed)
    rest_order = rng.permutation(n)
    k = min(k, n)
    if k <= 0:
        return rest_order
    labeled = np.zeros((0, x.shape[1]), dtype=np.float32) if labeled_embeddings is None else np.asarray(
        labeled_embeddings, dtype=np.float32)
    points = np.concatenate([x, labeled])
    clusters = min(len(points), len(labeled) + k)
    sample = points if len(points) <= _KMEANS_SAMPLE else points[rng.choice(len(points), _KMEANS_SAMPLE,
                                                                            replace=False)]
    model = KMeans(n_clusters=clusters, n_init=1, random_state=seed, max_iter=100).fit(sample)
    assignment = model.predict(points)
    pool_cluster, labeled_cluster = assignment[:n], assignment[n:]
    covered = set(labeled_cluster.tolist())
    sizes = np.bincount(pool_cluster, minlength=clusters)
    distance = np.linalg.norm(x - model.cluster_centers_[pool_cluster], axis=1)
    picks: list[int] = []
    for cluster in np.argsort(-sizes, kind="stable").tolist():
        if cluster in covered or sizes[cluster] == 0:
            continue
        members = np.flatnonzero(pool_cluster == cluster)
        picks.append(int(members[np.argmin(distance[members])]))
        if len(picks) == k:
            break
    chosen = np.zeros(n, dtype=bool)
    chosen[picks] = True
    return np.concatenate([np.asarray(picks, dtype=np.int64), rest_order[~chosen[rest_order]]])


def head_uncertainty(head: LinearHead, probs: np.ndarray, measure: str) -> np.ndarray:
    if head.kind == "multilabel":
        return multilabel_uncertainty(probs)
    return sampling.classification_uncertainty(probs, measure)  # type: ignore[arg-type]


def rank_pool(
    *,
    strategy: str,
    pool_embeddings: ArrayLike,
    labeled_embeddings: ArrayLike | None,
    head: LinearHead | None,
    batch_size: int,
    random_share: float = 0.0,
    seed: int = 0,
    extra_uncertainty: ArrayLike | None = None,
) -> Ranking:
    """Priorities for the n pool images.

    - No head (too few labels to fit one): cold_start_order for every strategy but random.
    - With a head: its probabilities on the pool give the strategy's measure (hybrid uses
      margin); ``extra_uncertainty`` (n,) in [0, 1], e.g. a deployed detector's, is averaged
      in. Multiclass heads add the class-balance guard on the first ``batch_size`` picks.
    - ``random_share`` of the pool is served at random as the control arm (is_random).
    """
    x = np.asarray(pool_embeddings, dtype=np.float32)
    n = len(x)
    labeled = None if labeled_embeddings is None else np.asarray(labeled_embeddings, dtype=np.float32)
    if labeled is not None and not len(labeled):
        labeled = None
    batch = max(1, min(batch_size, n)) if n else 1
    if strategy == "random" or n == 0:
        priorities, is_random = sampling.queue_priorities(strategy="random", num_items=n, seed=seed)
        return Ranking(priorities, is_random, head is None, None)
    if head is None:
        order = cold_start_order(x, batch, labeled_embeddings=labeled, seed=seed)
        priorities = np.empty(n, dtype=np.float64)
        priorities[order] = 1.0 - np.arange(n) / max(n - 1, 1)
        is_random = np.zeros(n, dtype=bool)
        if random_share > 0:
            # The same interleaving as every other strategy: rank by the cold-start order.
            priorities, is_random = sampling.queue_priorities(
                strategy="least_confidence", uncertainty=priorities, random_share=random_share, seed=seed)
        return Ranking(priorities, is_random, True, None)
    probs = head.predict_proba(x)
    measure = strategy if strategy in sampling.MEASURES else DEFAULT_MEASURE
    uncertainty = head_uncertainty(head, probs, measure)
    if extra_uncertainty is not None:
        uncertainty = (uncertainty + np.clip(np.asarray(extra_uncertainty, dtype=np.float64), 0.0, 1.0)) / 2.0
    predicted = probs.argmax(axis=1) if head.kind == "multiclass" else None
    priorities, is_random = sampling.queue_priorities(
        strategy=strategy,  # type: ignore[arg-type]
        uncertainty=uncertainty if strategy != "diversity" else None,
        embeddings=x if strategy in ("diversity", "hybrid") else None,
        labeled_embeddings=labeled if strategy in ("diversity", "hybrid") else None,
        random_share=random_share, seed=seed, selection_size=batch, balance_classes=predicted,
    )
    return Ranking(priorities, is_random, False, uncertainty)
