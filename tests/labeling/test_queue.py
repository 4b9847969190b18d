"""Next-task API: queue order, leases, prefetch, overlap, heartbeat, release, stats."""
import hashlib
import itertools
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import Backend, Image, ModelVersion, Prediction, Split, TaskType
from labeling.models import Role, Task, TaskStatus
from labeling.queue.services import task_claim_next
from tests.factories import LabelClassFactory, MembershipFactory, ProjectFactory
from vision_project.queries import prepared_sql

pytestmark = pytest.mark.django_db


# --- helpers shared by the queue, submit and review tests -----------------------------

_user_numbers = itertools.count()


def make_project(task_type=TaskType.DETECTION, classes=("car", "tree"), **settings):
    project = ProjectFactory(task_type=task_type, **settings)
    for name in classes:
        LabelClassFactory(project=project, name=name)
    return project


def make_user(username=None):
    # No password: hashing one costs a second of CPU per user here.
    return get_user_model().objects.create(username=username or f"annotator{next(_user_numbers)}")


def member(project, role=Role.ANNOTATOR, username=None):
    user = make_user(username)
    MembershipFactory(project=project, user=user, role=role)
    return user


def add_images(project, priorities, split=Split.TRAIN, width=100, height=80):
    """One image per priority with `annotations_per_image` open tasks each (no stored file:
    the queue never reads it). Returns the images in the given order."""
    start = Image.objects.count()
    images = Image.objects.bulk_create(
        Image(project=project, file=f"projects/{project.pk}/images/{start + n}.png",
              original_name=f"img{start + n}.png", sha256=hashlib.sha256(f"{project.pk}-{start + n}".encode()).hexdigest(),
              width=width, height=height, split=split)
        for n in range(len(priorities))
    )
    Task.objects.bulk_create(
        Task(project=project, image=image, slot=slot, priority=priority)
        for image, priority in zip(images, priorities)
        for slot in range(project.annotations_per_image)
    )
    return images


def deploy_model(project, number=1):
    return ModelVersion.objects.create(
        project=project, number=number, backend=Backend.YOLO, is_deployed=True,
        class_ids=list(project.label_classes.values_list("id", flat=True)),
    )


def next_task(client, project, exclude=()):
    query = f"?exclude={','.join(map(str, exclude))}" if exclude else ""
    return client.get(f"/api/projects/{project.pk}/tasks/next/{query}")


def as_user(api_client, user):
    api_client.force_authenticate(user)
    return api_client


# --- tests ----------------------------------------------------------------------------


def test_next_returns_the_highest_priority_task_with_image_prelabel_and_classes(api_client):
    project = make_project()
    _low, high = add_images(project, [0.2, 0.9])
    version = deploy_model(project)
    car = project.label_classes.get(name="car")
    prediction = Prediction.objects.create(
        image=high, model_version=version,
        payload={"boxes": [{"x1": 1, "y1": 2, "x2": 30, "y2": 40, "label": car.pk, "score": 0.6,
                            "probs": [0.6, 0.3]}]},
    )
    response = next_task(as_user(api_client, member(project)), project)
    assert response.status_code == 200
    body = response.json()
    assert body["task"]["id"] == high.tasks.get().pk
    assert body["image"]["url"] == f"/media/{high.file.name}"
    assert body["image"]["display_url"] == body["image"]["url"]
    assert (body["image"]["width"], body["image"]["height"], body["image"]["split"]) == (100, 80, "train")
    assert body["prediction"]["id"] == prediction.pk
    assert body["prediction"]["model_version"] == 1
    assert body["prediction"]["payload"]["boxes"][0]["probs"] == [0.6, 0.3]
    assert body["prediction"]["class_ids"] == version.class_ids
    assert [c["name"] for c in body["label_classes"]] == ["car", "tree"]
    assert set(body["label_classes"][0]) >= {"id", "name", "color", "hotkey", "parent"}
    assert body["task_type"] == "detection" and body["project_id"] == project.pk
    task = Task.objects.get(pk=body["task"]["id"])
    assert task.lease_expires_at > timezone.now() + timedelta(seconds=project.lease_ttl_seconds - 5)


