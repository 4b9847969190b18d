"""The queue model's reads: its stored heads (cached per process), the latest queue-model
version, the labeled examples a head is fit on and the pool's vectors it ranks, and which arm
the "auto" strategy serves. Below both the fit (training/queue_model.py) and the ranking
(training/ranking.py), which use them.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from core.models import Backend, ModelVersion, Project, Split, TaskType
from labeling.payloads import payload_class_ids
from ml.queue_model import LinearHead, NotEnoughLabels, fit_multiclass, fit_multilabel, head_metrics

from . import selectors
from .models import ImageEmbedding

# Below this many validation labels a head's metric is noise: it ranks, but does not pre-label.
MIN_VALIDATION_LABELS = 10
# The random arm must hold this many training labels before its head is compared.
MIN_ARM_LABELS = 10
AUTO_DEFAULT = "margin"

_HEAD_CACHE_SIZE = 32
_heads: OrderedDict[int, LinearHead] = OrderedDict()
_heads_lock = threading.Lock()


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


def head_remember(version: ModelVersion, head: LinearHead) -> None:
    """Put a head just fitted into this process's cache, so its first use reads no file."""
    with _heads_lock:
        _heads[version.pk] = head


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
