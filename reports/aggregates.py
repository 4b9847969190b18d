"""Report aggregates, updated as annotations land.

`report_aggregates_record(annotation_id=...)` adds one annotation to the counters; it is
idempotent (a ReportAnnotationMark row per counted annotation) and runs in one
transaction, so an annotation is counted completely or not at all.
`report_aggregates_rebuild(project=...)` recomputes a project's aggregates from the
annotations (backfills, bulk imports that bypass signals, repairs).

Hook: labeling.apps connects `record_new_annotation_on_commit` (post_save on Annotation), which calls
`report_aggregates_record` on commit of the creating transaction, outside it: a failure is
logged and never undoes the annotation; the rebuild command repairs. The queue's submit
counts its annotation itself, inside its own transaction under a savepoint
(`report_aggregates_record_in_transaction`: a failure rolls back the savepoint only and
falls back to the on-commit recording), so reports are current the moment a submit returns
and a submit is one transaction. While a rebuild runs, recording stands aside instead of waiting, and the
rebuild counts those annotations when it ends.

What is counted (see prelabel_quality for the pre-label definitions):
- human annotations: one submission each (kind accept/correct = labeled; skip; flag with
  its reason), time spent, and pre-label quality when they started from a prediction;
- a lead's rejection of a human label, in the row the label was counted in
  (report_aggregates_record_rejection, called by the review);
- the first label (accept/correct, human or import) of an image: the burn-down;
- agreement: an author's first label of an image against the other authors' first labels
  of it (detection: box F1 at IoU 0.5, class-aware; classification: the label pair for
  Cohen's kappa, from single-label annotations).
"""
from __future__ import annotations

import functools
import logging

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q

from core.models import TaskType
from labeling.models import Annotation, AnnotationKind, AnnotationSource, ReviewStatus
from labeling.signals import ANNOUNCED_IN_TRANSACTION
from ml.metrics import box_f1, iou_f1
from vision_project.queries import execute_prepared, unique_or_none

from .models import (
    ReportAgreementPair,
    ReportAnnotationMark,
    ReportDailyCounts,
    ReportFlagReason,
    ReportLabeledImage,
)
from .prelabel_quality import (
    PrelabelDiff,
    classification_diff,
    detection_diff,
    polygon_ious,
    segmentation_diff,
)

logger = logging.getLogger(__name__)

LABEL_KINDS = (AnnotationKind.ACCEPT, AnnotationKind.CORRECT)
NO_REASON = "(no reason given)"


def _insert_new(model, values: dict) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING on the primary key; True when the row is new."""
    table, pk = model._meta.db_table, model._meta.pk.column
    columns = ", ".join(values)
    with connection.cursor() as cursor:
        execute_prepared(
            cursor,
            f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(values))}) "
            f"ON CONFLICT ({pk}) DO NOTHING RETURNING {pk}",
            list(values.values()),
        )
        return cursor.fetchone() is not None


@functools.cache
def _counted_submission_sql() -> tuple[str, list[str]]:
    """count_submission's PostgreSQL statement, the project's shared lock included, and the
    daily row's columns it takes as parameters, in order (images_labeled is the
    labeled-image insert's outcome)."""
    mark, labeled, daily = (ReportAnnotationMark._meta.db_table, ReportLabeledImage._meta.db_table,
                            ReportDailyCounts._meta.db_table)
    key = ("project_id", "day", "annotator_id", "model_version_id", "arm")
    fields = [f for f in ReportDailyCounts._meta.concrete_fields if not f.primary_key]
    columns = [f.column for f in fields if f.column != "images_labeled"]
    # A SELECT list implies no types: each parameter is cast to its column's.
    selected = ", ".join("(SELECT count(*) FROM labeled)::integer" if f.column == "images_labeled"
                         else f"CAST(%s AS {f.db_type(connection)})" for f in fields)
    updates = _added_on_conflict(daily, [f.column for f in fields if f.column not in key])
    sql = (
        # The project's shared lock first (_lock_project): nothing is written without it.
        "WITH locked AS (SELECT pg_try_advisory_xact_lock_shared(%s, %s) AS held), "
        f"marked AS (INSERT INTO {mark} "
        "(annotation_id, project_id, image_id, author_id, first_label_by_author) "
        "SELECT CAST(%s AS BIGINT), CAST(%s AS BIGINT), CAST(%s AS BIGINT), CAST(%s AS BIGINT), "
        f"(CAST(%s AS BOOLEAN) AND NOT EXISTS (SELECT 1 FROM {mark} "
        "WHERE image_id = %s AND author_id = %s AND first_label_by_author)) "
        "FROM locked WHERE locked.held "
        "ON CONFLICT (annotation_id) DO NOTHING RETURNING first_label_by_author), "
        f"labeled AS (INSERT INTO {labeled} (image_id, project_id, day) "
        "SELECT CAST(%s AS BIGINT), CAST(%s AS BIGINT), CAST(%s AS DATE) "
        "WHERE CAST(%s AS BOOLEAN) AND EXISTS (SELECT 1 FROM marked) "
        "ON CONFLICT (image_id) DO NOTHING RETURNING image_id), "
        f"counted AS (INSERT INTO {daily} ({', '.join(f.column for f in fields)}) "
        f"SELECT {selected} WHERE EXISTS (SELECT 1 FROM marked) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}) "
        "SELECT (SELECT held FROM locked), (SELECT first_label_by_author FROM marked), "
        "EXISTS (SELECT 1 FROM labeled)"
    )
    return sql, columns


