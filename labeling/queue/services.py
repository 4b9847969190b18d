"""Queue writes: claiming a task under a lease, renewing and returning leases, submitting
work. Every write is one short transaction; nothing slow happens while a row is locked.

Guarantees (tested against PostgreSQL with concurrent clients):
- a claim takes one row with SELECT ... FOR UPDATE SKIP LOCKED on the queue index, so two
  callers never hold the same task; an annotator never gets two tasks of one image, nor an
  image they labeled (a label a lead rejected aside); an image they skipped comes back to
  them once nothing else is left for them;
- no empty label goes in unmeant: a classification label needs a class, and a detection
  label without boxes needs the explicit "no objects here" (`empty`);
- a submit with an Idempotency-Key already seen returns the first annotation, creates nothing;
- a submit that lost its task to someone else is stored as an extra opinion, never dropped.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from core.models import Image, LabelClass, ModelVersion, Prediction, Project
from vision_project.api_errors import Conflict
from vision_project.queries import Columns, execute_prepared, insert_prepared

from ..models import Annotation, AnnotationKind, AnnotationState, Task, TaskStatus
from ..payloads import (
    DETECTION,
    OBJECT_KEYS,
    SEGMENTATION,
    PayloadError,
    segmentation_clipped,
)
from ..services import label_checked
from ..signals import ANNOUNCED_IN_TRANSACTION, annotation_submitted

# The current task and the one the editor prefetches while the person works.
MAX_LEASES_PER_USER = 2

_STATUS_AFTER = {
    AnnotationKind.ACCEPT: TaskStatus.DONE,
    AnnotationKind.CORRECT: TaskStatus.DONE,
    AnnotationKind.SKIP: TaskStatus.SKIPPED,
    AnnotationKind.FLAG: TaskStatus.FLAGGED,
}


# --- leases ---------------------------------------------------------------------------


# Claim in one statement: the subquery walks the task_queue_order index (project, priority
# DESC, id WHERE status = 'open'), skips rows other claimers have locked and rows under a
# live lease, and stops at the first fit; the UPDATE leases it. PostgreSQL re-checks the
# WHERE on a row changed since the snapshot, so a task just leased by someone else is
# passed over, never shared. SQLite has no row locks but runs one writer at a time.
_CLAIM_SQL = """
UPDATE labeling_task SET lease_holder_id = %s, lease_expires_at = %s
WHERE id = (
    SELECT t.id FROM labeling_task t
    WHERE t.project_id = %s AND t.status = 'open'
      AND (t.lease_expires_at IS NULL OR t.lease_expires_at < %s)
      {exclude}
      AND NOT EXISTS (
          SELECT 1 FROM labeling_annotation a
          WHERE a.image_id = t.image_id AND a.author_id = %s AND a.review_status <> 'rejected'
            {skips_too})
      {other_slot}
    ORDER BY t.priority DESC, t.id
    LIMIT 1
    {lock}
){only_if}
RETURNING {returning}
"""
# With overlap an image has several open slots: not two of them to one person at once.
_OTHER_SLOT_HELD = """AND NOT EXISTS (
          SELECT 1 FROM labeling_task o
          WHERE o.image_id = t.image_id AND o.id <> t.id AND o.status = 'open'
            AND o.lease_holder_id = %s AND o.lease_expires_at >= %s)"""


def claim_statement(
    *, project: Project, user, exclude: list[int], now, expires, skipped_too: bool = False,
    only_if: tuple[str, list] = ("", []),
) -> tuple[str, list]:
    """The claim as SQL and parameters: open tasks of the project nobody holds, best first,
    without images the user holds another slot of or already annotated. What counts as
    annotated: any annotation of theirs a lead did not reject; with `skipped_too`, skips
    do not count (the second pass of task_claim_next). `only_if`, SQL starting with AND
    and its parameters, is a condition on claiming at all.

    The annotation probe is the one the claim always made per candidate (by image, on
    annotation_image_latest), reading two more columns of the same rows."""
    at = connection.ops.adapt_datetimefield_value
    # Without overlap an image has one open task at a time (skip and reject close the old
    # one before queueing a fresh one), so the other-slot check is left out: it would
    # only cost a probe per candidate.
    overlap = project.annotations_per_image > 1
    sql = _CLAIM_SQL.format(
        exclude=f"AND t.id NOT IN ({', '.join(['%s'] * len(exclude))})" if exclude else "",
        skips_too="AND a.kind <> 'skip'" if skipped_too else "",
        other_slot=_OTHER_SLOT_HELD if overlap else "",
        lock="FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else "",
        only_if=f"\n  {only_if[0]}" if only_if[0] else "",
        returning=_claimed_columns().sql,
    )
    params = [user.pk, at(expires), project.pk, at(now), *exclude, user.pk]
    if overlap:
        params += [user.pk, at(now)]
    return sql, [*params, *only_if[1]]


def task_claim_next(*, project: Project, user, exclude: list[int] = ()) -> Task | None:
    """The caller's own live lease (outside `exclude`) if any, else the highest-priority
    claimable task, leased to the caller for the project's TTL; None when nothing is left.

    Never an image the caller labeled, unless a lead rejected that label (it comes back in
    its queue position). An image the caller skipped comes back only when nothing else is
    left for them: a second claim, made only when the first finds nothing and the caller
    has skipped something in the project, lets skips through. So with annotations_per_image N, N different people label each image, and a
    lone annotator still sees every skipped or rejected image again.

    Raises Conflict when the caller already holds MAX_LEASES_PER_USER leases, all excluded.
    """
    exclude = list(exclude)
    now = timezone.now()
    expires = now + timedelta(seconds=project.lease_ttl_seconds)
    # PostgreSQL makes the claim's first pass in the statement that reads the leases.
    first_pass_made = connection.vendor == "postgresql"
    if first_pass_made:
        own, claimed = _own_leases_or_claim(project=project, user=user, exclude=exclude, now=now, expires=expires)
    else:
        own, claimed = _own_leases(project=project, user=user, now=now), None
    for task in own:
        if task.pk not in exclude:
            return task
    if len(own) >= MAX_LEASES_PER_USER:
        held = [task.pk for task in own]
        raise Conflict(
            f"You already hold {len(own)} tasks ({', '.join(map(str, held))}); submit or release "
            "one before asking for another.",
            task_ids=held,
        )
    if claimed is not None:
        return claimed
    for skipped_too in (True,) if first_pass_made else (False, True):
        # The second pass walks the pool again; only for someone who has skipped here.
        if skipped_too and not Annotation.objects.filter(
            author=user, project=project, kind=AnnotationKind.SKIP
        ).exists():
            break
        sql, params = claim_statement(project=project, user=user, exclude=exclude, now=now, expires=expires,
                                      skipped_too=skipped_too)
        # One statement, its own short transaction; RETURNING gives the leased row itself.
        with connection.cursor() as cursor:
            execute_prepared(cursor, sql, params)
            row = cursor.fetchone()
        if row is not None:
            return _claimed_columns().build(row)
    return None


_OWN_LEASES_WHERE = "t.project_id = %s AND t.lease_holder_id = %s AND t.status = 'open' AND t.lease_expires_at > %s"


def _own_leases(*, project: Project, user, now) -> list[Task]:
    """The caller's live leases in the project, the first to expire first."""
    columns = _task_columns()
    with connection.cursor() as cursor:
        execute_prepared(
            cursor,
            f'SELECT {columns.sql} FROM "{Task._meta.db_table}" t WHERE {_OWN_LEASES_WHERE} '
            "ORDER BY t.lease_expires_at, t.id",
            [project.pk, user.pk, connection.ops.adapt_datetimefield_value(now)],
        )
        return [columns.build(row) for row in cursor.fetchall()]


