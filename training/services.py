"""Writes on the model side. Named <entity>_<action>, keyword-only, atomic.

Training, evaluation and deployment close the loop: verified labels -> dataset snapshot ->
backend.train -> evaluation on the fixed validation split -> ModelVersion -> promotion
gate -> deploy -> prelabel re-scores the pool. Job rows are claimed with a conditional
update and ended with conditional writes, so a late write never clobbers a recorded
failure or cancel.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import math
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from core.jobs import (
    JobPulse,
    JobStopped,
    job_cancel,
    job_claim,
    job_dispatch_on_commit,
    job_fail,
    job_finish,
    job_progress_writer,
    job_run,
)
from core.models import Backend, Image, JobStatus, ModelVersion, Project, TaskType, VersionStatus
from core.storage import local_path
from labeling.services import start_weights_resolve
from ml.base import TrainingCancelled, TrainParams
from ml.embedding_specs import EMBEDDING_MODELS
from ml.metrics import json_finite
from ml.queue_model import head_metrics, majority_class_f1
from ml.registry import backend_class, load_backend
from vision_project.api_errors import Conflict
from vision_project.enqueue import enqueue, enqueue_on_commit

from . import selectors
from .datasets import Snapshot, SnapshotError, dataset_snapshot
from .models import (
    EMBEDDING_BACKENDS,
    EmbeddingRun,
    ImageEmbedding,
    PrelabelRun,
    TrainingRun,
    TrainingTrigger,
)
from .queue_heads import head_load, latest_queue_version
from .ranking import queue_priorities_refresh

logger = logging.getLogger(__name__)

# --- training ---------------------------------------------------------------------------


# The heavy backend each task type trains.
BACKEND_FOR_TASK = {TaskType.DETECTION: Backend.YOLO, TaskType.SEGMENTATION: Backend.YOLO_SEG,
                    TaskType.CLASSIFICATION: Backend.CLASSIFIER}


def backend_kind_for(project: Project) -> str:
    return BACKEND_FOR_TASK[project.task_type]


@transaction.atomic
def training_run_start(
    *,
    project: Project,
    requested_by=None,
    trigger: str = TrainingTrigger.MANUAL,
    epochs: int | None = None,
    image_size: int | None = None,
    enqueue: bool = True,
) -> TrainingRun:
    """Queue a training run; raise Conflict (409) with the active run's id when the project
    already has one. The partial unique index settles a race between two requests."""
    active = selectors.training_run_active(project)
    if active is not None:
        raise Conflict(f"Training run {active.pk} is already {active.status} for this project.", run_id=active.pk)
    params: dict[str, Any] = {}
    if epochs is not None:
        params["epochs"] = epochs
    if image_size is not None:
        params["image_size"] = image_size
    task_id = str(uuid.uuid4()) if enqueue else ""
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                project=project, requested_by=requested_by, trigger=trigger, params=params,
                labels_at_start=selectors.verified_label_count(project), celery_task_id=task_id,
                total_epochs=epochs or project.train_epochs,
            )
    except IntegrityError:
        active = selectors.training_run_active(project)
        raise Conflict("A training run is already active for this project.",
                       run_id=active.pk if active else None) from None
    if enqueue:
        job_dispatch_on_commit(run)
    return run


def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """Ask a run to stop. A queued run is cancelled at once; a running one stops at its next
    batch or epoch boundary and records CANCELLED itself. Finished runs are left as they are."""
    return job_cancel(run)


def _training_progress(run_id: int):
    """The backend's per-epoch callback: the run's live numbers, and the epoch appended to
    its `history` (the models page draws it as the run's training curves). One run has one
    writer, so reading the history and writing it back loses nothing."""
    def report(epoch: int, total: int, loss: float, metric: float | None) -> None:
        loss_value = loss if loss is not None and math.isfinite(loss) else None
        metric_value = metric if metric is not None and math.isfinite(metric) else None
        running = TrainingRun.objects.filter(pk=run_id, status=JobStatus.RUNNING)
        history = running.values_list("history", flat=True).first()
        if history is None:
            return
        history = [row for row in history if row.get("epoch") != epoch]
        history.append({"epoch": epoch, "loss": loss_value, "metric": metric_value})
        running.update(
            epoch=epoch, total_epochs=total, progress=0.9 * epoch / max(total, 1),
            loss=loss_value, live_metric=metric_value, history=history,
            message=f"Epoch {epoch}/{total}", heartbeat_at=timezone.now(),
        )

    return report


@dataclass
class StartPoint:
    weights: str | None  # a trusted .pt: our storage or the admin's weights folder
    arch: str | None  # a model config or architecture name, for a random init
    description: str


def start_point_for(project: Project, snapshot: Snapshot, deployed: ModelVersion | None) -> StartPoint:
    """Where training starts: the project's configured start weights (a file in the trusted
    weights folder, or a model config name), else the deployed version when its classes are
    the same, else the backend's default config (random init). Nothing is downloaded."""
    try:
        weights, arch = start_weights_resolve(project.start_weights, project.task_type)
    except ValueError as exc:
        raise SnapshotError(str(exc)) from exc
    if weights is not None:
        return StartPoint(str(weights), None, weights.name)
    if arch is not None:
        return StartPoint(None, arch, arch)
    if (deployed is not None and deployed.backend == backend_kind_for(project) and deployed.weights
            and deployed.class_ids == snapshot.class_ids):
        return StartPoint(local_path(deployed.weights.name), None, deployed.architecture or f"v{deployed.number}")
    return StartPoint(None, None, "")


