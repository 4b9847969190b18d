"""Export a project's current labels to a folder, or to a zip when OUT ends in .zip."""

import os

from django.core.management.base import BaseCommand, CommandError

from labeling.exporters.service import EXPORT_FORMATS, ExportRefused, export_check_format, export_write
from labeling.exporters.sinks import DirSink, ZipSink

from ..project_arg import project_from_argument


class Command(BaseCommand):
    help = "Write PROJECT's latest accepted label of each image, with the split, in a standard format."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project id or name")
        parser.add_argument("out", help="a folder to create, or a .zip file")
        parser.add_argument("--format", required=True, choices=EXPORT_FORMATS)
        parser.add_argument("--no-images", action="store_true", help="labels only")

    def handle(self, *args, project, out, format, no_images, **options):
        project = project_from_argument(project)
        try:
            export_check_format(project=project, export_format=format)
        except ExportRefused as exc:
            raise CommandError(str(exc)) from None
        options = {"project": project, "export_format": format, "include_images": not no_images}
        if not out.lower().endswith(".zip"):
            export_write(sink=DirSink(out), **options)
        else:
            try:
                fileobj = open(out, "xb")
            except FileExistsError:
                raise CommandError(f"{out} exists already.") from None
            try:
                with fileobj, ZipSink(fileobj) as sink:
                    export_write(sink=sink, **options)
            except BaseException:
                os.unlink(out)  # no half-written zip left behind
                raise
        self.stdout.write(f"Exported {project.name} as {format} to {out}")