def _own_leases_or_claim(*, project: Project, user, exclude: list[int], now, expires
                         ) -> tuple[list[Task], Task | None]:
    """PostgreSQL, one statement: the caller's live leases (as _own_leases) and the claim's
    first pass, made only when every lease is in `exclude` and there are fewer than
    MAX_LEASES_PER_USER (a condition on the leases' rows that PostgreSQL checks before it
    walks the queue)."""
    columns = _task_columns()
    names = ", ".join(f'"{field.column}"' for field in columns.fields)
    not_excluded = f" WHERE own.id NOT IN ({', '.join(['%s'] * len(exclude))})" if exclude else ""
    claim, claim_params = claim_statement(
        project=project, user=user, exclude=exclude, now=now, expires=expires,
        only_if=(f"AND NOT EXISTS (SELECT 1 FROM own{not_excluded}) "
                 "AND (SELECT count(*) FROM own) < %s", [*exclude, MAX_LEASES_PER_USER]))
    at = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        execute_prepared(
            cursor,
            f'WITH own AS (SELECT {columns.sql} FROM "{Task._meta.db_table}" t WHERE {_OWN_LEASES_WHERE}), '
            f"claimed AS ({claim}) "
            f"SELECT false, {names} FROM own UNION ALL SELECT true, {names} FROM claimed",
            [project.pk, user.pk, at(now), *claim_params],
        )
        rows = cursor.fetchall()
    own = sorted((columns.build(row, 1) for row in rows if not row[0]), key=lambda task: (task.lease_expires_at, task.pk))
    return own, next((columns.build(row, 1) for row in rows if row[0]), None)


