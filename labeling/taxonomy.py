"""The class tree: reads that place a class in it and the writes that reshape it.

A class may sit at any level; a label of a class counts for each of its ancestors ("oak"
is a "tree"), so selectors expand a class upward (`class_ancestors`, `class_at_level`)
or a filter downward (`class_subtree`). Moves refuse cycles and other projects' classes;
a merge relabels in place, in one transaction, and records what it changed in
`LabelClassEvent`; a delete is refused while anything still names the class.

Depth counts from the roots: a class without a parent is at level 0.
"""
from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import reduce

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q, QuerySet

from core.models import LabelClass, Project

from .models import Annotation, LabelClassAction, LabelClassEvent
from .payloads import payload_class_ids
from .signals import label_class_merged

RELABEL_CHUNK = 1000
# Apps above that keep rows naming classes register how many uses a class has there (name of
# the use -> count), so a delete is refused while anything names it. Training registers its
# predictions (training/apps.py).
CLASS_USES: list[Callable[[Project, int], dict[str, int]]] = []


# --- reads -------------------------------------------------------------------------------


def class_parents(project: Project) -> dict[int, int | None]:
    return dict(LabelClass.objects.filter(project=project).values_list("id", "parent_id"))


def _ancestors_of(parents: dict[int, int | None], class_id: int) -> list[int]:
    chain = [class_id]
    while (parent := parents.get(chain[-1])) is not None and parent not in chain:
        chain.append(parent)
    return chain


def class_ancestors(project: Project) -> dict[int, list[int]]:
    """Each class id -> [itself, its parent, ..., its root]."""
    parents = class_parents(project)
    return {class_id: _ancestors_of(parents, class_id) for class_id in parents}


def class_at_level(project: Project, level: int) -> dict[int, int]:
    """Each class id -> its ancestor at depth `level` (0: the roots); a class shallower
    than `level` stands for itself."""
    mapping = {}
    for class_id, chain in class_ancestors(project).items():
        depth = len(chain) - 1
        mapping[class_id] = chain[depth - level] if depth >= level else class_id
    return mapping


def class_subtree(project: Project, class_id: int) -> list[int]:
    """The class and every class below it: the labels that count for it."""
    children: dict[int | None, list[int]] = defaultdict(list)
    for pk, parent in class_parents(project).items():
        children[parent].append(pk)
    found, stack = [], [class_id]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def labels_with_ancestors(project: Project, class_ids: Iterable[int]) -> set[int]:
    """The classes a set of labels counts for: each label and all its ancestors."""
    ancestors = class_ancestors(project)
    return {a for class_id in class_ids for a in ancestors.get(class_id, [class_id])}


def with_any_label(rows: QuerySet, class_ids: Iterable[int]) -> QuerySet:
    """Annotations or predictions whose payload names any of `class_ids`."""
    wanted = list(class_ids)
    if connection.vendor == "postgresql":
        if not wanted:
            return rows.none()
        return rows.filter(reduce(operator.or_, (
            Q(payload__contains={"labels": [class_id]}) | Q(payload__contains={"boxes": [{"label": class_id}]})
            | Q(payload__contains={"polygons": [{"label": class_id}]})
            for class_id in wanted)))
    # JSON containment is PostgreSQL-only; the embedded SQLite setup is small enough to scan.
    matching = [pk for pk, payload in rows.values_list("pk", "payload") if set(payload_class_ids(payload)) & set(wanted)]
    return rows.filter(pk__in=matching)


def class_label_counts(project: Project) -> dict[int, int]:
    """Class id -> annotations of the project (any kind or state) whose payload names it:
    what a merge of that class would relabel."""
    if connection.vendor == "postgresql":
        sql = """
            SELECT named.class_id, COUNT(DISTINCT a.id)
            FROM labeling_annotation a
            CROSS JOIN LATERAL (
                SELECT value::bigint AS class_id
                FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(a.payload->'labels') = 'array'
                                                    THEN a.payload->'labels' ELSE '[]'::jsonb END)
                UNION
                SELECT (box->>'label')::bigint
                FROM jsonb_array_elements(CASE WHEN jsonb_typeof(a.payload->'boxes') = 'array'
                                               THEN a.payload->'boxes' ELSE '[]'::jsonb END) AS box
                UNION
                SELECT (instance->>'label')::bigint
                FROM jsonb_array_elements(CASE WHEN jsonb_typeof(a.payload->'polygons') = 'array'
                                               THEN a.payload->'polygons' ELSE '[]'::jsonb END) AS instance
            ) AS named
            WHERE a.project_id = %s
            GROUP BY named.class_id
        """
        with connection.cursor() as cursor:
            cursor.execute(sql, [project.pk])
            return {int(class_id): int(count) for class_id, count in cursor.fetchall()}
    counts: dict[int, int] = defaultdict(int)
    for payload in Annotation.objects.filter(project=project).values_list("payload", flat=True).iterator():
        for class_id in set(payload_class_ids(payload)):
            counts[class_id] += 1
    return dict(counts)


