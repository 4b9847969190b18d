"""One export of a project's current labels (see selectors.image_latest_labels).

Small exports are written straight into the response; large ones run as an ExportJob that
writes a zip to a local temporary file and saves it through the storage API under
projects/<id>/exports/ under a random name, served to the project's leads only by the
export job's download view (never as plain media) until export_files_expire removes it
(hourly beat, VISION_EXPORT_RETENTION_DAYS).
"""

from __future__ import annotations

import logging
import secrets
import tempfile
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from core.jobs import (
    JobStopped,
    job_cancel,
    job_claim,
    job_dispatch_on_commit,
    job_fail,
    job_finish,
    job_progress_writer,
)
from core.models import ACTIVE_JOB_STATUSES, JobStatus, Project, TaskType
from vision_project.api_errors import Conflict

from ..importers.service import staging_dir
from ..models import ExportJob, OriginalAccess
from ..selectors import image_latest_labels
from .coco import coco_write
from .csv import csv_write
from .cvat import cvat_write
from .items import export_classes, export_items
from .labelstudio import labelstudio_write
from .sinks import ZipSink
from .voc import voc_write
from .yolo import yolo_classify_write, yolo_write

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("coco", "yolo", "voc", "labelstudio", "cvat", "csv")
# What each format holds, and the task types it can export.
_FORMAT_HOLDS = {"coco": "boxes or polygons", "yolo": "boxes, polygons or classes", "voc": "boxes",
                 "labelstudio": "boxes or classes", "cvat": "boxes or classes", "csv": "boxes or classes"}
_FORMAT_TASK_TYPES = {
    "coco": {TaskType.DETECTION, TaskType.SEGMENTATION},
    "yolo": {TaskType.DETECTION, TaskType.SEGMENTATION, TaskType.CLASSIFICATION},
    "voc": {TaskType.DETECTION},
    "labelstudio": {TaskType.DETECTION, TaskType.CLASSIFICATION},
    "cvat": {TaskType.DETECTION, TaskType.CLASSIFICATION},
    "csv": {TaskType.DETECTION, TaskType.CLASSIFICATION},
}


class ExportRefused(ValueError):
    pass


def export_check_format(*, project: Project, export_format: str) -> None:
    if export_format not in EXPORT_FORMATS:
        raise ExportRefused(
            f"unknown export format {export_format!r}; use one of {', '.join(EXPORT_FORMATS)}"
        )
    if project.task_type not in _FORMAT_TASK_TYPES[export_format]:
        fitting = [name for name in EXPORT_FORMATS if project.task_type in _FORMAT_TASK_TYPES[name]]
        raise ExportRefused(f"{export_format} holds {_FORMAT_HOLDS[export_format]}; for a {project.task_type} "
                            f"project use {' or '.join(fitting) or 'no export format yet'}")


def export_write(
    *,
    project: Project,
    export_format: str,
    sink,
    include_images: bool = True,
    on_progress: Callable[[int], None] | None = None,
    originals_for=None,
) -> None:
    """Write the export into sink (a DirSink or ZipSink). ``originals_for``: the admin who
    asked for the kept originals of blurred images instead of their renders; each original
    written is logged as an opening by them, as the original endpoint logs one."""
    export_check_format(project=project, export_format=export_format)
    done = 0

    def on_item() -> None:
        nonlocal done
        done += 1
        if on_progress:
            on_progress(done)

    detection = project.task_type == TaskType.DETECTION
    objects = project.task_type != TaskType.CLASSIFICATION
    items, classes = export_items(project, originals=originals_for is not None), export_classes(project)
    if originals_for is not None and include_images:
        items = _logged_originals(items, project, originals_for)
    options = {"include_images": include_images, "on_item": on_item}
    if export_format == "coco":
        coco_write(items, classes, sink, **options)
    elif export_format == "voc":
        voc_write(items, classes, sink, **options)
    elif export_format == "csv":
        csv_write(items, classes, sink, detection=detection, **options)
    elif export_format == "labelstudio":
        labelstudio_write(items, classes, sink, detection=detection, **options)
    elif export_format == "cvat":
        cvat_write(items, classes, sink, detection=detection, **options)
    elif objects:
        yolo_write(items, classes, sink, **options)
    else:
        yolo_classify_write(items, classes, sink, **options)


