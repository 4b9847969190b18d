"""Submitting work: outcomes, idempotent retries, late submits kept as extra opinions."""
from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import Prediction, TaskType
from labeling.models import Annotation, Task, TaskStatus
from tests.labeling.test_queue import add_images, as_user, deploy_model, make_project, member, next_task

pytestmark = pytest.mark.django_db


def submit(client, task_id, body, key="key-1"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(f"/api/tasks/{task_id}/annotations/", body, format="json", **headers)


@pytest.fixture
def leased(api_client):
    """A detection project with one leased task: (client, user, project, task_id, image)."""
    project = make_project()
    (image,) = add_images(project, [0.9])
    user = member(project)
    client = as_user(api_client, user)
    task_id = next_task(client, project).json()["task"]["id"]
    return client, user, project, task_id, image


def test_correction_is_stored_and_closes_the_task(leased):
    client, user, project, task_id, _ = leased
    car = project.label_classes.get(name="car").pk
    box = {"x1": 5, "y1": 5, "x2": 50, "y2": 40, "label": car}
    response = submit(client, task_id, {"kind": "correct", "payload": {"boxes": [box]}, "time_spent_ms": 1200})
    assert response.status_code == 201
    body = response.json()
    assert (body["task_id"], body["kind"], body["state"]) == (task_id, "correct", "submitted")
    assert body["payload"]["boxes"][0]["label"] == car and body["time_spent_ms"] == 1200
    task = Task.objects.get(pk=task_id)
    assert (task.status, task.completed_by, task.lease_holder) == (TaskStatus.DONE, user, None)


@pytest.mark.parametrize("with_prediction", [True, False], ids=["from-a-pre-label", "from-scratch"])
def test_a_correction_is_checked_against_the_projects_classes_on_either_path(leased, with_prediction):
    """With a prediction the class ids come in its statement (PostgreSQL), without one on
    their own: a class of another project is refused either way, one of this project stored."""
    client, _, project, task_id, image = leased
    boat = make_project(classes=("boat",)).label_classes.get().pk
    box = {"x1": 5, "y1": 5, "x2": 50, "y2": 40, "label": boat}
    body = {"kind": "correct", "payload": {"boxes": [box]}}
    if with_prediction:
        body["prediction_id"] = Prediction.objects.create(image=image, model_version=deploy_model(project),
                                                          payload={"boxes": []}).pk
    response = submit(client, task_id, body)
    assert response.status_code == 400 and f"boxes[0]: unknown class id {boat}" in response.json()["detail"]
    box["label"] = project.label_classes.get(name="tree").pk
    assert submit(client, task_id, body, key="key-2").status_code == 201
    assert Annotation.objects.get(task_id=task_id).payload["boxes"][0]["label"] == box["label"]


def test_retried_submit_returns_the_first_result_and_creates_nothing(leased):
    client, _, project, task_id, _ = leased
    body = {"kind": "correct", "payload": {"boxes": []}, "empty": True}
    first = submit(client, task_id, body, key="same")
    again = submit(client, task_id, body, key="same")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Annotation.objects.filter(task_id=task_id).count() == 1


def test_missing_idempotency_key_is_a_400(leased):
    client, _, _, task_id, _ = leased
    response = submit(client, task_id, {"kind": "skip"}, key=None)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["detail"]
    assert not Annotation.objects.exists()


def test_reusing_a_key_for_another_task_is_refused(leased):
    client, _, project, task_id, _ = leased
    add_images(project, [0.5])
    submit(client, task_id, {"kind": "skip"}, key="once")
    other = next_task(client, project).json()["task"]["id"]
    response = submit(client, other, {"kind": "skip"}, key="once")
    assert response.status_code == 409 and str(task_id) in response.json()["detail"]


def test_invalid_payload_is_a_400_with_the_validators_message(leased):
    client, _, _, task_id, _ = leased
    response = submit(client, task_id, {"kind": "correct", "payload": {"boxes": [
        {"x1": 5, "y1": 5, "x2": 500, "y2": 40, "label": -1}]}})
    assert response.status_code == 400
    assert "boxes[0]: unknown class id -1" in response.json()["detail"]
    assert Task.objects.get(pk=task_id).status == TaskStatus.OPEN


def test_accept_copies_the_boxes_of_the_prelabel_without_scores(leased):
    client, _, project, task_id, image = leased
    version = deploy_model(project)
    car = project.label_classes.get(name="car").pk
    prediction = Prediction.objects.create(image=image, model_version=version, payload={"boxes": [
        {"x1": 1, "y1": 2, "x2": 100.4, "y2": 40, "label": car, "score": 0.7, "probs": [0.7, 0.1]}]})
    response = submit(client, task_id, {"kind": "accept", "prediction_id": prediction.pk})
    assert response.status_code == 201
    assert response.json()["payload"] == {"boxes": [{"x1": 1, "y1": 2, "x2": 100, "y2": 40, "label": car}]}
    assert Annotation.objects.get().prediction == prediction


def test_accept_of_a_classification_takes_the_top_class(api_client):
    project = make_project(task_type=TaskType.CLASSIFICATION)
    (image,) = add_images(project, [0.9])
    version = deploy_model(project)
    tree = project.label_classes.get(name="tree").pk
    Prediction.objects.create(image=image, model_version=version, payload={"labels": [tree], "probs": [0.3, 0.7]})
    client = as_user(api_client, member(project))
    task_id = next_task(client, project).json()["task"]["id"]
    response = submit(client, task_id, {"kind": "accept"})
    assert response.status_code == 201 and response.json()["payload"] == {"labels": [tree]}


def test_accept_without_a_prelabel_is_a_400(leased):
    client, _, _, task_id, _ = leased
    response = submit(client, task_id, {"kind": "accept"})
    assert response.status_code == 400 and "no pre-label" in response.json()["detail"]


def test_flag_needs_a_reason_and_marks_the_task_flagged(leased):
    client, _, _, task_id, _ = leased
    assert submit(client, task_id, {"kind": "flag"}, key="a").status_code == 400
    response = submit(client, task_id, {"kind": "flag", "flag_reason": "too blurry"}, key="b")
    assert response.status_code == 201 and response.json()["flag_reason"] == "too blurry"
    assert Task.objects.get(pk=task_id).status == TaskStatus.FLAGGED


def test_skip_closes_the_task_and_puts_the_image_back_for_someone_else(leased):
    client, _, project, task_id, image = leased
    assert submit(client, task_id, {"kind": "skip"}).status_code == 201
    assert Task.objects.get(pk=task_id).status == TaskStatus.SKIPPED
    fresh = Task.objects.get(image=image, status=TaskStatus.OPEN)
    assert fresh.priority == 0.9


def test_late_submit_after_takeover_is_a_409_and_the_work_is_kept(leased, api_client):
    client, user, project, task_id, _ = leased
    Task.objects.filter(pk=task_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    other = member(project)
    from rest_framework.test import APIClient

    other_client = APIClient()
    other_client.force_authenticate(other)
    assert next_task(other_client, project).json()["task"]["id"] == task_id

    response = submit(client, task_id, {"kind": "correct", "payload": {"boxes": []}, "empty": True}, key="late")
    assert response.status_code == 409
    body = response.json()
    assert body["state"] == "extra_opinion" and "extra opinion" in body["detail"]
    kept = Annotation.objects.get(pk=body["annotation_id"])
    assert (kept.author, kept.state, kept.task_id) == (user, "extra_opinion", task_id)
    task = Task.objects.get(pk=task_id)
    assert (task.status, task.lease_holder) == (TaskStatus.OPEN, other)
    # A retry gets the same answer and stores nothing new.
    again = submit(client, task_id, {"kind": "correct", "payload": {"boxes": []}, "empty": True}, key="late")
    assert again.status_code == 409 and again.json() == body
    assert Annotation.objects.count() == 1


def test_late_submit_after_someone_else_completed_is_kept_as_extra_opinion(leased, api_client):
    client, user, project, task_id, _ = leased
    Task.objects.filter(pk=task_id).update(status=TaskStatus.DONE, completed_by=member(project))
    response = submit(client, task_id, {"kind": "skip"})
    assert response.status_code == 409
    assert Annotation.objects.get().state == "extra_opinion"


def test_submit_after_lease_expired_with_no_taker_is_accepted_normally(leased):
    client, user, _, task_id, _ = leased
    Task.objects.filter(pk=task_id).update(lease_expires_at=timezone.now() - timedelta(minutes=5))
    response = submit(client, task_id, {"kind": "correct", "payload": {"boxes": []}, "empty": True})
    assert response.status_code == 201 and response.json()["state"] == "submitted"
    assert Task.objects.get(pk=task_id).completed_by == user


def test_a_second_submit_with_a_new_key_is_kept_beside_the_first(leased):
    client, _, _, task_id, _ = leased
    assert submit(client, task_id, {"kind": "correct", "payload": {"boxes": []}, "empty": True}, key="one").status_code == 201
    response = submit(client, task_id, {"kind": "skip"}, key="two")
    assert response.status_code == 409 and "already completed" in response.json()["detail"]
    assert list(Annotation.objects.order_by("id").values_list("state", flat=True)) == ["submitted", "extra_opinion"]
    assert Task.objects.get(pk=task_id).status == TaskStatus.DONE


def test_accepting_an_empty_prelabel_needs_the_explicit_no_objects_flag(leased):
    client, _, project, task_id, image = leased
    prediction = Prediction.objects.create(image=image, model_version=deploy_model(project), payload={"boxes": []})
    response = submit(client, task_id, {"kind": "accept", "prediction_id": prediction.pk}, key="plain")
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "has no boxes" in detail and '"empty": true' in detail
    assert not Annotation.objects.exists() and Task.objects.get(pk=task_id).status == TaskStatus.OPEN
    response = submit(client, task_id, {"kind": "accept", "prediction_id": prediction.pk, "empty": True},
                      key="explicit")
    assert response.status_code == 201 and response.json()["payload"] == {"boxes": []}
    assert Task.objects.get(pk=task_id).status == TaskStatus.DONE


def test_a_correction_without_boxes_needs_the_flag_and_the_flag_refuses_boxes(leased):
    client, _, project, task_id, _ = leased
    car = project.label_classes.get(name="car").pk
    plain = submit(client, task_id, {"kind": "correct", "payload": {"boxes": []}}, key="a")
    assert plain.status_code == 400 and '"empty": true' in plain.json()["detail"]
    box = {"x1": 5, "y1": 5, "x2": 50, "y2": 40, "label": car}
    both = submit(client, task_id, {"kind": "correct", "payload": {"boxes": [box]}, "empty": True}, key="b")
    assert both.status_code == 400 and "but the payload has 1 box" in both.json()["detail"]
    assert not Annotation.objects.exists()
    # "empty" alone is the whole label.
    response = submit(client, task_id, {"kind": "correct", "empty": True}, key="c")
    assert response.status_code == 201 and response.json()["payload"] == {"boxes": []}


def test_a_classification_label_without_a_class_is_refused(api_client):
    project = make_project(task_type=TaskType.CLASSIFICATION)
    (image,) = add_images(project, [0.9])
    client = as_user(api_client, member(project))
    task_id = next_task(client, project).json()["task"]["id"]
    response = submit(client, task_id, {"kind": "correct", "payload": {"labels": []}}, key="a")
    assert response.status_code == 400 and "has no class" in response.json()["detail"]
    prediction = Prediction.objects.create(image=image, model_version=deploy_model(project), payload={"labels": []})
    response = submit(client, task_id, {"kind": "accept", "prediction_id": prediction.pk}, key="b")
    assert response.status_code == 400 and "the pre-label" in response.json()["detail"]
    response = submit(client, task_id, {"kind": "correct", "payload": {"labels": []}, "empty": True}, key="c")
    assert response.status_code == 400 and "classification label needs a class" in response.json()["detail"]
    assert not Annotation.objects.exists() and Task.objects.get(pk=task_id).status == TaskStatus.OPEN
    tree = project.label_classes.get(name="tree").pk
    assert submit(client, task_id, {"kind": "correct", "payload": {"labels": [tree]}}, key="d").status_code == 201


def test_empty_is_refused_on_a_skip(leased):
    client, _, _, task_id, _ = leased
    response = submit(client, task_id, {"kind": "skip", "empty": True})
    assert response.status_code == 400 and "a skip carries no label" in response.json()["detail"]