def task_lease_renew(*, task: Task, user) -> Task:
    """Extend the caller's lease by the project's TTL. A lease that expired is still the
    caller's while nobody else took the task. Raises Conflict when it is not."""
    expires = timezone.now() + timedelta(seconds=task.project.lease_ttl_seconds)
    renewed = Task.objects.filter(pk=task.pk, status=TaskStatus.OPEN, lease_holder=user).update(
        lease_expires_at=expires
    )
    if not renewed:
        raise Conflict(
            f"Task {task.pk} is no longer leased to you (completed, released or taken by another "
            "annotator after your lease expired). Ask for the next task."
        )
    task.lease_expires_at = expires
    return task


def task_lease_release(*, task: Task, user) -> bool:
    """Give the caller's lease back so the task returns to the pool; False when there was
    none to give back. Raises Conflict for a live lease someone else holds (not named)."""
    released = Task.objects.filter(pk=task.pk, status=TaskStatus.OPEN, lease_holder=user).update(
        lease_holder=None, lease_expires_at=None
    )
    if not released and Task.objects.filter(
        pk=task.pk, lease_holder__isnull=False, lease_expires_at__gt=timezone.now()
    ).exclude(lease_holder=user).exists():
        raise Conflict("This task is leased to someone else; only its holder can release it.")
    return bool(released)


def task_reopen_for_image(*, image: Image, like: Task | None = None) -> Task:
    """A fresh open task for an image (skipped, rejected or sent back by a lead), keeping the
    queue position of `like`. Whoever labeled the image before will not be served it
    (unless their label was rejected); whoever skipped it, only when nothing else is left."""
    next_slot = (Task.objects.filter(image=image).aggregate(m=Max("slot"))["m"] or 0) + 1
    return Task.objects.create(
        project_id=image.project_id,
        image=image,
        slot=next_slot,
        priority=like.priority if like else 0.0,
        is_random_pick=like.is_random_pick if like else False,
    )


# --- submit ---------------------------------------------------------------------------


@dataclass
class SubmitResult:
    annotation: Annotation
    created: bool  # False when the Idempotency-Key was seen before (a replay)

    @property
    def is_extra_opinion(self) -> bool:
        return self.annotation.state == AnnotationState.EXTRA_OPINION