def _added_on_conflict(table: str, counters: list[str]) -> str:
    """The SET list of an upsert that adds the new row's counters to the existing row's."""
    return ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in counters)


def _upsert_add(model, key: dict, deltas: dict) -> None:
    """One-statement increment: insert the row with `deltas`, or add them to the row with
    this key (its unique constraint). Counters not named start at 0."""
    table = model._meta.db_table
    counters = [f.column for f in model._meta.concrete_fields if not f.primary_key and f.column not in key]
    values = {**key, **{c: deltas.get(c, 0) for c in counters}}
    updates = _added_on_conflict(table, counters)
    with connection.cursor() as cursor:
        execute_prepared(
            cursor,
            f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join(['%s'] * len(values))}) "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}",
            list(values.values()),
        )


class _Store:
    def count_submission(self, annotation: Annotation, may_be_first: bool, day, daily_key: dict,
                         deltas: dict) -> tuple[bool, bool] | None:
        """Mark a human annotation counted, note the image labeled when it is a label, and add
        `deltas` (and images_labeled) to its daily row. None when it was counted before, else
        (its author's first label of the image, the image's first label)."""
        first_by_author = self.mark(annotation, may_be_first)
        if first_by_author is None:
            return None
        first_label_of_image = annotation.kind in LABEL_KINDS and self.label_image(annotation, day)
        self.bump(ReportDailyCounts, daily_key, {**deltas, "images_labeled": int(first_label_of_image)})
        return first_by_author, first_label_of_image


