"""Privacy blurring, the Django side: the settings, the regions, the stored files and the job.

Files: while an image waits (ImageBlur PENDING) its Image.file is the sharp original and no
one is served it (its tasks are HELD, the media view withholds it). A render always starts
from the original plus the current regions, so running it again gives the same pixels; it
writes a new lossless file (a new name, so no browser keeps the old one) and a new display
copy, points the Image at them and, once committed, deletes the old files. The original, when
the project keeps it, moves under a random path that only the admins' original endpoint
reads; when the project deletes it, later renders can only add regions on top of the last.

Every render is announced (labeling.signals.images_rendered) so what was derived from the old
pixels (embeddings, cached features) is dropped and made again.
"""
from __future__ import annotations

import contextlib
import io
import logging
import secrets
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from PIL import Image as PILImage

from core.jobs import (
    JobStopped,
    job_dispatch_on_commit,
    job_progress_writer,
    job_run,
)
from core.models import ACTIVE_JOB_STATUSES, Image, JobStatus, Project, TaskType
from vision_project.api_errors import Conflict

from ..display import display_copy
from ..models import (
    BlurRegion,
    BlurRun,
    BlurSource,
    BlurState,
    ImageBlur,
    OriginalAccess,
    OriginalPolicy,
    PrivacySettings,
    Task,
    TaskStatus,
)
from ..signals import images_rendered_send
from .blur import Box, blur_boxes
from .detectors import Detection, detect_at_most, face_detector

logger = logging.getLogger(__name__)

# A detection this close to a region an admin removed is the same false hit: not brought back.
SAME_REGION_IOU = 0.5
MAX_DETECTOR_CLASSES = 50
_CHUNK = 900  # SQLite bounds the parameters of one query

# Detectors for classes other than faces, registered by the model side at start-up
# (training/apps.py: the project's deployed detector). Each takes the project and returns None
# (no detector for it) or a function from a local image path to detections labelled with class
# names.
CLASS_DETECTOR_SOURCES: list[Callable[[Project], Callable[[str], list[Detection]] | None]] = []


# --- settings -------------------------------------------------------------------------

SETTINGS_FIELDS = ("enabled", "blur_faces", "face_detector", "face_min_score", "detector_classes",
                   "detector_min_score", "method", "strength", "padding", "original_policy")


# (least, most) of the numeric settings, checked in words before the table's constraints.
SETTING_RANGES = {"strength": (1, 100), "padding": (0, 1), "face_min_score": (0, 1), "detector_min_score": (0, 1)}


def privacy_settings_get(project: Project) -> PrivacySettings:
    """The project's settings row, or the defaults (unsaved) when it has none."""
    return PrivacySettings.objects.filter(project=project).first() or PrivacySettings(project=project)


def privacy_enabled(project: Project) -> bool:
    return PrivacySettings.objects.filter(project=project, enabled=True).exists()


@transaction.atomic
def privacy_settings_update(*, project: Project, **fields) -> PrivacySettings:
    """Change some settings; ValidationError (field -> messages) names what was wrong. A
    change applies to images blurred from now on; an admin re-runs the project to apply it
    to the others."""
    current = privacy_settings_get(project)
    for field, value in fields.items():
        setattr(current, field, value)
    errors: dict[str, list[str]] = {}
    for field, (least, most) in SETTING_RANGES.items():
        value = getattr(current, field)
        if isinstance(value, (int, float)) and not least <= value <= most:
            errors[field] = [f"{field} must be between {least} and {most}; got {value}."]
    if "detector_classes" in fields:
        problem = _detector_classes_problem(project, current.detector_classes)
        if problem:
            errors["detector_classes"] = [problem]
    if current.enabled and not current.blur_faces and not current.detector_classes:
        errors.setdefault("enabled", []).append(
            "Blurring is on but blurs nothing: turn face blurring on or name detector classes.")
    if errors:
        raise ValidationError(errors)
    current.full_clean()
    current.save()
    return current


