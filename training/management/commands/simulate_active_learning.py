"""python manage.py simulate_active_learning --project ID [--strategies random,entropy,...] ..."""
from datetime import datetime, timezone
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from labeling.management.project_arg import project_from_argument
from training.datasets import SnapshotError, dataset_snapshot
from training.ml.base import TrainParams
from training.ml.sampling import STRATEGIES
from training.services import backend_kind_for
from training.simulation import SimulationConfig, plot_curves, simulate, write_csv


class Command(BaseCommand):
    help = ("Replay labeling on a fully labeled project with an oracle annotator: a random seed set, "
            "then rounds of K labels picked by each strategy, retraining and evaluating on the project's "
            "validation split each round. Writes learning_curves.csv and learning_curves.png.")

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project id or exact name (its train split is the "
                            "pool, its validation split the fixed test split)")
        parser.add_argument("--strategies", default="random,entropy",
                            help=f"comma-separated, from {','.join(STRATEGIES)}")
        parser.add_argument("--seed-size", type=int, default=20)
        parser.add_argument("--batch", type=int, default=20, help="labels bought per round (K)")
        parser.add_argument("--rounds", type=int, default=5)
        parser.add_argument("--epochs", type=int, help="default: the project's train_epochs")
        parser.add_argument("--image-size", type=int, help="default: the project's train_image_size")
        parser.add_argument("--train-batch", type=int, help="default: the project's train_batch_size")
        parser.add_argument("--device", default="auto")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", help="output folder (default: a new folder under VISION_RUNS_DIR/simulations)")

    def handle(self, *args, **opts):
        project = project_from_argument(opts["project"])
        try:
            snapshot = dataset_snapshot(project=project)
            config = SimulationConfig(
                strategies=[s.strip() for s in opts["strategies"].split(",") if s.strip()],
                seed_size=opts["seed_size"], batch_size=opts["batch"], rounds=opts["rounds"], seed=opts["seed"],
                params=TrainParams(
                    epochs=opts["epochs"] or project.train_epochs,
                    imgsz=opts["image_size"] or project.train_image_size,
                    batch=opts["train_batch"] or project.train_batch_size,
                    seed=opts["seed"], device=opts["device"],
                ),
            )
        except (SnapshotError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        out = Path(opts["out"] or Path(settings.VISION_RUNS_DIR) / "simulations" / f"project-{project.pk}-{stamp}")
        try:
            rows = simulate(
                kind=backend_kind_for(project), class_names=snapshot.spec.class_names, pool=snapshot.spec.train,
                test=snapshot.spec.val, config=config, workdir=out / "runs", log=self.stdout.write,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        csv_path = write_csv(rows, out / "learning_curves.csv")
        png_path = plot_curves(rows, out / "learning_curves.png", title=f"{project.name}: learning curves")
        self.stdout.write(f"Wrote {csv_path} and {png_path}")
