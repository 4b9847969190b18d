"""Writes on the human side. Named <entity>_<action>, keyword-only, atomic."""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.models import Image, LabelClass, Project
from vision_project.enqueue import enqueue_on_commit
from vision_project.queries import execute_prepared

from .models import (
    Annotation,
    AnnotationKind,
    AnnotationSource,
    AnnotationState,
    LabelClassAction,
    Membership,
    Role,
    Task,
    TaskStatus,
)
from .payloads import OBJECT_KEYS, PayloadError, validate_payload
from .selectors import image_current_annotation
from .taxonomy import label_class_event_record, parent_checked

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
    if not name.strip():
        raise ValidationError({"name": "A project needs a name."})
    project = Project(name=name.strip(), task_type=task_type, created_by=created_by, **settings_fields)
    project_settings_check(project)
    project.full_clean()
    project.save()
    Membership.objects.create(project=project, user=created_by, role=Role.ADMIN)
    for spec in label_classes:
        label_class_create(project=project, actor=created_by, **spec)
    for member in members:
        membership_set(project=project, user=member["user"], role=member["role"])
    if not project.memberships.filter(role=Role.ADMIN).exists():
        raise ValidationError({"members": "A project needs an admin; keep yourself or another member admin."})
    return project


# Numeric settings: (least, most, what it is); None leaves that end open. The database
# constraints hold a few of these too; these say in words what a value has to be.
SETTING_RANGES = {
    "random_share": (0.0, 1.0, "a share between 0 and 1 (0.1 serves one task in ten at random)"),
    "validation_share": (0.0, 0.95, "a share between 0 and 0.95 of the labeled images"),
    "min_map50": (0.0, 1.0, "an mAP50 between 0 and 1"),
    "promotion_tolerance": (0.0, 1.0, "a metric difference between 0 and 1 (0 deploys only a version "
                            "at least as good)"),
    "target_metric": (0.0, 1.0, "a metric value between 0 and 1, or empty"),
    "queue_model_every": (0, 100_000, "a number of labels, 0 or more (0 turns the queue model off)"),
    "retrain_every_n_labels": (0, 1_000_000, "a number of labels, 0 or more (0 turns it off)"),
    "lease_ttl_seconds": (30, 86_400, "seconds between 30 and 86400 (one day)"),
    "annotations_per_image": (1, 10, "between 1 and 10"),
    "train_epochs": (1, 1000, "between 1 and 1000 epochs"),
    "train_image_size": (32, 4096, "pixels between 32 and 4096"),
    "train_batch_size": (1, 1024, "between 1 and 1024 images"),
    "near_duplicate_threshold": (0.5, 1.0, "a cosine similarity between 0.5 and 1 (1 turns flagging off)"),
}


SETTING_LABELS = {
    "random_share": "Random share", "validation_share": "Validation share", "min_map50": "Minimum mAP50",
    "promotion_tolerance": "Promotion tolerance", "target_metric": "Target metric",
    "queue_model_every": "Queue model refit interval", "retrain_every_n_labels": "Retrain every N labels",
    "lease_ttl_seconds": "Lease time", "annotations_per_image": "Annotations per image",
    "train_epochs": "Epochs", "train_image_size": "Image size", "train_batch_size": "Batch size",
    "near_duplicate_threshold": "Near-duplicate threshold",
}


def project_settings_check(project: Project, fields: set[str] | None = None) -> None:
    """Raises ValidationError with one readable message per bad setting (of `fields`, or
    all): a value out of its range, or a detector image size that is not a multiple of 32."""
    errors: dict[str, str] = {}
    for field, (least, most, meaning) in SETTING_RANGES.items():
        if fields is not None and field not in fields:
            continue
        value = getattr(project, field)
        if value is None and field == "target_metric":
            continue
        if value is None or not least <= value <= most:
            label = SETTING_LABELS[field]
            errors[field] = f"{label} must be {meaning}; got {value}."
    size = project.train_image_size
    if (project.task_type in OBJECT_KEYS and "train_image_size" not in errors
            and (fields is None or "train_image_size" in fields) and size % 32):
        errors["train_image_size"] = (f"Image size must be a multiple of 32 for a detector "
                                      f"(the network's stride), such as {max(32, round(size / 32) * 32)}; got {size}.")
    if fields is None or "start_weights" in fields:
        try:
            start_weights_resolve(project.start_weights, project.task_type)
        except ValueError as exc:
            errors["start_weights"] = str(exc)
    if errors:
        raise ValidationError(errors)


# A model config ultralytics builds from its own package (random init), or a classifier
# architecture (a bare name). Any other string ultralytics reads as a checkpoint, which is a
# pickle: `evil.PT` or `evil` (it appends .pt) from the worker's current folder.
MODEL_CONFIG_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\.yaml")
ARCHITECTURE_NAME = re.compile(r"[a-z][a-z0-9_]*")