def class_tree(project: Project) -> list[dict]:
    """The project's classes depth-first (siblings by order, then id), each with its
    depth, its ancestors' names (`path`), `labels` (annotations naming it) and
    `subtree_labels` (annotations naming it or a class below it)."""
    classes = list(LabelClass.objects.filter(project=project).order_by("order", "id"))
    counts = class_label_counts(project)
    children: dict[int | None, list[LabelClass]] = defaultdict(list)
    known = {c.pk for c in classes}
    for c in classes:
        children[c.parent_id if c.parent_id in known else None].append(c)
    nodes: list[dict] = []

    def visit(node: LabelClass, depth: int, path: list[str]) -> int:
        row = {"id": node.pk, "name": node.name, "color": node.color, "hotkey": node.hotkey,
               "parent": node.parent_id, "order": node.order, "depth": depth, "path": path,
               "children": [c.pk for c in children.get(node.pk, [])], "labels": counts.get(node.pk, 0)}
        nodes.append(row)
        row["subtree_labels"] = row["labels"] + sum(
            visit(child, depth + 1, [*path, node.name]) for child in children.get(node.pk, []))
        return row["subtree_labels"]

    for root in children.get(None, []):
        visit(root, 0, [])
    return nodes


def class_history(project: Project) -> QuerySet[LabelClassEvent]:
    return LabelClassEvent.objects.filter(project=project).select_related("actor")  # newest first (Meta)


# --- writes ------------------------------------------------------------------------------


def label_class_event_record(*, label_class: LabelClass, action: str, actor=None, details: dict | None = None) -> None:
    LabelClassEvent.objects.create(
        project_id=label_class.project_id, class_id=label_class.pk, class_name=label_class.name,
        action=action, actor=actor if getattr(actor, "is_authenticated", False) else None, details=details or {},
    )


def parent_checked(*, label_class: LabelClass, parent_id: int | None) -> LabelClass | None:
    """The new parent of `label_class`, or None for the top level. Raises ValidationError
    for a class of another project, the class itself, or one of its descendants (a
    cycle)."""
    if parent_id is None:
        return None
    parent = LabelClass.objects.filter(pk=parent_id, project_id=label_class.project_id).first()
    if parent is None:
        raise ValidationError({"parent": f"Class {parent_id} is not a class of this project."})
    if parent.pk == label_class.pk:
        raise ValidationError({"parent": f'Class "{label_class.name}" cannot sit under itself.'})
    if label_class.pk in _ancestors_of(class_parents(label_class.project), parent.pk):
        raise ValidationError({"parent": f'"{parent.name}" sits under "{label_class.name}"; moving '
                                         f'"{label_class.name}" there would make a loop. Move "{parent.name}" '
                                         "out first."})
    return parent


def payload_relabeled(payload: dict, mapping: dict[int, int]) -> dict:
    """`payload` with class ids replaced per `mapping`; a classification label that
    becomes a repeat is dropped (["oak", "tree"] merged is ["tree"])."""
    out = dict(payload)
    if isinstance(payload.get("labels"), list):
        labels: list = []
        for c in payload["labels"]:
            c = mapping.get(c, c)
            if c not in labels:
                labels.append(c)
        out["labels"] = labels
    for key in ("boxes", "polygons"):
        if isinstance(payload.get(key), list):
            out[key] = [{**item, "label": mapping.get(item.get("label"), item.get("label"))}
                        if isinstance(item, dict) else item for item in payload[key]]
    return out


