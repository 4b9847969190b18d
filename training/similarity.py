""""More like this" and near-duplicates: a project's embeddings in an HNSW index
(ml/similarity.py, which says why hnswlib).

Keeping every process in step: the index is a file in storage named by project, embedding
key and a version counter; the counter, the file's name and the largest ImageEmbedding id
the file holds live in the shared cache (``caches["coordination"]``). Each process keeps the
index it loaded; before a query it reads the counter (one cache get) and reloads when it has
moved, then adds the vectors written since (rows with a larger id; a vector never changes,
so the rows after the file's id are exactly the new ones). When those additions exceed
VISION_SIMILARITY_REBUILD_SHARE of the file's size, a rebuild is queued: it writes a fresh
file, bumps the counter, and every process picks it up on its next query. Without a counter
(first use, or a cleared cache) the first query builds and publishes one. Deleted images drop
out at the next rebuild; until then their ids are filtered out of results by the image rows.
"""
from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.cache import caches
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import Max

from core.models import Image, Project
from labeling.models import Task, TaskStatus
from labeling.queue.selectors import image_urls
from ml.embedding_specs import EMBEDDING_MODELS
from ml.similarity import VectorIndex, index_build
from vision_project.enqueue import enqueue

from . import selectors
from .models import ImageEmbedding, NearDuplicate

logger = logging.getLogger(__name__)

REBUILD_TASK = "training.tasks.similarity_index_rebuild"
MAX_K = 200
NEAR_DUPLICATE_CANDIDATES = 10
# "unlabeled" results are filtered after the search; past this many candidates the search
# stops growing and returns what it found (a project labeled almost to the end)
MAX_CANDIDATES = 4096
_STATE_TTL = None  # the counter must outlive any process; a lost one only costs a rebuild


@dataclass
class _Loaded:
    index: VectorIndex
    version: str  # the file name: unique per build
    file_last_pk: int
    last_pk: int
    file_size: int


_loaded: dict[tuple[int, str], _Loaded] = {}
_lock = threading.Lock()


def _state_key(project_id: int, key: str) -> str:
    return f"similarity-index:{project_id}:{key}"


def _rebuild_pending_key(project_id: int, key: str) -> str:
    return f"similarity-rebuild-pending:{project_id}:{key}"


def similarity_index_rebuild(*, project: Project) -> dict:
    """Build the project's index from every stored vector, save it to storage and publish it
    (the new counter value); the previous file is deleted. Returns the published state."""
    key = selectors.embedding_key()
    caches["coordination"].delete(_rebuild_pending_key(project.pk, key))
    last_pk = ImageEmbedding.objects.filter(project=project, model_key=key).aggregate(m=Max("pk"))["m"] or 0
    ids, vectors = selectors.embedding_matrix(project=project, model_key=key)
    if not len(ids):
        vectors = np.empty((0, EMBEDDING_MODELS[key].dim), np.float32)
    index = index_build(ids, vectors, seed=project.pk)
    name = default_storage.save(f"projects/{project.pk}/similarity/{key}-{uuid.uuid4().hex[:12]}.hnsw",
                                ContentFile(index.to_bytes()))
    cache = caches["coordination"]
    previous = cache.get(_state_key(project.pk, key))
    state = {"name": name, "last_pk": int(last_pk), "size": int(len(ids))}
    cache.set(_state_key(project.pk, key), state, timeout=_STATE_TTL)
    if previous and previous.get("name") != name:
        default_storage.delete(previous["name"])
    with _lock:
        _loaded[(project.pk, key)] = _Loaded(index, name, int(last_pk), int(last_pk), int(len(ids)))
    return state


class IndexNotReady(RuntimeError):
    """No published index yet and too many vectors to build one inside a request."""


def project_index(project: Project, *, build_here: bool = False) -> VectorIndex:
    """The project's index, current to the last vector written: reloaded when the shared
    counter moved, topped up with newer rows, a rebuild queued when too much was added.
    Without a published index it is built here when small (or ``build_here``, in workers);
    a large one is queued for a worker and IndexNotReady raised."""
    key = selectors.embedding_key()
    state = caches["coordination"].get(_state_key(project.pk, key))
    with _lock:
        loaded = _loaded.get((project.pk, key))
    if state is not None and (loaded is None or loaded.version != state["name"]):
        loaded = _load(project, key, state)  # None when the file is gone
    elif state is None:
        loaded = None
    if loaded is None:
        loaded = _build_or_queue(project, key, build_here)
    rows = list(ImageEmbedding.objects.filter(project=project, model_key=key, pk__gt=loaded.last_pk)
                .order_by("pk").values_list("pk", "image_id", "vector"))
    with _lock:
        rows = [row for row in rows if row[0] > loaded.last_pk]  # another thread may have added them
        if rows:
            vectors = np.frombuffer(b"".join(bytes(v) for _, _, v in rows), selectors.VECTOR_DTYPE)
            loaded.index.add([i for _, i, _ in rows], vectors.reshape(len(rows), -1))
            loaded.last_pk = rows[-1][0]
        added = len(loaded.index) - loaded.file_size
    if added > max(100, settings.VISION_SIMILARITY_REBUILD_SHARE * loaded.file_size) and caches["coordination"].add(
            _rebuild_pending_key(project.pk, key), 1, timeout=600):
        enqueue(REBUILD_TASK, project.pk)
    return loaded.index


