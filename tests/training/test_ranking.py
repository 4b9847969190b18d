"""queue_priorities_refresh: the deployed model's predictions become the queue order."""
import numpy as np
import pytest

from core.models import Prediction, Split, TaskType
from labeling.models import Task, TaskStatus
from tests.labeling.test_queue import add_images, deploy_model, make_project
from training.ranking import queue_priorities_refresh

pytestmark = pytest.mark.django_db


def _priority(image):
    priorities = set(Task.objects.filter(image=image, status=TaskStatus.OPEN).values_list("priority", flat=True))
    assert len(priorities) == 1, "slots of one image disagree on priority"
    return priorities.pop()


def _classify(version, image, probs, embedding=None):
    Prediction.objects.create(
        image=image, model_version=version, payload={"labels": [0], "probs": probs},
        embedding=None if embedding is None else np.asarray(embedding, dtype=np.float32).tobytes(),
    )


def test_classification_entropy_orders_the_pool_most_uncertain_first():
    project = make_project(task_type=TaskType.CLASSIFICATION, classes=("a", "b", "c"),
                           sampling_strategy="entropy", annotations_per_image=2)
    sure, unsure, middle = add_images(project, [0.3, 0.3, 0.3])
    version = deploy_model(project)
    _classify(version, sure, [0.98, 0.01, 0.01])
    _classify(version, unsure, [0.34, 0.33, 0.33])
    _classify(version, middle, [0.6, 0.3, 0.1])
    summary = queue_priorities_refresh(project=project)
    assert _priority(unsure) > _priority(middle) > _priority(sure)
    assert (summary.ranked, summary.updated_tasks) == (3, 6)


def test_margin_and_entropy_can_disagree_and_the_setting_decides():
    # [0.5, 0.5, 0] has the smallest margin; [0.4, 0.3, 0.3] the highest entropy.
    for strategy, expected_first in (("margin", 0), ("entropy", 1)):
        project = make_project(task_type=TaskType.CLASSIFICATION, classes=("a", "b", "c"),
                               sampling_strategy=strategy)
        images = add_images(project, [0.0, 0.0])
        version = deploy_model(project)
        _classify(version, images[0], [0.5, 0.5, 0.0])
        _classify(version, images[1], [0.4, 0.3, 0.3])
        queue_priorities_refresh(project=project)
        first = max(images, key=_priority)
        assert first == images[expected_first], strategy


def test_detection_uses_per_box_class_scores_and_the_aggregation_setting():
    project = make_project(sampling_strategy="least_confidence", detection_aggregation="max")
    confident, ambiguous, empty = add_images(project, [0.0, 0.0, 0.0])
    version = deploy_model(project)

    def boxes(*probs):
        return {"boxes": [{"x1": 0, "y1": 0, "x2": 5, "y2": 5, "label": 0, "score": max(p), "probs": list(p)}
                          for p in probs]}

    Prediction.objects.create(image=confident, model_version=version, payload=boxes((0.97, 0.01)))
    Prediction.objects.create(image=ambiguous, model_version=version, payload=boxes((0.97, 0.01), (0.7, 0.25)))
    Prediction.objects.create(image=empty, model_version=version, payload={"boxes": []})
    queue_priorities_refresh(project=project)
    # Nothing detected at all ranks first (likely missed objects), then the ambiguous box.
    assert _priority(empty) > _priority(ambiguous) > _priority(confident)


def test_validation_images_get_random_priorities_never_uncertainty():
    project = make_project(task_type=TaskType.CLASSIFICATION, classes=("a", "b"), sampling_strategy="entropy")
    train = add_images(project, [0.0] * 40)
    validation = add_images(project, [0.0] * 40, split=Split.VALIDATION)
    version = deploy_model(project)
    rng = np.random.default_rng(0)
    for image in train + validation:
        p = rng.uniform(0.5, 1.0)
        _classify(version, image, [p, 1 - p])
    summary = queue_priorities_refresh(project=project)
    assert (summary.ranked, summary.validation) == (40, 40)
    # Train images follow entropy exactly; validation images do not.
    def entropy_of(image):
        p = image.predictions.get().payload["probs"][0]
        return -(p * np.log(p) + (1 - p) * np.log(1 - p))
    by_priority = sorted(train, key=_priority, reverse=True)
    assert [entropy_of(i) for i in by_priority] == sorted((entropy_of(i) for i in train), reverse=True)
    val_by_priority = sorted(validation, key=_priority, reverse=True)
    assert [entropy_of(i) for i in val_by_priority] != sorted((entropy_of(i) for i in validation), reverse=True)
    assert not Task.objects.filter(image__in=validation, is_random_pick=True).exists()
    # Interleaved through the queue rather than parked at one end.
    top_half = sorted(train + validation, key=_priority, reverse=True)[:40]
    assert 8 <= sum(image.split == Split.VALIDATION for image in top_half) <= 32


def test_random_share_marks_that_share_of_the_pool_as_random_picks():
    project = make_project(task_type=TaskType.CLASSIFICATION, classes=("a", "b"), random_share=0.25)
    images = add_images(project, [0.0] * 20)
    version = deploy_model(project)
    for n, image in enumerate(images):
        _classify(version, image, [0.5 + n / 50, 0.5 - n / 50])
    queue_priorities_refresh(project=project)
    assert Task.objects.filter(project=project, is_random_pick=True).count() == 5


def test_diversity_spreads_the_first_picks_over_the_embedding_space():
    project = make_project(task_type=TaskType.CLASSIFICATION, classes=("a", "b"), sampling_strategy="diversity")
    images = add_images(project, [0.0] * 6)
    version = deploy_model(project)
    # Two tight clusters of three: the first two picks must come from different clusters.
    points = [[0, 0], [0.01, 0], [0, 0.01], [10, 10], [10.01, 10], [10, 10.01]]
    for image, point in zip(images, points):
        _classify(version, image, [0.5, 0.5], embedding=point)
    queue_priorities_refresh(project=project)
    first, second = sorted(range(6), key=lambda i: _priority(images[i]), reverse=True)[:2]
    assert (first < 3) != (second < 3)


def test_images_the_deployed_model_has_not_scored_keep_their_priority():
    project = make_project(task_type=TaskType.CLASSIFICATION, classes=("a", "b"))
    scored, unscored = add_images(project, [0.1, 0.42])
    version = deploy_model(project)
    _classify(version, scored, [0.5, 0.5])
    summary = queue_priorities_refresh(project=project)
    assert summary.unscored == 1 and _priority(unscored) == 0.42


def test_cold_start_without_a_model_orders_the_pool_at_random():
    project = make_project(sampling_strategy="entropy")
    images = add_images(project, [0.5] * 10)
    summary = queue_priorities_refresh(project=project)
    assert summary.ranked == 10
    assert len({_priority(image) for image in images}) == 10


def test_cold_start_diversity_reads_simple_features_from_the_image_files():
    from tests.factories import ImageFactory

    project = make_project(sampling_strategy="diversity")
    images = [ImageFactory(project=project, split=Split.TRAIN, original_name="x" * n) for n in range(1, 5)]
    Task.objects.bulk_create(Task(project=project, image=image, priority=0.5) for image in images)
    summary = queue_priorities_refresh(project=project)
    assert (summary.ranked, summary.unscored) == (4, 0)
    assert len({_priority(image) for image in images}) == 4