def _train_params(run: TrainingRun, start: StartPoint) -> TrainParams:
    project = run.project
    return TrainParams(
        epochs=int(run.params.get("epochs") or project.train_epochs),
        imgsz=int(run.params.get("image_size") or project.train_image_size),
        batch=project.train_batch_size,
        seed=int(run.params.get("seed", 0)),
        start_weights=start.weights,
        arch=start.arch,
        patience=int(run.params.get("patience", 10)),
        workers=int(run.params.get("workers", 2)),
    )


def training_run_execute(*, run_id: int) -> TrainingRun | None:
    """Run a queued training run to its end; returns None when there was nothing to claim
    (a redelivered message, or a run cancelled while queued)."""
    if not job_claim(TrainingRun, run_id, message="Preparing the dataset"):
        return None
    run = TrainingRun.objects.select_related("project").get(pk=run_id)
    try:
        with JobPulse(TrainingRun, run_id) as pulse:
            _training_run_body(run, pulse)
    except TrainingCancelled:
        job_finish(TrainingRun, run_id, JobStatus.CANCELLED, message="Cancelled on request; no version was made")
    except SnapshotError as exc:
        job_finish(TrainingRun, run_id, JobStatus.FAILED, error=str(exc), message="Nothing to train on")
    except Exception as exc:  # includes the soft time limit: record it on the row
        job_fail(TrainingRun, run_id, exc)
    run.refresh_from_db()
    return run


def _training_run_body(run: TrainingRun, pulse: JobPulse) -> None:
    project = run.project
    snapshot = dataset_snapshot(project=project)
    deployed = selectors.model_version_deployed(project)
    start = start_point_for(project, snapshot, deployed)
    params = _train_params(run, start)
    kind = backend_kind_for(project)
    workdir = Path(settings.VISION_RUNS_DIR) / f"project-{project.pk}" / f"run-{run.pk}"
    TrainingRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(
        total_epochs=params.epochs,
        message=f"Training on {len(snapshot.spec.train)} images, validating on {len(snapshot.spec.val)}",
    )
    backend = load_backend(kind, None, snapshot.spec.class_names)
    result = backend.train(snapshot.spec, params, workdir, _training_progress(run.pk), pulse.should_stop)
    if pulse.should_stop():
        raise TrainingCancelled()
    TrainingRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(
        progress=0.95, message="Evaluating the deployed version on the same validation split"
    )
    baseline = _deployed_baseline(deployed, snapshot)
    version = model_version_register(
        run=run, snapshot=snapshot, weights_path=result.weights_path, metrics=result.metrics,
        architecture=start.description or _default_arch(kind), parent=deployed, baseline=baseline,
    )
    if version is None:  # the run was cancelled or failed meanwhile
        raise TrainingCancelled()


def _default_arch(kind: str) -> str:
    """What a backend builds when given no start point (its module's DEFAULT_ARCH)."""
    module = importlib.import_module(backend_class(kind).__module__)
    return str(getattr(module, "DEFAULT_ARCH", kind))


@dataclass
class Baseline:
    version: ModelVersion
    primary: float | None
    source: str  # "re-evaluated" on today's validation labels, or "stored" metrics