def _detector_classes_problem(project: Project, names) -> str | None:
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        return "Give a list of class names."
    if len(names) > MAX_DETECTOR_CLASSES:
        return f"At most {MAX_DETECTOR_CLASSES} classes."
    if names and project.task_type != TaskType.DETECTION:
        return "Only a detection project has a detector whose classes can be blurred."
    known = set(project.label_classes.values_list("name", flat=True))
    unknown = sorted(set(names) - known)
    if unknown:
        return (f"Not classes of this project: {', '.join(unknown)}; its classes are "
                f"{', '.join(sorted(known)) or 'none yet'}.")
    return None


# --- arrival and the job --------------------------------------------------------------


def images_hold_for_blur(*, project: Project, images: list[Image]) -> None:
    """Inside the ingest transaction: the new images of a blurring project wait for their
    blur, their tasks held, so no one sees them sharp."""
    if not images or not privacy_enabled(project):
        return
    ImageBlur.objects.bulk_create([ImageBlur(image=image) for image in images])
    Task.objects.filter(image__in=images, status=TaskStatus.OPEN).update(status=TaskStatus.HELD)


def blur_on_import(sender, *, project: Project, image_ids: list[int], **kwargs) -> None:
    """Receiver of labeling.signals.images_imported: images waiting for their blur get it."""
    waiting = [i for start in range(0, len(image_ids), _CHUNK) for i in ImageBlur.objects.filter(
        image_id__in=image_ids[start:start + _CHUNK], state=BlurState.PENDING).values_list("image_id", flat=True)]
    if waiting:
        blur_run_start(project=project, image_ids=waiting, join=True)


def blur_run_start(*, project: Project, requested_by=None, image_ids: list[int] | None = None,
                   redetect: bool = False, join: bool = False) -> BlurRun:
    """Queue a blur run for ``image_ids`` or (None) every image of the project.

    Conflict (409, with the run's id) while one is active, unless ``join`` (the import trigger):
    then a queued run takes the images over, so a burst of imports makes one run."""
    if not join and not privacy_enabled(project):
        raise ValidationError("Privacy blurring is off for this project; turn it on in its settings first.")
    ids = sorted(set(image_ids)) if image_ids is not None else None
    with transaction.atomic():
        active = list(BlurRun.objects.select_for_update().filter(project=project, status__in=ACTIVE_JOB_STATUSES))
        if active and not join:
            raise Conflict(f"Blur run {active[0].pk} is already {active[0].status} for this project.",
                           run_id=active[0].pk)
        queued = next((run for run in active if run.status == JobStatus.QUEUED and not run.redetect), None)
        if queued is not None:
            if queued.image_ids is not None:
                queued.image_ids = None if ids is None else sorted(set(queued.image_ids) | set(ids))
                queued.save(update_fields=["image_ids"])
            return queued  # one whose message never reached the broker is re-sent by the sweep (core.jobs)
        run = BlurRun.objects.create(project=project, requested_by=requested_by, image_ids=ids, redetect=redetect)
        job_dispatch_on_commit(run)
        return run


def blur_run_execute(*, run_id: int) -> BlurRun | None:
    """Blur every image of the run's scope; None when there was nothing to claim.

    Safe to run again: an image is detected once (again only with ``redetect`` and a kept
    original) and always rendered from its original, so nothing is blurred twice. An image that
    fails stays waiting (never served) with its error, and the run goes on."""
    return job_run(BlurRun, run_id, claim_message="Loading the detectors", work=_blur_scope,
                   summary=lambda stats: f"{stats['rendered']} images blurred, {stats['errors']} failed")