def extra_opinion_explanation(annotation: Annotation) -> str:
    kept = f"Your work is kept as an extra opinion (annotation {annotation.pk})"
    task = annotation.task
    if task is not None and task.completed_by_id == annotation.author_id:
        return f"You had already completed task {task.pk}. {kept}; your first submit stands."
    return (
        f"Task {annotation.task_id} was no longer yours: after your lease expired another "
        f"annotator took or completed it. {kept} and does not replace theirs."
    )


def annotation_submit(
    *,
    task: Task,
    user,
    kind: str,
    idempotency_key: str,
    payload: dict | None = None,
    prediction_id: int | None = None,
    flag_reason: str = "",
    time_spent_ms: int = 0,
    empty: bool = False,
) -> SubmitResult:
    """Record one outcome for a task (loaded with its project and image). Raises
    PayloadError for a bad payload, a missing prediction to accept, a label with no class,
    or a detection label without boxes that is not marked `empty` ("no objects here");
    Conflict when the key was used for another task."""
    task_id = task.pk
    prediction, clean = _clean_payload(task=task, kind=kind, payload=payload, prediction_id=prediction_id,
                                       flag_reason=flag_reason, empty=empty)
    try:
        with transaction.atomic():
            locked, seen_id = _locked_task(task_id, user=user, key=idempotency_key)
            if seen_id is not None:
                return _replayed(seen_id, key=idempotency_key, task_id=task_id)
            now = timezone.now()
            annotation = Annotation(
                project_id=locked.project_id,
                image_id=locked.image_id,
                task=locked,
                author=user,
                kind=kind,
                state=AnnotationState.EXTRA_OPINION if _lost(locked, user, now) else AnnotationState.SUBMITTED,
                payload=clean,
                prediction=prediction,
                flag_reason=flag_reason if kind == AnnotationKind.FLAG else "",
                time_spent_ms=time_spent_ms,
                idempotency_key=idempotency_key,
            )
            # Announced below, in this transaction, with this instance (the reports count it there).
            annotation.__dict__[ANNOUNCED_IN_TRANSACTION] = True
            submitted = annotation.state == AnnotationState.SUBMITTED
            # The task is completed by the annotation's INSERT statement itself (PostgreSQL).
            insert_prepared(annotation, along=(
                f'UPDATE "{Task._meta.db_table}" SET status = %s, completed_by_id = %s, completed_at = %s, '
                "lease_holder_id = NULL, lease_expires_at = NULL WHERE id = %s",
                [str(_STATUS_AFTER[kind]), user.pk, connection.ops.adapt_datetimefield_value(now), locked.pk],
            ) if submitted else None)
            if submitted and kind == AnnotationKind.SKIP:
                task_reopen_for_image(image=task.image, like=locked)
            annotation_submitted.send(sender=Annotation, annotation=annotation, task_type=task.project.task_type)
    except IntegrityError:
        # The same key raced in: a retry that waited on this task's row lock (its key probe
        # read the snapshot from before the wait), or one through another task's lock.
        replay = _replay(user=user, key=idempotency_key, task_id=task_id)
        if replay is None:
            raise
        return replay
    return SubmitResult(annotation=annotation, created=True)


def _lost(task: Task, user, now) -> bool:
    """Someone else now holds or has completed the task. A lease that merely expired, with
    nobody taking the task since, is still the caller's to complete."""
    if task.status != TaskStatus.OPEN:
        return True
    return (
        task.lease_holder_id not in (None, user.pk)
        and task.lease_expires_at is not None
        and task.lease_expires_at > now
    )


@functools.cache
def _task_columns() -> Columns:
    return Columns(Task, "t")


@functools.cache
def _claimed_columns() -> Columns:
    # What the claim's UPDATE returns, named by its table.
    return Columns(Task, f'"{Task._meta.db_table}"')


