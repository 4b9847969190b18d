"""Discover: clusters of the unlabeled pool, and a grid accept that writes N labels in one
request through the ordinary submit, idempotent on retry."""
import numpy as np
import pytest

from core.models import Backend, LabelClass, ModelVersion, Split, TaskType
from labeling.models import Annotation, AnnotationKind, Role, TaskStatus
from tests.labeling.test_queue import add_images, as_user, make_project, member
from tests.training.test_oneshot import proposed
from tests.training.test_queue_model_live import DIM, eager_tasks, embed  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def blob_project(sizes=(20, 12, 8), validation=4):
    project = make_project(TaskType.CLASSIFICATION, classes=("known",), queue_model_every=10)
    rng = np.random.default_rng(0)
    groups, vectors, images = [], [], []
    for n, size in enumerate(sizes):
        made = add_images(project, [0.5] * size)
        images += made
        groups.append([i.pk for i in made])
        vectors += [np.eye(1, DIM, n)[0] + 0.05 * rng.standard_normal(DIM) for _ in made]
    held_out = add_images(project, [0.5] * validation, split=Split.VALIDATION)
    vectors += [np.eye(1, DIM, 0)[0] + 0.05 * rng.standard_normal(DIM) for _ in held_out]
    embed(project, images + held_out, vectors)
    return project, groups, {i.pk for i in held_out}


def test_clusters_are_the_groups_largest_first_members_nearest_the_centre_first(api_client):
    project, groups, held_out = blob_project()
    lead = as_user(api_client, member(project, Role.LEAD))
    body = lead.get(f"/api/projects/{project.pk}/clusters/?k=3&members=10").json()
    assert body["pool_size"] == 40 and body["sampled"] == 40 and body["noise"] == 0
    assert [c["size"] for c in body["clusters"]] == [20, 12, 8]
    for cluster, group in zip(body["clusters"], groups):
        ids = [m["image_id"] for m in cluster["members"]]
        assert len(ids) == min(10, len(group)) and set(ids) <= set(group)
        distances = [m["distance"] for m in cluster["members"]]
        assert distances == sorted(distances) and cluster["members"][0]["url"]
    everything = {m["image_id"] for c in body["clusters"] for m in c["members"]}
    assert not everything & held_out  # validation images reach people through the queue only


def test_hdbscan_clusters_and_bad_parameters(api_client):
    project, groups, _ = blob_project(sizes=(20, 20, 20))
    lead = as_user(api_client, member(project, Role.LEAD))
    body = lead.get(f"/api/projects/{project.pk}/clusters/?method=hdbscan").json()
    assert sorted(c["size"] for c in body["clusters"]) == [20, 20, 20] and body["noise"] == 0
    assert lead.get(f"/api/projects/{project.pk}/clusters/?method=spectral").status_code == 400
    assert lead.get(f"/api/projects/{project.pk}/clusters/?k=1").status_code == 400
    annotator = as_user(api_client, member(project))
    assert annotator.get(f"/api/projects/{project.pk}/clusters/").status_code == 403


def bulk(client, project, ids, key="grid-1", **fields):
    return client.post(f"/api/projects/{project.pk}/bulk-labels/",
                       {"idempotency_key": key, "image_ids": ids, **fields}, format="json")


