"""Role checks: every endpoint asks for a minimum role in the project it touches."""
from __future__ import annotations

import functools

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import CharField, Model, OuterRef, QuerySet, Subquery, Value
from django.http import Http404

from core.models import Image, Project
from vision_project.queries import Columns, execute_prepared, unique_or_none

from .models import ROLE_RANK, Membership, Role, Task


def caller_role(user, project_ref: str = "pk"):
    """An expression for the user's role in the project whose id is at `project_ref` of the
    rows queried, None for strangers: the role comes with the row, in the same query.
    Superusers act as admins everywhere."""
    if not user.is_authenticated:
        return Value(None, output_field=CharField())
    if user.is_superuser:
        return Value(Role.ADMIN, output_field=CharField())
    memberships = Membership.objects.filter(project_id=OuterRef(project_ref), user_id=user.pk)
    return Subquery(memberships.values("role")[:1])


def get_for_caller(queryset: QuerySet, pk: int, user, minimum: str) -> Model:
    """One row of a project-scoped model (a project itself, or a row with a `project`
    foreign key), after checking the caller holds at least `minimum` in its project.
    The same 404 for a missing row and for strangers (a project's existence is not
    disclosed); 403 for members below `minimum`. Django's own exceptions, so pages and the
    API (DRF answers them with the message) share the check."""
    is_project = queryset.model is Project
    project_ref = "pk" if is_project else "project_id"
    row = unique_or_none(queryset.annotate(caller_role=caller_role(user, project_ref)).filter(pk=pk))
    if row is None or row.caller_role is None:
        raise Http404(f"No such {queryset.model._meta.verbose_name}.")
    role = row.caller_role
    if ROLE_RANK[role] < ROLE_RANK[minimum]:
        project_id = row.pk if is_project else row.project_id
        raise PermissionDenied(f"This needs the {minimum} role in project {project_id}; you are {role}.")
    return row


def _role_sql(user, project_column: str) -> tuple[str, list]:
    """caller_role in hand-written SQL: the expression and its parameters."""
    if not user.is_authenticated:
        return "NULL", []
    if user.is_superuser:
        return "%s", [Role.ADMIN]
    return (f"(SELECT m.role FROM \"{Membership._meta.db_table}\" m "
            f"WHERE m.project_id = {project_column} AND m.user_id = %s)"), [user.pk]


def _checked(row: Model | None, role: str | None, model, project_id, minimum: str) -> Model:
    if row is None or role is None:
        raise Http404(f"No such {model._meta.verbose_name}.")
    if ROLE_RANK[role] < ROLE_RANK[minimum]:
        raise PermissionDenied(f"This needs the {minimum} role in project {project_id}; you are {role}.")
    return row


@functools.cache
def _hot_columns() -> tuple[Columns, Columns, Columns]:
    return Columns(Project, "p"), Columns(Task, "t"), Columns(Image, "i")


def get_project_for_caller(project_id: int, user, minimum: str) -> Project:
    """get_for_caller(Project.objects.all(), ...) in one hand-written statement (the queue's
    hot paths ask it on every request): the same row, role check and errors."""
    project_columns, _, _ = _hot_columns()
    role_sql, role_params = _role_sql(user, "p.id")
    with connection.cursor() as cursor:
        execute_prepared(cursor, f"SELECT {project_columns.sql}, {role_sql} FROM \"{Project._meta.db_table}\" p WHERE p.id = %s",
                       [*role_params, project_id])
        row = cursor.fetchone()
    project = None if row is None else project_columns.build(row)
    return _checked(project, row and row[-1], Project, project_id, minimum)


def get_task_for_caller(task_id: int, user, minimum: str):
    """get_for_caller(Task.objects.select_related("project", "image"), ...) in one
    hand-written statement: the task with its project and image, the same role check and
    errors."""
    project_columns, task_columns, image_columns = _hot_columns()
    role_sql, role_params = _role_sql(user, "t.project_id")
    with connection.cursor() as cursor:
        execute_prepared(
            cursor,
            f"SELECT {task_columns.sql}, {project_columns.sql}, {image_columns.sql}, {role_sql} "
            f"FROM \"{Task._meta.db_table}\" t JOIN \"{Project._meta.db_table}\" p ON p.id = t.project_id "
            f"JOIN \"{Image._meta.db_table}\" i ON i.id = t.image_id WHERE t.id = %s",
            [*role_params, task_id],
        )
        row = cursor.fetchone()
    if row is None:
        return _checked(None, None, Task, None, minimum)
    task = task_columns.build(row)
    task.project = project_columns.build(row, task_columns.width)
    task.image = image_columns.build(row, task_columns.width + project_columns.width)
    return _checked(task, row[-1], Task, task.project_id, minimum)


def projects_visible_to(user) -> QuerySet[Project]:
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user)
