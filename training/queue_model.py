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
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from django.core.cache import caches
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max

from labeling.models import AnnotationKind, Project, Split, TaskType
from labeling.payloads import payload_class_ids
from ml.queue_model import (
    LinearHead,
    NotEnoughLabels,
    fit_multiclass,
    fit_multilabel,
    head_metrics,
    majority_class_f1,
)
from ml.sampling import margin
from vision_project.enqueue import enqueue

from . import selectors
from .models import Backend, ModelVersion, Prediction, VersionStatus

logger = logging.getLogger(__name__)

FIT_TASK = "training.tasks.queue_model_fit"
# A requested fit marks the project as pending until it starts; the mark expires after this
# many seconds in case the message is lost.
PENDING_FIT_TTL = 60
# Below this many validation labels a head's metric is noise: it ranks, but does not pre-label.
MIN_VALIDATION_LABELS = 10
_HEAD_CACHE_SIZE = 32
_heads: OrderedDict[int, LinearHead] = OrderedDict()
_heads_lock = threading.Lock()


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


def head_load(version: ModelVersion) -> LinearHead:
    """The version's head from storage, cached per process (versions are immutable); web
    threads share the cache, so it changes under a lock."""
    with _heads_lock:
        head = _heads.get(version.pk)
        if head is not None:
            _heads.move_to_end(version.pk)
            return head
    with version.weights.open("rb") as handle:
        head = LinearHead.from_bytes(handle.read())
    with _heads_lock:
        _heads[version.pk] = head
        while len(_heads) > _HEAD_CACHE_SIZE:
            _heads.popitem(last=False)
    return head


def latest_queue_version(project: Project) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, backend=Backend.LINEAR).order_by("-number").first()


@dataclass
class LabeledExamples:
    """The verified labels that have embeddings, by image id. ``targets`` are class ids
    (classification) or (n, C) presence rows over ``class_ids`` (detection); ``random_arm``
    marks labels of tasks served by the random control arm."""

    class_ids: list[int]
    splits: np.ndarray
    vectors: np.ndarray
    targets: np.ndarray
    random_arm: np.ndarray


def labeled_examples(project: Project) -> LabeledExamples:
    """The project's LabeledExamples. Labels whose class was deleted are left out; an image
    with no embedding yet is left out until it has one."""
    class_ids = list(project.label_classes.values_list("id", flat=True))
    column = {class_id: i for i, class_id in enumerate(class_ids)}
    ids, targets, splits, random_arm = [], [], [], []
    for image_id, split, payload, is_random in selectors.training_labels(project).values_list(
        "image_id", "image__split", "payload", "task__is_random_pick"
    ):
        if project.task_type == TaskType.CLASSIFICATION:
            labels = [c for c in (payload or {}).get("labels", []) if c in column]
            if not labels:
                continue
            target: object = labels[0]
        else:
            row = np.zeros(len(class_ids), dtype=np.int64)
            for class_id in payload_class_ids(payload):
                if class_id in column:
                    row[column[class_id]] = 1
            target = row
        ids.append(image_id)
        targets.append(target)
        splits.append(split)
        random_arm.append(bool(is_random))
    vector_ids, vectors = selectors.embedding_matrix(project=project, image_ids=ids)
    position = {image_id: k for k, image_id in enumerate(ids)}
    keep = [position[int(i)] for i in vector_ids.tolist()]
    shape = (len(keep),) if project.task_type == TaskType.CLASSIFICATION else (len(keep), len(class_ids))
    target_array = np.asarray([targets[k] for k in keep], dtype=np.int64).reshape(shape)
    return LabeledExamples(class_ids, np.asarray([splits[k] for k in keep], dtype=object), vectors, target_array,
                           np.asarray([random_arm[k] for k in keep], dtype=bool))


def queue_model_fit(*, project: Project, force: bool = False) -> ModelVersion | None:
    """Fit the head on the verified labels that have embeddings, register it, gate it and
    re-rank the queue. Returns the new version, or None when nothing was due (fewer than
    ``queue_model_every`` new labels, unless ``force``) or the labels cannot support a head
    yet (then the queue is re-ranked by the cold start)."""
    from training.ranking import queue_priorities_refresh

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
    from .services import model_version_deploy

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
    with _heads_lock:
        _heads[version.pk] = head
    if comparison["decision"] == "deploy":
        model_version_deploy(version=version, rescore=False)  # queue_model_fit re-ranks next
    return version


