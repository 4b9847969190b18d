"""Role checks: every endpoint asks for a minimum role in the project it touches."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from .models import ROLE_RANK, Membership, Project, Role


def role_in_project(user, project: Project) -> str | None:
    """The user's role, or None for a stranger. Superusers act as admins everywhere."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    return (
        Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    )


def require_role(user, project: Project | None, minimum: str) -> str:
    """Raise 404 to strangers (a project's existence is not disclosed) and 403 to members
    whose role is below `minimum`; return the role otherwise. Django's own exceptions, so
    pages and the API (DRF answers them as 404/403 with the message) share the check."""
    role = role_in_project(user, project) if project is not None else None
    if role is None:
        raise Http404("No such project.")
    if ROLE_RANK[role] < ROLE_RANK[minimum]:
        raise PermissionDenied(f"This needs the {minimum} role in project {project.pk}; you are {role}.")
    return role


def projects_visible_to(user) -> QuerySet[Project]:
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user)