def _locked_task(task_id: int, *, user, key: str) -> tuple[Task, int | None]:
    """The task's row under FOR UPDATE (SQLite: one writer at a time) and the id of the
    caller's annotation under this Idempotency-Key, if any: one hand-written statement."""
    columns = _task_columns()
    lock = " FOR UPDATE OF t" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        execute_prepared(
            cursor,
            f'SELECT {columns.sql}, (SELECT a.id FROM "{Annotation._meta.db_table}" a '
            f'WHERE a.author_id = %s AND a.idempotency_key = %s) FROM "{Task._meta.db_table}" t WHERE t.id = %s{lock}',
            [user.pk, key, task_id])
        row = cursor.fetchone()
    if row is None:
        raise Task.DoesNotExist(f"task {task_id} does not exist")
    return columns.build(row), row[-1]


def _replay(*, user, key: str, task_id: int) -> SubmitResult | None:
    # A probe on the unique (author, key) index; the annotation is loaded only for a replay.
    with connection.cursor() as cursor:
        execute_prepared(cursor, f'SELECT id FROM "{Annotation._meta.db_table}" WHERE author_id = %s AND idempotency_key = %s',
                       [user.pk, key])
        row = cursor.fetchone()
    return None if row is None else _replayed(row[0], key=key, task_id=task_id)


def _replayed(annotation_id: int, *, key: str, task_id: int) -> SubmitResult:
    """The first submit under the key, answered again; Conflict when it was for another task."""
    first = Annotation.objects.get(pk=annotation_id)
    if first.task_id != task_id:
        raise Conflict(
            f"Idempotency-Key {key!r} was already used for task {first.task_id}; use a new key "
            "for every new submit.",
            annotation_id=first.pk,
        )
    return SubmitResult(annotation=first, created=False)


def _clean_payload(*, task: Task, kind: str, payload, prediction_id, flag_reason: str, empty: bool):
    project, image = task.project, task.image
    prediction = class_ids = None
    if prediction_id is not None:
        prediction, class_ids = _prediction_of(image.pk, "p.id = %s", [prediction_id], project_id=project.pk)
        if prediction is None:
            raise PayloadError(f"prediction {prediction_id} is not a prediction for image {image.pk}")
    if empty and kind not in LABEL_KINDS:
        raise PayloadError(f'"empty" marks a label with no objects; a {kind} carries no label')
    if empty and project.task_type not in OBJECT_KEYS:
        raise PayloadError('"empty" is for detection and segmentation; a classification label needs a class')
    if kind == AnnotationKind.CORRECT:
        if payload is None and empty:
            payload = {OBJECT_KEYS[project.task_type]: []}
        if payload is None:
            raise PayloadError("a correction needs a payload")
        return prediction, label_checked(payload, project=project, image=image, kind=kind, empty=empty,
                                         class_ids=class_ids)
    if kind == AnnotationKind.ACCEPT:
        if prediction is None:
            # One deployed version per project, one prediction per image and version.
            prediction, class_ids = _prediction_of(
                image.pk, f'p.model_version_id IN (SELECT v.id FROM "{ModelVersion._meta.db_table}" v '
                "WHERE v.project_id = %s AND v.is_deployed)", [project.pk], project_id=project.pk)
        if prediction is None:
            raise PayloadError(f"image {image.pk} has no pre-label to accept; submit a correction")
        labels = _labels_of_prediction(prediction.payload, project.task_type, image)
        return prediction, label_checked(labels, project=project, image=image, kind=kind, empty=empty,
                                         class_ids=class_ids)
    if kind == AnnotationKind.FLAG and not flag_reason.strip():
        raise PayloadError("flagging an image as unclear needs a flag_reason")
    return prediction, {}


LABEL_KINDS = (AnnotationKind.ACCEPT, AnnotationKind.CORRECT)


@functools.cache
def _prediction_columns() -> Columns:
    # The embedding (kilobytes per row) is for sampling; a submit never reads it.
    return Columns(Prediction, "p", tuple(f.attname for f in Prediction._meta.concrete_fields
                                          if f.name != "embedding"))


