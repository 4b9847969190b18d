"""Instance segmentation through the loop on CPU: YOLOv8-seg trains on synthetic shapes,
is deployed, pre-labels the pool with polygons and full class scores, the queue orders by
their uncertainty and serves a task whose pre-label a labeler can accept."""
import io
import math
import random

import numpy as np
import pytest
from django.core.files.base import ContentFile
from PIL import Image as PILImage
from PIL import ImageDraw

from core.models import Backend, ModelVersion, Prediction, Split, TaskType, VersionStatus
from labeling.models import Task, TaskStatus
from labeling.payloads import validate_payload
from labeling.services import annotation_import_create, label_class_create
from tests.factories import ImageFactory, ProjectFactory, TaskFactory, UserFactory
from tests.labeling.test_queue import as_user, member, next_task
from tests.training.test_training_loop import (  # noqa: F401 (the loop's autouse fixtures apply here too)
    _no_side_thread_beats,
    no_network,
    register_trained,
)
from training import services
from training.models import PrelabelRun
from training.queue_heads import labeled_examples

pytestmark = pytest.mark.django_db
SIZE = 64


def shapes_image(seed: int) -> tuple[bytes, list[tuple[str, list[list[float]]]]]:
    """Noise with one or two filled shapes (circle or triangle); the PNG and each shape's
    (kind, outline)."""
    rng = random.Random(seed)
    pixels = (np.random.default_rng(seed).random((SIZE, SIZE, 3)) * 80).astype(np.uint8)
    picture = PILImage.fromarray(pixels)
    draw = ImageDraw.Draw(picture)
    shapes = []
    for _ in range(rng.randint(1, 2)):
        r = rng.uniform(8, 14)
        cx, cy = rng.uniform(r, SIZE - r), rng.uniform(r, SIZE - r)
        if rng.random() < 0.5:
            outline = [[cx + r * math.cos(2 * math.pi * k / 24), cy + r * math.sin(2 * math.pi * k / 24)]
                       for k in range(24)]
            kind, color = "circle", (240, 60, 60)
        else:
            outline, kind, color = [[cx, cy - r], [cx + r, cy + r], [cx - r, cy + r]], "triangle", (60, 240, 60)
        draw.polygon([tuple(p) for p in outline], fill=color)
        shapes.append((kind, outline))
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue(), shapes


def segmentation_project(*, labeled_train=16, labeled_val=6, pool=4, **settings_fields):
    """A segmentation project with verified polygons in both splits and an unlabeled pool."""
    # The loop's mechanics at 2 epochs; the floor is tested below, learning in the benchmark.
    fields = {"task_type": TaskType.SEGMENTATION, "train_epochs": 2, "train_image_size": SIZE,
              "train_batch_size": 8, "min_map50": 0.0, **settings_fields}
    project = ProjectFactory(**fields)
    admin = UserFactory()
    project.memberships.create(user=admin, role="admin")
    classes = {name: label_class_create(project=project, name=name) for name in ("circle", "triangle")}
    images = {"train": [], "validation": [], "pool": []}
    plan = [(Split.TRAIN, "train")] * labeled_train + [(Split.VALIDATION, "validation")] * labeled_val
    plan += [(Split.TRAIN, "pool")] * pool
    for n, (split, group) in enumerate(plan):
        data, shapes = shapes_image(seed=project.pk * 1000 + n)
        image = ImageFactory(project=project, split=split, width=SIZE, height=SIZE,
                             file=ContentFile(data, name=f"s{project.pk}-{n}.png"))
        TaskFactory(image=image, priority=0.5)
        if group != "pool":
            annotation_import_create(image=image, payload={"polygons": [
                {"label": classes[kind].pk, "points": outline} for kind, outline in shapes]})
        images[group].append(image)
    return project, admin, classes, images