class _DatabaseStore(_Store):
    """Applies one annotation's counts straight to the tables (the live path), with single
    statement upserts that are safe against concurrent recorders. Its first write (mark or
    count_submission: _record begins with one) takes the project's shared lock, so it
    raises RebuildInProgress, having written nothing, while a rebuild runs."""

    def __init__(self):
        self.locked = False

    def _lock(self, project_id: int) -> None:
        if not self.locked:
            _lock_project(project_id, exclusive=False)
            self.locked = True

    def count_submission(self, annotation: Annotation, may_be_first: bool, day, daily_key: dict,
                         deltas: dict) -> tuple[bool, bool] | None:
        if connection.vendor != "postgresql":
            return super().count_submission(annotation, may_be_first, day, daily_key, deltas)
        # The lock, the mark, the labeled image and the daily upsert in one statement (the
        # submit's hot path): the later two only when the mark is new, the image only for a label.
        sql, columns = _counted_submission_sql()
        author_id = annotation.author_id or 0
        values = {**dict.fromkeys(columns, 0), **daily_key, **deltas}
        with connection.cursor() as cursor:
            execute_prepared(cursor, sql, [
                AGGREGATES_LOCK, annotation.project_id,
                annotation.pk, annotation.project_id, annotation.image_id, author_id, may_be_first,
                annotation.image_id, author_id,
                annotation.image_id, annotation.project_id, day, annotation.kind in LABEL_KINDS,
                *(values[column] for column in columns),
            ])
            held, first_by_author, first_label_of_image = cursor.fetchone()
        if not held:
            raise RebuildInProgress(f"the report aggregates of project {annotation.project_id} are being rebuilt")
        self.locked = True
        return None if first_by_author is None else (first_by_author, first_label_of_image)

    def mark(self, annotation: Annotation, may_be_first: bool) -> bool | None:
        """None when the annotation was counted before; else whether it is its author's first
        label of the image (`may_be_first` and no first-label mark of theirs there yet).
        The probe and the insert are one statement."""
        self._lock(annotation.project_id)
        author_id = annotation.author_id or 0
        table = ReportAnnotationMark._meta.db_table
        with connection.cursor() as cursor:
            execute_prepared(
                cursor,
                f"INSERT INTO {table} "
                "(annotation_id, project_id, image_id, author_id, first_label_by_author) "
                # The types, for PostgreSQL's PREPARE: a SELECT list implies none.
                "SELECT CAST(%s AS BIGINT), CAST(%s AS BIGINT), CAST(%s AS BIGINT), CAST(%s AS BIGINT), "
                "(%s AND NOT EXISTS ("
                f" SELECT 1 FROM {table}"
                " WHERE image_id = %s AND author_id = %s AND first_label_by_author)) "
                # WHERE true: SQLite needs it to parse the ON CONFLICT after a SELECT.
                "WHERE true "
                "ON CONFLICT (annotation_id) DO NOTHING RETURNING first_label_by_author",
                [annotation.pk, annotation.project_id, annotation.image_id, author_id, may_be_first,
                 annotation.image_id, author_id],
            )
            row = cursor.fetchone()
        return None if row is None else bool(row[0])

    def label_image(self, annotation: Annotation, day) -> bool:
        return _insert_new(ReportLabeledImage, {
            "image_id": annotation.image_id, "project_id": annotation.project_id, "day": day})

    def bump(self, model, key: dict, deltas: dict) -> None:
        _upsert_add(model, key, deltas)

    def agreement_partners(self, annotation: Annotation, image_is_new: bool) -> list[tuple[int, dict]]:
        if image_is_new:
            # This transaction inserted the image's ReportLabeledImage row, so no label of
            # it was counted before (every first-label mark comes with that row, in the same
            # transaction), and one counted concurrently waits on this insert: no partner,
            # and nothing to lock or read.
            return []
        # Lock the image's row so two authors' labels landing together still meet.
        unique_or_none(ReportLabeledImage.objects.select_for_update().filter(image_id=annotation.image_id))
        other_ids = ReportAnnotationMark.objects.filter(
            image_id=annotation.image_id, first_label_by_author=True
        ).exclude(annotation_id=annotation.pk).exclude(author_id=annotation.author_id).values("annotation_id")
        return list(Annotation.objects.filter(pk__in=other_ids).values_list("author_id", "payload"))


class _MemoryStore(_Store):
    """Collects a whole project's counts in memory, then writes them in bulk (rebuild)."""

    def __init__(self):
        self.marks: list[ReportAnnotationMark] = []
        self.first_labels: dict[int, list[tuple[int, dict]]] = {}  # image -> (author, payload)
        self.labeled_images: dict[int, ReportLabeledImage] = {}
        self.rows: dict[tuple, dict] = {}

    def mark(self, annotation: Annotation, may_be_first: bool) -> bool | None:
        first_label_by_author = may_be_first and all(
            author != annotation.author_id for author, _ in self.first_labels.get(annotation.image_id, []))
        self.marks.append(ReportAnnotationMark(
            annotation_id=annotation.pk, project_id=annotation.project_id, image_id=annotation.image_id,
            author_id=annotation.author_id or 0, first_label_by_author=first_label_by_author))
        if first_label_by_author:
            self.first_labels.setdefault(annotation.image_id, []).append(
                (annotation.author_id, annotation.payload))
        return first_label_by_author

    def label_image(self, annotation: Annotation, day) -> bool:
        if annotation.image_id in self.labeled_images:
            return False
        self.labeled_images[annotation.image_id] = ReportLabeledImage(
            image_id=annotation.image_id, project_id=annotation.project_id, day=day)
        return True

    def bump(self, model, key: dict, deltas: dict) -> None:
        row = self.rows.setdefault((model, *sorted(key.items())), {})
        for field, value in deltas.items():
            row[field] = row.get(field, 0) + value

    def agreement_partners(self, annotation: Annotation, image_is_new: bool) -> list[tuple[int, dict]]:
        return [(author, payload) for author, payload in self.first_labels.get(annotation.image_id, [])
                if author != annotation.author_id]

    def flush(self) -> None:
        ReportAnnotationMark.objects.bulk_create(self.marks, batch_size=5000)
        ReportLabeledImage.objects.bulk_create(self.labeled_images.values(), batch_size=5000)
        by_model: dict = {}
        for (model, *key), deltas in self.rows.items():
            by_model.setdefault(model, []).append(model(**dict(key), **deltas))
        for model, rows in by_model.items():
            model.objects.bulk_create(rows, batch_size=5000)