def _deployed_baseline(deployed: ModelVersion | None, snapshot: Snapshot) -> Baseline | None:
    """The deployed version's primary metric on the same validation snapshot as the candidate,
    so the gate compares like with like as the validation labels grow. A version trained on
    other classes cannot be re-evaluated; its stored metric stands in."""
    if deployed is None:
        return None
    if deployed.backend == Backend.LINEAR:
        value = _queue_head_on_validation(deployed, snapshot)
        return Baseline(deployed, value, "re-evaluated") if value is not None else \
            Baseline(deployed, deployed.primary_metric, "stored")
    if deployed.backend not in EMBEDDING_BACKENDS and deployed.weights and deployed.class_ids == snapshot.class_ids:
        backend = load_backend(deployed.backend, local_path(deployed.weights.name), snapshot.spec.class_names)
        metrics = backend.evaluate(snapshot.spec)
        return Baseline(deployed, float(metrics["primary"]), "re-evaluated")
    return Baseline(deployed, deployed.primary_metric, "stored")


def _queue_head_on_validation(version: ModelVersion, snapshot: Snapshot) -> float | None:
    """A queue-model version's primary metric on the snapshot's validation images (those
    with embeddings); None when it cannot be measured there."""
    if version.class_ids != snapshot.class_ids or not snapshot.val_image_ids:
        return None
    ids, vectors = selectors.embedding_matrix(project=version.project, image_ids=snapshot.val_image_ids)
    if not len(ids):
        return None
    truth = dict(zip(snapshot.val_image_ids, (item.label for item in snapshot.spec.val)))
    labels = [snapshot.class_ids[truth[int(i)]] for i in ids.tolist()]
    return float(head_metrics(head_load(version), vectors, labels)["primary"])


# The metric held against the project's min_map50, and its name in the reason.
FLOOR_METRICS = {TaskType.DETECTION: ("map50", "mAP50"), TaskType.SEGMENTATION: ("mask_map50", "mask mAP50")}


def deployment_floor(*, project: Project, snapshot: Snapshot, metrics: dict) -> dict:
    """What a trained model must beat before it may be deployed, on the same validation split.

    Detection and segmentation: the project's minimum mAP50 (box mAP50, mask mAP50; a blind
    model pre-labels nothing, and an accepted empty pre-label would be stored as truth).
    Classification: the majority class and the queue model (the linear head on embeddings),
    both measured on the same validation images. Returns {"passed", "reason", ...}; kept on
    the version."""
    if project.task_type in FLOOR_METRICS:
        key, name = FLOOR_METRICS[project.task_type]
        value = metrics.get(key)
        value = float(value) if value is not None and math.isfinite(float(value)) else 0.0
        passed = value >= project.min_map50
        return {"baseline": "min_map50", "value": project.min_map50, "candidate": value, "passed": passed,
                "reason": f"{name} {value:.4f} {'reaches' if passed else 'is below'} the project's floor "
                          f"{project.min_map50:.4f}"}
    candidate = float(metrics["primary"])
    baselines = {"majority class": majority_class_f1([item.label for item in snapshot.spec.train],
                                                     [item.label for item in snapshot.spec.val])}
    head = latest_queue_version(project)
    if head is not None:
        value = _queue_head_on_validation(head, snapshot)
        if value is not None:
            baselines[f"queue model v{head.number}"] = value
    name, value = max(baselines.items(), key=lambda kv: kv[1])
    passed = candidate > value
    return {"baseline": name, "value": value, "candidate": candidate, "baselines": baselines, "passed": passed,
            "reason": f"macro_f1 {candidate:.4f} {'beats' if passed else 'does not beat'} the {name} "
                      f"({value:.4f})"}


def promotion_compare(*, candidate: float, baseline: Baseline | None, tolerance: float, metric: str) -> dict:
    """The gate: deploy when the candidate beats the deployed version on the primary metric,
    or trails it by at most ``tolerance``; the returned dict is kept on the version."""
    if baseline is None or baseline.primary is None:
        return {"primary_metric": metric, "candidate": candidate, "deployed": None, "tolerance": tolerance,
                "decision": "deploy", "reason": "no deployed version to compare with"}
    delta = candidate - baseline.primary
    deploy = delta >= -tolerance
    reason = (f"{metric} {candidate:.4f} vs deployed v{baseline.version.number} {baseline.primary:.4f} "
              f"({delta:+.4f}, tolerance {tolerance})")
    return {
        "primary_metric": metric, "candidate": candidate, "deployed": baseline.primary,
        "deployed_version": baseline.version.number, "deployed_version_id": baseline.version.pk,
        "deployed_metric_source": baseline.source, "delta": delta, "tolerance": tolerance,
        "decision": "deploy" if deploy else "reject", "reason": reason,
    }


