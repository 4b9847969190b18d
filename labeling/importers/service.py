"""One import: images first (streamed item by item), then the labels that came with them.

import_run does the work and returns the report; import_job_create / import_job_execute
wrap it in an ImportJob row (claimed with a conditional update, heart-beating, terminal
writes conditional on RUNNING) for the API's background uploads and the command.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from django.conf import settings

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
from core.storage import staged_delete, staged_folder, staged_in_storage_sweep
from vision_project.json_input import json_loads

from ..ingest import IngestBatch
from ..models import ImportJob
from ..signals import images_imported_send
from .classification import csv_records, folder_records
from .coco import coco_records
from .cvat import cvat_records
from .labelstudio import labelstudio_records
from .records import LabelError, labels_apply
from .sources import SourceItem, folder_files, source_count, source_items
from .voc import voc_records
from .yolo import yolo_records

logger = logging.getLogger(__name__)

LABEL_FORMATS = ("coco", "yolo", "voc", "labelstudio", "cvat", "folder", "csv")
_FORMAT_TASK_TYPES = {
    "coco": {TaskType.DETECTION, TaskType.SEGMENTATION},
    "labelstudio": {TaskType.DETECTION, TaskType.CLASSIFICATION},
    "cvat": {TaskType.DETECTION, TaskType.CLASSIFICATION},
    "yolo": {TaskType.DETECTION, TaskType.SEGMENTATION},
    "voc": {TaskType.DETECTION},
    "folder": {TaskType.CLASSIFICATION},
    "csv": {TaskType.DETECTION, TaskType.CLASSIFICATION},
}
# With a label format, files with these suffixes are labels, not images.
LABEL_SUFFIXES = (".json", ".txt", ".yaml", ".yml", ".xml", ".csv", ".names", ".labels")
# The report lists every problem item up to this many, each text cut to REPORT_TEXT_MAX
# characters (a file can name a class with megabytes); counts are always complete.
REPORT_MAX_ITEMS = 1000
REPORT_TEXT_MAX = 500


class ImportRefused(ValueError):
    """The import as a whole cannot run (wrong format for the project, ...)."""


def staging_dir() -> Path:
    """Uploads wait here for their job; web and worker processes must share this folder."""
    path = Path(settings.MEDIA_ROOT) / "staging"
    path.mkdir(parents=True, exist_ok=True)
    return path


def import_check_format(*, project: Project, label_format: str) -> None:
    if not label_format:
        return
    if label_format not in _FORMAT_TASK_TYPES:
        raise ImportRefused(f"unknown label format {label_format!r}; use one of {', '.join(LABEL_FORMATS)}")
    if project.task_type not in _FORMAT_TASK_TYPES[label_format]:
        raise ImportRefused(f"{label_format} labels do not fit a {project.task_type} project")


def class_map_parse(value: str | dict) -> dict[str, str]:
    """A class map given as JSON text or as an object: {"their category": "our class name"}."""
    if isinstance(value, str):
        try:
            value = json_loads(value)
        except ValueError as exc:
            raise ImportRefused(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ImportRefused('must be an object of names: {"their category": "our class name"}')
    return value


class _Report:
    def __init__(self, keep_created: bool):
        self.keep_created = keep_created
        self.counts = {"created": 0, "duplicate": 0, "error": 0}
        self.items: list[dict] = []
        self.left_out = 0

    def add(self, item: dict) -> None:
        if item["status"] == "created" and not self.keep_created:
            return
        if len(self.items) < REPORT_MAX_ITEMS:
            self.items.append({key: _capped(value) for key, value in item.items()})
        else:
            self.left_out += 1


def _capped(value):
    if isinstance(value, str) and len(value) > REPORT_TEXT_MAX:
        return value[: REPORT_TEXT_MAX - 1] + "…"
    return value


def import_run(
    *,
    project: Project,
    files: list[tuple[str, str]],
    label_format: str = "",
    label_path: str = "",
    class_map: dict[str, str] | None = None,
    create_classes: bool = False,
    replace: bool = False,
    author=None,
    keep_created: bool = True,
    on_progress: Callable[[int], None] | None = None,
) -> dict:
    """Import (relative name, path) files, zips expanded, then their labels.

    With a label format and no label_path, label files found among the items are the
    labels. Every item gets a result; bad items never stop the rest. A label that differs
    from a person's is kept beside it as an extra opinion (counted in the report as
    kept_as_opinion) unless replace is set."""
    import_check_format(project=project, label_format=label_format)
    report = _Report(keep_created)
    imported: list[tuple[str, int]] = []
    batch = _ItemBatch(project)

    created: list[int] = []

    def record(relpath: str, result: dict) -> None:
        report.counts[result["status"]] += 1
        report.add(result)
        if "image_id" in result:
            imported.append((relpath, result["image_id"]))
        if result["status"] == "created":
            created.append(result["image_id"])

    with contextlib.ExitStack() as stack:
        # last out: a cancelled or failed import announces the images it did store, too
        stack.callback(images_imported_send, project=project, image_ids=created)
        collected = stack.enter_context(tempfile.TemporaryDirectory(dir=staging_dir(), prefix="labels-"))
        label_files_found = done = 0
        for done, item in enumerate(source_items(files), start=1):
            if label_format and item.relpath.lower().endswith(LABEL_SUFFIXES) and not item.error:
                problem = None if label_path else _collect_label_file(item, collected)
                if problem:
                    report.add(problem)
                label_files_found += 1
            else:
                for relpath, result in batch.add(item):
                    record(relpath, result)
            if on_progress:
                on_progress(done)
        for relpath, result in batch.flush():
            record(relpath, result)

        labels = None
        if label_format:
            records = _label_records(
                project, label_format, label_path or collected, imported, label_files_found
            )
            outcome = labels_apply(
                project=project,
                records=records,
                class_map=class_map,
                create_classes=create_classes,
                author=author,
                preferred_image_ids=[image_id for _, image_id in imported],
                on_record=(lambda: on_progress(done)) if on_progress else None,
                replace=replace,
            )
            labels = {
                "format": label_format,
                "created": outcome.created,
                "unchanged": outcome.unchanged,
                "kept_as_opinion": outcome.kept_as_opinion,
                "error": len(outcome.errors),
            }
            for error in outcome.errors:
                report.add(error.as_item())
    summary = {"images": report.counts, "labels": labels, "items": report.items}
    if report.left_out:
        summary["items_left_out"] = report.left_out
    return summary


class _ItemBatch:
    """Feeds items to an IngestBatch and pairs its results with the items' relative paths."""

    def __init__(self, project: Project):
        self.ingest = IngestBatch(project)
        self.relpaths: list[str] = []

    def add(self, item: SourceItem) -> list[tuple[str, dict]]:
        if item.error:
            return [(item.relpath, {"name": item.name, "status": "error", "error": item.error})]
        try:
            stream = item.open()
        except Exception as exc:  # a corrupt archive entry header
            return [
                (item.relpath, {"name": item.name, "status": "error", "error": f"could not be read ({exc})"})
            ]
        with stream:
            self.relpaths.append(item.relpath)
            return self._pair(self.ingest.add(name=item.name, stream=stream, size=item.size))

    def flush(self) -> list[tuple[str, dict]]:
        return self._pair(self.ingest.flush())

    def _pair(self, results) -> list[tuple[str, dict]]:
        paired = [(relpath, result.as_dict()) for relpath, result in zip(self.relpaths, results)]
        del self.relpaths[: len(results)]
        return paired


