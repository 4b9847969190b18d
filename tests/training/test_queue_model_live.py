"""The live queue model: refit after every few labels, re-rank, pre-label, and the gate's floor."""
import numpy as np
import pytest

from core.models import Backend, ModelVersion, Split, TaskType, VersionStatus
from ml import selection
from ml.embedding_specs import DEFAULT_EMBEDDING_MODEL, EMBEDDING_MODELS
from tests.labeling.test_queue import add_images, as_user, make_project, member, next_task
from training import queue_heads, simulation
from training import queue_model as live
from training.models import ImageEmbedding
from training.ranking import queue_priorities_refresh

pytestmark = pytest.mark.django_db
DIM = EMBEDDING_MODELS[DEFAULT_EMBEDDING_MODEL].dim


def _unit(v):
    return (v / np.linalg.norm(v)).astype("<f4")


def embed(project, images, vectors):
    ImageEmbedding.objects.bulk_create(
        ImageEmbedding(project=project, image=image, model_key=DEFAULT_EMBEDDING_MODEL, vector=_unit(v).tobytes())
        for image, v in zip(images, vectors)
    )


@pytest.fixture
def eager_tasks(monkeypatch):
    import training.tasks  # noqa: F401 (registers the tasks by name)
    from vision_project.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)


def two_cluster_project(n_per_class=15, ambiguous=6, val_per_class=0):
    """Classification project "a"/"b" whose embeddings form two tight clusters plus images
    half-way between them. Returns (project, truth {image id: class id}, ambiguous ids)."""
    project = make_project(TaskType.CLASSIFICATION, classes=("a", "b"), queue_model_every=10,
                           sampling_strategy="margin")
    a, b = project.label_classes.order_by("id").values_list("id", flat=True)
    rng = np.random.default_rng(0)
    centers = {a: np.eye(1, DIM, 0)[0], b: np.eye(1, DIM, 1)[0]}
    truth, vectors, images = {}, [], []
    plan = [(Split.TRAIN, c) for c in (a, b) for _ in range(n_per_class)]
    plan += [(Split.VALIDATION, c) for c in (a, b) for _ in range(val_per_class)]
    for split in (Split.TRAIN, Split.VALIDATION):
        batch = [c for s, c in plan if s == split]
        if batch:
            made = add_images(project, [0.5] * len(batch), split=split)
            images += made
            vectors += [centers[c] + 0.005 * rng.standard_normal(DIM) for c in batch]
            truth.update({image.pk: c for image, c in zip(made, batch)})
    between = add_images(project, [0.5] * ambiguous)
    for n, image in enumerate(between):
        vectors.append(centers[a] + centers[b] + 0.001 * rng.standard_normal(DIM))
        truth[image.pk] = (a, b)[n % 2]
    embed(project, images + between, vectors)
    return project, truth, {image.pk for image in between}