def _blur_scope(run: BlurRun, should_stop: Callable[[], bool]) -> dict:
    project = run.project
    images = Image.objects.filter(project=project)
    if run.image_ids is None:
        _adopt_existing_images(project)
        todo = list(images.order_by("id").values_list("id", flat=True))
    else:
        todo = sorted(i for start in range(0, len(run.image_ids), _CHUNK)
                      for i in images.filter(pk__in=run.image_ids[start:start + _CHUNK]).values_list("id", flat=True))
    BlurRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(
        total=len(todo), message=f"Blurring {len(todo)} images")
    stats: dict = {"total": len(todo), "processed": 0, "detected": 0, "rendered": 0, "unchanged": 0, "errors": 0,
                   "error_samples": [], "stopped": False}
    detect = _Detectors(project)
    progress = job_progress_writer(BlurRun, run.pk, len(todo), count_field="processed")
    rendered: list[int] = []
    try:
        for image_id in todo:
            stats["processed"] += 1
            try:
                detected, changed = image_blur(image_id=image_id, redetect=run.redetect, detect=detect)
            except Exception as exc:  # one bad image must not stop the rest; it stays withheld
                logger.exception("blurring image %s failed", image_id)
                ImageBlur.objects.filter(pk=image_id).update(error=f"{type(exc).__name__}: {exc}"[:2000])
                stats["errors"] += 1
                if len(stats["error_samples"]) < 20:
                    stats["error_samples"].append({"image_id": image_id, "error": f"{type(exc).__name__}: {exc}"})
                continue
            stats["detected"] += detected
            if changed:
                stats["rendered"] += 1
                rendered.append(image_id)
            else:
                stats["unchanged"] += 1
            if should_stop():
                raise JobStopped()
            progress(stats["processed"])
    except JobStopped:
        stats["stopped"] = True
    finally:
        images_rendered_send(project=project, image_ids=rendered)
    stats["detectors"] = detect.used
    return stats


def _adopt_existing_images(project: Project) -> None:
    """Images from before blurring was turned on get their row (waiting) and their unleased
    open tasks held until they are blurred."""
    now = timezone.now()
    with transaction.atomic():
        new = list(Image.objects.filter(project=project, blur__isnull=True).values_list("id", flat=True))
        ImageBlur.objects.bulk_create([ImageBlur(image_id=i) for i in new], ignore_conflicts=True)
        for start in range(0, len(new), _CHUNK):
            Task.objects.filter(image_id__in=new[start:start + _CHUNK], status=TaskStatus.OPEN).filter(
                Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)).update(status=TaskStatus.HELD)


