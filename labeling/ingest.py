"""Bringing one image file into a project: validate, deduplicate, make upright, store.

Each file either lands completely (stored file + Image row + queue rows) or not at all,
with a message that names what was wrong. Callers loop over batches and collect results.
"""
from __future__ import annotations

import hashlib
import io
import os
import posixpath
import random
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from .models import Image, Project, Split, Task

ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"}
# Browsers show these as they are; the others get a JPEG display version at any size.
BROWSER_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
# Our own pixel check runs first; PIL's guard stays on as a second line.
PILImage.MAX_IMAGE_PIXELS = settings.VISION_MAX_IMAGE_PIXELS
_READ_CHUNK = 1024 * 1024


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
    Image keeps its base name as `original_name`, which label files are matched against."""
    try:
        image = _ingest(project=project, name=name, stream=stream, size=size)
    except IngestError as exc:
        return IngestResult(name=name, status="error", error=str(exc))
    except _Duplicate as dup:
        return IngestResult(name=name, status="duplicate", image_id=dup.image_id)
    return IngestResult(name=name, status="created", image_id=image.pk)


def image_ingest_path(*, project: Project, path: str, name: str | None = None) -> IngestResult:
    with open(path, "rb") as stream:
        return image_ingest(project=project, name=name or os.path.basename(path), stream=stream,
                            size=os.fstat(stream.fileno()).st_size)


class _Duplicate(Exception):
    def __init__(self, image_id: int):
        self.image_id = image_id


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


def _ingest(*, project: Project, name: str, stream: BinaryIO, size: int | None) -> Image:
    limit = settings.VISION_MAX_UPLOAD_BYTES
    if size is not None and size > limit:
        raise IngestError(_too_large_message(limit))
    data, sha256 = _read_limited(stream, limit)
    if not data:
        raise IngestError("file is empty (0 bytes)")
    existing = Image.objects.filter(project=project, sha256=sha256).values_list("pk", flat=True).first()
    if existing is not None:
        raise _Duplicate(existing)

    upright, fmt, width, height = _decode_upright(data)
    stored_bytes = data
    suffix = "." + ("jpg" if fmt == "JPEG" else fmt.lower())
    if upright is not None:
        stored_bytes, suffix = _encode(upright, fmt)
    display_bytes = _display_version(upright or PILImage.open(io.BytesIO(data)), fmt, width, height)

    original_name = posixpath.basename(name.replace("\\", "/"))[:500]
    image = Image(project=project, original_name=original_name, sha256=sha256, width=width, height=height,
                  split=split_for_new_image(project=project, sha256=sha256))
    saved: list[str] = []
    try:
        image.file.save(f"{sha256}{suffix}", ContentFile(stored_bytes), save=False)
        saved.append(image.file.name)
        if display_bytes is not None:
            image.display_file.save(f"{sha256}.jpg", ContentFile(display_bytes), save=False)
            saved.append(image.display_file.name)
        with transaction.atomic():
            image.save()
            tasks_create_for_image(image=image)
    except IntegrityError:
        _delete_files(saved)
        existing = Image.objects.filter(project=project, sha256=sha256).values_list("pk", flat=True).first()
        if existing is not None:
            raise _Duplicate(existing) from None
        raise
    except BaseException:
        _delete_files(saved)
        raise
    return image


def _delete_files(names: list[str]) -> None:
    for stored in names:
        default_storage.delete(stored)


def _decode_upright(data: bytes) -> tuple[PILImage.Image | None, str, int, int]:
    """Validate the bytes as a whole image. Returns the EXIF-transposed image when the
    orientation tag asked for a turn (None when the bytes are upright already)."""
    try:
        probe = PILImage.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise IngestError("not an image file (content is not a recognized image format)") from None
    except PILImage.DecompressionBombError:
        raise IngestError(_too_many_pixels_message()) from None
    fmt = probe.format or ""
    if fmt not in ACCEPTED_FORMATS:
        raise IngestError(f"unsupported image format {fmt or 'unknown'}; use JPEG, PNG, WebP, BMP, TIFF or GIF")
    width, height = probe.size
    if width * height > settings.VISION_MAX_IMAGE_PIXELS:
        raise IngestError(_too_many_pixels_message(width, height))
    if width == 0 or height == 0:
        raise IngestError("image has no pixels")
    try:
        probe.load()
    except PILImage.DecompressionBombError:
        raise IngestError(_too_many_pixels_message(width, height)) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise IngestError(f"image data is broken or truncated ({exc})") from None
    orientation = probe.getexif().get(0x0112, 1)
    if orientation in (None, 1):
        return None, fmt, width, height
    upright = ImageOps.exif_transpose(probe)
    return upright, fmt, upright.width, upright.height


def _too_many_pixels_message(width: int | None = None, height: int | None = None) -> str:
    limit = settings.VISION_MAX_IMAGE_PIXELS
    size = f" ({width}x{height})" if width else ""
    return f"image has too many pixels{size}; the limit is {limit:,} pixels (possible decompression bomb)"


def _encode(image: PILImage.Image, fmt: str) -> tuple[bytes, str]:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=95)
        return out.getvalue(), ".jpg"
    image.save(out, "PNG")
    return out.getvalue(), ".png"


def _display_version(image: PILImage.Image, fmt: str, width: int, height: int) -> bytes | None:
    """A JPEG for the browser when the original is large or in a format browsers do not
    show (TIFF, BMP); None when the original serves."""
    max_side = settings.VISION_DISPLAY_MAX_SIDE
    if max(width, height) <= max_side and fmt in BROWSER_FORMATS:
        return None
    display = image.convert("RGB")
    display.thumbnail((max_side, max_side), PILImage.Resampling.LANCZOS)
    out = io.BytesIO()
    display.save(out, "JPEG", quality=85)
    return out.getvalue()


def split_for_new_image(*, project: Project, sha256: str) -> str:
    """The held-out split is drawn at random when an image arrives, from its content hash:
    fixed for ever, independent of any model, so versions stay comparable. The queue serves
    validation images in random order, never by uncertainty, so their labels are unbiased."""
    draw = int(hashlib.sha256(f"{project.pk}:{sha256}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return Split.VALIDATION if draw < project.validation_share else Split.TRAIN


def tasks_create_for_image(*, image: Image) -> list[Task]:
    """Queue rows for a new image: one per wanted annotation. Before any model has scored
    the image its priority is random (cold start), so early labels are an unbiased sample."""
    project = image.project
    priority = random.random()
    return Task.objects.bulk_create(
        Task(project=project, image=image, slot=slot, priority=priority)
        for slot in range(project.annotations_per_image)
    )