def test_the_taxonomy_is_the_same_with_a_pre_label_and_without(api_client):
    """The taxonomy rides in the pre-label's statement (PostgreSQL) or comes on its own: the
    editor gets the same classes, fields and order either way."""
    project = make_project(classes=())
    vehicle = LabelClassFactory(project=project, name="vehicle", order=2, color="#123456", hotkey="v")
    LabelClassFactory(project=project, name="car", order=1, parent=vehicle, hotkey="c")
    LabelClassFactory(project=project, name="bus", order=1, parent=vehicle)
    with_prelabel, without = add_images(project, [0.9, 0.5])
    Prediction.objects.create(image=with_prelabel, model_version=deploy_model(project), payload={"boxes": []})
    client = as_user(api_client, member(project))
    first = next_task(client, project).json()
    second = next_task(client, project, exclude=[first["task"]["id"]]).json()
    assert (first["image"]["id"], first["prediction"] is None) == (with_prelabel.pk, False)
    assert (second["image"]["id"], second["prediction"]) == (without.pk, None)
    expected = [{"id": c.pk, "name": c.name, "color": c.color, "hotkey": c.hotkey, "parent": c.parent_id}
                for c in project.label_classes.order_by("order", "id")]
    assert [c["name"] for c in expected] == ["car", "bus", "vehicle"]
    assert first["label_classes"] == expected == second["label_classes"]


def test_callers_own_lease_comes_back_first(api_client):
    project = make_project()
    add_images(project, [0.9, 0.5])
    user = member(project)
    client = as_user(api_client, user)
    first = next_task(client, project).json()["task"]["id"]
    assert next_task(client, project).json()["task"]["id"] == first
    # Nothing else was leased on the way (PostgreSQL asks for the leases and the claim at once).
    assert list(Task.objects.filter(lease_holder=user).values_list("id", flat=True)) == [first]


def test_prefetch_with_exclude_leases_a_second_task_and_a_third_is_refused(api_client):
    project = make_project()
    add_images(project, [0.9, 0.5, 0.1])
    user = member(project)
    client = as_user(api_client, user)
    current = next_task(client, project).json()["task"]["id"]
    prefetched = next_task(client, project, exclude=[current]).json()["task"]["id"]
    assert prefetched != current
    third = next_task(client, project, exclude=[current, prefetched])
    assert third.status_code == 409
    assert sorted(third.json()["task_ids"]) == sorted([current, prefetched])
    assert sorted(Task.objects.filter(lease_holder=user).values_list("id", flat=True)) == sorted([current, prefetched])
    # The UI asking for "the other one" gets the prefetched task back, not a new lease.
    assert next_task(client, project, exclude=[current]).json()["task"]["id"] == prefetched


def test_two_annotators_get_different_tasks_and_204_when_nothing_is_left(api_client):
    project = make_project()
    add_images(project, [0.9])
    one, two = member(project), member(project)
    assert next_task(as_user(api_client, one), project).status_code == 200
    response = next_task(as_user(api_client, two), project)
    assert response.status_code == 204


