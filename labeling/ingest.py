"""Bringing image files into a project: validate, deduplicate, make upright, store.

Each file either lands completely (stored file + Image row + queue rows) or not at all,
with a message that names what was wrong.
"""

from __future__ import annotations

import hashlib
import io
import logging
import posixpath
import random
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from pi_heif import register_heif_opener
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from core.models import Image, Project, Split

from .display import display_copy
from .models import Task
from .privacy.services import images_hold_for_blur

logger = logging.getLogger(__name__)

ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "HEIF"}
# Formats stored re-encoded: training tools read a GIF as video and cannot decode HEIF.
REENCODED_FORMATS = {"GIF", "HEIF"}
# Browsers show these as they are; the others get a JPEG display version at any size.
BROWSER_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
# Our own pixel check runs first; PIL's guard stays on as a second line.
PILImage.MAX_IMAGE_PIXELS = settings.VISION_MAX_IMAGE_PIXELS
# HEIC photos from phones. Registering it here also matters because ultralytics patches
# PIL's open to look for this opener on any unreadable file once it is imported.
register_heif_opener()
_READ_CHUNK = 1024 * 1024


class PixelBudget:
    """Pixels being decoded in this process, across its threads. A decoded image costs 3-4
    bytes a pixel and its copies as much again, so a few concurrent uploads of large, well
    compressed images (a 90-megapixel PNG is about 1 MB) would take the process to gigabytes:
    a decode waits until its pixels fit beside those in flight. An image larger than the
    whole budget (but under the per-image limit) is decoded alone."""

    def __init__(self, limit: Callable[[], int]):
        self._limit = limit
        self._in_flight = 0
        self._changed = threading.Condition()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: self._in_flight == 0 or self._in_flight + pixels <= self._limit())
            self._in_flight += pixels
        try:
            yield
        finally:
            with self._changed:
                self._in_flight -= pixels
                self._changed.notify_all()


DECODE_BUDGET = PixelBudget(lambda: settings.VISION_DECODE_PIXELS_IN_FLIGHT)


class IngestError(ValueError):
    """A file cannot become an image; the message is meant for the person importing."""


@dataclass
class IngestResult:
    name: str
    status: str  # "created", "duplicate" or "error"
    image_id: int | None = None
    error: str = ""

    def as_dict(self) -> dict:
        data = {"name": self.name, "status": self.status}
        if self.image_id is not None:
            data["image_id"] = self.image_id
        if self.error:
            data["error"] = self.error
        return data


def image_ingest(*, project: Project, name: str, stream: BinaryIO, size: int | None = None) -> IngestResult:
    """Ingest one file; never raises for bad input, reports it in the result instead.

    `name` is how the report names the file (it may be a path inside an archive); the
    Image keeps its base name as `original_name`, which label files are matched against.
    Many files: use IngestBatch, which writes them in groups."""
    batch = IngestBatch(project)
    batch.add(name=name, stream=stream, size=size)
    return batch.flush()[0]


@dataclass
class _Prepared:
    """A validated file, ready to store: its bytes, display bytes and unsaved row."""

    name: str
    image: Image
    stored_bytes: bytes
    suffix: str
    display_bytes: bytes | None

    @property
    def nbytes(self) -> int:
        return len(self.stored_bytes) + len(self.display_bytes or b"")


class IngestBatch:
    """Ingests files in groups: each file is read and validated as it is added (one file
    in memory at a time), and a group of prepared files is written with one duplicate
    query and one transaction for its Image and Task rows. Memory is bounded by
    max_bytes of prepared files; results come back in the order the files were added.

        batch = IngestBatch(project)
        for ...: results += batch.add(name=..., stream=..., size=...)
        results += batch.flush()
    """

    def __init__(self, project: Project, *, max_files: int = 200, max_bytes: int = 64 * 1024 * 1024):
        self.project = project
        self.max_files = max_files
        self.max_bytes = max_bytes
        self._pending: list[IngestResult | _Prepared] = []
        self._pending_bytes = 0

    def add(self, *, name: str, stream: BinaryIO, size: int | None = None) -> list[IngestResult]:
        """Queue one file; returns the results of a group when this file filled it."""
        try:
            prepared = _prepare(project=self.project, name=name, stream=stream, size=size)
        except IngestError as exc:
            self._pending.append(IngestResult(name=name, status="error", error=str(exc)))
        except Exception as exc:  # decoders raise odd errors on odd files; one file must not stop a batch
            logger.exception("could not read %s", name)
            self._pending.append(IngestResult(name=name, status="error", error=f"could not be read ({exc})"))
        else:
            self._pending.append(prepared)
            self._pending_bytes += prepared.nbytes
        if len(self._pending) >= self.max_files or self._pending_bytes >= self.max_bytes:
            return self.flush()
        return []

    def flush(self) -> list[IngestResult]:
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        prepared = [p for p in pending if isinstance(p, _Prepared)]
        outcome = _store_group(self.project, prepared) if prepared else {}
        return [outcome[id(p)] if isinstance(p, _Prepared) else p for p in pending]


