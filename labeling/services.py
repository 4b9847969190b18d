"""Writes on the human side. Named <entity>_<action>, keyword-only, atomic."""
from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .models import (
    Annotation,
    AnnotationKind,
    AnnotationSource,
    LabelClass,
    Membership,
    Project,
    Role,
    Task,
    TaskStatus,
)
from .payloads import validate_payload
from .selectors import image_current_label

DEFAULT_COLORS = [
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4",
    "#42d4f4", "#f032e6", "#bfef45", "#fabed4", "#469990",
]


@transaction.atomic
def project_create(
    *,
    name: str,
    task_type: str,
    created_by,
    label_classes: Iterable[dict] = (),
    members: Iterable[dict] = (),
    **settings_fields,
) -> Project:
    """Create a project; its creator becomes an admin. `label_classes` are dicts with
    name and optional color, hotkey, parent (a name given earlier in the list)."""
    project = Project(name=name, task_type=task_type, created_by=created_by, **settings_fields)
    project.full_clean()
    project.save()
    Membership.objects.create(project=project, user=created_by, role=Role.ADMIN)
    for spec in label_classes:
        label_class_create(project=project, **spec)
    for member in members:
        membership_set(project=project, user=member["user"], role=member["role"])
    return project


# Settings that decide the queue order: changing one re-scores the open tasks.
QUEUE_ORDER_FIELDS = {"sampling_strategy", "detection_aggregation", "random_share"}


@transaction.atomic
def project_update(*, project: Project, **fields) -> Project:
    reorder = any(
        field in QUEUE_ORDER_FIELDS and getattr(project, field) != value for field, value in fields.items()
    )
    for field, value in fields.items():
        setattr(project, field, value)
    project.full_clean()
    project.save()
    if reorder:
        from .tasks import queue_priorities_refresh

        transaction.on_commit(lambda: queue_priorities_refresh.delay(project.pk))
    return project


def label_class_create(
    *,
    project: Project,
    name: str,
    color: str = "",
    hotkey: str = "",
    parent: str | LabelClass | None = None,
    order: int | None = None,
) -> LabelClass:
    existing = project.label_classes.count()
    if isinstance(parent, str):
        parent_obj = project.label_classes.filter(name=parent).first()
        if parent_obj is None:
            raise ValidationError(f"Parent class {parent!r} does not exist in this project.")
        parent = parent_obj
    if not hotkey and existing < 9:
        taken = set(project.label_classes.values_list("hotkey", flat=True))
        hotkey = next((str(n) for n in range(1, 10) if str(n) not in taken), "")
    label_class = LabelClass(
        project=project,
        name=name,
        color=color or DEFAULT_COLORS[existing % len(DEFAULT_COLORS)],
        hotkey=hotkey,
        parent=parent,
        order=existing if order is None else order,
    )
    label_class.full_clean()
    label_class.save()
    return label_class


def membership_set(*, project: Project, user, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationError(f"Unknown role {role!r}; use one of {', '.join(Role.values)}.")
    if isinstance(user, str):
        found = get_user_model().objects.filter(username=user).first()
        if found is None:
            raise ValidationError(f"No user named {user!r}.")
        user = found
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership


def project_class_ids(project: Project) -> list[int]:
    return list(project.label_classes.values_list("id", flat=True))


@transaction.atomic
def annotation_import_create(
    *, image, payload: dict, author=None, class_ids: list[int] | None = None
) -> Annotation | None:
    """Record a label made elsewhere as an import annotation and close the image's queue
    rows: an imported label counts as verified work. Returns None, recording nothing, when
    the image's current label says the same already (a re-import). Raises PayloadError on
    a bad payload."""
    project = image.project
    clean = validate_payload(
        payload,
        task_type=project.task_type,
        class_ids=class_ids if class_ids is not None else project_class_ids(project),
        width=image.width,
        height=image.height,
    )
    if image_current_label(image) == clean:
        return None
    annotation = Annotation.objects.create(
        project=project,
        image=image,
        author=author,
        kind=AnnotationKind.CORRECT,
        source=AnnotationSource.IMPORT,
        payload=clean,
    )
    Task.objects.filter(image=image, status=TaskStatus.OPEN).update(
        status=TaskStatus.DONE, completed_at=timezone.now(), lease_holder=None, lease_expires_at=None
    )
    return annotation