def _load(project: Project, key: str, state: dict) -> _Loaded | None:
    """The published file, loaded into this process (a storage read only when the counter
    moved, never per query)."""
    try:
        with default_storage.open(state["name"], "rb") as handle:
            index = VectorIndex.from_bytes(handle.read(), EMBEDDING_MODELS[key].dim)
    except OSError:  # deleted by a newer rebuild meanwhile, or never written
        return None
    loaded = _Loaded(index, state["name"], state["last_pk"], state["last_pk"], state["size"])
    with _lock:
        _loaded[(project.pk, key)] = loaded
    return loaded


def _build_or_queue(project: Project, key: str, build_here: bool) -> _Loaded:
    if not build_here and ImageEmbedding.objects.filter(project=project, model_key=key).count() \
            > settings.VISION_SIMILARITY_SYNC_BUILD_MAX:
        if caches["coordination"].add(_rebuild_pending_key(project.pk, key), 1, timeout=3600):
            enqueue(REBUILD_TASK, project.pk)
        raise IndexNotReady("The similarity index of this project is being built; try again in a few minutes.")
    similarity_index_rebuild(project=project)
    with _lock:
        return _loaded[(project.pk, key)]


def forget_process_indexes() -> None:
    """Drop this process's loaded indexes (tests: ids are reused across rollbacks)."""
    with _lock:
        _loaded.clear()


class NoEmbedding(ValueError):
    """The image has no vector yet."""


def similar_images(*, image: Image, k: int = 20, scope: str = "unlabeled") -> list[dict]:
    """The ``k`` images of the project most like ``image`` by cosine of their embeddings,
    best first, without the image itself: among images still in the queue (``unlabeled``)
    or all. Raises NoEmbedding when the image has no vector yet."""
    project = image.project
    ids, vectors = selectors.embedding_matrix(project=project, image_ids=[image.pk])
    if not len(ids):
        raise NoEmbedding(f"Image {image.pk} has no embedding yet; its embedding run has not reached it.")
    index = project_index(project)
    want = k
    while True:
        hits = index.query(vectors[0], want, exclude={image.pk})
        alive = set(Image.objects.filter(project=project, pk__in=[i for i, _ in hits]).values_list("id", flat=True))
        in_queue = set(Task.objects.filter(image_id__in=alive, status=TaskStatus.OPEN).values_list("image_id", flat=True))
        kept = [(i, s) for i, s in hits if i in alive and (scope == "all" or i in in_queue)]
        if len(kept) >= k or len(hits) < want or want >= MAX_CANDIDATES:
            break
        want = min(want * 4, MAX_CANDIDATES)
    kept = kept[:k]
    images = Image.objects.in_bulk([i for i, _ in kept])
    return [{"image_id": i, "similarity": round(s, 4), "labeled": i not in in_queue, **image_urls(images[i])}
            for i, s in kept]


def near_duplicates_flag(*, project: Project, image_ids: list[int]) -> int:
    """For each of ``image_ids`` with a vector, its nearest older image (smaller id): a
    NearDuplicate row when their cosine reaches the project's threshold (1.0 turns it off).
    Returns the rows written; a pair already flagged is kept as it is."""
    threshold = project.near_duplicate_threshold
    if threshold >= 1.0 or not image_ids:
        return 0
    ids, vectors = selectors.embedding_matrix(project=project, image_ids=image_ids)
    if not len(ids):
        return 0
    index = project_index(project, build_here=True)
    rows = []
    for image_id, vector in zip(ids.tolist(), vectors):
        # the nearest older image among a few nearest: an image whose near copies are all
        # newer is itself the older one of each pair, flagged from their side
        older = [(i, s) for i, s in index.query(vector, NEAR_DUPLICATE_CANDIDATES, exclude={image_id})
                 if i < image_id]
        if older and older[0][1] >= threshold:
            rows.append(NearDuplicate(project=project, image_id=image_id, duplicate_of_id=older[0][0],
                                      similarity=older[0][1]))
    alive = set(Image.objects.filter(pk__in=[r.duplicate_of_id for r in rows]).values_list("id", flat=True))
    rows = [r for r in rows if r.duplicate_of_id in alive]
    NearDuplicate.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def near_duplicate_item(row: NearDuplicate) -> dict:
    def image(i: Image) -> dict:
        return {"id": i.pk, "name": i.original_name, **image_urls(i)}

    return {"id": row.pk, "similarity": round(row.similarity, 4), "created_at": row.created_at,
            "dismissed": row.dismissed, "image": image(row.image), "duplicate_of": image(row.duplicate_of)}


def near_duplicates_page(*, project: Project, include_dismissed: bool = False, limit: int = 100,
                         offset: int = 0) -> dict:
    rows = NearDuplicate.objects.filter(project=project).select_related("image", "duplicate_of")
    if not include_dismissed:
        rows = rows.filter(dismissed=False)
    return {"count": rows.count(), "threshold": project.near_duplicate_threshold,
            "items": [near_duplicate_item(r) for r in rows.order_by("-id")[offset : offset + limit]]}


def near_duplicate_dismiss(*, row: NearDuplicate, user) -> NearDuplicate:
    NearDuplicate.objects.filter(pk=row.pk).update(dismissed=True, dismissed_by=user)
    row.refresh_from_db()
    return row