# The random arm must hold this many training labels before its head is compared.
MIN_ARM_LABELS = 10
AUTO_DEFAULT = "margin"


def arm_comparison(examples: LabeledExamples, *, seed: int) -> dict:
    """Whether the queue's strategy pays on this project: a head fitted on the random arm's
    training labels against one fitted on as many of the strategy arm's (a seeded sample),
    both measured on the validation labels. ``leader`` names the arm that scores higher, or
    is None while either side is too small to say."""
    train = examples.splits == Split.TRAIN
    val = examples.splits == Split.VALIDATION
    random_rows = np.flatnonzero(train & examples.random_arm)
    strategy_rows = np.flatnonzero(train & ~examples.random_arm)
    size = len(random_rows)
    out: dict = {"labels": size, "random": None, "strategy": None, "leader": None}
    if size < MIN_ARM_LABELS or len(strategy_rows) < size or val.sum() < MIN_VALIDATION_LABELS:
        return out
    sample = np.random.default_rng(seed).choice(strategy_rows, size, replace=False)
    for arm, rows in (("random", random_rows), ("strategy", sample)):
        try:
            head = (fit_multiclass if examples.targets.ndim == 1 else fit_multilabel)(
                examples.vectors[rows], examples.targets[rows], examples.class_ids, seed=seed)
        except NotEnoughLabels:
            return out
        out[arm] = head_metrics(head, examples.vectors[val], examples.targets[val])["primary"]
    out["leader"] = "random" if out["random"] > out["strategy"] else "strategy"
    return out


def auto_strategy(project: Project) -> str:
    """What the "auto" strategy serves: margin, unless the latest fit found that the random
    arm's labels train a better head than as many of margin's (then random, until margin
    leads again). The random control share keeps both arms growing either way."""
    latest = latest_queue_version(project)
    arms = (latest.metrics or {}).get("arms", {}) if latest is not None else {}
    return "random" if arms.get("leader") == "random" else AUTO_DEFAULT


# (project id, model key) -> (largest ImageEmbedding pk read, image ids, vectors), per process.
_vectors: dict[tuple[int, str], tuple[int, np.ndarray, np.ndarray]] = {}


def project_vectors(project: Project) -> tuple[np.ndarray, np.ndarray]:
    """The project's (image ids, vectors) under the configured key, as embedding_matrix
    returns them, kept in this process and topped up with the rows written since the last
    call: a stored vector never changes, so a refit every few labels reads only the new
    ones instead of the whole pool (100,000 vectors are 500 MB). A deleted row makes the
    next call read everything again. Workers only: web processes never rank."""
    from .models import ImageEmbedding

    key = selectors.embedding_key()
    rows = ImageEmbedding.objects.filter(project=project, model_key=key)
    cached = _vectors.get((project.pk, key))
    if cached is not None and rows.filter(pk__lte=cached[0]).count() != len(cached[1]):
        cached = None  # rows were deleted: start over
    last, ids, vectors = cached if cached is not None else (0, np.empty(0, np.int64), None)
    new = list(rows.filter(pk__gt=last).order_by("pk").values_list("pk", "image_id", "vector"))
    if new or vectors is None:
        dim = len(new[0][2]) // selectors.VECTOR_DTYPE.itemsize if new else 0
        fresh = np.frombuffer(b"".join(bytes(v) for _, _, v in new), selectors.VECTOR_DTYPE).reshape(len(new), -1) \
            if new else np.empty((0, dim), np.float32)
        ids = np.concatenate([ids, np.asarray([i for _, i, _ in new], np.int64)])
        vectors = fresh if vectors is None else np.concatenate([vectors, fresh])
        order = np.argsort(ids, kind="stable")
        ids, vectors = ids[order], vectors[order]
        last = new[-1][0] if new else last
        _vectors[(project.pk, key)] = (last, ids, vectors)
    return ids, vectors


def forget_process_caches() -> None:
    """Drop this process's heads and pool vectors (tests: ids are reused across rollbacks)."""
    with _heads_lock:
        _heads.clear()
    _vectors.clear()


def queue_head_for_ranking(project: Project) -> LinearHead | None:
    """The head that ranks the queue: the latest queue-model version's."""
    version = latest_queue_version(project)
    return head_load(version) if version is not None else None


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