def _logged_originals(items, project: Project, admin):
    """Pass the items through, logging each one whose written file is a kept original."""
    for item in items:
        if item.stored_name != item.image.file.name:
            OriginalAccess.objects.create(project=project, image=item.image, image_name=item.image.original_name,
                                          user=admin, username=admin.get_username())
        yield item


def export_zip(*, project: Project, export_format: str, include_images: bool = True, on_progress=None,
               originals_for=None):
    """The export as a zip in an anonymous temporary file, rewound; the caller closes it."""
    fileobj = tempfile.TemporaryFile(dir=staging_dir())
    try:
        with ZipSink(fileobj) as sink:
            export_write(project=project, export_format=export_format, sink=sink, include_images=include_images,
                         on_progress=on_progress, originals_for=originals_for)
    except BaseException:
        fileobj.close()
        raise
    fileobj.seek(0)
    return fileobj


def export_size(*, project: Project) -> int:
    """How many images an export would hold."""
    return image_latest_labels(project).count()


@transaction.atomic
def export_job_create(*, project: Project, export_format: str, requested_by=None,
                      originals: bool = False) -> ExportJob:
    """Queue an export; raises Conflict (409) while one of the same format is under way.
    ``originals`` (callers check the admin role): kept originals instead of blurred renders."""
    export_check_format(project=project, export_format=export_format)
    Project.objects.select_for_update().filter(pk=project.pk).first()  # serialize duplicate requests
    running = ExportJob.objects.filter(
        project=project, format=export_format, status__in=ACTIVE_JOB_STATUSES
    ).first()
    if running is not None:
        raise Conflict(f"A {export_format} export of this project is already under way.", job_id=running.pk)
    job = ExportJob.objects.create(project=project, format=export_format, requested_by=requested_by,
                                   originals=originals)
    job_dispatch_on_commit(job)
    return job


def export_job_execute(*, job_id: int) -> None:
    if not job_claim(ExportJob, job_id):
        return
    job = ExportJob.objects.select_related("project", "requested_by").get(pk=job_id)
    saved = ""
    try:
        total = export_size(project=job.project)
        on_progress = job_progress_writer(ExportJob, job_id, total, cap=0.99)
        originals_for = job.requested_by if job.originals else None
        with export_zip(project=job.project, export_format=job.format, on_progress=on_progress,
                        originals_for=originals_for) as fileobj:
            name = f"projects/{job.project_id}/exports/{job.pk}-{secrets.token_urlsafe(24)}-{job.format}.zip"
            saved = default_storage.save(name, File(fileobj, name=name))
        finished = job_finish(ExportJob, job_id, JobStatus.SUCCEEDED, progress=1.0, result_file=saved,
                              message=f"{total} labeled images exported as {job.format}")
        if not finished:  # failed or cancelled meanwhile: keep no orphan file
            default_storage.delete(saved)
    except JobStopped:
        # cancelled on request (recorded here, only from RUNNING) or marked failed meanwhile
        job_finish(ExportJob, job_id, JobStatus.CANCELLED, message="Cancelled on request")
    except Exception as exc:
        if saved:
            default_storage.delete(saved)
        job_fail(ExportJob, job_id, exc, error=f"export failed: {exc}")


def export_job_cancel(*, job: ExportJob) -> ExportJob:
    """Stop an export: a queued one at once, a running one at its next progress write."""
    return job_cancel(job)


def export_files_expire(*, older_than: timedelta | None = None) -> int:
    """Delete the zips of exports finished longer ago than `older_than` (default: the
    VISION_EXPORT_RETENTION_DAYS setting), so finished exports do not fill the disk; the
    job rows stay, saying the file expired. Returns how many files were removed."""
    older_than = older_than or timedelta(days=settings.VISION_EXPORT_RETENTION_DAYS)
    expired = ExportJob.objects.filter(
        status=JobStatus.SUCCEEDED, finished_at__lt=timezone.now() - older_than
    ).exclude(result_file="")
    removed = 0
    for job in expired.only("pk", "result_file", "message"):
        name = job.result_file.name
        # The row first: a download never finds the row pointing at a deleted file.
        if ExportJob.objects.filter(pk=job.pk, result_file=name).update(
            result_file="", message=f"{job.message} (the file expired; export again)".strip()[:500]
        ):
            default_storage.delete(name)
            removed += 1
    return removed