@transaction.atomic
def model_version_register(
    *,
    run: TrainingRun,
    snapshot: Snapshot,
    weights_path: str,
    metrics: dict,
    architecture: str,
    parent: ModelVersion | None,
    baseline: Baseline | None,
) -> ModelVersion | None:
    """Store a trained model as the next version, apply the promotion gate and end the run.

    One transaction with the run row locked: if the run was cancelled or marked failed
    meanwhile, nothing is written and None is returned; the deployed model changes only
    through model_version_deploy.
    """
    locked = TrainingRun.objects.select_for_update().filter(pk=run.pk).first()
    if locked is None or locked.status != JobStatus.RUNNING or locked.cancel_requested:
        return None
    project = Project.objects.select_for_update().get(pk=run.project_id)
    number = (ModelVersion.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
    primary = float(metrics["primary"])
    comparison = promotion_compare(
        candidate=primary, baseline=baseline, tolerance=project.promotion_tolerance,
        metric=str(metrics.get("primary_metric", "primary")),
    )
    now_deployed = selectors.model_version_deployed(project)
    if (now_deployed and now_deployed.pk) != (baseline.version.pk if baseline else None):
        # someone deployed or rolled back during training: the comparison is stale, so an
        # admin decides (the version stays a candidate)
        comparison.update(decision="hold", reason=comparison["reason"] + "; the deployed version changed "
                          "during training, deploy by hand if wanted")
    # The floor is final: a model that cannot beat it is not even left for an admin to deploy.
    comparison["floor"] = deployment_floor(project=project, snapshot=snapshot, metrics=metrics)
    if not comparison["floor"]["passed"]:
        comparison.update(decision="reject", reason="below the deployment floor: " + comparison["floor"]["reason"])
    version = ModelVersion(
        project=project, number=number, backend=backend_kind_for(project), architecture=architecture[:100],
        parent=parent, class_ids=snapshot.class_ids,
        dataset_size=len(snapshot.spec.train), validation_size=len(snapshot.spec.val),
        metrics=json_finite(metrics), primary_metric=primary, comparison=comparison,
        status=VersionStatus.CANDIDATE,
    )
    with open(weights_path, "rb") as handle:
        version.weights.save(Path(weights_path).name, File(handle), save=False)
    try:
        version.save()
        TrainingRun.objects.filter(pk=locked.pk).update(model_version=version)
        if comparison["decision"] == "deploy":
            model_version_deploy(version=version)
        elif comparison["decision"] == "reject":
            ModelVersion.objects.filter(pk=version.pk).update(status=VersionStatus.REJECTED)
    except BaseException:
        version.weights.delete(save=False)  # the transaction rolls back: leave no orphan file
        raise
    outcome = {"deploy": "deployed", "reject": "rejected", "hold": "kept as a candidate"}[comparison["decision"]]
    job_finish(
        TrainingRun, run.pk, JobStatus.SUCCEEDED, progress=1.0,
        message=f"v{number} {outcome}: {comparison['reason']}"[:500],
    )
    version.refresh_from_db()
    return version


# --- deployment ---------------------------------------------------------------------------


@transaction.atomic
def model_version_deploy(*, version: ModelVersion, requested_by=None, rescore: bool = True) -> ModelVersion:
    """Make ``version`` the deployed one (deploy and rollback are this same operation) and
    queue a prelabel run so the pool is re-scored by it. One transaction: the previous
    version is retired and this one deployed together, or neither."""
    Project.objects.select_for_update().get(pk=version.project_id)  # serialises deploys of a project
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    floor = (version.comparison or {}).get("floor") or {}
    if floor.get("passed") is False:
        raise ValidationError(f"Model version {version.number} is below the deployment floor: {floor['reason']}.")
    if not version.weights or not version.weights.storage.exists(version.weights.name):
        raise ValidationError(f"Model version {version.number} has no weights to deploy.")
    if not version.class_ids:
        raise ValidationError(f"Model version {version.number} has no classes: it cannot pre-label anything.")
    if version.status == VersionStatus.QUEUE and version.metrics.get("head") == "multilabel":
        raise ValidationError(f"Model version {version.number} only ranks the queue; it cannot pre-label.")
    if not version.is_deployed:
        ModelVersion.objects.filter(project_id=version.project_id, is_deployed=True).update(
            is_deployed=False, status=VersionStatus.RETIRED
        )
        version.is_deployed = True
        version.status = VersionStatus.DEPLOYED
        version.deployed_at = timezone.now()
        version.save(update_fields=["is_deployed", "status", "deployed_at"])
    if version.backend == Backend.LINEAR:
        # A queue head pre-labels each image as it is served; a worker re-ranks the queue by
        # it (the fit that deployed it re-ranks itself: rescore=False).
        if rescore:
            enqueue_on_commit("training.tasks.queue_priorities_refresh", version.project_id, robust=True)
    else:
        prelabel_run_start(project=version.project, model_version=version, requested_by=requested_by,
                           reuse_active=True)
    return version


# --- prelabel -----------------------------------------------------------------------------


@transaction.atomic
def prelabel_run_start(
    *,
    project: Project,
    model_version: ModelVersion | None = None,
    requested_by=None,
    reuse_active: bool = False,
) -> PrelabelRun:
    """Queue prediction of the pool by ``model_version`` (default: the deployed one).

    An active run of the same version raises Conflict with its id, or is returned as is with
    ``reuse_active`` (a deploy that finds its re-scoring already under way)."""
    version = model_version or selectors.model_version_deployed(project)
    if version is None:
        raise ValidationError("The project has no deployed model version; train or deploy one first.")
    active = selectors.prelabel_run_active(version)
    if active is not None:
        if reuse_active:
            return active
        raise Conflict(f"Prelabel run {active.pk} is already {active.status} for v{version.number}.",
                       run_id=active.pk)
    try:
        with transaction.atomic():
            run = PrelabelRun.objects.create(project=project, model_version=version, requested_by=requested_by)
    except IntegrityError:
        active = selectors.prelabel_run_active(version)
        if reuse_active and active is not None:
            return active
        raise Conflict("A prelabel run is already active for this version.",
                       run_id=active.pk if active else None) from None
    job_dispatch_on_commit(run)
    return run


def prelabel_run_cancel(*, run: PrelabelRun) -> PrelabelRun:
    """A running run stops after its current batch; the predictions written so far stay."""
    return job_cancel(run)


def prelabel_run_execute(*, run_id: int) -> PrelabelRun | None:
    """Predict every pool image the run's version has not scored yet, writing Predictions in
    bulk as batches finish, then refresh queue priorities. Safe to re-run: finished images are
    skipped, and a Prediction is unique per image and version."""
    from .prelabel import prelabel_pool  # torch: imported where a worker predicts, not in web processes

    if not job_claim(PrelabelRun, run_id, message="Loading the model"):
        return None
    run = PrelabelRun.objects.select_related("project", "model_version").get(pk=run_id)
    try:
        with JobPulse(PrelabelRun, run_id) as pulse:
            stats = prelabel_pool(run=run, should_stop=pulse.should_stop)
            if pulse.should_stop():
                raise TrainingCancelled()
        _queue_refresh(run.project)
        job_finish(PrelabelRun, run_id, JobStatus.SUCCEEDED, progress=1.0, stats=stats,
                   message=f"{stats['written']} predictions written, {stats['errors']} images unreadable")
    except TrainingCancelled:
        job_finish(PrelabelRun, run_id, JobStatus.CANCELLED, message="Cancelled on request")
    except Exception as exc:
        job_fail(PrelabelRun, run_id, exc)
    run.refresh_from_db()
    return run


def _queue_refresh(project: Project) -> None:
    """Re-order the queue from the deployed version's predictions (the queue's own service)."""
    queue_priorities_refresh(project=project)


# --- triggers -----------------------------------------------------------------------------


def auto_retrain_check() -> list[int]:
    """Start a run in every project whose verified labels grew by ``retrain_every_n_labels``
    since its last run (or since the start); return the new runs' ids."""
    started = []
    for project in Project.objects.filter(retrain_every_n_labels__gt=0):
        last = selectors.training_run_latest(project)
        since = last.labels_at_start if last is not None else 0
        if selectors.verified_label_count(project) - since < project.retrain_every_n_labels:
            continue
        try:
            run = training_run_start(project=project, trigger=TrainingTrigger.AUTO)
        except Conflict:
            continue  # one is queued or running already
        started.append(run.pk)
    return started


# --- embeddings ---------------------------------------------------------------------------

EMBED_TASK = "training.tasks.embed_images"


def embedding_run_start(
    *,
    project: Project,
    requested_by=None,
    image_ids: Iterable[int] | None = None,
    model_key: str | None = None,
    join: bool = False,
    enqueue: bool = True,
) -> EmbeddingRun:
    """Queue embedding of the project's images that have no vector under ``model_key``
    (default ``VISION_EMBEDDING_MODEL``): all of them, or those of ``image_ids``.

    Raises Conflict (409) with the active run's id while one is queued or running. With
    ``join`` (the import trigger) a start is never refused: a queued run takes the request
    over (its scope widened to cover ``image_ids``), and while one runs a single follow-up
    is queued for the images that run did not see. So a burst of imports makes one queued
    run, and none is lost to a run that had already listed its images."""
    key = selectors.embedding_key(model_key)
    if key not in EMBEDDING_MODELS:
        raise ValidationError(f"Unknown embedding model {key!r}; expected one of {sorted(EMBEDDING_MODELS)}.")
    ids = sorted({int(i) for i in image_ids}) if image_ids is not None else None
    for _attempt in range(2):  # a second try when a racing request queued one in between
        with transaction.atomic():
            queued = EmbeddingRun.objects.select_for_update().filter(project=project, status=JobStatus.QUEUED).first()
            active = queued or selectors.embedding_run_active(project)
            if active is not None and not join:
                raise Conflict(f"Embedding run {active.pk} is already {active.status} for this project.",
                               run_id=active.pk)
            if queued is not None:
                return _embedding_run_join(queued, ids)
            try:
                with transaction.atomic():
                    run = EmbeddingRun.objects.create(
                        project=project, requested_by=requested_by, model_key=key, image_ids=ids
                    )
            except IntegrityError:
                if not join:
                    raced = selectors.embedding_run_active(project)
                    raise Conflict("An embedding run is already active for this project.",
                                   run_id=raced.pk if raced else None) from None
                continue
            if enqueue:
                job_dispatch_on_commit(run)
            return run
    raise Conflict("Embedding runs are being started concurrently for this project; try again.")


def _embedding_run_join(queued: EmbeddingRun, ids: list[int] | None) -> EmbeddingRun:
    """Fold a request into the queued run (row locked by the caller). One whose message never
    reached the broker is sent again by the re-dispatch sweep (core.jobs)."""
    if queued.image_ids is not None:
        queued.image_ids = None if ids is None else sorted(set(queued.image_ids) | set(ids))
        queued.save(update_fields=["image_ids"])
    return queued


def embedding_run_cancel(*, run: EmbeddingRun) -> EmbeddingRun:
    """A running run stops after its current batch; the vectors written so far stay, so a later
    run goes on from there."""
    return job_cancel(run)


def embeddings_on_import(sender, *, project: Project, image_ids: list[int], **kwargs) -> None:
    """Receiver of labeling.signals.images_imported: new images get their vectors."""
    if settings.VISION_EMBED_ON_IMPORT and image_ids:
        embedding_run_start(project=project, join=True)


def _rank_with_new_vectors(project_id: int) -> None:
    """New vectors change the ranking (the cold start picks among them; the queue model scores
    them): the queue is re-ranked on the default queue, by task name."""
    enqueue("training.tasks.queue_priorities_refresh", project_id)


def embedding_run_execute(*, run_id: int) -> EmbeddingRun | None:
    """Embed every image of the run's scope that has no vector under its model key, writing
    vectors in bulk after each batch; returns None when there was nothing to claim.

    Safe to re-run: embedded images are skipped and a vector is unique per image and key. An
    unreadable image is counted in ``stats`` and the run goes on; it has no vector, so the
    next run tries it again."""
    written: list[int] = []

    def after(run: EmbeddingRun, stats: dict) -> None:
        if stats["embedded"]:
            _rank_with_new_vectors(run.project_id)
            _near_duplicates_flag(run.project, written)
            _proposals_for_new_vectors(run.project)

    # a failure, the soft time limit included, leaves the vectors written so far
    return job_run(EmbeddingRun, run_id, claim_message="Loading the embedding model",
                   work=lambda run, should_stop: _embed_missing(run, should_stop, written),
                   summary=lambda stats: f"{stats['embedded']} images embedded, {stats['errors']} unreadable",
                   cancelled="Cancelled on request after {summary}", after=after)


def _proposals_for_new_vectors(project: Project) -> None:
    """Deployed one-shot proposals score the stored vectors: images embedded since get theirs
    from a prelabel run (which skips the images already scored; propagation then spreads the
    examples over the new images only)."""
    deployed = selectors.model_version_deployed(project)
    if deployed is not None and deployed.backend in EMBEDDING_BACKENDS:
        prelabel_run_start(project=project, model_version=deployed, reuse_active=True)


def _near_duplicates_flag(project: Project, image_ids: list[int]) -> None:
    """Flag the new images that are near-duplicates of older ones; a failure here is logged
    and leaves the finished embedding run as it is."""
    from .similarity import near_duplicates_flag

    try:
        near_duplicates_flag(project=project, image_ids=image_ids)
    except Exception:
        logger.exception("near-duplicate check failed for project %s", project.pk)


def _embed_missing(run: EmbeddingRun, should_stop, written: list[int]) -> dict[str, Any]:
    from django.core.files.storage import default_storage

    from ml.embeddings import Embedder

    missing = selectors.embeddings_missing(run.project, run.model_key).values_list("id", "file")
    if run.image_ids is None:
        todo = list(missing)
    else:  # in chunks: SQLite bounds the parameters of one query
        todo = [row for i in range(0, len(run.image_ids), 900)
                for row in missing.filter(pk__in=run.image_ids[i : i + 900])]
    EmbeddingRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(
        total=len(todo), message=f"Embedding {len(todo)} images"
    )
    stats: dict[str, Any] = {"model_key": run.model_key, "total": len(todo), "processed": 0, "embedded": 0,
                             "errors": 0, "unreadable": [], "stopped": False}
    if not todo:
        return stats
    t0 = time.perf_counter()
    embedder = Embedder(run.model_key, device=settings.VISION_EMBED_DEVICE or None,
                        batch_size=settings.VISION_EMBED_BATCH_SIZE)
    stats.update(device=str(embedder.device), batch_size=embedder.batch_size,
                 model_load_s=round(time.perf_counter() - t0, 3))
    progress = job_progress_writer(EmbeddingRun, run.pk, len(todo), count_field="processed")
    openers = [functools.partial(default_storage.open, name, "rb") for _, name in todo]
    t0 = time.perf_counter()
    batches = embedder.stream(embedder.file_loader(o) for o in openers)
    try:
        with contextlib.closing(batches):  # leaving early stops the decode threads at once
            for batch in batches:
                rows = todo[batch.start : batch.start + len(batch.vectors)]
                written.extend(_embeddings_write(run, rows, batch.vectors, batch.errors, stats))
                stats["processed"] += len(rows)
                if should_stop():
                    raise JobStopped()
                progress(stats["processed"])
    except JobStopped:
        stats["stopped"] = True
    seconds = time.perf_counter() - t0
    stats.update(seconds=round(seconds, 3),
                 images_per_s=round(stats["processed"] / seconds, 2) if seconds > 0 else None)
    return stats


def _embeddings_write(run: EmbeddingRun, rows, vectors, errors, stats: dict[str, Any]) -> list[int]:
    """Store a batch's vectors; returns the ids of the images whose vectors it stored."""
    new = [
        ImageEmbedding(project_id=run.project_id, image_id=image_id, model_key=run.model_key,
                       vector=vector.astype(selectors.VECTOR_DTYPE).tobytes())
        for (image_id, _), vector, error in zip(rows, vectors, errors)
        if error is None
    ]
    for (image_id, name), error in zip(rows, errors):
        if error is not None:
            stats["errors"] += 1
            if len(stats["unreadable"]) < 100:
                stats["unreadable"].append({"image_id": image_id, "file": name, "error": error[:300]})
    try:
        with transaction.atomic():
            ImageEmbedding.objects.bulk_create(new, ignore_conflicts=True)
    except IntegrityError:  # an image was deleted meanwhile: write the ones that remain
        alive = set(Image.objects.filter(pk__in=[e.image_id for e in new]).values_list("id", flat=True))
        new = [e for e in new if e.image_id in alive]
        ImageEmbedding.objects.bulk_create(new, ignore_conflicts=True)
    stats["embedded"] += len(new)
    return [e.image_id for e in new]
