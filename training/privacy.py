"""What the model side gives privacy blurring (connected in training/apps.py): the deployed
detector as a blur source, and fresh embeddings once an image's pixels changed."""
from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import transaction

from core.models import Backend, ModelVersion, Prediction, Project, TaskType
from core.storage import local_path
from labeling.privacy.blur import Box
from labeling.privacy.detectors import Detection

from . import selectors
from .models import ImageEmbedding


def deployed_detector_for_blur(project: Project) -> Callable[[str], list[Detection]] | None:
    """The project's deployed YOLO detector as a function from an image path to its boxes with
    class names; None when the project deploys no detector."""
    from ml.registry import load_backend

    if project.task_type != TaskType.DETECTION:
        return None
    version = ModelVersion.objects.filter(project=project, is_deployed=True, backend=Backend.YOLO).first()
    if version is None or not version.weights:
        return None
    names = selectors.version_class_names(version)
    backend = load_backend(version.backend, local_path(version.weights.name), names)

    def detect(path: str) -> list[Detection]:
        pred = next(iter(backend.predict([path], 1, conf=settings.VISION_PRELABEL_MIN_SCORE)))
        if pred.error:
            raise RuntimeError(f"the deployed detector could not read the image: {pred.error}")
        return [Detection(Box(*map(float, box)), float(score), names[int(cls)])
                for box, cls, score in zip(pred.boxes, pred.classes, pred.scores)]

    return detect


def features_drop_after_render(sender, *, project: Project, image_ids: list[int], **kwargs) -> None:
    """Receiver of labeling.signals.images_rendered: the images' vectors (and the features kept
    with predictions) came from pixels that are gone; they go, and the images are embedded again."""
    from .services import embedding_run_start

    with transaction.atomic():
        for start in range(0, len(image_ids), 900):
            chunk = image_ids[start:start + 900]
            ImageEmbedding.objects.filter(image_id__in=chunk).delete()
            Prediction.objects.filter(image_id__in=chunk).exclude(embedding=None).update(embedding=None)
        if settings.VISION_EMBED_ON_IMPORT:
            embedding_run_start(project=project, image_ids=image_ids, join=True)
