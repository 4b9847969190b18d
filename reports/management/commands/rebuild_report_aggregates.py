"""Recompute the report aggregates from the annotations (after bulk loads or a failure)."""
from django.core.management.base import BaseCommand, CommandError

from core.models import Project
from reports.aggregates import report_aggregates_rebuild


class Command(BaseCommand):
    help = "Recompute report aggregates for the given projects (all projects when none given)."

    def add_arguments(self, parser):
        parser.add_argument("project_ids", nargs="*", type=int)

    def handle(self, *args, project_ids, **options):
        projects = Project.objects.order_by("pk")
        if project_ids:
            projects = projects.filter(pk__in=project_ids)
            missing = set(project_ids) - set(projects.values_list("pk", flat=True))
            if missing:
                raise CommandError(f"No project with id {', '.join(map(str, sorted(missing)))}.")
        for project in projects:
            counted = report_aggregates_rebuild(project=project)
            self.stdout.write(f"project {project.pk} ({project.name}): {counted} annotations counted")
