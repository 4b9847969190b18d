"""Queue order: turn the queue model's (or the deployed model's) view of the pool into
Task.priority (higher first).

What ranks the pool, in order of preference:
- the queue model (training/queue_model.py), a linear head on the images' embeddings that is
  refit every few labels, through ml.selection.rank_pool, the function the
  simulation calls too; for detection a deployed detector's per-box uncertainty is averaged
  in. A deployed fine-tuned classifier (it beat the queue model at its gate) ranks instead.
- before any head: the cold start on embeddings (typical, spread-out cluster picks);
- without embeddings: the deployed model's predictions, else random order (or diversity over
  simple image features).
This module reads the inputs and applies the project's strategy and random share; the
queue's own service (labeling.queue.services.task_priorities_write) writes the priorities.

Validation images (drawn at random on arrival) get uniform random priorities: they are
interleaved through the queue and never ranked by the model, so the labeled validation
set stays an unbiased sample. Their tasks are not marked is_random_pick, which marks the
random control arm among training images (compare arms with split = train).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from core.models import (
    Backend,
    DetectionAggregation,
    Image,
    ModelVersion,
    Prediction,
    Project,
    SamplingStrategy,
    Split,
)
from labeling.models import Task, TaskStatus
from labeling.payloads import OBJECT_KEYS, SEGMENTATION
from labeling.queue.services import task_priorities_write
from ml import sampling, selection

from .queue_heads import auto_strategy, project_vectors, queue_head_for_ranking

logger = logging.getLogger(__name__)

# Measure used where the strategy names none (hybrid).
DEFAULT_MEASURE = selection.DEFAULT_MEASURE
_EMBEDDING_STRATEGIES = (SamplingStrategy.DIVERSITY, SamplingStrategy.HYBRID)


@dataclass
class RefreshSummary:
    ranked: int = 0  # training images ordered by the strategy (or cold start)
    validation: int = 0  # validation images given random priorities
    unscored: int = 0  # training images without a prediction; priorities left as they were
    updated_tasks: int = 0

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def queue_priorities_refresh(*, project: Project) -> RefreshSummary:
    """Recompute priorities of the project's open tasks (call after a queue-model fit, new
    embeddings, writing predictions, deploying, or changing the strategy).

    Training images are ranked by the first input that applies (see the module docstring);
    images that input cannot score yet keep their priority. Validation images get random
    priorities. All slots of an image share its priority.
    """
    deployed = ModelVersion.objects.filter(project=project, is_deployed=True).first()
    seed = project.pk * 100_003 + (deployed.number if deployed else 0)
    open_images: dict[int, str] = dict(
        Task.objects.filter(project=project, status=TaskStatus.OPEN).values_list("image_id", "image__split")
    )
    validation = np.array([i for i, split in open_images.items() if split == Split.VALIDATION], dtype=np.int64)
    train = [i for i, split in open_images.items() if split != Split.VALIDATION]
    summary = RefreshSummary(validation=len(validation))

    priority_of: dict[int, tuple[float, bool]] = {}
    rng = np.random.default_rng(seed)
    for image_id, priority in zip(validation.tolist(), rng.random(len(validation)).tolist()):
        priority_of[image_id] = (priority, False)

    ranked_ids, priorities, is_random = _training_ranking(project, deployed, train, seed)
    for image_id, priority, random_pick in zip(ranked_ids, priorities.tolist(), is_random.tolist()):
        priority_of[image_id] = (priority, random_pick)
    summary.ranked = len(ranked_ids)
    summary.unscored = len(train) - len(ranked_ids)
    summary.updated_tasks = task_priorities_write(project=project, priority_of=priority_of)
    logger.info("queue priorities refreshed for project %s: %s", project.pk, summary.as_dict())
    return summary


def _training_ranking(project: Project, deployed: ModelVersion | None, train: list[int], seed: int):
    """(ranked image ids, priorities, is_random) for the open training images."""
    embedded = _embedding_ranking(project, deployed, train, seed) if train else None
    if embedded is not None:
        return embedded
    if deployed is None or deployed.backend == Backend.LINEAR:
        ranked_ids, uncertainty, embeddings, labeled = _cold_start_inputs(project, train)
    else:
        ranked_ids, uncertainty, embeddings, labeled = _prediction_inputs(project, deployed, set(train))
    if not ranked_ids:
        return [], np.zeros(0), np.zeros(0, dtype=bool)
    strategy = _strategy(project)
    if deployed is None and strategy not in _EMBEDDING_STRATEGIES:
        strategy = SamplingStrategy.RANDOM
    priorities, is_random = sampling.queue_priorities(
        strategy=strategy, uncertainty=uncertainty, embeddings=embeddings, labeled_embeddings=labeled,
        random_share=project.random_share, seed=seed, selection_size=min(1000, len(ranked_ids)),
        num_items=len(ranked_ids),
    )
    return ranked_ids, priorities, is_random


def _strategy(project: Project) -> str:
    """The strategy that ranks now; "auto" resolves to the arm leading on this project."""
    if project.sampling_strategy != SamplingStrategy.AUTO:
        return project.sampling_strategy
    return auto_strategy(project)


def _embedding_ranking(project: Project, deployed: ModelVersion | None, train: list[int], seed: int):
    """(ranked image ids, priorities, is_random) from the images' embeddings and the queue
    model, or None when this path does not apply: no embeddings yet, or a deployed
    fine-tuned classifier (it beat the queue model at its gate) ranks instead."""
    if project.task_type not in OBJECT_KEYS and deployed is not None and deployed.backend != Backend.LINEAR:
        return None
    ids, vectors = project_vectors(project)
    if not len(ids):
        return None
    in_pool = np.isin(ids, np.asarray(train, dtype=np.int64))
    if not in_pool.any():
        return None
    done = np.asarray(list(Task.objects.filter(project=project, status=TaskStatus.DONE)
                           .values_list("image_id", flat=True).distinct()), dtype=np.int64)
    labeled = vectors[np.isin(ids, done) & ~in_pool]
    pool_ids = ids[in_pool]
    head = queue_head_for_ranking(project)
    if head is not None and head.classes != list(project.label_classes.values_list("id", flat=True)):
        head = None  # the taxonomy changed since the fit: cold start until the next one
    extra = None
    if head is not None and project.task_type in OBJECT_KEYS and deployed is not None:
        extra = _detector_uncertainty(project, deployed, pool_ids)
    ranking = selection.rank_pool(
        strategy=_strategy(project), pool_embeddings=vectors[in_pool], labeled_embeddings=labeled, head=head,
        batch_size=max(project.queue_model_every, 1), random_share=project.random_share, seed=seed,
        extra_uncertainty=extra,
    )
    return pool_ids.tolist(), ranking.priorities, ranking.is_random


def _detector_uncertainty(project: Project, deployed: ModelVersion, pool_ids: np.ndarray) -> np.ndarray | None:
    """The deployed detector's image uncertainty for each pool image (None when it scored
    none of them); an image it has not scored counts as fully uncertain."""
    ids, uncertainty, _, _ = _prediction_inputs(project, deployed, set(pool_ids.tolist()),
                                                strategy=SamplingStrategy.MARGIN)
    if not ids:
        return None
    value = dict(zip(ids, uncertainty.tolist()))
    return np.asarray([value.get(i, 1.0) for i in pool_ids.tolist()], dtype=np.float64)


def _prediction_inputs(project: Project, deployed: ModelVersion, train: set[int], strategy: str | None = None):
    """(image ids, uncertainty or None, embeddings or None, labeled embeddings or None)."""
    strategy = strategy or _strategy(project)
    wants_embeddings = strategy in _EMBEDDING_STRATEGIES
    wants_uncertainty = strategy != SamplingStrategy.DIVERSITY and strategy != SamplingStrategy.RANDOM
    measure = strategy if strategy in sampling.MEASURES else DEFAULT_MEASURE
    fields = ["image_id"] + (["payload", "uncertainty"] if wants_uncertainty else []) + (
        ["embedding"] if wants_embeddings else []
    )
    labeled_ids: set[int] = set()
    if wants_embeddings:
        labeled_ids = set(
            Task.objects.filter(project=project, status=TaskStatus.DONE).values_list("image_id", flat=True)
        )
    ids, payloads, stored, vectors, labeled = [], [], [], [], []
    rows = Prediction.objects.filter(model_version=deployed).values(*fields).iterator(chunk_size=2000)
    for row in rows:
        image_id = row["image_id"]
        vector = _embedding(row.get("embedding")) if wants_embeddings else None
        if image_id in labeled_ids and vector is not None:
            labeled.append(vector)
        if image_id not in train or (wants_embeddings and vector is None):
            continue
        ids.append(image_id)
        if wants_uncertainty:
            payloads.append(row["payload"])
            stored.append(row["uncertainty"])
        if wants_embeddings:
            vectors.append(vector)
    return (
        ids,
        _uncertainties(payloads, stored, project, measure) if wants_uncertainty else None,
        np.stack(vectors) if vectors else None,
        np.stack(labeled) if labeled else None,
    )


def _uncertainties(payloads: list[dict], stored: list[float], project: Project, measure: str) -> np.ndarray:
    """The strategy's measure over the full class scores kept in each payload (and, for
    segmentation, each instance's mask term), in one vectorized pass; the prelabel job's
    stored value for a payload without them."""
    scores = np.asarray(stored, dtype=np.float64)
    if project.task_type in OBJECT_KEYS:
        key = OBJECT_KEYS[project.task_type]
        parsed = [_object_scores(payload, key) for payload in payloads]
        masks = [_mask_terms(payload) for payload in payloads] if project.task_type == SEGMENTATION else None
        usable = np.array([boxes is not None and (masks is None or masks[k] is not None)
                           for k, boxes in enumerate(parsed)], dtype=bool)
        if usable.any():
            scores[usable] = sampling.detection_batch_uncertainty(
                [boxes for boxes, ok in zip(parsed, usable) if ok],
                measure=measure,
                aggregation=project.detection_aggregation or DetectionAggregation.MAX,
                mask_uncertainty=None if masks is None else [m for m, ok in zip(masks, usable) if ok],
            )
        return scores
    parsed = [_probs(payload) for payload in payloads]
    usable = np.array([probs is not None for probs in parsed], dtype=bool)
    if usable.any() and len({len(probs) for probs in parsed if probs is not None}) == 1:
        rows = np.array([probs for probs in parsed if probs is not None], dtype=np.float64)
        scores[usable] = sampling.classification_uncertainty(rows, measure)
    return scores


def _object_scores(payload, key: str) -> np.ndarray | None:
    """The class-score rows of a pre-label's boxes or polygons (`key`)."""
    try:
        return np.asarray([item["probs"] for item in payload[key]], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        return None


def _mask_terms(payload) -> np.ndarray | None:
    """Each pre-label polygon's mask term (ml/yolo_seg.py)."""
    try:
        return np.asarray([item["mask_uncertainty"] for item in payload["polygons"]], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        return None


def _probs(payload) -> list[float] | None:
    probs = payload.get("probs") if isinstance(payload, dict) else None
    return probs if isinstance(probs, list) and probs else None


def _embedding(raw) -> np.ndarray | None:
    if not raw:
        return None
    return np.frombuffer(bytes(raw), dtype=np.float32)


def _cold_start_inputs(project: Project, train: list[int]):
    """Before any model: simple image features for the embedding strategies, else nothing
    (random order). Images whose file cannot be read keep their priority."""
    if project.sampling_strategy not in _EMBEDDING_STRATEGIES or not train:
        return train, None, None, None
    ids, vectors = [], []
    for image in Image.objects.filter(pk__in=train).only("pk", "file").iterator(chunk_size=500):
        features = _simple_features(image)
        if features is not None:
            ids.append(image.pk)
            vectors.append(features)
    return ids, None, (np.stack(vectors) if vectors else None), None


def _simple_features(image: Image) -> np.ndarray | None:
    try:
        with default_storage.open(image.file.name, "rb") as stream:
            picture = PILImage.open(stream)
            picture.draft("RGB", (256, 256))  # JPEG decodes at reduced scale: fast on big photos
            picture = picture.convert("RGB")
            picture.thumbnail((256, 256))
            return sampling.simple_image_features(np.asarray(picture))
    except (OSError, ValueError) as exc:
        logger.warning("cold-start features: cannot read image %s: %s", image.pk, exc)
        return None