def _collect_label_file(item: SourceItem, folder: str) -> dict | None:
    """Copy a label file out of the upload; an error item when it is too large."""
    limit = settings.VISION_MAX_LABEL_FILE_BYTES
    if item.size is not None and item.size > limit:
        return {
            "name": item.name,
            "status": "error",
            "error": f"label file is over the limit of {limit:,} bytes",
        }
    target = Path(folder) / item.relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with item.open() as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out)
    except Exception as exc:  # a corrupt archive entry
        target.unlink(missing_ok=True)
        return {"name": item.name, "status": "error", "error": f"label file could not be read ({exc})"}
    return None


def _label_records(project, label_format, path, imported, label_files_found):
    if label_format == "folder":
        return folder_records(imported)
    if label_files_found == 0 and not os.path.isfile(path) and not any(folder_files(path)):
        return [LabelError(label_format, f"no {label_format} label files were found in the import")]
    segmentation = project.task_type == TaskType.SEGMENTATION
    if label_format == "coco":
        return coco_records(path, segmentation=segmentation)
    if label_format == "yolo":
        return yolo_records(path, segmentation=segmentation)
    if label_format == "voc":
        return voc_records(path)
    if label_format == "labelstudio":
        return labelstudio_records(path, detection=project.task_type == TaskType.DETECTION)
    if label_format == "cvat":
        return cvat_records(path, detection=project.task_type == TaskType.DETECTION)
    return csv_records(path, detection=project.task_type == TaskType.DETECTION)