class _Detectors:
    """The project's detectors, loaded on first use (MTCNN takes a second to load)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.settings = privacy_settings_get(project)
        self.used: list[str] = []
        self._faces = None
        self._classes: Callable[[str], list[Detection]] | None | bool = False

    def __call__(self, path: str) -> list[Detection]:
        found: list[Detection] = []
        if self.settings.blur_faces:
            if self._faces is None:
                self._faces = face_detector(self.settings.face_detector, min_score=self.settings.face_min_score)
                self.used.append(type(self._faces).name)
            with PILImage.open(path) as image:
                found += detect_at_most(self._faces, image, settings.VISION_BLUR_DETECT_MAX_SIDE)
        wanted = set(self.settings.detector_classes)
        if wanted:
            if self._classes is False:
                self._classes = next(filter(None, (source(self.project) for source in CLASS_DETECTOR_SOURCES)), None)
                if self._classes is None:
                    raise RuntimeError(f"blurring {', '.join(sorted(wanted))} needs a deployed detector; "
                                       "the project has none")
                self.used.append("deployed detector")
            assert callable(self._classes)
            found += [d for d in self._classes(path)
                      if d.label in wanted and (d.score is None or d.score >= self.settings.detector_min_score)]
        return found


def image_blur(*, image_id: int, redetect: bool = False,
               detect: Callable[[str], list[Detection]] | None = None) -> tuple[int, bool]:
    """Detect (when not done yet, or again with ``redetect`` on a kept original) and render one
    image. Returns (regions detected, whether the file changed)."""
    blur = ImageBlur.objects.select_related("image__project").get(pk=image_id)
    detected = 0
    pending = blur.state == BlurState.PENDING
    if (not blur.detected and (pending or blur.original)) or (redetect and blur.original):
        # the original: Image.file while waiting, else the kept copy; never a blurred render
        source = blur.image.file.name if pending else blur.original.name
        with _local_path(source) as path:
            found = (detect or _Detectors(blur.image.project))(path)
        detected = _detections_store(blur, found)
    return detected, image_render(image_id=image_id)


@transaction.atomic
def _detections_store(blur: ImageBlur, found: list[Detection]) -> int:
    """Detected regions replace the earlier detected ones; manual and removed regions stay, and
    a detection on a removed region is taken for the same false hit."""
    regions = BlurRegion.objects.filter(image_id=blur.pk).exclude(source=BlurSource.MANUAL)
    removed = [Box(r.x1, r.y1, r.x2, r.y2) for r in regions.filter(removed=True)]
    regions.filter(removed=False).delete()
    image = blur.image
    new = [
        BlurRegion(image_id=blur.pk, x1=max(0.0, d.box.x1), y1=max(0.0, d.box.y1),
                   x2=min(float(image.width), d.box.x2), y2=min(float(image.height), d.box.y2),
                   source=BlurSource.FACE if d.label == "face" else BlurSource.DETECTOR,
                   label=d.label, score=d.score)
        for d in found if not any(_iou(d.box, r) >= SAME_REGION_IOU for r in removed)
    ]
    BlurRegion.objects.bulk_create([r for r in new if r.x2 > r.x1 and r.y2 > r.y1])
    ImageBlur.objects.filter(pk=blur.pk).update(detected=True, error="")
    return len(new)


def _iou(a: Box, b: Box) -> float:
    inter = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1)) * max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter
    return inter / union if union > 0 else 0.0


@contextlib.contextmanager
def _local_path(name: str) -> Iterator[str]:
    """A local file path for a stored file: the file itself on disk storage, else a temporary copy."""
    try:
        yield default_storage.path(name)
        return
    except NotImplementedError:
        pass
    with tempfile.NamedTemporaryFile(suffix=Path(name).suffix) as copy, default_storage.open(name, "rb") as stored:
        copy.write(stored.read())
        copy.flush()
        yield copy.name


# --- rendering ------------------------------------------------------------------------


def image_render(*, image_id: int) -> bool:
    """Render one image's blur from its original and its current regions; False when nothing
    changed (the original is gone and no new region is to be burnt in). The row is locked for
    the render, so two renders of one image follow each other; new files are removed again if
    the transaction fails, the old ones only once it committed."""
    written: list[str] = []
    try:
        with transaction.atomic():
            changed = _render_locked(image_id, written)
    except BaseException:
        for name in written:
            default_storage.delete(name)
        raise
    return changed


def _render_locked(image_id: int, written: list[str]) -> bool:
    blur = ImageBlur.objects.select_for_update().get(pk=image_id)
    image = Image.objects.select_related("project").get(pk=image_id)
    options = privacy_settings_get(image.project)
    regions = list(BlurRegion.objects.filter(image_id=image_id, removed=False))
    pending = blur.state == BlurState.PENDING
    if pending or blur.original:
        source_name = image.file.name if pending else blur.original.name
        applied = [r.pk for r in regions]
    else:  # the original was deleted: only new regions can go on top of the last render
        source_name = image.file.name
        regions = [r for r in regions if r.pk not in set(blur.applied_region_ids)]
        if not regions:
            return False
        applied = sorted(set(blur.applied_region_ids) | {r.pk for r in regions})
    with default_storage.open(source_name, "rb") as stored:
        source = PILImage.open(io.BytesIO(stored.read()))
        source.load()
    source = source.convert("RGBA" if "A" in source.getbands() or "transparency" in source.info else "RGB")
    out = blur_boxes(source, [Box(r.x1, r.y1, r.x2, r.y2) for r in regions], method=options.method,
                     strength=options.strength, padding=options.padding)
    number = blur.renders + 1
    folder = f"projects/{image.project_id}"
    stem = f"{image.sha256[:2]}/{image.sha256}-blurred-{number}"
    old = [image.file.name, image.display_file.name]
    if pending and options.original_policy == OriginalPolicy.KEEP:
        with default_storage.open(source_name, "rb") as stored:
            kept = default_storage.save(
                f"{folder}/originals/{secrets.token_urlsafe(24)}/{image.sha256}{Path(source_name).suffix}", stored)
        written.append(kept)
        blur.original.name = kept
    elif pending:
        blur.original_deleted = True
    image.file.name = _save(f"{folder}/images/{stem}.png", _encoded(out, "PNG"), written)
    if image.display_file:
        image.display_file.name = _save(f"{folder}/display/{stem}.jpg", display_copy(out), written)
    image.save(update_fields=["file", "display_file"])
    blur.state, blur.renders, blur.applied_region_ids = BlurState.BLURRED, number, applied
    blur.rendered_at, blur.error = timezone.now(), ""
    blur.save()
    Task.objects.filter(image_id=image_id, status=TaskStatus.HELD).update(status=TaskStatus.OPEN)
    transaction.on_commit(lambda: [default_storage.delete(name) for name in old if name])
    return True


def _save(name: str, data: bytes, written: list[str]) -> str:
    saved = default_storage.save(name, ContentFile(data))
    written.append(saved)
    return saved


def _encoded(image: PILImage.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


# --- the admin's edits and the original -----------------------------------------------


def blur_region_add(*, image: Image, box: dict, user) -> BlurRegion:
    """A region an admin drew (pixels of the stored image), rendered at once."""
    if not ImageBlur.objects.filter(pk=image.pk).exists():
        raise ValidationError("This image is not blurred (blurring was off when it came); run the project's "
                              "blur first.")
    x1, y1, x2, y2 = _box_values(box, image)
    region = BlurRegion.objects.create(image=image, x1=x1, y1=y1, x2=x2, y2=y2, source=BlurSource.MANUAL,
                                       created_by=user)
    _rerender(image)
    return region


def blur_region_set_removed(*, region: BlurRegion, removed: bool) -> BlurRegion:
    """Remove a false region (its pixels come back from the original) or restore it."""
    blur = ImageBlur.objects.get(pk=region.image_id)
    if removed and not blur.original and region.pk in blur.applied_region_ids:
        raise ValidationError("The original of this image was deleted after blurring (project policy), so a "
                              "blurred region cannot be restored.")
    BlurRegion.objects.filter(pk=region.pk).update(removed=removed, updated_at=timezone.now())
    region.refresh_from_db()
    _rerender(region.image)
    return region


def _rerender(image: Image) -> None:
    """Render after an edit; an image still waiting is left to its blur run, which detects
    first (a render now would mark it blurred before its faces were found)."""
    if ImageBlur.objects.filter(pk=image.pk, state=BlurState.BLURRED).exists() and image_render(image_id=image.pk):
        images_rendered_send(project=image.project, image_ids=[image.pk])


def _box_values(box: dict, image: Image) -> tuple[float, float, float, float]:
    try:
        x1, y1, x2, y2 = (float(box[key]) for key in ("x1", "y1", "x2", "y2"))
    except (KeyError, TypeError, ValueError):
        raise ValidationError("A region needs numbers x1, y1, x2, y2 (pixels).") from None
    x1, x2 = max(0.0, min(x1, x2)), min(float(image.width), max(x1, x2))
    y1, y2 = max(0.0, min(y1, y2)), min(float(image.height), max(y1, y2))
    if x2 - x1 < 1 or y2 - y1 < 1:
        raise ValidationError(f"The region lies outside the image ({image.width}x{image.height}) or is under a "
                              "pixel wide.")
    return x1, y1, x2, y2


class OriginalGone(Exception):
    """The project deleted this image's original after blurring it."""


def original_open(*, image: Image, user):
    """The image's unblurred file, opened for reading, after logging who asked (callers check
    the admin role). OriginalGone when the project's policy deleted it."""
    blur = ImageBlur.objects.filter(pk=image.pk).first()
    if blur is None or blur.state == BlurState.PENDING:
        name = image.file.name  # never blurred, or not yet: the stored file is the original
    elif blur.original:
        name = blur.original.name
    else:
        raise OriginalGone(f"The original of image {image.pk} was deleted after blurring (project policy).")
    OriginalAccess.objects.create(project_id=image.project_id, image=image, image_name=image.original_name,
                                  user=user, username=user.get_username())
    return default_storage.open(name, "rb"), name
