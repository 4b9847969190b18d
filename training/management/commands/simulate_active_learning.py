"""python manage.py simulate_active_learning --project ID [--strategies random,margin,hybrid] ..."""
import json
from datetime import datetime, timezone
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.models import Split, TaskType
from labeling.management.project_arg import project_from_argument
from ml.sampling import STRATEGIES
from training.queue_heads import labeled_examples
from training.simulation import SimulationConfig, plot_curves, simulate, write_csv


class Command(BaseCommand):
    help = ("Replay labeling on a fully labeled project with an oracle annotator, with the live queue's "
            "code: the queue model (a linear head on the images' embeddings) refit after every batch, the "
            "cold start and the ranking. The train split is the pool, the validation split the test split. "
            "Writes learning_curves.csv, learning_curves.png and summary.json (labels to 95% of the "
            "full-pool metric per strategy, mean and spread over seeds, saving against random).")

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project id or exact name")
        parser.add_argument("--strategies", default="random,margin,hybrid",
                            help=f"comma-separated, from {','.join(STRATEGIES)}")
        parser.add_argument("--batch", type=int, help="labels per round (default: the project's queue_model_every)")
        parser.add_argument("--max-labels", type=int, default=1000)
        parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
        parser.add_argument("--out", help="output folder (default: a new folder under VISION_RUNS_DIR/simulations)")

    def handle(self, *args, **opts):
        project = project_from_argument(opts["project"])
        try:
            config = SimulationConfig(
                strategies=[s.strip() for s in opts["strategies"].split(",") if s.strip()],
                seeds=[int(s) for s in opts["seeds"].split(",") if s.strip()],
                batch_size=opts["batch"] or max(project.queue_model_every, 1), max_labels=opts["max_labels"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        examples = labeled_examples(project)
        classes, splits, vectors, targets = examples.class_ids, examples.splits, examples.vectors, examples.targets
        pool, test = splits == Split.TRAIN, splits == Split.VALIDATION
        if pool.sum() < config.batch_size or not test.any():
            raise CommandError(f"need embedded labels in both splits: {int(pool.sum())} in train, "
                               f"{int(test.sum())} in validation (run `manage.py embed` first)")
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        out = Path(opts["out"] or Path(settings.VISION_RUNS_DIR) / "simulations" / f"project-{project.pk}-{stamp}")
        result = simulate(
            task="classification" if project.task_type == TaskType.CLASSIFICATION else "detection",
            classes=classes, pool_embeddings=vectors[pool], pool_targets=targets[pool],
            test_embeddings=vectors[test], test_targets=targets[test], config=config, log=self.stdout.write,
        )
        csv_path = write_csv(result.rows, out / "learning_curves.csv")
        png_path = plot_curves(result.rows, out / "learning_curves.png", title=f"{project.name}: learning curves",
                               targets=list(result.target.values()))
        summary = result.summary()
        (out / "summary.json").write_text(json.dumps(result.as_json(), indent=2))
        for row in summary:
            saving = row["saving_vs_random_percent"]
            self.stdout.write(f"{row['strategy']:>16}: labels to target {row['labels_to_target_mean']:.0f} "
                              f"± {row['labels_to_target_std']:.0f}"
                              + (f", saving {saving:.0f}% against random" if saving is not None else ""))
        self.stdout.write(f"Wrote {csv_path}, {png_path} and {out / 'summary.json'}")
