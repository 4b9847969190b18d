"""python manage.py train PROJECT [--wait] [--epochs N] [--image-size N]"""
from django.core.management.base import BaseCommand, CommandError

from labeling.management.project_arg import project_from_argument
from training import services
from training.models import TrainingTrigger
from vision_project.api_errors import Conflict


class Command(BaseCommand):
    help = ("Start a training run for PROJECT (id or name). By default it is queued for the GPU "
            "workers; with --wait it runs in this process and prints the new version and the gate's decision.")

    def add_arguments(self, parser):
        parser.add_argument("project", help="project id or exact name")
        parser.add_argument("--wait", action="store_true", help="train here and now instead of queueing")
        parser.add_argument("--epochs", type=int, help="override the project's train_epochs")
        parser.add_argument("--image-size", type=int, help="override the project's train_image_size")

    def handle(self, *args, project, wait, epochs, image_size, **options):
        try:
            run = services.training_run_start(
                project=project_from_argument(project), trigger=TrainingTrigger.COMMAND, epochs=epochs, image_size=image_size,
                enqueue=not wait,
            )
        except Conflict as exc:
            raise CommandError(f"{exc.detail} (run {exc.extra.get('run_id')})") from None
        if not wait:
            self.stdout.write(f"Training run {run.pk} queued.")
            return
        run = services.training_run_execute(run_id=run.pk)
        if run.status != "succeeded":
            raise CommandError(f"Training run {run.pk} {run.status}: {run.error or run.message}")
        self.stdout.write(f"Training run {run.pk} succeeded: {run.message}")
