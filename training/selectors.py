"""Reads on the model side: verified labels, active runs, the deployed version."""
from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from labeling import selectors as labeling_selectors
from labeling.models import (
    ACTIVE_JOB_STATUSES,
    Annotation,
    AnnotationKind,
    Image,
    Project,
    ReviewStatus,
    Split,
)
from labeling.selectors import ACCEPTED_LABEL

from .models import ModelVersion, Prediction, PrelabelRun, TrainingRun


def verified_annotations(project: Project) -> QuerySet[Annotation]:
    """Annotations that count as a label (labeling.selectors.ACCEPTED_LABEL): accepted or
    corrected, submitted, not rejected by a reviewer; imports count."""
    return Annotation.objects.filter(ACCEPTED_LABEL, project=project)


def training_labels(project: Project) -> QuerySet[Annotation]:
    """What training and evaluation learn from: each image's current label
    (labeling.selectors.image_latest_labels), with its image, on images of the train or
    validation split that carry no "unclear" flag a lead has not sent back (a pending flag
    keeps the image out until a lead decides; a confirmed one keeps it out for good).
    One row per image, by image id."""
    standing_flag = Annotation.objects.filter(image=OuterRef("image"), kind=AnnotationKind.FLAG).exclude(
        review_status=ReviewStatus.REJECTED
    )
    return (
        labeling_selectors.image_latest_labels(project)
        .filter(image__split__in=(Split.TRAIN, Split.VALIDATION))
        .exclude(Exists(standing_flag))
        .select_related("image")
    )


def verified_label_count(project: Project) -> int:
    """How many verified labels the project holds; the auto-retrain trigger counts its growth."""
    return verified_annotations(project).count()


def training_run_active(project: Project) -> TrainingRun | None:
    return TrainingRun.objects.filter(project=project, status__in=ACTIVE_JOB_STATUSES).first()


def training_run_latest(project: Project) -> TrainingRun | None:
    return TrainingRun.objects.filter(project=project).order_by("-id").first()


def model_version_deployed(project: Project) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, is_deployed=True).first()


def prelabel_run_active(model_version: ModelVersion) -> PrelabelRun | None:
    return PrelabelRun.objects.filter(model_version=model_version, status__in=ACTIVE_JOB_STATUSES).first()


def images_to_prelabel(model_version: ModelVersion) -> QuerySet[Image]:
    """The unlabeled pool (images with an open queue row) minus images this version has
    already scored, so a re-run picks up where the last one stopped."""
    from labeling.models import TaskStatus

    done = Prediction.objects.filter(model_version=model_version, image=OuterRef("pk"))
    return (
        Image.objects.filter(project_id=model_version.project_id, tasks__status=TaskStatus.OPEN)
        .exclude(Exists(done))
        .distinct()
        .order_by("id")
    )
