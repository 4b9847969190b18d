"""The loop on CPU with tiny images: train -> version -> gate -> deploy -> re-score, rollback,
idempotent prelabel, and no network access along the way."""
import io
import random
import socket

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from PIL import Image as PILImage
from PIL import ImageDraw

from core.models import ModelVersion, Prediction, Split, VersionStatus
from labeling.models import Annotation, AnnotationKind, AnnotationState, ReviewStatus, Task, TaskStatus
from labeling.services import annotation_import_create, label_class_create
from tests.factories import ImageFactory, ProjectFactory, TaskFactory, UserFactory
from training import selectors, services
from training.models import PrelabelRun, TrainingRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Refuse, and record, every connection that is not to the local database or broker."""
    attempts = []
    real_connect = socket.socket.connect

    def guarded(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOCAL_HOSTS:
            attempts.append(address)
            raise OSError(f"network access blocked in tests: {address}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield attempts
    assert attempts == [], f"code tried to reach the network: {attempts}"


@pytest.fixture(autouse=True)
def _no_side_thread_beats(settings):
    """These tests run inside one uncommitted transaction that the heartbeat thread's own
    connection cannot see; the worker tests exercise the heartbeat for real."""
    settings.VISION_JOB_HEARTBEAT_SECONDS = 3600


def box_image(seed: int, size=(64, 48)) -> tuple[bytes, dict]:
    """A grey picture with one red rectangle; returns the PNG and the rectangle's box."""
    rng = random.Random(seed)
    w, h = size
    x1, y1 = rng.randint(2, w // 2), rng.randint(2, h // 2)
    x2, y2 = x1 + rng.randint(12, w // 2 - 2), y1 + rng.randint(10, h // 2 - 2)
    picture = PILImage.new("RGB", size, (rng.randint(90, 140),) * 3)
    ImageDraw.Draw(picture).rectangle([x1, y1, x2, y2], fill=(220, 30, 30))
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue(), {"x1": x1, "y1": y1, "x2": x2, "y2": y2}


def detection_project(*, labeled_train=6, labeled_val=3, pool=5, **settings_fields):
    """A detection project with verified labels in both splits and an unlabeled pool."""
    # The loop's mechanics, not model quality: one epoch at 32 px; the deployment floor has
    # its own tests (test_a_blind_detector_is_never_deployed).
    fields = {"train_epochs": 1, "train_image_size": 32, "train_batch_size": 4, "min_map50": 0.0,
              **settings_fields}
    project = ProjectFactory(**fields)
    admin = UserFactory()
    project.memberships.create(user=admin, role="admin")
    cls = label_class_create(project=project, name="box")
    images = {"train": [], "validation": [], "pool": []}
    plan = [(Split.TRAIN, "train")] * labeled_train + [(Split.VALIDATION, "validation")] * labeled_val
    plan += [(Split.TRAIN, "pool")] * pool
    for n, (split, group) in enumerate(plan):
        data, box = box_image(seed=project.pk * 1000 + n)
        image = ImageFactory(project=project, split=split, width=64, height=48,
                             file=ContentFile(data, name=f"p{project.pk}-{n}.png"))
        TaskFactory(image=image, priority=0.5)
        if group != "pool":
            annotation_import_create(image=image, payload={"boxes": [{**box, "label": cls.pk}]})
        images[group].append(image)
    return project, admin, cls, images


def _priorities(project):
    return dict(Task.objects.filter(project=project, status=TaskStatus.OPEN).values_list("image_id", "priority"))


def test_train_deploy_rescore_and_idempotent_prelabel(django_capture_on_commit_callbacks):
    project, admin, cls, images = detection_project()
    before = _priorities(project)
    assert set(before.values()) == {0.5}

    with django_capture_on_commit_callbacks(execute=False):
        run = services.training_run_start(project=project, requested_by=admin, enqueue=False)
        run = services.training_run_execute(run_id=run.pk)
    assert run.status == "succeeded", run.error
    assert run.epoch == 1 and run.total_epochs == 1 and run.progress == 1.0

    version = ModelVersion.objects.get(training_run=run)
    assert version.number == 1 and version.is_deployed and version.status == VersionStatus.DEPLOYED
    assert version.backend == "yolo" and version.class_ids == [cls.pk]
    assert (version.dataset_size, version.validation_size) == (6, 3)
    assert {"map50_95", "map50", "precision", "recall", "per_class_ap"} <= set(version.metrics)
    assert version.primary_metric == version.metrics["map50_95"]
    assert version.comparison["decision"] == "deploy"
    assert version.weights.name.startswith(f"projects/{project.pk}/models/v1/")
    assert version.weights.storage.exists(version.weights.name)

    # the deploy queued a re-scoring of the pool by v1
    prelabel = PrelabelRun.objects.get(model_version=version)
    assert prelabel.status == "queued"
    services.prelabel_run_execute(run_id=prelabel.pk)
    prelabel.refresh_from_db()
    assert prelabel.status == "succeeded", prelabel.error
    pool_ids = {image.pk for image in images["pool"]}
    assert set(Prediction.objects.filter(model_version=version).values_list("image_id", flat=True)) == pool_ids
    prediction = Prediction.objects.filter(model_version=version).first()
    assert isinstance(prediction.payload["boxes"], list) and prediction.embedding is not None
    for box in prediction.payload["boxes"]:
        assert box["label"] == cls.pk and len(box["probs"]) == 1

    after = _priorities(project)
    assert after.keys() == before.keys() and after != before
    assert sorted(after.values()) == sorted(set(after.values()))  # distinct positions, not a constant

    # prelabel again: nothing left to predict, no duplicate rows
    again = services.prelabel_run_start(project=project)
    services.prelabel_run_execute(run_id=again.pk)
    again.refresh_from_db()
    assert again.status == "succeeded" and again.total == 0
    assert Prediction.objects.filter(model_version=version).count() == len(pool_ids)


def test_worse_candidate_is_rejected_and_rollback_is_a_deploy(django_capture_on_commit_callbacks, api_client):
    project, admin, cls, images = detection_project(labeled_train=4, labeled_val=2, pool=2)
    # a deployed version trained on other classes: it cannot be re-evaluated, its stored
    # (perfect) metric stands, and a fresh candidate cannot beat it
    old = ModelVersion.objects.create(
        project=project, number=1, backend="yolo", class_ids=[cls.pk + 999], primary_metric=1.0,
        metrics={"primary": 1.0}, status=VersionStatus.DEPLOYED, is_deployed=True,
    )
    old.weights.save("best.pt", ContentFile(b"not read by this test"))

    with django_capture_on_commit_callbacks(execute=False):
        call_command("train", str(project.pk), "--wait")
    run = TrainingRun.objects.get(project=project)
    assert run.status == "succeeded" and run.trigger == "command"
    candidate = ModelVersion.objects.get(training_run=run)
    assert candidate.number == 2 and candidate.status == VersionStatus.REJECTED and not candidate.is_deployed
    assert candidate.parent == old
    assert candidate.comparison["decision"] == "reject"
    assert candidate.comparison["deployed_version"] == 1 and candidate.comparison["deployed"] == 1.0
    assert selectors.model_version_deployed(project) == old

    # deploying the rejected candidate by hand, then rolling back, are the same operation
    api_client.force_authenticate(admin)
    with django_capture_on_commit_callbacks(execute=False):
        response = api_client.post(f"/api/model-versions/{candidate.pk}/deploy/")
    assert response.status_code == 200, response.json()
    assert response.json()["is_deployed"] is True
    old.refresh_from_db()
    assert old.status == VersionStatus.RETIRED and not old.is_deployed
    assert PrelabelRun.objects.filter(model_version=candidate, status="queued").count() == 1

    with django_capture_on_commit_callbacks(execute=False):
        response = api_client.post(f"/api/model-versions/{old.pk}/deploy/")
    assert response.status_code == 200
    assert ModelVersion.objects.get(project=project, is_deployed=True) == old
    candidate.refresh_from_db()
    assert candidate.status == VersionStatus.RETIRED
    assert PrelabelRun.objects.filter(model_version=old, status="queued").count() == 1

    listing = api_client.get(f"/api/projects/{project.pk}/model-versions/").json()["results"]
    assert [(v["number"], v["is_deployed"], v["parent_number"]) for v in listing] == [(2, False, 1), (1, True, None)]
    assert listing[0]["comparison"]["decision"] == "reject"


def test_promotion_gate_tolerance():
    project = ProjectFactory()
    deployed = ModelVersion(project=project, number=3)
    baseline = services.Baseline(deployed, 0.50, "re-evaluated")
    compare = services.promotion_compare
    assert compare(candidate=0.51, baseline=baseline, tolerance=0.0, metric="m")["decision"] == "deploy"
    assert compare(candidate=0.49, baseline=baseline, tolerance=0.0, metric="m")["decision"] == "reject"
    assert compare(candidate=0.49, baseline=baseline, tolerance=0.02, metric="m")["decision"] == "deploy"
    assert compare(candidate=0.10, baseline=None, tolerance=0.0, metric="m")["decision"] == "deploy"


def test_start_point_comes_only_from_the_trusted_weights_folder(settings):
    from training.datasets import SnapshotError

    project, admin, cls, images = detection_project(labeled_train=1, labeled_val=1, pool=0)
    snapshot = services.dataset_snapshot(project=project)
    settings.VISION_WEIGHTS_DIR.mkdir(parents=True)
    (settings.VISION_WEIGHTS_DIR / "trees.pt").write_bytes(b"checkpoint")
    project.start_weights = "trees.pt"
    assert services.start_point_for(project, snapshot, None).weights == str(settings.VISION_WEIGHTS_DIR / "trees.pt")
    project.start_weights = "yolov8s.yaml"
    assert services.start_point_for(project, snapshot, None).arch == "yolov8s.yaml"
    # A stored value from before the settings check: an upper-case suffix or a bare name would
    # reach ultralytics as a checkpoint to unpickle from the worker's current folder.
    for name in ("missing.pt", "../media/escape.pt", "/etc/passwd", "evil.PT", "evil"):
        project.start_weights = name
        with pytest.raises(SnapshotError, match="Start weights"):
            services.start_point_for(project, snapshot, None)
    project.start_weights = ""
    assert services.start_point_for(project, snapshot, None) == services.StartPoint(None, None, "")


def test_latest_verified_label_rule(db):
    project, admin, cls, images = detection_project(labeled_train=4, labeled_val=0, pool=0)
    first, second, third, fourth = images["train"]
    later = Annotation.objects.create(project=project, image=first, kind=AnnotationKind.ACCEPT,
                                      payload={"boxes": []})
    Annotation.objects.create(project=project, image=first, kind=AnnotationKind.CORRECT, payload={"boxes": [1]},
                              review_status=ReviewStatus.REJECTED)
    Annotation.objects.create(project=project, image=first, kind=AnnotationKind.CORRECT, payload={"boxes": [2]},
                              state=AnnotationState.EXTRA_OPINION)
    Annotation.objects.create(project=project, image=second, kind=AnnotationKind.FLAG,
                              review_status=ReviewStatus.ACCEPTED)
    Annotation.objects.create(project=project, image=third, kind=AnnotationKind.FLAG)  # awaiting a lead
    Annotation.objects.create(project=project, image=fourth, kind=AnnotationKind.FLAG,
                              review_status=ReviewStatus.REJECTED)  # sent back: the label stands
    labels = {label.image_id: label.payload for label in selectors.training_labels(project)}
    assert labels[first.pk] == later.payload
    assert second.pk not in labels and third.pk not in labels and fourth.pk in labels


def test_auto_retrain_starts_after_n_new_labels(django_capture_on_commit_callbacks, monkeypatch):
    from training.tasks import training_run_execute

    sent = []
    monkeypatch.setattr(training_run_execute, "apply_async", lambda args, kwargs=None, **kw: sent.append(args))
    project, admin, cls, images = detection_project(labeled_train=2, labeled_val=1, pool=2,
                                                    retrain_every_n_labels=4)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.auto_retrain_check() == []  # 3 labels < 4
        annotation_import_create(image=images["pool"][0], payload={"boxes": []})
        started = services.auto_retrain_check()
        assert len(started) == 1 and services.auto_retrain_check() == []  # one active run at a time
    run = TrainingRun.objects.get(pk=started[0])
    assert run.trigger == "auto" and run.labels_at_start == 4
    assert sent == [(run.pk,)]  # enqueued once, after the commit


def test_roles_on_training_endpoints(api_client):
    project, admin, cls, images = detection_project(labeled_train=0, labeled_val=0, pool=0)
    lead, annotator, stranger = UserFactory(), UserFactory(), UserFactory()
    project.memberships.create(user=lead, role="lead")
    project.memberships.create(user=annotator, role="annotator")
    run = TrainingRun.objects.create(project=project, status="failed")
    urls = {
        "list": f"/api/projects/{project.pk}/training-runs/",
        "run": f"/api/training-runs/{run.pk}/",
        "versions": f"/api/projects/{project.pk}/model-versions/",
    }
    api_client.force_authenticate(stranger)
    assert {api_client.get(url).status_code for url in urls.values()} == {404}
    assert api_client.post(urls["list"]).status_code == 404
    api_client.force_authenticate(annotator)
    assert {api_client.get(url).status_code for url in urls.values()} == {403}
    api_client.force_authenticate(lead)
    assert {api_client.get(url).status_code for url in urls.values()} == {200}
    assert api_client.post(urls["list"]).status_code == 403
    assert api_client.post(f"/api/training-runs/{run.pk}/cancel/").status_code == 403
    assert api_client.post(f"/api/projects/{project.pk}/prelabel/").status_code == 403
    api_client.force_authenticate(admin)
    response = api_client.post(f"/api/projects/{project.pk}/prelabel/")
    assert response.status_code == 400 and "no deployed model" in response.json()["detail"]
    assert api_client.post(urls["list"], {"epochs": 0}, format="json").status_code == 400


def register_trained(project, metrics, tmp_path):
    """A finished run's model registered through the gate, as training does, without training."""
    from training.datasets import dataset_snapshot
    from training.models import TrainingRun

    run = TrainingRun.objects.create(project=project, status="running")
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"weights")
    return services.model_version_register(
        run=run, snapshot=dataset_snapshot(project=project), weights_path=str(weights), metrics=metrics,
        architecture="yolov8n.yaml", parent=None, baseline=None,
    )


def test_a_blind_detector_is_never_deployed_and_the_reason_is_kept(api_client, tmp_path):
    project, admin, cls, images = detection_project(labeled_train=2, labeled_val=1, pool=1, min_map50=0.05)
    metrics = {"map50": 0.0, "map50_95": 0.0, "primary": 0.0, "primary_metric": "map50_95"}
    version = register_trained(project, metrics, tmp_path)
    assert version.status == VersionStatus.REJECTED and not version.is_deployed
    assert version.comparison["floor"] == {
        "baseline": "min_map50", "value": 0.05, "candidate": 0.0, "passed": False,
        "reason": "mAP50 0.0000 is below the project's floor 0.0500"}
    assert version.comparison["reason"] == "below the deployment floor: mAP50 0.0000 is below the project's floor 0.0500"
    assert PrelabelRun.objects.filter(project=project).count() == 0
    api_client.force_authenticate(admin)
    listed = api_client.get(f"/api/projects/{project.pk}/model-versions/").json()["results"]
    assert listed[0]["comparison"]["reason"].startswith("below the deployment floor")
    refused = api_client.post(f"/api/model-versions/{version.pk}/deploy/")
    assert refused.status_code == 400 and "below the deployment floor" in refused.json()["detail"]
    assert selectors.model_version_deployed(project) is None


def test_a_detector_above_the_floor_is_deployed(tmp_path):
    project, *_ = detection_project(labeled_train=2, labeled_val=1, pool=1, min_map50=0.05)
    metrics = {"map50": 0.31, "map50_95": 0.12, "primary": 0.12, "primary_metric": "map50_95"}
    version = register_trained(project, metrics, tmp_path)
    assert version.is_deployed and version.comparison["floor"]["passed"]


@pytest.mark.parametrize("broken", ["no classes", "no weights file"])
def test_deploy_refuses_a_version_that_cannot_pre_label(api_client, broken):
    from django.core.files.storage import default_storage

    project, admin, cls, images = detection_project(labeled_train=1, labeled_val=1, pool=1)
    name = default_storage.save(f"projects/{project.pk}/models/v1.pt", ContentFile(b"weights"))
    version = ModelVersion.objects.create(project=project, number=1, backend="yolo", weights=name,
                                          class_ids=[] if broken == "no classes" else [cls.pk])
    if broken == "no weights file":
        default_storage.delete(name)
    api_client.force_authenticate(admin)
    refused = api_client.post(f"/api/model-versions/{version.pk}/deploy/")
    assert refused.status_code == 400, refused.content
    assert ("classes" if broken == "no classes" else "weights") in refused.json()["detail"]
    assert selectors.model_version_deployed(project) is None
    assert PrelabelRun.objects.filter(project=project).count() == 0
