"""Lead review: filters, decisions, and what counts as a label afterwards."""
import pytest

from core.models import Prediction, Split
from labeling.models import Annotation, Role, Task, TaskStatus
from tests.labeling.test_queue import add_images, as_user, deploy_model, make_project, member, next_task
from tests.labeling.test_submit import submit
from training.selectors import training_labels

pytestmark = pytest.mark.django_db


def annotate(api_client, project, user, body, key):
    client = as_user(api_client, user)
    work = next_task(client, project).json()
    body = {**body, "prediction_id": work["prediction"]["id"] if work["prediction"] else None}
    response = submit(client, work["task"]["id"], body, key=key)
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.fixture
def reviewed_project(api_client):
    """Three annotations by two people: a correction of a car pre-label into a tree, an
    accepted car, and a flag."""
    project = make_project()
    images = add_images(project, [0.9, 0.8, 0.7])
    version = deploy_model(project)
    car, tree = (project.label_classes.get(name=n).pk for n in ("car", "tree"))
    for image in images:
        Prediction.objects.create(image=image, model_version=version, payload={"boxes": [
            {"x1": 1, "y1": 1, "x2": 20, "y2": 20, "label": car, "score": 0.8, "probs": [0.8, 0.2]}]})
    ann, bob = member(project, username="ann"), member(project, username="bob")
    box = {"x1": 1, "y1": 1, "x2": 20, "y2": 20, "label": tree}
    ids = {
        "correct": annotate(api_client, project, ann, {"kind": "correct", "payload": {"boxes": [box]}}, "a1")["id"],
        "accept": annotate(api_client, project, bob, {"kind": "accept"}, "b1")["id"],
        "flag": annotate(api_client, project, ann, {"kind": "flag", "flag_reason": "dark"}, "a2")["id"],
    }
    lead = member(project, role=Role.LEAD)
    return project, lead, ids, car, tree


def listing(api_client, project, lead, query=""):
    response = as_user(api_client, lead).get(f"/api/projects/{project.pk}/annotations/{query}")
    assert response.status_code == 200, response.json()
    return response.json()


def test_list_filters_by_author_label_kind_status_and_disagreement(api_client, reviewed_project):
    project, lead, ids, car, tree = reviewed_project
    assert listing(api_client, project, lead)["count"] == 3
    assert {a["id"] for a in listing(api_client, project, lead, "?author=bob")["results"]} == {ids["accept"]}
    assert {a["id"] for a in listing(api_client, project, lead, f"?label={tree}")["results"]} == {ids["correct"]}
    assert {a["id"] for a in listing(api_client, project, lead, f"?label={car}")["results"]} == {ids["accept"]}
    flagged = listing(api_client, project, lead, "?kind=flag&review_status=pending")["results"]
    assert [a["id"] for a in flagged] == [ids["flag"]] and flagged[0]["flag_reason"] == "dark"
    disagreeing = listing(api_client, project, lead, "?disagreement=1")["results"]
    assert [a["id"] for a in disagreeing] == [ids["correct"]]
    item = disagreeing[0]
    assert item["author"] == "ann" and item["image"]["url"].startswith(f"/media/projects/{project.pk}/")
    assert item["prediction"]["payload"]["boxes"][0]["label"] == car
    assert item["review_status"] == "pending" and item["reviewed_by"] is None


def test_annotators_cannot_review(api_client, reviewed_project):
    project, _, ids, _, _ = reviewed_project
    annotator = member(project)
    client = as_user(api_client, annotator)
    assert client.get(f"/api/projects/{project.pk}/annotations/").status_code == 403
    assert client.post(f"/api/annotations/{ids['correct']}/review/", {"decision": "reject"}).status_code == 403


def test_rejecting_a_label_reopens_the_image_for_another_annotator_and_it_stops_counting(
    api_client, reviewed_project
):
    project, lead, ids, _, _ = reviewed_project
    rejected = Annotation.objects.get(pk=ids["correct"])
    assert training_labels(project).filter(pk=rejected.pk).exists()
    response = as_user(api_client, lead).post(
        f"/api/annotations/{rejected.pk}/review/", {"decision": "reject", "comment": "that is a car"}, format="json")
    assert response.status_code == 200
    assert (response.json()["review_status"], response.json()["review_comment"]) == ("rejected", "that is a car")
    assert not training_labels(project).filter(pk=rejected.pk).exists()
    reopened = Task.objects.get(image=rejected.image, status=TaskStatus.OPEN)
    # Back in the queue for anyone, its author too (with one annotator nobody else could
    # redo it); the rejected label no longer counts as theirs.
    assert next_task(as_user(api_client, member(project)), project).json()["task"]["id"] == reopened.pk
    Task.objects.filter(pk=reopened.pk).update(lease_holder=None, lease_expires_at=None)
    assert next_task(as_user(api_client, rejected.author), project).json()["task"]["id"] == reopened.pk


def test_a_second_decision_is_refused(api_client, reviewed_project):
    project, lead, ids, _, _ = reviewed_project
    client = as_user(api_client, lead)
    assert client.post(f"/api/annotations/{ids['accept']}/review/", {"decision": "accept"}).status_code == 200
    response = client.post(f"/api/annotations/{ids['accept']}/review/", {"decision": "reject"})
    assert response.status_code == 409 and "already reviewed" in response.json()["detail"]


def test_a_flagged_image_leaves_training_until_a_lead_decides(api_client, reviewed_project):
    project, lead, ids, _, tree = reviewed_project
    flag = Annotation.objects.get(pk=ids["flag"])
    # Someone else labels the flagged image through an overlap slot: still not a label.
    Annotation.objects.create(project=project, image=flag.image, kind="correct", payload={"labels": []})
    assert not training_labels(project).filter(image=flag.image).exists()

    client = as_user(api_client, lead)
    assert client.post(f"/api/annotations/{flag.pk}/review/", {"decision": "reject"}).status_code == 200
    assert training_labels(project).filter(image=flag.image).exists()
    assert Task.objects.filter(image=flag.image, status=TaskStatus.OPEN).count() == 1


def test_accepting_a_flag_confirms_the_image_unclear(api_client, reviewed_project):
    project, lead, ids, _, _ = reviewed_project
    flag = Annotation.objects.get(pk=ids["flag"])
    client = as_user(api_client, lead)
    assert client.post(f"/api/annotations/{flag.pk}/review/", {"decision": "accept"}).status_code == 200
    flag.image.refresh_from_db()
    assert flag.image.split == Split.UNASSIGNED
    assert not Task.objects.filter(image=flag.image, status=TaskStatus.OPEN).exists()
    assert client.get(f"/api/projects/{project.pk}/stats/").json()["flagged"] == 0


def test_stats_count_labels_and_pending_flags(api_client, reviewed_project):
    project, lead, _, _, _ = reviewed_project
    body = as_user(api_client, lead).get(f"/api/projects/{project.pk}/stats/").json()
    assert (body["labeled_images"], body["flagged"], body["done_tasks"]) == (2, 1, 2)