def _from_prelabel(annotation: Annotation) -> bool:
    """A label that started from a pre-label: counted with that model version."""
    return annotation.prediction_id is not None and annotation.kind in LABEL_KINDS


def _prelabel_diff(annotation: Annotation, task_type: str) -> PrelabelDiff | None:
    if not _from_prelabel(annotation):
        return None
    prediction = annotation.prediction
    accepted = annotation.kind == AnnotationKind.ACCEPT
    if task_type == TaskType.DETECTION:
        return detection_diff(
            prediction.payload.get("boxes", []), annotation.payload.get("boxes", []), accepted=accepted
        )
    if task_type == TaskType.SEGMENTATION:
        return segmentation_diff(
            prediction.payload.get("polygons", []), annotation.payload.get("polygons", []), accepted=accepted
        )
    return classification_diff(
        prediction.payload.get("labels", []), annotation.payload.get("labels", []), accepted=accepted
    )


def _record(annotation: Annotation, task_type: str, store) -> bool:
    """Count one annotation into `store`; False when it was counted before."""
    project_id = annotation.project_id
    is_label = annotation.kind in LABEL_KINDS
    day = annotation.created_at.date()
    if annotation.source == AnnotationSource.IMPORT:
        if store.mark(annotation, False) is None:
            return False
        if is_label and store.label_image(annotation, day):
            store.bump(ReportDailyCounts, {"project_id": project_id, "day": day, "annotator_id": 0,
                                           "model_version_id": 0, "arm": "none"}, {"images_imported": 1})
        return True

    may_be_first = is_label and annotation.source == AnnotationSource.HUMAN and bool(annotation.author_id)
    counted = store.count_submission(annotation, may_be_first, day, _daily_key(annotation),
                                     _submission_deltas(annotation, task_type, is_label))
    if counted is None:
        return False
    first_by_author, first_label_of_image = counted
    # After the image's labeled row exists: the partners query locks it.
    partners = store.agreement_partners(annotation, first_label_of_image) if first_by_author else []
    if annotation.kind == AnnotationKind.FLAG:
        reason = " ".join(annotation.flag_reason.split())[:500] or NO_REASON
        store.bump(ReportFlagReason, {"project_id": project_id, "reason": reason}, {"count": 1})
    for partner_id, partner_payload in partners:
        _record_agreement(annotation, partner_id, partner_payload, task_type, store)
    return True


def _submission_deltas(annotation: Annotation, task_type: str, is_label: bool) -> dict:
    """What a human annotation adds to its ReportDailyCounts row, but images_labeled (whether
    it is the image's first label, known once it is counted)."""
    diff = _prelabel_diff(annotation, task_type)
    deltas = {
        "submissions": 1,
        "labeled": int(is_label),
        "rejected": int(is_label and annotation.review_status == ReviewStatus.REJECTED),
        "skipped": int(annotation.kind == AnnotationKind.SKIP),
        "flagged": int(annotation.kind == AnnotationKind.FLAG),
        "time_spent_ms": annotation.time_spent_ms,
    }
    if diff is not None:
        deltas.update(
            prelabeled=1,
            accepted_unchanged=int(diff.accepted_unchanged),
            boxes_predicted=diff.boxes_predicted,
            boxes_final=diff.boxes_final,
            boxes_added=diff.added,
            boxes_deleted=diff.deleted,
            boxes_moved=diff.moved,
            boxes_matched=diff.matched,
            iou_shift_sum=diff.iou_shift_sum,
            class_flips=diff.class_flips,
            vertex_shift_sum=diff.vertex_shift_sum,
            vertices_compared=diff.vertices_compared,
        )
    return deltas


def _daily_key(annotation: Annotation) -> dict:
    """The ReportDailyCounts row a human annotation is counted in."""
    task = annotation.task
    return {
        "project_id": annotation.project_id,
        "day": annotation.created_at.date(),
        "annotator_id": annotation.author_id or 0,
        "model_version_id": annotation.prediction.model_version_id if _from_prelabel(annotation) else 0,
        "arm": "none" if task is None else ("random" if task.is_random_pick else "strategy"),
    }


def _single_label(payload: dict) -> int | None:
    labels = payload.get("labels", [])
    return int(labels[0]) if len(labels) == 1 else None