def _prepare(*, project: Project, name: str, stream: BinaryIO, size: int | None) -> _Prepared:
    limit = settings.VISION_MAX_UPLOAD_BYTES
    if size is not None and size > limit:
        raise IngestError(_too_large_message(limit))
    data, sha256 = _read_limited(stream, limit)
    if not data:
        raise IngestError("file is empty (0 bytes)")
    probe = _open_checked(data)
    fmt = probe.format or ""
    stored_bytes = data
    suffix = "." + ("jpg" if fmt == "JPEG" else fmt.lower())
    display_bytes = None
    # From the decode until only encoded bytes are left, the pixels count against the budget.
    with DECODE_BUDGET.hold(probe.width * probe.height):
        upright, turned = _load_upright(probe)
        width, height = upright.size
        if turned or fmt in REENCODED_FORMATS:
            stored_bytes, suffix = _encode(upright, fmt)
        if max(width, height) > settings.VISION_DISPLAY_MAX_SIDE or fmt not in BROWSER_FORMATS:
            display_bytes = display_copy(upright)
        del upright, probe
    original_name = posixpath.basename(name.replace("\\", "/"))[:500]
    image = Image(
        project=project,
        original_name=original_name,
        sha256=sha256,
        width=width,
        height=height,
        split=split_for_new_image(project=project, sha256=sha256),
    )
    return _Prepared(name, image, stored_bytes, suffix, display_bytes)


def _store_group(project: Project, group: list[_Prepared]) -> dict[int, IngestResult]:
    """Store a group; keyed by id() of each prepared file. Duplicates (of earlier images
    or within the group) store nothing; every new image lands whole or not at all."""
    results: dict[int, IngestResult] = {}
    known = dict(
        Image.objects.filter(project=project, sha256__in={p.image.sha256 for p in group}).values_list(
            "sha256", "pk"
        )
    )
    new: list[_Prepared] = []
    first_of: dict[str, _Prepared] = {}
    for prepared in group:
        sha256 = prepared.image.sha256
        if sha256 in known:
            results[id(prepared)] = IngestResult(prepared.name, "duplicate", image_id=known[sha256])
        elif sha256 in first_of:
            results[id(prepared)] = None  # filled in once the first copy has its id
        else:
            first_of[sha256] = prepared
            new.append(prepared)

    saved: list[list[str]] = []
    try:
        for prepared in new:
            saved.append(_save_files(prepared))
        with transaction.atomic():
            Image.objects.bulk_create([p.image for p in new])
            tasks_create_for_images(images=[p.image for p in new])
            images_hold_for_blur(project=project, images=[p.image for p in new])
    except IntegrityError:
        # Another import stored one of these meanwhile: fall back to one at a time.
        for prepared, names in zip(new, saved):
            results[id(prepared)] = _store_one(project, prepared, names)
    except BaseException:
        for names in saved:
            _delete_files(names)
        raise
    else:
        for prepared in new:
            results[id(prepared)] = IngestResult(prepared.name, "created", image_id=prepared.image.pk)

    for prepared in group:
        if results[id(prepared)] is None:
            image_id = results[id(first_of[prepared.image.sha256])].image_id
            results[id(prepared)] = IngestResult(prepared.name, "duplicate", image_id=image_id)
    return results


def _store_one(project: Project, prepared: _Prepared, names: list[str]) -> IngestResult:
    prepared.image.pk = None
    try:
        with transaction.atomic():
            prepared.image.save()
            tasks_create_for_images(images=[prepared.image])
            images_hold_for_blur(project=project, images=[prepared.image])
    except IntegrityError:
        _delete_files(names)
        existing = Image.objects.filter(project=project, sha256=prepared.image.sha256).values_list(
            "pk", flat=True
        )
        return IngestResult(prepared.name, "duplicate", image_id=existing.first())
    return IngestResult(prepared.name, "created", image_id=prepared.image.pk)


