"""Reads on the model side: verified labels, active runs, the deployed version."""
from __future__ import annotations

import io
from collections.abc import Iterable

import numpy as np
from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet

from core.models import ACTIVE_JOB_STATUSES, Image, LabelClass, ModelVersion, Prediction, Project, Split
from labeling import selectors as labeling_selectors
from labeling.models import Annotation, AnnotationKind, ReviewStatus
from labeling.selectors import ACCEPTED_LABEL
from ml.embedding_specs import DEFAULT_EMBEDDING_MODEL, EMBEDDING_MODELS

from .models import EmbeddingRun, ImageEmbedding, PrelabelRun, TrainingRun


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
        .exclude(image__blur__state="pending")  # its file is the sharp original until blurred
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


# --- embeddings ---------------------------------------------------------------------------

VECTOR_DTYPE = np.dtype("<f4")  # ImageEmbedding.vector's byte layout
_IDS_PER_QUERY = 900  # under SQLite's bound-parameter limit


def embedding_key(model_key: str | None = None) -> str:
    """The given key, else the configured one (``VISION_EMBEDDING_MODEL``, by default
    ``DEFAULT_EMBEDDING_MODEL``): the key that runs write new vectors with."""
    return model_key or getattr(settings, "VISION_EMBEDDING_MODEL", DEFAULT_EMBEDDING_MODEL)


def embedding_matrix(
    *, project: Project, model_key: str | None = None, image_ids: Iterable[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The project's stored vectors under ``model_key`` (default: the configured key): (image
    ids int64 (n,), vectors float32 (n, dim)), by image id. With ``image_ids``, only those
    images. An image without a vector (not embedded yet, or unreadable) has no row, so callers
    match rows by the returned ids.

    The whole project is one scan of the (project, model_key, image) index into a preallocated
    array; ``image_ids`` are read in chunks of ids."""
    model_key = embedding_key(model_key)
    if model_key not in EMBEDDING_MODELS:
        raise ValueError(f"unknown embedding model {model_key!r}")
    dim = EMBEDDING_MODELS[model_key].dim
    rows = ImageEmbedding.objects.filter(project=project, model_key=model_key).order_by("image_id")
    if image_ids is None:
        return _vectors_read(rows, dim)
    wanted = sorted({int(i) for i in image_ids})
    # ascending, disjoint chunks: their results concatenated stay in image-id order
    parts = [_vectors_read(rows.filter(image_id__in=wanted[i : i + _IDS_PER_QUERY]), dim)
             for i in range(0, len(wanted), _IDS_PER_QUERY)]
    if not parts:
        return np.empty(0, np.int64), np.empty((0, dim), np.float32)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _vectors_read(rows: QuerySet[ImageEmbedding], dim: int) -> tuple[np.ndarray, np.ndarray]:
    if connection.vendor == "postgresql":
        fast = _vectors_copy(rows, dim)
        if fast is not None:
            return fast
    n = rows.count()
    ids = np.empty(n, np.int64)
    vectors = np.empty((n, dim), np.float32)
    extra: list[tuple[int, np.ndarray]] = []  # rows written between the count and the read
    k = 0
    for image_id, raw in rows.values_list("image_id", "vector").iterator(chunk_size=2000):
        row = np.frombuffer(raw, VECTOR_DTYPE)
        if k < n:
            ids[k], vectors[k] = image_id, row
            k += 1
        else:
            extra.append((image_id, row))
    if k < n:  # rows deleted meanwhile
        ids, vectors = ids[:k].copy(), vectors[:k].copy()
    if extra:
        ids = np.concatenate([ids, np.array([e[0] for e in extra], np.int64)])
        vectors = np.concatenate([vectors, np.stack([e[1] for e in extra])])
        order = np.argsort(ids, kind="stable")
        ids, vectors = ids[order], vectors[order]
    return ids, vectors


_PG_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def _vectors_copy(rows: QuerySet[ImageEmbedding], dim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """PostgreSQL: the same query through ``COPY ... TO STDOUT (FORMAT binary)``, parsed as
    fixed-size records. psycopg2 fetches bytea as hex text and unescapes it row by row; the
    binary copy moves the raw bytes once and numpy reads them in place, about four times
    faster at 100,000 vectors. None (the caller reads row by row) when the driver has no
    copy or a record is not the expected shape."""
    try:
        sql, params = rows.values_list("image_id", "vector").query.sql_with_params()
    except EmptyResultSet:  # a filter that matches nothing by construction
        return np.empty(0, np.int64), np.empty((0, dim), np.float32)
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        raw = getattr(cursor, "cursor", cursor)
        if not hasattr(raw, "copy_expert"):
            return None
        query = cursor.mogrify(f"COPY ({sql}) TO STDOUT WITH (FORMAT binary)", params)
        raw.copy_expert(query.decode() if isinstance(query, bytes) else query, buffer)
    data = buffer.getbuffer()
    if bytes(data[:11]) != _PG_COPY_SIGNATURE:
        return None
    start = 19 + int.from_bytes(data[15:19], "big")  # signature, flags, header extension
    body = data[start : len(data) - 2]  # the trailer is a field count of -1
    if len(body) == 0:
        return np.empty(0, np.int64), np.empty((0, dim), np.float32)
    id_size = int.from_bytes(body[2:6], "big", signed=True)
    if id_size not in (4, 8):
        return None
    record = np.dtype([("fields", ">i2"), ("id_len", ">i4"), ("id", f">i{id_size}"), ("vec_len", ">i4"),
                       ("vec", VECTOR_DTYPE, (dim,))])
    if len(body) % record.itemsize:
        return None
    records = np.frombuffer(body, record)
    if (records["fields"] != 2).any() or (records["id_len"] != id_size).any() or (records["vec_len"] != dim * 4).any():
        return None
    return records["id"].astype(np.int64), np.ascontiguousarray(records["vec"], dtype=np.float32)


def embeddings_missing(project: Project, model_key: str | None = None) -> QuerySet[Image]:
    """The project's images with no vector under ``model_key`` (default: the configured key), by id."""
    done = ImageEmbedding.objects.filter(image=OuterRef("pk"), model_key=embedding_key(model_key))
    # an image waiting for its privacy blur is the sharp original: embedded once blurred
    return Image.objects.filter(project=project).exclude(Exists(done)).exclude(blur__state="pending").order_by("id")


def embedding_run_active(project: Project) -> EmbeddingRun | None:
    """The project's queued run if it has one, else its running one."""
    return EmbeddingRun.objects.filter(project=project, status__in=ACTIVE_JOB_STATUSES).order_by("-id").first()


def version_class_names(version: ModelVersion) -> list[str]:
    """Class names in the version's output order; a class deleted since keeps a placeholder."""
    names = dict(LabelClass.objects.filter(pk__in=version.class_ids).values_list("id", "name"))
    return [names.get(class_id, f"deleted class {class_id}") for class_id in version.class_ids]