def _boxes(payload: dict) -> tuple[list[list[float]], list[int]]:
    boxes = payload.get("boxes", [])
    return [[b["x1"], b["y1"], b["x2"], b["y2"]] for b in boxes], [int(b["label"]) for b in boxes]


def _record_agreement(annotation: Annotation, partner_id: int, partner_payload: dict, task_type: str,
                      store) -> None:
    (a_id, a_payload), (b_id, b_payload) = sorted(
        [(annotation.author_id, annotation.payload), (partner_id, partner_payload)], key=lambda p: p[0]
    )
    key = {"project_id": annotation.project_id, "annotator_a": a_id, "annotator_b": b_id}
    if task_type == TaskType.DETECTION:
        boxes_a, classes_a = _boxes(a_payload)
        boxes_b, classes_b = _boxes(b_payload)
        score = box_f1(boxes_a, boxes_b, iou_threshold=0.5, classes_a=classes_a, classes_b=classes_b)
        store.bump(ReportAgreementPair, {**key, "label_a": 0, "label_b": 0},
                   {"comparisons": 1, "score_sum": score})
        return
    if task_type == TaskType.SEGMENTATION:
        polygons_a, polygons_b = a_payload.get("polygons", []), b_payload.get("polygons", [])
        score = iou_f1(polygon_ious(polygons_a, polygons_b), iou_threshold=0.5,
                       classes_a=[p["label"] for p in polygons_a], classes_b=[p["label"] for p in polygons_b])
        store.bump(ReportAgreementPair, {**key, "label_a": 0, "label_b": 0},
                   {"comparisons": 1, "score_sum": score})
        return
    label_a, label_b = _single_label(a_payload), _single_label(b_payload)
    if label_a is not None and label_b is not None:
        store.bump(ReportAgreementPair, {**key, "label_a": label_a, "label_b": label_b},
                   {"comparisons": 1, "score_sum": float(label_a == label_b)})


# Advisory lock namespace of the report aggregates (the second key is the project id).
AGGREGATES_LOCK = 0x5245


class RebuildInProgress(Exception):
    """A rebuild holds the project's aggregates; it counts the annotation when it ends."""


def _lock_project(project_id: int, *, exclusive: bool) -> None:
    """Live recording takes a shared advisory lock and never waits: while a rebuild holds
    the exclusive one, it raises RebuildInProgress and the rebuild's catch-up counts the
    annotation. Besides these two only a review takes it, shared, so nothing but a rebuild
    can block recording. (SQLite serialises writers on its own.)"""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        if exclusive:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [AGGREGATES_LOCK, project_id])
            return
        execute_prepared(cursor, "SELECT pg_try_advisory_xact_lock_shared(%s, %s)", [AGGREGATES_LOCK, project_id])
        if not cursor.fetchone()[0]:
            raise RebuildInProgress(f"the report aggregates of project {project_id} are being rebuilt")


def _annotations_with_context():
    return Annotation.objects.select_related("task", "prediction").defer(
        "prediction__embedding", "review_comment")


def report_aggregates_record(*, annotation_id: int) -> bool:
    """Count one annotation into its project's report aggregates, once.

    Returns True when it was counted now, False when it had been counted before.
    """
    with transaction.atomic():
        # The row lock orders recording and a review of the same annotation: whichever
        # comes second sees the other's work (report_aggregates_record_rejection).
        annotation = unique_or_none(
            _annotations_with_context().select_related("project").select_for_update(of=("self",))
            .filter(pk=annotation_id)
        )
        if annotation is None:
            raise ValueError(f"annotation {annotation_id} does not exist")
        return _record(annotation, annotation.project.task_type, _DatabaseStore())


# Set on an Annotation before its first save by a caller that counts it itself, in the
# creating transaction (report_aggregates_record_in_transaction): the post_save hook leaves it.
def report_aggregates_record_in_transaction(*, annotation: Annotation, task_type: str) -> None:
    """Count an annotation the current transaction has just created (the submit's), in that
    transaction, from the instance in hand (its task and prediction loaded): no second
    transaction, no re-reading of the row. Under a savepoint, so a failure never undoes or
    fails the caller's work; then, and while a rebuild runs, the annotation is left to the
    on-commit recording, as the post_save hook would have done (after the commit a rebuild
    that stood in the way counts it in its catch-up)."""
    annotation_id = annotation.pk
    try:
        with transaction.atomic():
            _record(annotation, task_type, _DatabaseStore())
    except Exception as error:
        if not isinstance(error, RebuildInProgress):
            logger.exception("report aggregates: recording annotation %s in its transaction failed; "
                             "trying again after the commit", annotation_id)
        transaction.on_commit(lambda: report_aggregates_record_safely(annotation_id))