def import_job_create(
    *,
    project: Project,
    source_path: str,
    requested_by=None,
    label_format: str = "",
    label_path: str = "",
    class_map: dict[str, str] | None = None,
    create_classes: bool = False,
    replace: bool = False,
    staged: bool = False,
    enqueue: bool = True,
) -> ImportJob:
    """A queued import of a folder or file on this machine. `staged` sources are deleted
    when the job ends. With enqueue, the job starts on a worker once the row commits."""
    import_check_format(project=project, label_format=label_format)
    job = ImportJob.objects.create(
        project=project,
        source_path=source_path,
        label_format=label_format,
        label_path=label_path,
        requested_by=requested_by,
        report={
            "options": {
                "class_map": class_map or {},
                "create_classes": create_classes,
                "replace": replace,
                "staged": staged,
            }
        },
    )
    if enqueue:
        job_dispatch_on_commit(job)
    return job


def import_job_execute(*, job_id: int) -> None:
    """Run a queued import job; does nothing unless this call claims it."""
    claimed = job_claim(ImportJob, job_id)
    job = ImportJob.objects.select_related("project", "requested_by").get(pk=job_id)
    options = job.report.get("options", {})
    if not claimed:
        if job.status not in ACTIVE_JOB_STATUSES and options.get("staged"):
            staged_delete(job.source_path)  # cancelled before it started
        return
    try:
        _import_job_run(job, options)
    finally:
        if options.get("staged"):
            staged_delete(job.source_path)


def _import_job_run(job: ImportJob, options: dict) -> None:
    try:
        with staged_folder(job.source_path) as source:  # a staged upload in storage comes here first
            _import_job_files(job, options, source)
    except OSError as exc:  # the files' own errors are handled inside; this is the fetch
        job_fail(ImportJob, job.pk, exc, error=f"the staged upload cannot be read from storage: {exc}")


def _import_job_files(job: ImportJob, options: dict, source: str) -> None:
    job_id = job.pk
    try:
        if os.path.isdir(source):
            files = list(folder_files(source))
        elif os.path.isfile(source):
            files = [(os.path.basename(source), source)]
        else:
            raise ImportRefused(f"nothing to import at {source}")
        total = source_count(files)
        ImportJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(total=total)
        report = import_run(
            project=job.project,
            files=files,
            label_format=job.label_format,
            label_path=job.label_path,
            class_map=options.get("class_map"),
            create_classes=options.get("create_classes", False),
            replace=options.get("replace", False),
            author=job.requested_by,
            keep_created=False,
            on_progress=job_progress_writer(ImportJob, job_id, total, count_field="processed"),
        )
    except JobStopped:  # cancelled (recorded here), or failed as stale meanwhile (left as it is)
        job_finish(ImportJob, job_id, JobStatus.CANCELLED)
    except ImportRefused as exc:
        job_finish(ImportJob, job_id, JobStatus.FAILED, error=str(exc))
    except Exception as exc:
        job_fail(ImportJob, job_id, exc, error=f"import failed: {exc}")
    else:
        counts = report["images"]
        message = (
            f"{counts['created']} images added, {counts['duplicate']} duplicates, {counts['error']} errors"
        )
        if report["labels"]:
            message += (
                f"; {report['labels']['created']} labels imported, {report['labels']['error']} label errors"
            )
            if report["labels"]["kept_as_opinion"]:
                message += (
                    f"; {report['labels']['kept_as_opinion']} differed from a person's label and were kept "
                    "beside it as extra opinions"
                )
        job_finish(ImportJob, job_id, JobStatus.SUCCEEDED, progress=1.0, processed=total, message=message[:500],
                   report={"options": options, **report})


def import_job_cancel(*, job: ImportJob) -> ImportJob:
    """A queued job is cancelled at once; a running one stops at its next progress write
    (images imported so far stay, each one whole)."""
    return job_cancel(job)


def import_staging_sweep(*, older_than: timedelta = timedelta(hours=24)) -> int:
    """Remove staged uploads that no queued or running job needs (a worker killed in the
    middle of an import leaves its folder behind); returns how many were removed."""
    active = set(
        ImportJob.objects.filter(status__in=ACTIVE_JOB_STATUSES).values_list("source_path", flat=True)
    )
    cutoff = time.time() - older_than.total_seconds()
    removed = 0
    for entry in staging_dir().iterdir():
        if str(entry) in active or entry.stat().st_mtime > cutoff:
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed + staged_in_storage_sweep(active=active, older_than=older_than)