def _save_files(prepared: _Prepared) -> list[str]:
    """Write the file (and display version) through the storage API; the stored names."""
    image, sha256 = prepared.image, prepared.image.sha256
    image.file.save(f"{sha256}{prepared.suffix}", ContentFile(prepared.stored_bytes), save=False)
    names = [image.file.name]
    try:
        if prepared.display_bytes is not None:
            image.display_file.save(f"{sha256}.jpg", ContentFile(prepared.display_bytes), save=False)
            names.append(image.display_file.name)
    except BaseException:
        _delete_files(names)
        raise
    return names


def _delete_files(names: list[str]) -> None:
    for stored in names:
        default_storage.delete(stored)


def _read_limited(stream: BinaryIO, limit: int) -> tuple[bytes, str]:
    digest = hashlib.sha256()
    buffer = io.BytesIO()
    total = 0
    while chunk := _read_chunk(stream):
        total += len(chunk)
        if total > limit:
            raise IngestError(_too_large_message(limit))
        digest.update(chunk)
        buffer.write(chunk)
    return buffer.getvalue(), digest.hexdigest()


def _too_large_message(limit: int) -> str:
    shown = f"{limit / 1024**2:g} MiB" if limit >= 1024**2 else f"{limit:,} bytes"
    return f"file is larger than the upload limit of {shown}"


def _read_chunk(stream: BinaryIO) -> bytes:
    try:
        return stream.read(_READ_CHUNK)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise IngestError(f"archive entry is corrupt ({exc})") from None


def _open_checked(data: bytes) -> PILImage.Image:
    """The image's header, checked (format, size, pixel limit); nothing decoded yet."""
    try:
        probe = PILImage.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise IngestError("not an image file (content is not a recognized image format)") from None
    except PILImage.DecompressionBombError:
        raise IngestError(_too_many_pixels_message()) from None
    fmt = probe.format or ""
    if fmt not in ACCEPTED_FORMATS:
        raise IngestError(
            f"unsupported image format {fmt or 'unknown'}; use JPEG, PNG, WebP, BMP, TIFF, GIF or HEIC"
        )
    width, height = probe.size
    if width * height > settings.VISION_MAX_IMAGE_PIXELS:
        raise IngestError(_too_many_pixels_message(width, height))
    if width == 0 or height == 0:
        raise IngestError("image has no pixels")
    return probe


def _load_upright(probe: PILImage.Image) -> tuple[PILImage.Image, bool]:
    """Decode the whole image. Returns it upright (EXIF-transposed when the orientation tag
    asked for a turn) and whether it was turned."""
    width, height = probe.size
    try:
        probe.load()
    except PILImage.DecompressionBombError:
        raise IngestError(_too_many_pixels_message(width, height)) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise IngestError(f"image data is broken or truncated ({exc})") from None
    orientation = probe.getexif().get(0x0112, 1)
    if orientation in (None, 1):
        return probe, False
    return ImageOps.exif_transpose(probe), True


def _too_many_pixels_message(width: int | None = None, height: int | None = None) -> str:
    limit = settings.VISION_MAX_IMAGE_PIXELS
    size = f" ({width}x{height})" if width else ""
    return f"image has too many pixels{size}; the limit is {limit:,} pixels (possible decompression bomb)"


def _encode(image: PILImage.Image, fmt: str) -> tuple[bytes, str]:
    """JPEG stays JPEG and phone photos (HEIF) become JPEG; the rest (a GIF's first frame
    included) is stored as lossless PNG."""
    out = io.BytesIO()
    if fmt in ("JPEG", "HEIF"):
        image.convert("RGB").save(out, "JPEG", quality=95)
        return out.getvalue(), ".jpg"
    image.save(out, "PNG")
    return out.getvalue(), ".png"


def split_for_new_image(*, project: Project, sha256: str) -> str:
    """The held-out split is drawn at random when an image arrives, from its content hash:
    fixed for ever, independent of any model, so versions stay comparable. The queue serves
    validation images in random order, never by uncertainty, so their labels are unbiased."""
    draw = int(hashlib.sha256(f"{project.pk}:{sha256}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return Split.VALIDATION if draw < project.validation_share else Split.TRAIN


def tasks_create_for_images(*, images: list[Image]) -> list[Task]:
    """Queue rows for new images: one per wanted annotation. Before any model has scored
    an image its priority is random (cold start), so early labels are an unbiased sample."""
    tasks = []
    for image in images:
        priority = random.random()
        tasks += [
            Task(project_id=image.project_id, image=image, slot=slot, priority=priority)
            for slot in range(image.project.annotations_per_image)
        ]
    return Task.objects.bulk_create(tasks)
