"""The queue model's life in the database: fit on the verified labels, stored as a model
version, gated, used to rank the queue and (classification) to pre-label.

The head itself is Django-free (ml/queue_model.py). Each fit becomes a ModelVersion
with backend ``linear`` whose weights file is the head's ``.npz`` (numbers, never a pickle):
its metrics sit beside the heavy models' on the same validation split, its pre-labels are
Prediction rows keyed by it, and the same deploy switch decides which model pre-labels.
A classification head is deployed when it beats the majority class and is no worse than the
deployed version on the same validation images (a deployed fine-tuned classifier is compared
by its stored metric: re-running it per fit would cost a GPU pass every few labels). A
detection head ranks only: it says which classes are present, not where.

Fits are requested after labels commit (queue_model_fit_request, debounced per project in
the cache) and run on the "default" queue; a fit with fewer than ``queue_model_every`` new
labels since the last one does nothing.
"""
from __future__ import annotations

import logging

import numpy as np
from django.core.cache import caches
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max

from core.models import Backend, ModelVersion, Prediction, Project, Split, TaskType, VersionStatus
from labeling.models import AnnotationKind
from ml.queue_model import (
    NotEnoughLabels,
    fit_multiclass,
    fit_multilabel,
    head_metrics,
    majority_class_f1,
)
from ml.sampling import margin
from vision_project.enqueue import enqueue

from . import selectors
from .queue_heads import (
    MIN_VALIDATION_LABELS,
    arm_comparison,
    head_load,
    head_remember,
    labeled_examples,
    latest_queue_version,
)
from .ranking import queue_priorities_refresh
from .services import model_version_deploy

logger = logging.getLogger(__name__)

FIT_TASK = "training.tasks.queue_model_fit"
# A requested fit marks the project as pending until it starts; the mark expires after this
# many seconds in case the message is lost.
PENDING_FIT_TTL = 60


def _pending_key(project_id: int) -> str:
    return f"queue-model-fit-pending:{project_id}"


def queue_model_fit_request(*, project_id: int) -> bool:
    """Ask for a fit after a label commits, unless one is already waiting to start: the
    waiting fit reads every label committed before it starts (it clears the mark first), so
    a burst of submits makes one fit. The task is named, not imported, so this module stays
    below the task layer. Returns whether a fit was requested."""
    if not caches["coordination"].add(_pending_key(project_id), 1, timeout=PENDING_FIT_TTL):
        return False
    try:
        enqueue(FIT_TASK, project_id)
    except Exception:
        caches["coordination"].delete(_pending_key(project_id))  # not sent: the next label asks again
        raise
    return True


def queue_model_fit(*, project: Project, force: bool = False) -> ModelVersion | None:
    """Fit the head on the verified labels that have embeddings, register it, gate it and
    re-rank the queue. Returns the new version, or None when nothing was due (fewer than
    ``queue_model_every`` new labels, unless ``force``) or the labels cannot support a head
    yet (then the queue is re-ranked by the cold start)."""
    caches["coordination"].delete(_pending_key(project.pk))
    examples = labeled_examples(project)
    class_ids, splits, vectors, targets = examples.class_ids, examples.splits, examples.vectors, examples.targets
    latest = latest_queue_version(project)
    labeled_before = (latest.dataset_size + latest.validation_size) if latest else 0
    every = project.queue_model_every
    if not force and (every == 0 or len(splits) - labeled_before < every):
        return None
    train, val = splits == Split.TRAIN, splits == Split.VALIDATION
    try:
        if project.task_type == TaskType.CLASSIFICATION:
            head = fit_multiclass(vectors[train], targets[train], class_ids, seed=project.pk)
        else:
            head = fit_multilabel(vectors[train], targets[train], class_ids, seed=project.pk)
    except NotEnoughLabels as exc:
        logger.info("queue model for project %s not fitted yet: %s", project.pk, exc)
        queue_priorities_refresh(project=project)
        return None
    if val.any():
        metrics = head_metrics(head, vectors[val], targets[val])
    else:
        metrics = {"primary": None, "num_images": 0,
                   "primary_metric": "macro_f1" if head.kind == "multiclass" else "presence_macro_f1"}
    comparison = _gate(project, head, metrics, targets[train], vectors[val], targets[val])
    metrics["arms"] = arm_comparison(examples, seed=project.pk)
    version = _register(project, head, metrics, class_ids, int(train.sum()), int(val.sum()), comparison)
    queue_priorities_refresh(project=project)
    return version


