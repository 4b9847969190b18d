"""Role checks: every endpoint asks for a minimum role in the project it touches."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import CharField, Model, OuterRef, QuerySet, Subquery, Value
from django.http import Http404

from core.models import Project
from vision_project.queries import unique_or_none

from .models import ROLE_RANK, Membership, Role


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


def projects_visible_to(user) -> QuerySet[Project]:
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user)