def submitted_recorded(sender, *, annotation: Annotation, task_type: str, **kwargs) -> None:
    """Receiver of labeling.signals.annotation_submitted (in the submit's transaction)."""
    report_aggregates_record_in_transaction(annotation=annotation, task_type=task_type)


def report_aggregates_record_rejection(*, annotation: Annotation) -> None:
    """Count a lead's rejection of a human label, inside the review's transaction, which
    holds the annotation's row lock. An annotation not counted yet is left to its own
    recording, which then reads it rejected. Waits for a running rebuild rather than
    standing aside: the rebuild may have read the annotation before the review."""
    if annotation.kind not in LABEL_KINDS or annotation.source != AnnotationSource.HUMAN:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", [AGGREGATES_LOCK, annotation.project_id])
    if not ReportAnnotationMark.objects.filter(annotation_id=annotation.pk).exists():
        return
    _upsert_add(ReportDailyCounts, _daily_key(annotation), {"rejected": 1})


def rejection_recorded(sender, *, annotation: Annotation, **kwargs) -> None:
    """Receiver of labeling.signals.annotation_rejected (in the review's transaction)."""
    report_aggregates_record_rejection(annotation=annotation)


def agreement_cells_merge(sender, *, project, source_id: int, target_id: int, **kwargs) -> None:
    """Receiver of labeling.signals.label_class_merged, inside the merge's transaction: fold
    the agreement cells that name the source into the target's (a pair's cell (oak, tree)
    becomes (tree, tree), an agreement)."""
    rows = list(ReportAgreementPair.objects.select_for_update().filter(project=project).filter(
        Q(label_a=source_id) | Q(label_b=source_id)))
    for row in rows:
        key = {"project": project, "annotator_a": row.annotator_a, "annotator_b": row.annotator_b,
               "label_a": target_id if row.label_a == source_id else row.label_a,
               "label_b": target_id if row.label_b == source_id else row.label_b}
        cell, _ = ReportAgreementPair.objects.select_for_update().get_or_create(**key)
        cell.comparisons += row.comparisons
        # Classification cells count agreements: all of a cell's comparisons, or none.
        cell.score_sum = float(cell.comparisons) if key["label_a"] == key["label_b"] else 0.0
        cell.save(update_fields=["comparisons", "score_sum"])
        row.delete()


def report_aggregates_record_safely(annotation_id: int) -> None:
    """For the on-commit hook: a failure here must never reach the submitter."""
    try:
        report_aggregates_record(annotation_id=annotation_id)
    except RebuildInProgress:
        logger.info("report aggregates: annotation %s left to the running rebuild", annotation_id)
    except Exception:
        logger.exception("report aggregates: could not record annotation %s; run "
                         "rebuild_report_aggregates to repair", annotation_id)


def record_new_annotation_on_commit(sender, instance, created, raw=False, **kwargs) -> None:
    """post_save receiver: count a new annotation once its transaction commits, outside
    it, so reports never slow down or fail a submit."""
    if created and not raw and not instance.__dict__.get(ANNOUNCED_IN_TRANSACTION):
        annotation_id = instance.pk
        transaction.on_commit(lambda: report_aggregates_record_safely(annotation_id))


def report_aggregates_rebuild(*, project) -> int:
    """Recompute a project's aggregates from its annotations, in id order, exactly as the
    live path would have; returns how many annotations were counted.

    The recompute is one transaction under the exclusive lock; annotations that commit
    meanwhile (their live recording stood aside) are counted right after it.
    """
    with transaction.atomic():
        _lock_project(project.pk, exclusive=True)
        for model in (ReportDailyCounts, ReportAgreementPair, ReportFlagReason, ReportLabeledImage,
                      ReportAnnotationMark):
            model.objects.filter(project=project).delete()
        store = _MemoryStore()
        count = 0
        annotations = _annotations_with_context().filter(project=project).order_by("pk")
        for annotation in annotations.iterator(chunk_size=2000):
            count += _record(annotation, project.task_type, store)
        store.flush()
    marked = ReportAnnotationMark.objects.filter(annotation_id=OuterRef("pk"))
    late = Annotation.objects.filter(project=project).exclude(Exists(marked)).order_by("pk")
    for annotation_id in late.values_list("pk", flat=True):
        count += report_aggregates_record(annotation_id=annotation_id)
    return count
