"""The PROJECT argument that management commands share."""
from django.core.management.base import CommandError

from core.models import Project


def project_from_argument(value: str) -> Project:
    """The project with this id, else the one project with this exact name. Names are not
    unique, so a name that several projects share is refused rather than guessed."""
    if value.isdigit():
        project = Project.objects.filter(pk=int(value)).first()
        if project is not None:
            return project
    named = list(Project.objects.filter(name=value)[:2])
    if not named:
        raise CommandError(f"No project with id or name {value!r}.")
    if len(named) > 1:
        raise CommandError(f"Several projects are named {value!r}; give the project id instead.")
    return named[0]
