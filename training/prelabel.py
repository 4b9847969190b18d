"""The Django side of prelabel: feed the pool to the backend's batched predictor and write
Predictions in bulk as batches finish.

The backend does the fast part (read-ahead, decode on the GPU or a CPU pool, letterbox and
batch on the device, fp16 forward); this module never touches single images in Python
beyond turning each result into one row.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from django.conf import settings
from django.utils import timezone

from core.models import Backend, JobStatus, ModelVersion, Prediction, Project, TaskType
from core.storage import local_path, local_paths
from ml.base import ImagePrediction
from ml.batching import StageTimings
from ml.registry import load_backend
from ml.sampling import (
    MEASURES,
    classification_uncertainty,
    detection_image_uncertainty,
    segmentation_image_uncertainty,
)

from . import selectors
from .models import EMBEDDING_BACKENDS, PrelabelRun

MAX_ERRORS_KEPT = 50
_DIGITS = 4  # probabilities are stored rounded: the payload stays small, the order stays


def uncertainty_measure(project: Project) -> str:
    """The measure the project's strategy ranks by; diversity and random still get entropy."""
    return project.sampling_strategy if project.sampling_strategy in MEASURES else "entropy"


def prediction_row(
    *, pred: ImagePrediction, image_id: int, version: ModelVersion, project: Project
) -> Prediction:
    """One Prediction from a backend result (payload schema on the Prediction model)."""
    class_ids = version.class_ids
    measure = uncertainty_measure(project)
    if project.task_type == TaskType.CLASSIFICATION:
        probs = np.asarray(pred.probs, dtype=np.float64)
        payload = {"labels": [class_ids[int(probs.argmax())]], "probs": np.round(probs, _DIGITS).tolist()}
        uncertainty = float(classification_uncertainty(probs, measure)[0])
    elif project.task_type == TaskType.SEGMENTATION:
        class_scores = np.asarray(pred.class_scores if pred.class_scores is not None else np.zeros((0, 1)))
        mask_uncertainty = np.asarray(pred.mask_uncertainty if pred.mask_uncertainty is not None else [])
        payload = {
            "polygons": [
                {
                    **_rounded_instance(rings), "label": class_ids[int(cls)], "score": round(float(score), _DIGITS),
                    "probs": np.round(scores, _DIGITS).tolist(), "mask_uncertainty": round(float(mask_u), _DIGITS),
                }
                for rings, cls, score, scores, mask_u in zip(pred.polygons or [], pred.classes, pred.scores,
                                                             class_scores, mask_uncertainty)
            ]
        }
        uncertainty = segmentation_image_uncertainty(
            class_scores, mask_uncertainty, measure=measure, aggregation=project.detection_aggregation
        )
    else:
        class_scores = np.asarray(pred.class_scores if pred.class_scores is not None else np.zeros((0, 1)))
        payload = {
            "boxes": [
                {
                    "x1": round(float(box[0]), 1), "y1": round(float(box[1]), 1),
                    "x2": round(float(box[2]), 1), "y2": round(float(box[3]), 1),
                    "label": class_ids[int(cls)], "score": round(float(score), _DIGITS),
                    "probs": np.round(scores, _DIGITS).tolist(),
                }
                for box, cls, score, scores in zip(pred.boxes, pred.classes, pred.scores, class_scores)
            ]
        }
        uncertainty = detection_image_uncertainty(
            class_scores, measure=measure, aggregation=project.detection_aggregation
        )
    embedding = None
    if pred.embedding is not None:
        embedding = np.asarray(pred.embedding, dtype=np.float32).tobytes()
    return Prediction(image_id=image_id, model_version=version, payload=payload,
                      uncertainty=uncertainty, embedding=embedding)


def _rounded_instance(rings) -> dict:
    """An instance's rings to 0.1 px, as "points" (one ring) or "rings" (labeling/payloads.py)."""
    rounded = [[[round(float(x), 1), round(float(y), 1)] for x, y in ring] for ring in rings]
    return {"points": rounded[0]} if len(rounded) == 1 else {"rings": rounded}