def _gate(project, head, metrics, train_y, val_x, val_y) -> dict:
    """Whether this head should pre-label: the floor (beat the majority class), then the
    comparison with the deployed version on the same validation images."""
    metric = str(metrics["primary_metric"])
    candidate = metrics["primary"]
    base = {"primary_metric": metric, "candidate": candidate, "tolerance": project.promotion_tolerance}
    if head.kind == "multilabel":
        return {**base, "decision": "queue", "reason": "a class-presence head ranks the queue; it draws no boxes or polygons"}
    if candidate is None or len(val_y) < MIN_VALIDATION_LABELS:
        return {**base, "decision": "queue",
                "reason": f"{len(val_y)} validation labels; at least {MIN_VALIDATION_LABELS} before it pre-labels"}
    majority = majority_class_f1(train_y.tolist(), val_y.tolist())
    floor = {"baseline": "majority class", "value": majority, "passed": candidate > majority}
    if not floor["passed"]:
        return {**base, "floor": floor, "decision": "queue",
                "reason": f"{metric} {candidate:.4f} does not beat the majority class ({majority:.4f})"}
    deployed = selectors.model_version_deployed(project)
    if deployed is None:
        return {**base, "floor": floor, "deployed": None, "decision": "deploy",
                "reason": f"{metric} {candidate:.4f} beats the majority class ({majority:.4f})"}
    if deployed.backend == Backend.LINEAR:
        reference, source = head_metrics(head_load(deployed), val_x, val_y)["primary"], "re-evaluated"
    else:
        reference, source = deployed.primary_metric, "stored"
    delta = candidate - (reference or 0.0)
    decision = "deploy" if delta >= -project.promotion_tolerance else "queue"
    return {**base, "floor": floor, "deployed": reference, "deployed_version": deployed.number,
            "deployed_version_id": deployed.pk, "deployed_metric_source": source, "delta": delta,
            "decision": decision,
            "reason": f"{metric} {candidate:.4f} vs deployed v{deployed.number} {reference or 0.0:.4f} "
                      f"({source}; {delta:+.4f}, tolerance {project.promotion_tolerance})"}


@transaction.atomic
def _register(project, head, metrics, class_ids, train_size, val_size, comparison) -> ModelVersion:
    Project.objects.select_for_update().get(pk=project.pk)
    number = (ModelVersion.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
    version = ModelVersion(
        project=project, number=number, backend=Backend.LINEAR, architecture=selectors.embedding_key(),
        parent=latest_queue_version(project), class_ids=class_ids, dataset_size=train_size,
        validation_size=val_size, metrics={**metrics, "head": head.kind, "num_labels": train_size},
        primary_metric=metrics["primary"], comparison=comparison,
        status=VersionStatus.QUEUE if comparison["decision"] == "queue" else VersionStatus.CANDIDATE,
    )
    version.weights.save("head.npz", ContentFile(head.to_bytes()), save=False)
    version.save()
    head_remember(version, head)
    if comparison["decision"] == "deploy":
        model_version_deploy(version=version, rescore=False)  # queue_model_fit re-ranks next
    return version


def prelabel_on_serve(project: Project, image_id: int) -> Prediction | None:
    """labeling's on-demand pre-label source (registered in training/apps.py): when the
    deployed model of a classification project is a queue head, its pre-label for the served
    image, written on first serve (the head scores the stored embedding in microseconds, so
    the pool is never bulk-written). None without such a head or without an embedding."""
    if project.task_type != TaskType.CLASSIFICATION:
        return None
    version = ModelVersion.objects.filter(project_id=project.pk, is_deployed=True, backend=Backend.LINEAR).first()
    if version is None:
        return None
    _, vectors = selectors.embedding_matrix(project=project, image_ids=[image_id])
    if not len(vectors):
        return None
    head = head_load(version)
    probs = head.predict_proba(vectors)
    payload = {"labels": [head.classes[int(np.argmax(probs[0]))]], "probs": [round(float(p), 6) for p in probs[0]]}
    prediction, _ = Prediction.objects.get_or_create(
        model_version=version, image_id=image_id,
        defaults={"payload": payload, "uncertainty": float(margin(probs)[0])},
    )
    prediction.model_version = version
    return prediction


def fit_after_label(sender, instance, created: bool, **kwargs) -> None:
    """post_save receiver on Annotation: a new label asks for a fit once it commits. Connected
    at module level (training/apps.py): signals hold receivers weakly."""
    if created and instance.kind in (AnnotationKind.ACCEPT, AnnotationKind.CORRECT):
        project_id = instance.project_id
        # robust: the label has committed; a broker or cache that is away must not turn its
        # submit into an error (the fit is asked again by the next label)
        transaction.on_commit(lambda: queue_model_fit_request(project_id=project_id), robust=True)
