"""Discover: the unlabeled pool in clusters on its embeddings, for a lead to name and accept
in bulk (labeling/queue/bulk.py writes the labels). Numbers in ml/clustering.py.

The pool is the training-split images still in the queue that have a vector. Validation
images are left out: their labels must stay a random sample of the split, so they reach
people through the queue only. A pool larger than the configured bound is clustered on a
seeded sample (the same seed gives the same clusters while the pool is unchanged).
"""
from __future__ import annotations

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError

from core.models import Image, Project, Split
from labeling.models import Task, TaskStatus
from labeling.queue.selectors import image_urls
from ml.clustering import METHODS, cluster_pool

from . import selectors


def discover_pool_ids(project: Project) -> list[int]:
    return sorted(set(Task.objects.filter(project=project, status=TaskStatus.OPEN)
                      .exclude(image__split=Split.VALIDATION).values_list("image_id", flat=True)))


def clusters_compute(*, project: Project, method: str = "kmeans", k: int = 12, members: int = 60,
                     seed: int = 0) -> dict:
    """Clusters of the unlabeled pool, largest first, each with its size and its first
    ``members`` images nearest the centre (``distance`` = 1 - cosine to the centre)."""
    if method not in METHODS:
        raise ValidationError(f"Unknown clustering method {method!r}; one of {', '.join(METHODS)}.")
    pool = discover_pool_ids(project)
    limit = settings.VISION_DISCOVER_HDBSCAN_MAX_IMAGES if method == "hdbscan" else settings.VISION_DISCOVER_MAX_IMAGES
    sample = pool
    if len(pool) > limit:
        sample = sorted(np.random.default_rng(seed).choice(pool, limit, replace=False).tolist())
    ids, vectors = selectors.embedding_matrix(project=project, image_ids=sample)
    clusters, noise = cluster_pool(vectors, method=method, k=k, seed=seed)  # type: ignore[arg-type]
    shown = [ids[c.rows[:members]].tolist() for c in clusters]
    images = Image.objects.in_bulk([i for ids_ in shown for i in ids_])
    return {
        "method": method, "pool_size": len(pool), "sampled": int(len(ids)), "noise": noise,
        "clusters": [
            {"id": n, "size": int(len(c.rows)),
             "members": [{"image_id": i, "distance": round(float(d), 4), **image_urls(images[i])}
                         for i, d in zip(shown[n], c.distances[:members].tolist())]}
            for n, c in enumerate(clusters)
        ],
    }
