"""Import a server-side folder (or zip) of images, optionally with their labels."""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.models import JobStatus
from labeling.importers.service import (
    LABEL_FORMATS,
    ImportRefused,
    class_map_parse,
    import_job_create,
    import_job_execute,
)
from labeling.management.project_arg import project_from_argument
from labeling.models import ImportJob


class Command(BaseCommand):
    help = (
        "Import the images under PATH (a folder or a .zip) into PROJECT (id or name). "
        "Runs here, with progress in an ImportJob row; --background hands it to a worker."
    )

    def add_arguments(self, parser):
        parser.add_argument("project")
        parser.add_argument("path")
        parser.add_argument(
            "--labels",
            nargs="+",
            metavar=("FORMAT", "FILE"),
            help=f"label format ({', '.join(LABEL_FORMATS)}) and the labels file or folder "
            "(default: the label files under PATH or in the zip)",
        )
        parser.add_argument(
            "--create-classes", action="store_true", help="create unknown categories as classes"
        )
        parser.add_argument(
            "--replace",
            action="store_true",
            help="imported labels replace people's labels (by default they are kept beside them)",
        )
        parser.add_argument("--map", default="{}", help='JSON {"their category": "our class name"}')
        parser.add_argument("--user", help="username recorded as the author of imported labels")
        parser.add_argument("--background", action="store_true", help="queue the job for a worker and return")

    def handle(self, *args, project, path, labels, create_classes, replace, map, user, background, **options):
        project = project_from_argument(project)
        if not os.path.exists(path):
            raise CommandError(f"{path} does not exist.")
        label_format, label_path = "", ""
        if labels:
            if len(labels) > 2:
                raise CommandError("--labels takes FORMAT and at most one FILE.")
            label_format = labels[0]
            if len(labels) == 2:  # otherwise the label files among PATH's files (or the zip's) are read
                label_path = os.path.abspath(labels[1])
                if not os.path.exists(label_path):
                    raise CommandError(f"{label_path} does not exist.")
        try:
            class_map = class_map_parse(map)
        except ImportRefused as exc:
            raise CommandError(f"--map {exc}") from None
        author = None
        if user:
            author = get_user_model().objects.filter(username=user).first()
            if author is None:
                raise CommandError(f"No user named {user!r}.")
        try:
            job = import_job_create(
                project=project,
                source_path=os.path.abspath(path),
                requested_by=author,
                label_format=label_format,
                label_path=label_path,
                class_map=class_map,
                create_classes=create_classes,
                replace=replace,
                enqueue=background,
            )
        except ImportRefused as exc:
            raise CommandError(str(exc)) from None
        if background:
            self.stdout.write(f"Import job {job.pk} queued.")
            return
        import_job_execute(job_id=job.pk)
        job = ImportJob.objects.get(pk=job.pk)
        for item in job.report.get("items", []):
            if item["status"] == "error":
                self.stderr.write(f"  {item['name']}: {item['error']}")
        if job.status != JobStatus.SUCCEEDED:
            raise CommandError(f"Import job {job.pk} {job.status}: {job.error}")
        self.stdout.write(f"Import job {job.pk}: {job.message}")