def start_weights_resolve(name: str, task_type: str) -> tuple[Path | None, str | None]:
    """(weights file, None) for a `.pt` file (any case) directly in the trusted weights folder,
    (None, config) for a model config or a classifier's architecture name, (None, None) for
    blank. Raises ValueError, in words, for anything else."""
    name = name.strip()
    if not name:
        return None, None
    folder = Path(settings.VISION_WEIGHTS_DIR).resolve()
    if name.lower().endswith(".pt"):
        candidate = (folder / name).resolve() if "\x00" not in name else None
        if candidate is not None and candidate.parent == folder and candidate.is_file():
            return candidate, None
        raise ValueError(f"Start weights {name!r} not found in the weights folder "
                         "(VISION_WEIGHTS_DIR); give the name of a .pt file there.")
    if MODEL_CONFIG_NAME.fullmatch(name) or (task_type == "classification" and ARCHITECTURE_NAME.fullmatch(name)):
        return None, name
    kinds = "a model config such as yolov8n.yaml" + (", an architecture such as resnet18"
                                                     if task_type == "classification" else "")
    raise ValueError(f"Start weights {name!r} are neither a .pt file in the weights folder nor {kinds}.")


# Settings that decide the queue order: changing one re-scores the open tasks.
QUEUE_ORDER_FIELDS = {"sampling_strategy", "detection_aggregation", "random_share"}


@transaction.atomic
def project_update(*, project: Project, **fields) -> Project:
    reorder = any(
        field in QUEUE_ORDER_FIELDS and getattr(project, field) != value for field, value in fields.items()
    )
    for field, value in fields.items():
        setattr(project, field, value)
    project_settings_check(project, fields=set(fields))
    project.full_clean()
    project.save()
    if reorder:
        enqueue_on_commit("training.tasks.queue_priorities_refresh", project.pk, robust=True)
    return project


# Keys the annotate page keeps for itself (skip, flag, hide pre-labels, no objects here, fit,
# help, zoom): a class key there would shadow the action.
RESERVED_HOTKEYS = {
    "s": "Skip", "f": "Flag", "h": "Hide pre-labels", "n": "No objects here", "r": "Fit",
    "?": "Help", "=": "Zoom in", "+": "Zoom in", "-": "Zoom out", "b": "Box assist",
}
DIGIT_KEYS = "1234567890"


def _default_hotkey(*, name: str, taken: set[str]) -> str:
    """The class name when it is one character (the digits "0"-"9" get their own digit),
    else the next free digit; "" when all are taken."""
    key = name.strip().lower()
    if len(key) == 1 and not key.isspace() and key not in taken and key not in RESERVED_HOTKEYS:
        return key
    return next((digit for digit in DIGIT_KEYS if digit not in taken), "")


def _checked_hotkey(*, project: Project, hotkey: str, label_class: LabelClass | None = None) -> str:
    """A key as stored (lower case; "" for none). Raises ValidationError naming the class
    that has the key already, or the editor action it would shadow."""
    key = hotkey.strip().lower()
    if not key:
        return ""
    if len(key) != 1:
        raise ValidationError({"hotkey": f"A key is one character, such as 7 or k; got {hotkey!r}."})
    if key in RESERVED_HOTKEYS:
        raise ValidationError({"hotkey": f'Key "{key}" is the editor\'s {RESERVED_HOTKEYS[key]} key; '
                                         "choose another key."})
    holders = project.label_classes.filter(hotkey__iexact=key)
    if label_class is not None:
        holders = holders.exclude(pk=label_class.pk)
    holder = holders.first()
    if holder is not None:
        raise ValidationError({"hotkey": f'Key "{key}" is taken by class "{holder.name}"; choose another '
                                         "key, or clear that class's key first."})
    return key


def _checked_name(*, project: Project, name: str, label_class: LabelClass | None = None) -> str:
    clean = name.strip()
    if not clean:
        raise ValidationError({"name": "A class needs a name."})
    same = project.label_classes.filter(name=clean)
    if label_class is not None:
        same = same.exclude(pk=label_class.pk)
    if same.exists():
        raise ValidationError({"name": f'A class named "{clean}" exists already in this project.'})
    return clean


COLOR_PATTERN = r"^#[0-9a-fA-F]{6}$"


def _checked_color(color: str) -> str:
    if not re.fullmatch(COLOR_PATTERN, color):
        raise ValidationError({"color": f"A class colour is #rrggbb in hex, such as #e6194b; got {color!r}."})
    return color