def relabel_rows(rows: QuerySet, mapping: dict[int, int]) -> list[int]:
    """Rewrite the payloads of `rows` that name a key of `mapping`; their ids."""
    changed, batch = [], []
    model = rows.model
    for row in with_any_label(rows, mapping).only("id", "payload").order_by("pk").iterator(chunk_size=RELABEL_CHUNK):
        row.payload = payload_relabeled(row.payload, mapping)
        batch.append(row)
        changed.append(row.pk)
        if len(batch) >= RELABEL_CHUNK:
            model.objects.bulk_update(batch, ["payload"])
            batch = []
    if batch:
        model.objects.bulk_update(batch, ["payload"])
    return changed


@transaction.atomic
def label_class_merge(*, source: LabelClass, target: LabelClass, actor=None) -> dict:
    """Merge `source` into `target`: every annotation and prediction of the project that
    names the source names the target instead, model versions' class lists, the agreement
    report and the one-shot examples follow, the source's children move under the target, and the source
    is deleted. One transaction; a LabelClassEvent lists the annotations relabeled.
    Raises ValidationError for another project's class, the class itself, or a class
    below the source (merge the other way, or move it out first)."""
    locked = {c.pk: c for c in LabelClass.objects.select_for_update().filter(pk__in=[source.pk, target.pk])}
    if source.pk not in locked or target.pk not in locked:
        raise ValidationError({"target": "That class was just deleted; reload the classes."})
    source, target = locked[source.pk], locked[target.pk]
    if source.project_id != target.project_id:
        raise ValidationError({"target": f"Class {target.pk} is not a class of this project."})
    if source.pk == target.pk:
        raise ValidationError({"target": "A class cannot be merged into itself."})
    project = source.project
    if source.pk in _ancestors_of(class_parents(project), target.pk):
        raise ValidationError({"target": f'"{target.name}" sits under "{source.name}"; merge "{target.name}" '
                                         f'into "{source.name}" instead, or move it out first.'})
    mapping = {source.pk: target.pk}
    annotation_ids = relabel_rows(Annotation.objects.filter(project=project), mapping)
    # Apps that keep class ids of their own (training: predictions, model versions, one-shot
    # examples; reports: the agreement cells) relabel them in this transaction and say what
    # they changed.
    moved: dict = {"predictions": 0, "model_versions": []}
    for _receiver, answer in label_class_merged.send(sender=LabelClass, project=project, source_id=source.pk,
                                                     target_id=target.pk):
        if isinstance(answer, dict):
            moved["predictions"] += answer.get("predictions", 0)
            moved["model_versions"] += answer.get("model_versions", [])
    children = list(source.children.values_list("id", flat=True))
    source.children.update(parent=target)
    details = {"source": {"id": source.pk, "name": source.name}, "target": {"id": target.pk, "name": target.name},
               "annotation_ids": annotation_ids, "annotations": len(annotation_ids),
               "predictions": moved["predictions"], "model_versions": moved["model_versions"],
               "children_moved": children}
    label_class_event_record(label_class=source, action=LabelClassAction.MERGE, actor=actor, details=details)
    source.delete()
    return {"source": source.name, "target": target.pk, "annotations": len(annotation_ids),
            "predictions": moved["predictions"], "model_versions": len(moved["model_versions"]),
            "children_moved": len(children)}


@transaction.atomic
def label_class_delete(*, label_class: LabelClass, actor=None) -> None:
    """Delete a class nothing names: refused (ValidationError with the counts) while an
    annotation or prediction of the project names it; merge it instead. Its children move
    up to its parent."""
    label_class = LabelClass.objects.select_for_update().get(pk=label_class.pk)
    project = label_class.project
    uses = {"annotation(s)": with_any_label(Annotation.objects.filter(project=project), [label_class.pk]).count()}
    for counted in CLASS_USES:
        uses.update(counted(project, label_class.pk))
    if any(uses.values()):
        used = " and ".join(f"{count} {name}" for name, count in uses.items())
        raise ValidationError(f'Class "{label_class.name}" is used by {used}; '
                              "merge it into another class instead, so those labels keep a class.")
    children = list(label_class.children.values_list("id", flat=True))
    label_class.children.update(parent_id=label_class.parent_id)
    label_class_event_record(label_class=label_class, action=LabelClassAction.DELETE, actor=actor,
                             details={"parent": label_class.parent_id, "children_moved": children})
    label_class.delete()