def label_next(client, project, truth, key):
    task = next_task(client, project).json()
    response = client.post(f"/api/tasks/{task['task']['id']}/annotations/",
                           {"kind": "correct", "payload": {"labels": [truth[task['image']['id']]]}},
                           format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 201, response.content
    return task


def test_ten_submits_refit_the_queue_model_and_the_next_task_is_its_most_uncertain_image(
    api_client, eager_tasks, django_capture_on_commit_callbacks
):
    project, truth, ambiguous = two_cluster_project()
    queue_priorities_refresh(project=project)  # embeddings arrived: the cold start ranks
    client = as_user(api_client, member(project))
    for n in range(10):
        with django_capture_on_commit_callbacks(execute=True):
            label_next(client, project, truth, key=f"k{n}")
        fitted = ModelVersion.objects.filter(project=project, backend=Backend.LINEAR)
        assert fitted.count() == (1 if n == 9 else 0), f"after {n + 1} labels"
    version = fitted.get()
    assert (version.dataset_size, version.metrics["head"]) == (10, "multiclass")
    head = queue_heads.head_load(version)
    served = next_task(client, project).json()
    open_ids = [i for i in truth if i not in set(version.project.tasks.filter(status="done")
                                                      .values_list("image_id", flat=True))]
    vectors = {int(e.image_id): np.frombuffer(e.vector, "<f4") for e in ImageEmbedding.objects.filter(
        image_id__in=open_ids)}
    uncertainty = {i: selection.head_uncertainty(head, head.predict_proba(vectors[i][None]), "margin")[0]
                   for i in open_ids}
    assert served["image"]["id"] in ambiguous
    assert uncertainty[served["image"]["id"]] == pytest.approx(max(uncertainty.values()))


def test_a_head_with_enough_validation_labels_is_deployed_and_pre_labels_served_images(api_client):
    project, truth, _ = two_cluster_project(n_per_class=15, val_per_class=6)
    for image_id, class_id in list(truth.items())[:-6]:  # everything labeled but the ambiguous pool
        from core.models import Image
        from labeling.services import annotation_import_create

        annotation_import_create(image=Image.objects.get(pk=image_id), payload={"labels": [class_id]})
    version = live.queue_model_fit(project=project, force=True)
    assert version.validation_size == 12 and version.primary_metric == 1.0
    assert version.comparison["decision"] == "deploy" and version.comparison["floor"]["passed"]
    version.refresh_from_db()
    assert version.is_deployed
    client = as_user(api_client, member(project))
    body = next_task(client, project).json()
    prediction = body["prediction"]
    assert prediction["model_version"] == version.number
    assert prediction["payload"]["labels"][0] in prediction["class_ids"]
    assert sum(prediction["payload"]["probs"]) == pytest.approx(1.0, abs=1e-4)
    accepted = client.post(f"/api/tasks/{body['task']['id']}/annotations/",
                           {"kind": "accept", "prediction_id": prediction["id"]}, format="json",
                           HTTP_IDEMPOTENCY_KEY="accept-1")
    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["payload"] == {"labels": prediction["payload"]["labels"]}


def test_a_head_that_cannot_beat_the_majority_class_only_ranks(api_client):
    project, truth, _ = two_cluster_project(n_per_class=15, val_per_class=6)
    from core.models import Image
    from labeling.services import annotation_import_create

    a = min(project.label_classes.values_list("id", flat=True))
    for image_id, class_id in list(truth.items())[:-6]:
        # train labels: the true class; validation labels: all "a", so a perfect head scores
        # no better than always answering "a"
        image = Image.objects.get(pk=image_id)
        annotation_import_create(image=image, payload={"labels": [a if image.split == Split.VALIDATION else class_id]})
    version = live.queue_model_fit(project=project, force=True)
    assert version.comparison["decision"] == "queue" and not version.comparison["floor"]["passed"]
    assert "majority class" in version.comparison["reason"]
    version.refresh_from_db()
    assert version.status == VersionStatus.QUEUE and not version.is_deployed


def test_the_live_queue_and_the_simulation_rank_with_the_same_function(monkeypatch):
    calls = []
    real = selection.rank_pool

    def spy(**kwargs):
        calls.append(kwargs["strategy"])
        return real(**kwargs)

    monkeypatch.setattr(selection, "rank_pool", spy)
    monkeypatch.setattr(simulation, "rank_pool", spy)
    project, _, _ = two_cluster_project(n_per_class=5, ambiguous=2)
    queue_priorities_refresh(project=project)
    assert calls == ["margin"]
    x = np.eye(4, 8, dtype=np.float32)
    simulation.simulate(task="classification", classes=[0, 1], pool_embeddings=x, pool_targets=np.array([0, 1, 0, 1]),
                        test_embeddings=x, test_targets=np.array([0, 1, 0, 1]),
                        config=simulation.SimulationConfig(strategies=("margin",), seeds=(0,), batch_size=2,
                                                           max_labels=4), log=lambda _: None)
    assert calls == ["margin", "margin", "margin"]


def test_a_fine_tuned_classifier_must_beat_the_queue_model_on_the_same_validation_images(tmp_path):
    from core.models import Image
    from labeling.services import annotation_import_create
    from tests.training.test_training_loop import register_trained

    project, truth, _ = two_cluster_project(n_per_class=15, val_per_class=6)
    for image_id, class_id in list(truth.items())[:-6]:
        annotation_import_create(image=Image.objects.get(pk=image_id), payload={"labels": [class_id]})
    head = live.queue_model_fit(project=project, force=True)
    version = register_trained(project, {"primary": 0.8, "primary_metric": "macro_f1", "macro_f1": 0.8}, tmp_path)
    floor = version.comparison["floor"]
    assert (floor["baseline"], floor["value"], floor["passed"]) == (f"queue model v{head.number}", 1.0, False)
    assert version.status == VersionStatus.REJECTED and not version.is_deployed
    assert "does not beat the queue model" in version.comparison["reason"]


def test_auto_moves_to_the_random_arm_only_when_its_labels_train_the_better_head():
    rng = np.random.default_rng(0)
    dim = 8
    centers = np.eye(2, dim)

    def examples(strategy_labels_useful: bool):
        vectors, targets, splits, arm = [], [], [], []
        for n in range(60):
            cls = n % 2
            is_random = n < 20
            # the strategy arm's labels are noise when it does not pay (all from one spot)
            center = centers[cls] if (is_random or strategy_labels_useful) else centers[0]
            vectors.append(center + 0.05 * rng.standard_normal(dim))
            targets.append(cls)
            splits.append(Split.TRAIN)
            arm.append(is_random)
        for n in range(20):
            vectors.append(centers[n % 2] + 0.05 * rng.standard_normal(dim))
            targets.append(n % 2)
            splits.append(Split.VALIDATION)
            arm.append(False)
        return queue_heads.LabeledExamples([0, 1], np.asarray(splits, dtype=object), np.asarray(vectors, np.float32),
                                    np.asarray(targets), np.asarray(arm))

    paying = queue_heads.arm_comparison(examples(True), seed=0)
    assert paying["labels"] == 20 and paying["leader"] == "strategy"
    hurting = queue_heads.arm_comparison(examples(False), seed=0)
    assert hurting["leader"] == "random" and hurting["random"] > hurting["strategy"]
    project = make_project(TaskType.CLASSIFICATION, classes=("a", "b"), sampling_strategy="auto")
    assert queue_heads.auto_strategy(project) == "margin"  # nothing measured yet


def test_the_pool_vectors_are_read_once_and_topped_up_with_new_rows():
    project, truth, _ = two_cluster_project(n_per_class=3, ambiguous=2)
    ids, vectors = queue_heads.project_vectors(project)
    assert ids.tolist() == sorted(truth) and vectors.shape == (8, DIM)
    (extra,) = add_images(project, [0.5])
    embed(project, [extra], [np.eye(1, DIM, 2)[0]])
    ids, vectors = queue_heads.project_vectors(project)
    assert ids[-1] == extra.pk and np.allclose(vectors[-1][:3], [0, 0, 1])
    ImageEmbedding.objects.filter(image_id=ids[0]).delete()
    ids, _ = queue_heads.project_vectors(project)
    assert ids.tolist() == sorted(truth)[1:] + [extra.pk]