def test_a_grid_accept_writes_one_label_per_member_and_a_retry_writes_none(
        api_client, eager_tasks, django_capture_on_commit_callbacks):  # noqa: F811 (fixture)
    project, groups, _ = blob_project()
    lead = as_user(api_client, member(project, Role.LEAD))
    members, deselected = groups[0][:-2], groups[0][-2:]
    with django_capture_on_commit_callbacks(execute=True):
        first = bulk(lead, project, members, new_class_name="shoe")
    assert first.status_code == 200, first.content
    body = first.json()
    shoe = LabelClass.objects.get(project=project, name="shoe")
    assert body["label_class"] == {"id": shoe.pk, "name": "shoe"} and body["created"] == len(members) == 18
    labels = Annotation.objects.filter(project=project)
    assert labels.count() == 18 and all(a.payload == {"labels": [shoe.pk]} for a in labels)
    assert set(project.tasks.filter(status=TaskStatus.DONE).values_list("image_id", flat=True)) == set(members)
    assert not project.tasks.filter(image_id__in=deselected, status=TaskStatus.DONE).exists()
    # the normal submit's side effects: a second cluster, a second class, and the queue model
    # refits on the labels (one class alone cannot train it)
    assert not ModelVersion.objects.filter(project=project, backend=Backend.LINEAR).exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert bulk(lead, project, groups[1], key="grid-2", new_class_name="bag").json()["created"] == 12
    assert ModelVersion.objects.filter(project=project, backend=Backend.LINEAR).exists()
    retry = bulk(lead, project, members, new_class_name="shoe").json()
    assert retry["created"] == 0 and retry["replayed"] == 18
    assert Annotation.objects.filter(project=project).count() == 30
    assert LabelClass.objects.filter(project=project, name="shoe").count() == 1


def test_each_member_reports_what_happened_and_the_rest_lands(api_client):
    project, groups, _ = blob_project()
    lead = as_user(api_client, member(project, Role.LEAD))
    known = project.label_classes.get(name="known")
    other = make_project(TaskType.CLASSIFICATION, classes=("x",))
    foreign = add_images(other, [0.1])[0]
    holder = member(project)
    leased = project.tasks.get(image_id=groups[1][0])
    from datetime import timedelta

    from django.utils import timezone
    leased.lease_holder = holder
    leased.lease_expires_at = timezone.now() + timedelta(minutes=5)
    leased.save()
    project.tasks.filter(image_id=groups[1][1]).update(status=TaskStatus.DONE)
    ids = [groups[1][0], groups[1][1], foreign.pk, groups[1][2]]
    body = bulk(lead, project, ids, label_class=known.pk).json()
    assert [r["status"] for r in body["results"]] == ["leased", "already_labeled", "not_found", "created"]
    assert Annotation.objects.filter(project=project).count() == 1


def test_bulk_labels_check_roles_and_input(api_client):
    project, groups, _ = blob_project()
    known = project.label_classes.get(name="known")
    annotator = as_user(api_client, member(project))
    assert bulk(annotator, project, groups[0][:2], new_class_name="new one").status_code == 403
    assert not LabelClass.objects.filter(name="new one").exists()
    assert bulk(annotator, project, groups[0][:2], label_class=known.pk).json()["created"] == 2
    lead = as_user(api_client, member(project, Role.LEAD))
    both = bulk(lead, project, groups[0][2:4], key="k2", label_class=known.pk, new_class_name="x")
    assert both.status_code == 400 and "either" in both.json()["detail"]
    assert bulk(lead, project, [], key="k3", label_class=known.pk).status_code == 400
    assert bulk(lead, project, groups[0][2:4], key="k4", label_class=10**9).status_code == 400
    stranger = as_user(api_client, member(make_project(TaskType.CLASSIFICATION, classes=("y",))))
    assert bulk(stranger, project, groups[0][2:4], key="k5", label_class=known.pk).status_code == 404


def test_verifying_proposals_in_a_grid_accepts_the_pre_label_it_agrees_with(
        api_client, eager_tasks, django_capture_on_commit_callbacks):  # noqa: F811 (fixture)
    project, classes, truth, _, lead, _ = proposed(api_client, django_capture_on_commit_callbacks)
    page = lead.get(f"/api/projects/{project.pk}/proposals/?label_class={classes[0]}&limit=5").json()
    ids = [item["image_id"] for item in page["items"]]
    body = bulk(lead, project, ids, label_class=classes[0]).json()
    assert body["created"] == 5
    accepted = Annotation.objects.filter(image_id__in=ids)
    assert {a.kind for a in accepted} == {AnnotationKind.ACCEPT}
    assert {a.prediction_id for a in accepted} == {item["prediction_id"] for item in page["items"]}
    # naming another class than the proposal is a correction
    other = [i for i, c in truth.items() if c == classes[1]][:1]
    bulk(lead, project, other, key="grid-2", label_class=classes[2])
    assert Annotation.objects.get(image_id=other[0]).kind == AnnotationKind.CORRECT