def _save_label_class(label_class: LabelClass) -> LabelClass:
    # Constraints are checked above with readable messages; one that loses a race with a
    # concurrent write still gets a message, not a server error.
    label_class.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            label_class.save()
    except IntegrityError:
        raise ValidationError(
            f'Class "{label_class.name}" or key "{label_class.hotkey}" was just taken by another '
            "change; reload and try again."
        ) from None
    return label_class


def label_class_create(
    *,
    project: Project,
    name: str,
    color: str = "",
    hotkey: str = "",
    parent: str | LabelClass | None = None,
    parent_id: int | None = None,
    order: int | None = None,
    actor=None,
) -> LabelClass:
    """A new class, at the top level or under `parent` (a class or its name) or
    `parent_id`. Without a hotkey it gets its name when that is one character, else the
    next free digit. Raises ValidationError for a name or key already in use or a parent
    that is not a class of the project."""
    existing = project.label_classes.count()
    name = _checked_name(project=project, name=name)
    if isinstance(parent, str):
        parent_obj = project.label_classes.filter(name=parent).first()
        if parent_obj is None:
            raise ValidationError(f"Parent class {parent!r} does not exist in this project.")
        parent = parent_obj
    elif parent_id is not None:
        parent = project.label_classes.filter(pk=parent_id).first()
        if parent is None:
            raise ValidationError({"parent_id": f"Class {parent_id} is not a class of this project."})
    if hotkey.strip():
        hotkey = _checked_hotkey(project=project, hotkey=hotkey)
    else:
        taken = {key.lower() for key in project.label_classes.values_list("hotkey", flat=True)}
        hotkey = _default_hotkey(name=name, taken=taken)
    label_class = LabelClass(
        project=project,
        name=name,
        color=_checked_color(color) if color else DEFAULT_COLORS[existing % len(DEFAULT_COLORS)],
        hotkey=hotkey,
        parent=parent,
        order=existing if order is None else order,
    )
    with transaction.atomic():
        label_class = _save_label_class(label_class)
        label_class_event_record(label_class=label_class, action=LabelClassAction.CREATE, actor=actor,
                                 details={"parent": label_class.parent_id})
    return label_class


@transaction.atomic
def label_class_update(*, label_class: LabelClass, actor=None, **fields) -> LabelClass:
    """Change a class's name, color, hotkey ("" for none), order or parent (a class id of
    the same project, or None for the top level; never one below the class). Raises
    ValidationError naming what is in use or wrong. The change is recorded in the class
    history, old and new values."""
    project = label_class.project
    if "name" in fields:
        fields["name"] = _checked_name(project=project, name=fields["name"], label_class=label_class)
    if "hotkey" in fields:
        fields["hotkey"] = _checked_hotkey(project=project, hotkey=fields["hotkey"] or "", label_class=label_class)
    if "color" in fields:
        fields["color"] = _checked_color(fields["color"])
    if "parent" in fields:
        fields["parent"] = parent_checked(label_class=label_class, parent_id=fields["parent"])
    changes = {}
    for field, value in fields.items():
        attribute = "parent_id" if field == "parent" else field
        new = value.pk if isinstance(value, LabelClass) else value
        if getattr(label_class, attribute) != new:
            changes[field] = [getattr(label_class, attribute), new]
        setattr(label_class, field, value)
    label_class = _save_label_class(label_class)
    if changes:
        label_class_event_record(label_class=label_class, action=LabelClassAction.UPDATE, actor=actor,
                                 details=changes)
    return label_class


def _user_named(username) -> object:
    if not isinstance(username, str):
        return username
    found = get_user_model().objects.filter(username=username.strip()).first()
    if found is None:
        raise ValidationError({"user": f"No user named {username.strip()!r}. Invite people who have an "
                                       "account here; a site admin creates accounts."})
    return found


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}; use one of {', '.join(Role.values)}."})


def _keep_an_admin(membership: Membership, *, leaving: str) -> None:
    """Raises ValidationError when `membership` holds the project's last admin role. The
    project's admin rows are locked, so two admins cannot demote each other at once."""
    if membership.role != Role.ADMIN:
        return
    admins = list(Membership.objects.select_for_update()
                  .filter(project_id=membership.project_id, role=Role.ADMIN).values_list("pk", flat=True))
    if admins == [membership.pk]:
        raise ValidationError(
            f"{membership.user.username} is the last admin of this project and cannot be {leaving}; "
            "make another member admin first."
        )


def membership_set(*, project: Project, user, role: str) -> Membership:
    """Give `user` (a User or a username) `role` in the project, adding them if needed."""
    _check_role(role)
    user = _user_named(user)
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership


@transaction.atomic
def membership_invite(*, project: Project, user, role: str) -> Membership:
    """Add an existing user to the project. Raises ValidationError for an unknown user or
    one who is a member already (their role is changed with membership_role_change)."""
    _check_role(role)
    user = _user_named(user)
    current = Membership.objects.filter(project=project, user=user).first()
    if current is not None:
        raise ValidationError({"user": f"{user.username} is a member already (as {current.role}); "
                                       "change the role in the member list."})
    return Membership.objects.create(project=project, user=user, role=role)


@transaction.atomic
def membership_role_change(*, membership: Membership, role: str) -> Membership:
    _check_role(role)
    if role != Role.ADMIN:
        _keep_an_admin(membership, leaving=f"made {role}")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    _keep_an_admin(membership, leaving="removed")
    membership.delete()


def project_class_ids(project: Project) -> list[int]:
    # Asked on every submit: one statement written by hand (no QuerySet compiled per call).
    with connection.cursor() as cursor:
        execute_prepared(cursor, f'SELECT id FROM "{LabelClass._meta.db_table}" WHERE project_id = %s ORDER BY "order", id',
                       [project.pk])
        return [row[0] for row in cursor.fetchall()]


@transaction.atomic
def _checked_label(clean: dict, *, kind: str, empty: bool | None, image: Image) -> dict:
    """A label says something: a class, boxes or polygons, or, said on purpose, that there
    are no objects. An empty label is never stored by default (a blind model's empty
    pre-label, an Enter with nothing chosen)."""
    what = "the pre-label" if kind == AnnotationKind.ACCEPT else "the payload"
    if "labels" in clean:
        if not clean["labels"]:
            raise PayloadError(f"{what} of image {image.pk} has no class: a classification label needs one "
                               "(skip or flag the image if none fits)")
        return clean
    if empty is None:
        return clean
    key = "boxes" if "boxes" in clean else "polygons"
    objects = clean[key]
    noun = {"boxes": ("box", "boxes"), "polygons": ("polygon", "polygons")}[key]
    if empty and objects:
        raise PayloadError(f'"empty": true says image {image.pk} has no objects, but {what} has '
                           f"{len(objects)} {noun[0] if len(objects) == 1 else noun[1]}")
    if not empty and not objects:
        raise PayloadError(f'{what} of image {image.pk} has no {noun[1]}; to record that the image has no '
                           f'objects, send "empty": true ("no objects here"), else draw the {noun[1]}')
    return clean


def label_checked(payload, *, project: Project, image: Image, kind: str, empty: bool | None,
                  class_ids: list[int] | None = None) -> dict:
    """A label as it is stored: valid for the project's task type, classes (`class_ids`, when
    read already) and the image's bounds, and saying something (_checked_label). `empty`: the
    person said "no objects here" or not; None for a label whose source states its objects as
    they are (an import, where no objects is what the file says). Raises PayloadError."""
    clean = validate_payload(payload, task_type=project.task_type,
                             class_ids=project_class_ids(project) if class_ids is None else class_ids,
                             width=image.width, height=image.height)
    return _checked_label(clean, kind=kind, empty=empty, image=image)



def annotation_import_create(
    *, image, payload: dict, author=None, class_ids: list[int] | None = None, replace: bool = False
) -> Annotation | None:
    """Record a label made elsewhere as an import annotation and close the image's queue
    rows: an imported label counts as verified work. Returns None, recording nothing, when
    the image's current label says the same already (a re-import). When the current label
    is a person's and says otherwise, the import never replaces it silently: it is stored
    as an extra opinion (not the current label) unless replace is set. Raises PayloadError
    on a bad payload."""
    project = image.project
    # An import counts as verified work: its label must say something too (no class is refused).
    clean = label_checked(payload, project=project, image=image, kind=AnnotationKind.CORRECT, empty=None,
                          class_ids=class_ids)
    current = image_current_annotation(image)
    if current is not None and current.payload == clean:
        return None
    keep_person = current is not None and current.source == AnnotationSource.HUMAN and not replace
    if keep_person and Annotation.objects.filter(
        image=image, source=AnnotationSource.IMPORT, state=AnnotationState.EXTRA_OPINION, payload=clean
    ).exists():
        return None  # this opinion was imported before
    annotation = Annotation.objects.create(
        project=project,
        image=image,
        author=author,
        kind=AnnotationKind.CORRECT,
        source=AnnotationSource.IMPORT,
        state=AnnotationState.EXTRA_OPINION if keep_person else AnnotationState.SUBMITTED,
        payload=clean,
    )
    if keep_person:
        return annotation
    # held too: an image waiting for its privacy blur is labeled by the import, not by a person
    Task.objects.filter(image=image, status__in=(TaskStatus.OPEN, TaskStatus.HELD)).update(
        status=TaskStatus.DONE, completed_at=timezone.now(), lease_holder=None, lease_expires_at=None
    )
    return annotation