@pytest.mark.slow
def test_yolov8_seg_trains_deploys_and_its_polygons_are_served(settings, api_client,
                                                                django_capture_on_commit_callbacks):
    # Two epochs from scratch leave a model that is still blind (its best score on these
    # images is about 0.006; the benchmark trains one that sees), so the pre-label floor is
    # lowered for this test: it checks that what the model says reaches the queue intact.
    settings.VISION_PRELABEL_MIN_SCORE = 0.001
    project, admin, classes, images = segmentation_project()

    with django_capture_on_commit_callbacks(execute=False):
        run = services.training_run_start(project=project, requested_by=admin, enqueue=False)
        run = services.training_run_execute(run_id=run.pk)
    assert run.status == "succeeded", run.error
    assert run.total_epochs == 2 and run.progress == 1.0
    version = ModelVersion.objects.get(training_run=run)
    assert version.backend == Backend.YOLO_SEG and version.architecture == "yolov8n-seg.yaml"
    assert {"mask_map50_95", "mask_map50", "precision", "recall", "per_class_ap"} <= set(version.metrics)
    assert version.metrics["primary_metric"] == "mask_map50_95"
    assert version.comparison["floor"]["reason"].startswith("mask mAP50 ")
    assert version.is_deployed and version.status == VersionStatus.DEPLOYED
    assert version.class_ids == [classes["circle"].pk, classes["triangle"].pk]

    prelabel = PrelabelRun.objects.get(model_version=version)
    services.prelabel_run_execute(run_id=prelabel.pk)
    prelabel.refresh_from_db()
    assert prelabel.status == "succeeded", prelabel.error
    pool_ids = {image.pk for image in images["pool"]}
    predictions = list(Prediction.objects.filter(model_version=version))
    assert {p.image_id for p in predictions} == pool_ids
    for prediction in predictions:
        assert prediction.payload["polygons"], "every pool image gets polygons at this floor"
        for instance in prediction.payload["polygons"]:
            assert instance["label"] in version.class_ids and len(instance["probs"]) == 2
            assert instance["score"] == pytest.approx(max(instance["probs"]), abs=1e-4)
            assert 0.0 <= instance["mask_uncertainty"] <= 1.0
        # What the model drew is a valid label once its scores are dropped.
        validate_payload(prediction.payload, task_type="segmentation", class_ids=version.class_ids,
                         width=SIZE, height=SIZE)
        assert 0.0 <= prediction.uncertainty <= 1.0

    # The queue follows the pre-labels' uncertainty: the open pool is re-ranked.
    open_priorities = dict(Task.objects.filter(project=project, status=TaskStatus.OPEN)
                           .values_list("image_id", "priority"))
    assert set(open_priorities) == pool_ids and len(set(open_priorities.values())) == len(pool_ids)

    client = as_user(api_client, member(project))
    body = next_task(client, project).json()
    assert body["task_type"] == "segmentation" and body["image"]["id"] in pool_ids
    served = body["prediction"]
    assert served["model_version"] == version.number and served["payload"]["polygons"]
    accepted = client.post(f"/api/tasks/{body['task']['id']}/annotations/",
                           {"kind": "accept", "prediction_id": served["id"]}, format="json",
                           HTTP_IDEMPOTENCY_KEY="accept-seg")
    assert accepted.status_code == 201, accepted.content
    stored = accepted.json()["payload"]["polygons"]
    assert len(stored) >= 1 and all(set(p) <= {"label", "points", "rings"} for p in stored)


def test_a_blind_segmentation_model_is_never_deployed(tmp_path):
    project, *_ = segmentation_project(labeled_train=2, labeled_val=1, pool=1, min_map50=0.05)
    metrics = {"mask_map50": 0.0, "mask_map50_95": 0.0, "primary": 0.0, "primary_metric": "mask_map50_95"}
    version = register_trained(project, metrics, tmp_path)
    assert version.status == VersionStatus.REJECTED and not version.is_deployed
    assert version.comparison["reason"] == (
        "below the deployment floor: mask mAP50 0.0000 is below the project's floor 0.0500")


def test_the_queue_model_learns_class_presence_from_polygons():
    project, _, classes, images = segmentation_project(labeled_train=4, labeled_val=2, pool=1)
    from tests.training.test_queue_model_live import DIM, embed

    labeled = images["train"] + images["validation"]
    embed(project, labeled, np.random.default_rng(0).normal(size=(len(labeled), DIM)))
    examples = labeled_examples(project)
    assert examples.class_ids == [classes["circle"].pk, classes["triangle"].pk]
    expected = []
    for image in labeled:
        present = {p["label"] for p in image.annotations.get().payload["polygons"]}
        expected.append((int(classes["circle"].pk in present), int(classes["triangle"].pk in present)))
    assert sorted(map(tuple, examples.targets.tolist())) == sorted(expected)