def predict_kwargs(version: ModelVersion, timings: StageTimings) -> dict:
    if version.backend in (Backend.YOLO, Backend.YOLO_SEG):
        return {"conf": settings.VISION_PRELABEL_MIN_SCORE, "max_det": settings.VISION_PRELABEL_MAX_BOXES,
                "timings": timings}
    return {"timings": timings}


def _chunks(items: Iterable, size: int):
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def prelabel_pool(*, run: PrelabelRun, should_stop: Callable[[], bool]) -> dict:
    """Predict the images the run's version has not scored; return counts and stage timings.

    Unreadable images are counted and named in the stats (the first few) and get no row, so
    a later run retries them; every other image of the batch still lands.
    """

    version, project = run.model_version, run.project
    todo = list(selectors.images_to_prelabel(version).values_list("id", "file"))
    PrelabelRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(
        total=len(todo), message=f"Predicting {len(todo)} images"
    )
    stats: dict = {"total": len(todo), "written": 0, "errors": 0, "error_samples": []}
    if not todo:
        return stats
    if version.backend in EMBEDDING_BACKENDS:
        return _prelabel_from_embeddings(run, [image_id for image_id, _ in todo], stats, should_stop)
    backend = load_backend(version.backend, local_path(version.weights.name), selectors.version_class_names(version))
    timings = StageTimings()
    image_ids = [image_id for image_id, _ in todo]
    paths = local_paths(name for _, name in todo)
    predictions = backend.predict(paths, settings.VISION_PRELABEL_BATCH_SIZE, **predict_kwargs(version, timings))
    done = 0
    for chunk in _chunks(zip(image_ids, predictions), settings.VISION_PRELABEL_WRITE_EVERY):
        rows = []
        for image_id, pred in chunk:
            if pred.error:
                stats["errors"] += 1
                if len(stats["error_samples"]) < MAX_ERRORS_KEPT:
                    stats["error_samples"].append({"image_id": image_id, "error": pred.error})
                continue
            rows.append(prediction_row(pred=pred, image_id=image_id, version=version, project=project))
        # ignore_conflicts: a row another run wrote first stays; this one is the same prediction
        Prediction.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
        stats["written"] += len(rows)
        done += len(chunk)
        PrelabelRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(
            processed=done, progress=0.95 * done / len(todo), heartbeat_at=timezone.now(),
            message=f"Predicted {done}/{len(todo)} images",
        )
        if should_stop():
            break
    stats["timings"] = timings.as_dict()
    return stats


def _prelabel_from_embeddings(run: PrelabelRun, image_ids: list[int], stats: dict,
                              should_stop: Callable[[], bool]) -> dict:
    """One-shot proposals (training/oneshot.py) score the stored embeddings, not the image
    files: an image without a vector yet is counted and gets no row, so a later run retries
    it. Propagation scores the whole pool together (its graph spans it), then writes in the
    same chunks as the rest."""
    from ml.oneshot import ProposalModel

    version, project = run.model_version, run.project
    with version.weights.open("rb") as handle:
        model = ProposalModel.from_bytes(handle.read())
    ids, vectors = selectors.embedding_matrix(project=project, image_ids=image_ids)
    stats["errors"] = len(image_ids) - len(ids)
    stats["error_samples"] = [{"image_id": i, "error": "no embedding yet"}
                              for i in sorted(set(image_ids) - set(ids.tolist()))[:MAX_ERRORS_KEPT]]
    probs = model.predict_proba(vectors) if model.method == "propagation" else None
    step = settings.VISION_PRELABEL_WRITE_EVERY
    for start in range(0, len(ids), step):
        chunk = probs[start : start + step] if probs is not None else model.predict_proba(vectors[start : start + step])
        rows = [prediction_row(pred=ImagePrediction(path="", probs=p), image_id=int(i), version=version,
                               project=project) for i, p in zip(ids[start : start + step].tolist(), chunk)]
        Prediction.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
        stats["written"] += len(rows)
        done = start + len(rows)
        PrelabelRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(
            processed=done, progress=0.95 * done / max(len(ids), 1), heartbeat_at=timezone.now(),
            message=f"Proposed classes for {done}/{len(ids)} images",
        )
        if should_stop():
            break
    return stats