def _prediction_of(image_id: int, condition: str, params: list, *, project_id: int
                   ) -> tuple[Prediction | None, list[int] | None]:
    """The image's prediction that meets `condition` (a unique one: by id, or the deployed
    version's), in hand-written SQL; on PostgreSQL with the project's class ids (what
    project_class_ids reads) in the same row, else None for them."""
    columns = _prediction_columns()
    with_classes = connection.vendor == "postgresql"
    class_ids = (f', ARRAY(SELECT c.id FROM "{LabelClass._meta.db_table}" c WHERE c.project_id = %s '
                 'ORDER BY c."order", c.id)') if with_classes else ""
    with connection.cursor() as cursor:
        execute_prepared(
            cursor,
            f'SELECT {columns.sql}{class_ids} FROM "{Prediction._meta.db_table}" p WHERE p.image_id = %s AND {condition}',
            [*([project_id] if with_classes else []), image_id, *params])
        row = cursor.fetchone()
    if row is None:
        return None, None
    return columns.build(row), (list(row[-1]) if with_classes else None)


def _labels_of_prediction(payload: dict, task_type: str, image: Image) -> dict:
    """What accepting a pre-label means: its boxes or polygons clipped to the image (model
    output can overshoot by a fraction of a pixel) without scores, or its top class."""
    if task_type == SEGMENTATION:
        return segmentation_clipped(payload, image.width, image.height)
    if task_type == DETECTION:
        boxes = []
        for box in payload.get("boxes", []):
            clipped = {
                "x1": min(max(box["x1"], 0), image.width), "y1": min(max(box["y1"], 0), image.height),
                "x2": min(max(box["x2"], 0), image.width), "y2": min(max(box["y2"], 0), image.height),
                "label": box["label"],
            }
            if clipped["x2"] > clipped["x1"] and clipped["y2"] > clipped["y1"]:
                boxes.append(clipped)
        return {"boxes": boxes}
    return {"labels": list(payload.get("labels", []))[:1]}


# Open tasks whose priority one transaction rewrites.
PRIORITY_CHUNK = 5000


def task_priorities_write(*, project: Project, priority_of: dict[int, tuple[float, bool]]) -> int:
    """Write {image id: (priority, is_random_pick)} to all open slots of each image; returns
    rows changed. In chunks, each its own short transaction, so claims are never blocked
    for long."""
    items = list(priority_of.items())
    changed = 0
    for start in range(0, len(items), PRIORITY_CHUNK):
        chunk = items[start:start + PRIORITY_CHUNK]
        with transaction.atomic():
            if connection.vendor == "postgresql":
                changed += _write_chunk_postgres(project, chunk)
            else:
                changed += _write_chunk_portable(project, chunk)
    return changed


def _write_chunk_postgres(project: Project, chunk) -> int:
    from psycopg2.extras import execute_values

    with connection.cursor() as cursor:
        execute_values(
            cursor,
            "UPDATE labeling_task AS t SET priority = v.priority, is_random_pick = v.random_pick "
            "FROM (VALUES %s) AS v(image_id, priority, random_pick) "
            "WHERE t.image_id = v.image_id AND t.project_id = " + str(int(project.pk)) + " "
            "AND t.status = 'open' "
            "AND (t.priority <> v.priority OR t.is_random_pick <> v.random_pick)",
            [(image_id, priority, random_pick) for image_id, (priority, random_pick) in chunk],
            template="(%s::bigint, %s::double precision, %s::boolean)",
            page_size=len(chunk),
        )
        return cursor.rowcount


def _write_chunk_portable(project: Project, chunk) -> int:
    tasks = list(Task.objects.filter(project=project, status=TaskStatus.OPEN,
                                     image_id__in=[image_id for image_id, _ in chunk]))
    values = dict(chunk)
    for task in tasks:
        task.priority, task.is_random_pick = values[task.image_id]
    Task.objects.bulk_update(tasks, ["priority", "is_random_pick"], batch_size=500)
    return len(tasks)
