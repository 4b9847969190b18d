"""Export a project's current labels to a folder, or to a zip when OUT ends in .zip."""

from django.core.management.base import BaseCommand, CommandError

from labeling.exporters.service import EXPORT_FORMATS, ExportRefused, export_write
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
            if out.lower().endswith(".zip"):
                with open(out, "xb") as fileobj:
                    sink = ZipSink(fileobj)
                    export_write(
                        project=project, export_format=format, sink=sink, include_images=not no_images
                    )
                    sink.close()
            else:
                export_write(
                    project=project, export_format=format, sink=DirSink(out), include_images=not no_images
                )
        except ExportRefused as exc:
            raise CommandError(str(exc)) from None
        except FileExistsError:
            raise CommandError(f"{out} exists already.") from None
        self.stdout.write(f"Exported {project.name} as {format} to {out}")
