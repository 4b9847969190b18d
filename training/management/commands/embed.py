"""python manage.py embed PROJECT [--wait] [--model KEY]"""
from django.core.management.base import BaseCommand, CommandError

from labeling.management.project_arg import project_from_argument
from ml.embedding_specs import EMBEDDING_MODELS
from training import selectors, services
from vision_project.api_errors import Conflict


class Command(BaseCommand):
    help = ("Embed PROJECT's images (id or name) that have no vector yet. By default a run is queued for "
            "the GPU workers (or joins the one already queued); with --wait it runs in this process.")

    def add_arguments(self, parser):
        parser.add_argument("project", help="project id or exact name")
        parser.add_argument("--wait", action="store_true", help="embed here and now instead of queueing")
        parser.add_argument("--model", choices=sorted(EMBEDDING_MODELS),
                            help="embedding model key (default: VISION_EMBEDDING_MODEL)")

    def handle(self, *args, project, wait, model, **options):
        project = project_from_argument(project)
        if not wait:
            run = services.embedding_run_start(project=project, model_key=model, join=True)
            self.stdout.write(f"Embedding run {run.pk} queued ({run.model_key}).")
            return
        try:
            run = services.embedding_run_start(project=project, model_key=model, enqueue=False)
        except Conflict as exc:
            raise CommandError(f"{exc.detail} (run {exc.extra.get('run_id')})") from None
        run = services.embedding_run_execute(run_id=run.pk)
        if run.status != "succeeded":
            raise CommandError(f"Embedding run {run.pk} {run.status}: {run.error or run.message}")
        missing = selectors.embeddings_missing(project, run.model_key).count()
        self.stdout.write(f"Embedding run {run.pk} succeeded: {run.message}; {missing} images without a vector.")
