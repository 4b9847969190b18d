"""The classifier path end to end, and the learning-efficiency simulation at tiny scale."""
import csv
import io

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from PIL import Image as PILImage

from core.models import ModelVersion, Prediction, Split, TaskType
from labeling.services import annotation_import_create, label_class_create
from tests.factories import ImageFactory, ProjectFactory, TaskFactory
from tests.training.test_training_loop import _no_side_thread_beats, no_network  # noqa: F401 (fixtures)
from training import services
from training.models import PrelabelRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db]
COLORS = {"red": (220, 40, 40), "blue": (40, 40, 220)}


def classification_project(*, per_class_train=4, per_class_val=2, pool=4):
    project = ProjectFactory(task_type=TaskType.CLASSIFICATION, train_epochs=1, train_image_size=32,
                             train_batch_size=4)
    classes = {name: label_class_create(project=project, name=name) for name in COLORS}
    plan = [(Split.TRAIN, name) for name in COLORS for _ in range(per_class_train)]
    plan += [(Split.VALIDATION, name) for name in COLORS for _ in range(per_class_val)]
    plan += [(Split.TRAIN, None)] * pool
    for n, (split, name) in enumerate(plan):
        color = COLORS[name or ("red", "blue")[n % 2]]
        out = io.BytesIO()
        PILImage.new("RGB", (40, 40), tuple(min(255, c + 3 * n) for c in color)).save(out, "PNG")
        image = ImageFactory(project=project, split=split, width=40, height=40,
                             file=ContentFile(out.getvalue(), name=f"c{project.pk}-{n}.png"))
        TaskFactory(image=image)
        if name:
            annotation_import_create(image=image, payload={"labels": [classes[name].pk]})
    return project, classes


def test_classifier_trains_deploys_and_prelabels_with_probabilities(django_capture_on_commit_callbacks, monkeypatch):
    # One epoch at 32 px learns nothing, so the deployment floor (tested on its own in
    # test_queue_model_live and test_training_loop) would keep it out; this test is the path.
    monkeypatch.setattr(services, "deployment_floor", lambda **_: {"passed": True, "reason": "not under test"})
    project, classes = classification_project()
    with django_capture_on_commit_callbacks(execute=False):
        run = services.training_run_start(project=project, enqueue=False)
        run = services.training_run_execute(run_id=run.pk)
    assert run.status == "succeeded", run.error
    version = ModelVersion.objects.get(training_run=run)
    assert version.backend == "classifier" and version.is_deployed
    assert version.class_ids == [classes["red"].pk, classes["blue"].pk]
    assert {"accuracy", "macro_f1", "per_class", "confusion_matrix"} <= set(version.metrics)
    assert version.primary_metric == version.metrics["macro_f1"]
    assert sum(map(sum, version.metrics["confusion_matrix"])) == 4  # the validation images

    services.prelabel_run_execute(run_id=PrelabelRun.objects.get(model_version=version).pk)
    predictions = list(Prediction.objects.filter(model_version=version))
    assert len(predictions) == 4
    for prediction in predictions:
        probs = prediction.payload["probs"]
        assert len(probs) == 2 and abs(sum(probs) - 1) < 1e-3
        assert prediction.payload["labels"][0] == version.class_ids[probs.index(max(probs))]
        assert 0.0 <= prediction.uncertainty <= 1.0


def test_simulation_replays_the_live_queue_per_strategy_and_seed(tmp_path):
    import json

    import numpy as np

    from ml.embedding_specs import DEFAULT_EMBEDDING_MODEL, EMBEDDING_MODELS
    from training.models import ImageEmbedding

    project, classes = classification_project(per_class_train=6, per_class_val=3, pool=0)
    dim = EMBEDDING_MODELS[DEFAULT_EMBEDDING_MODEL].dim
    rng = np.random.default_rng(0)
    for label in project.annotations.all():
        direction = 0 if label.payload["labels"] == [classes["red"].pk] else 1
        vector = np.eye(1, dim, direction)[0] + 0.01 * rng.standard_normal(dim)
        ImageEmbedding.objects.create(project=project, image=label.image, model_key=DEFAULT_EMBEDDING_MODEL,
                                      vector=(vector / np.linalg.norm(vector)).astype("<f4").tobytes())
    out = tmp_path / "sim"
    call_command("simulate_active_learning", "--project", str(project.pk), "--strategies", "random,margin",
                 "--batch", "2", "--max-labels", "6", "--seeds", "0,1", "--out", str(out))
    with open(out / "learning_curves.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["strategy"], r["seed"], r["labels"]) for r in rows if r["seed"] == "0"] == [
        ("random", "0", "2"), ("random", "0", "4"), ("random", "0", "6"),
        ("margin", "0", "2"), ("margin", "0", "4"), ("margin", "0", "6"),
    ]
    assert all(r["metric"] == "macro_f1" and 0.0 <= float(r["value"]) <= 1.0 for r in rows)
    assert (out / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["full_pool"] == {"0": 1.0, "1": 1.0}
    assert [row["strategy"] for row in summary["strategies"]] == ["random", "margin"]


def test_simulation_without_embeddings_says_what_to_run(tmp_path):
    from django.core.management.base import CommandError

    project, _ = classification_project(per_class_train=2, per_class_val=1, pool=0)
    with pytest.raises(CommandError, match="manage.py embed"):
        call_command("simulate_active_learning", "--project", str(project.pk), "--out", str(tmp_path))