def test_expired_lease_returns_to_the_pool(api_client):
    project = make_project()
    add_images(project, [0.9])
    one, two = member(project), member(project)
    task_id = next_task(as_user(api_client, one), project).json()["task"]["id"]
    Task.objects.filter(pk=task_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    response = next_task(as_user(api_client, two), project)
    assert response.json()["task"]["id"] == task_id
    assert Task.objects.get(pk=task_id).lease_holder == two


def test_overlap_gives_each_image_to_n_different_annotators_never_twice_to_one(api_client):
    project = make_project(annotations_per_image=2)
    add_images(project, [0.9, 0.1])
    one, two = member(project), member(project)
    a = next_task(as_user(api_client, one), project).json()
    b = next_task(as_user(api_client, one), project, exclude=[a["task"]["id"]]).json()
    assert a["image"]["id"] != b["image"]["id"], "one annotator held two slots of one image"
    c = next_task(as_user(api_client, two), project).json()
    assert c["image"]["id"] == a["image"]["id"] and c["task"]["slot"] != a["task"]["slot"]


def submit_as(client, task_id, body, key):
    response = client.post(f"/api/tasks/{task_id}/annotations/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 201, response.json()
    return response.json()


def test_an_annotator_is_not_served_an_image_they_already_labeled(api_client):
    project = make_project(annotations_per_image=2)
    (image,) = add_images(project, [0.9])
    client = as_user(api_client, member(project))
    task_id = next_task(client, project).json()["task"]["id"]
    submit_as(client, task_id, {"kind": "correct", "payload": {"boxes": []}, "empty": True}, "k1")
    # The other slot is open, but it is for someone else.
    assert next_task(client, project).status_code == 204
    assert next_task(as_user(api_client, member(project)), project).json()["image"]["id"] == image.pk


def test_a_skipped_image_comes_back_to_a_lone_annotator_once_nothing_else_is_left(api_client):
    project = make_project()
    skipped, other = add_images(project, [0.9, 0.5])
    client = as_user(api_client, member(project))
    first = next_task(client, project).json()
    assert first["image"]["id"] == skipped.pk
    submit_as(client, first["task"]["id"], {"kind": "skip"}, "k1")
    # The fresh task keeps the skipped image's place, but the other image comes first.
    second = next_task(client, project).json()
    assert second["image"]["id"] == other.pk
    submit_as(client, second["task"]["id"], {"kind": "correct", "payload": {"boxes": []}, "empty": True}, "k2")
    again = next_task(client, project).json()
    assert again["image"]["id"] == skipped.pk and again["task"]["id"] != first["task"]["id"]


def test_a_rejected_label_sends_the_image_back_to_its_author_in_queue_order(api_client):
    from labeling.review import REJECT, annotation_review

    project = make_project()
    rejected, later = add_images(project, [0.9, 0.5])
    client = as_user(api_client, member(project))
    task_id = next_task(client, project).json()["task"]["id"]
    label = submit_as(client, task_id, {"kind": "correct", "payload": {"boxes": []}, "empty": True}, "k1")
    annotation_review(annotation_id=label["id"], reviewer=member(project, role=Role.LEAD), decision=REJECT)
    # Back in its own place, before the lower-priority image, to the person who labeled it.
    assert next_task(client, project).json()["image"]["id"] == rejected.pk


def test_with_overlap_a_skip_does_not_let_one_person_give_two_of_the_labels(api_client):
    project = make_project(annotations_per_image=2)
    (image,) = add_images(project, [0.9])
    one, two = member(project), member(project)
    client_one = as_user(api_client, one)
    task_id = next_task(client_one, project).json()["task"]["id"]
    submit_as(client_one, task_id, {"kind": "skip"}, "k1")
    # Nothing else is left: the skipped image comes back, one slot of it.
    back = next_task(client_one, project).json()
    assert back["image"]["id"] == image.pk
    submit_as(client_one, back["task"]["id"], {"kind": "correct", "payload": {"boxes": []}, "empty": True}, "k2")
    assert next_task(client_one, project).status_code == 204
    from rest_framework.test import APIClient

    client_two = APIClient()
    client_two.force_authenticate(two)
    assert next_task(client_two, project).json()["image"]["id"] == image.pk


def test_heartbeat_renews_the_holders_lease_and_409s_for_anyone_else(api_client):
    project = make_project(lease_ttl_seconds=60)
    add_images(project, [0.9])
    one, two = member(project), member(project)
    task_id = next_task(as_user(api_client, one), project).json()["task"]["id"]
    Task.objects.filter(pk=task_id).update(lease_expires_at=timezone.now() + timedelta(seconds=5))
    response = as_user(api_client, one).post(f"/api/tasks/{task_id}/heartbeat/")
    assert response.status_code == 200
    assert Task.objects.get(pk=task_id).lease_expires_at > timezone.now() + timedelta(seconds=50)
    response = as_user(api_client, two).post(f"/api/tasks/{task_id}/heartbeat/")
    assert response.status_code == 409 and "no longer leased to you" in response.json()["detail"]


def test_heartbeat_after_takeover_is_refused(api_client):
    project = make_project()
    add_images(project, [0.9])
    one, two = member(project), member(project)
    task_id = next_task(as_user(api_client, one), project).json()["task"]["id"]
    Task.objects.filter(pk=task_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    next_task(as_user(api_client, two), project)
    assert as_user(api_client, one).post(f"/api/tasks/{task_id}/heartbeat/").status_code == 409


def test_release_puts_the_task_back(api_client):
    project = make_project()
    add_images(project, [0.9])
    one, two = member(project), member(project)
    task_id = next_task(as_user(api_client, one), project).json()["task"]["id"]
    assert as_user(api_client, one).post(f"/api/tasks/{task_id}/release/").status_code == 204
    assert next_task(as_user(api_client, two), project).json()["task"]["id"] == task_id
    # Releasing someone else's lease is refused (without naming them) and changes nothing.
    refused = as_user(api_client, one).post(f"/api/tasks/{task_id}/release/")
    assert refused.status_code == 409 and "someone else" in refused.json()["detail"]
    assert Task.objects.get(pk=task_id).lease_holder == two
    # Releasing twice is fine: the second finds nothing to release.
    assert as_user(api_client, two).post(f"/api/tasks/{task_id}/release/").status_code == 204
    assert as_user(api_client, two).post(f"/api/tasks/{task_id}/release/").status_code == 204


def test_strangers_get_404_on_every_queue_endpoint(api_client):
    project = make_project()
    add_images(project, [0.9])
    task = Task.objects.get(project=project)
    as_user(api_client, make_user())
    assert next_task(api_client, project).status_code == 404
    assert api_client.get(f"/api/projects/{project.pk}/stats/").status_code == 404
    missing_task = Task.objects.order_by("-pk").first().pk + 1000
    for action in ("heartbeat", "release", "annotations"):
        stranger = api_client.post(f"/api/tasks/{task.pk}/{action}/", {}, format="json")
        missing = api_client.post(f"/api/tasks/{missing_task}/{action}/", {}, format="json")
        # The same answer as for a task that does not exist: nothing disclosed.
        assert stranger.status_code == missing.status_code == 404
        assert stranger.json() == missing.json() == {"detail": "No such task."}
    assert api_client.get(f"/api/projects/{project.pk + 1000}/stats/").json() == {"detail": "No such project."}


def test_next_and_submit_load_the_callers_role_with_the_object(api_client, django_assert_num_queries):
    project = make_project()
    [image] = add_images(project, [0.9])
    Prediction.objects.create(image=image, model_version=deploy_model(project), payload={"boxes": []})
    as_user(api_client, member(project))
    # project with the caller's role, own leases and the claim returning the task (PostgreSQL:
    # one statement), the pre-label with its image and (PostgreSQL) the classes, elsewhere apart
    with django_assert_num_queries(3 if connection.vendor == "postgresql" else 5) as next_queries:
        body = next_task(api_client, project).json()
    task_id = body["task"]["id"]
    assert body["prediction"]["payload"] == {"boxes": []} and body["image"]["id"] == image.pk
    with CaptureQueriesContext(connection) as submit_queries:
        response = api_client.post(f"/api/tasks/{task_id}/annotations/", {"kind": "correct", "payload": {"boxes": []}, "empty": True},
                                   format="json", HTTP_IDEMPOTENCY_KEY="budget")
    assert response.status_code == 201
    for captured, table in ((next_queries, "labeling_project"), (submit_queries, "labeling_task")):
        # The hot paths' statements are prepared per connection: read the text behind EXECUTE.
        statements = [prepared_sql(connection, q["sql"]) for q in captured.captured_queries]
        role_lookups = [sql for sql in statements if "labeling_membership" in sql]
        assert len(role_lookups) == 1
        assert f'FROM "{table}"' in role_lookups[0]


def test_bad_exclude_is_a_400_naming_the_parameter(api_client):
    project = make_project()
    response = next_task(as_user(api_client, member(project)), project, exclude=["x"])
    assert response.status_code == 400 and "exclude" in response.json()["detail"]


def test_done_tasks_leave_the_queue(api_client):
    project = make_project()
    add_images(project, [0.9, 0.5])
    Task.objects.filter(priority=0.9).update(status=TaskStatus.DONE)
    user = member(project)
    assert task_claim_next(project=project, user=user).priority == 0.5


def test_stats_count_images_tasks_leases_and_deployed_version(api_client):
    project = make_project()
    add_images(project, [0.9, 0.5, 0.1])
    Task.objects.filter(priority=0.1).update(status=TaskStatus.DONE)
    version = deploy_model(project)
    client = as_user(api_client, member(project))
    next_task(client, project)
    body = client.get(f"/api/projects/{project.pk}/stats/").json()
    assert body["images"] == 3
    assert (body["open_tasks"], body["leased_tasks"], body["done_tasks"]) == (1, 1, 1)
    assert body["labeled_images"] == 0 and body["flagged"] == 0
    assert body["deployed_version"]["id"] == version.pk and body["deployed_version"]["number"] == 1


def test_stats_count_the_callers_labels_of_today(api_client):
    project = make_project()
    add_images(project, [0.9, 0.5, 0.1])
    user = member(project)
    client = as_user(api_client, user)
    first = next_task(client, project).json()["task"]["id"]
    submit_as(client, first, {"kind": "correct", "payload": {"boxes": []}, "empty": True}, "k1")
    second = next_task(client, project).json()["task"]["id"]
    submit_as(client, second, {"kind": "skip"}, "k2")
    body = client.get(f"/api/projects/{project.pk}/stats/").json()
    assert body["mine_today"] == 1  # the skip is no label
    other = as_user(api_client, member(project)).get(f"/api/projects/{project.pk}/stats/").json()
    assert other["mine_today"] == 0


def test_a_rejected_image_comes_back_with_the_leads_comment(api_client):
    from labeling.review import REJECT, annotation_review

    project = make_project()
    (image,) = add_images(project, [0.9])
    author = member(project)
    client = as_user(api_client, author)
    work = next_task(client, project).json()
    assert work["rejected"] is None
    label = submit_as(client, work["task"]["id"], {"kind": "correct", "payload": {"boxes": []}, "empty": True}, "k1")
    lead = member(project, role=Role.LEAD, username="lea")
    annotation_review(annotation_id=label["id"], reviewer=lead, decision=REJECT, comment="there is a car")
    back = next_task(client, project).json()
    assert back["image"]["id"] == image.pk
    assert back["rejected"]["comment"] == "there is a car" and back["rejected"]["reviewed_by"] == "lea"
    assert back["rejected"]["annotation_id"] == label["id"]
    # Someone else looking at the image sees no one's rejection.
    Task.objects.filter(pk=back["task"]["id"]).update(lease_holder=None, lease_expires_at=None)
    assert next_task(as_user(api_client, member(project)), project).json()["rejected"] is None
