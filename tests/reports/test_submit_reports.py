"""The submit counts its annotation into the report aggregates inside its own transaction:
the numbers equal a rebuild from scratch after mixed work (accepts, corrections, flags,
skips, retries, late submits, two annotators on one image), and a failure of the recording
never fails the submit (it is counted after the commit instead)."""
import contextlib
import json
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from core.models import Prediction
from labeling.models import Annotation, Task
from labeling.queue.api import AnnotationSubmitApi
from reports import aggregates
from reports.aggregates import report_aggregates_rebuild
from reports.models import ReportAnnotationMark, ReportDailyCounts
from tests.labeling.test_queue import add_images, deploy_model, make_project, member, next_task
from tests.reports.test_reports_api import snapshot

pytestmark = pytest.mark.django_db


def client_of(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def submit(client, task_id, body, key):
    return client.post(f"/api/tasks/{task_id}/annotations/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.fixture
def overlap():
    """Detection, two labels per image, a deployed pre-label on each of 4 images."""
    project = make_project(annotations_per_image=2)
    images = add_images(project, [0.9, 0.8, 0.7, 0.6])
    version = deploy_model(project)
    car, tree = project.label_classes.order_by("id").values_list("id", flat=True)
    for image in images:
        Prediction.objects.create(image=image, model_version=version, payload={"boxes": [
            {"x1": 5, "y1": 5, "x2": 40, "y2": 30, "label": car, "score": 0.9},
            {"x1": 50, "y1": 40, "x2": 90, "y2": 70, "label": tree, "score": 0.6}]})
    alice, bob = member(project), member(project)
    return project, client_of(alice), client_of(bob), car


def test_aggregates_after_mixed_submits_equal_a_rebuild_from_scratch(overlap):
    project, alice, bob, car = overlap
    correction = {"kind": "correct", "payload": {"boxes": [{"x1": 6, "y1": 5, "x2": 40, "y2": 31, "label": car}]},
                  "time_spent_ms": 4000}
    # img0: alice accepts the pre-label, bob corrects it (an agreement pair), then retries.
    a0 = next_task(alice, project).json()
    b0 = next_task(bob, project).json()
    assert a0["image"]["id"] == b0["image"]["id"] and a0["task"]["id"] != b0["task"]["id"]
    assert submit(alice, a0["task"]["id"], {"kind": "accept", "time_spent_ms": 1500}, "a0").status_code == 201
    first = submit(bob, b0["task"]["id"], correction, "b0")
    assert first.status_code == 201
    replay = submit(bob, b0["task"]["id"], correction, "b0")
    assert replay.status_code == 200 and replay.json() == first.json()
    # img1: alice flags it, bob skips it.
    a1 = next_task(alice, project).json()
    assert submit(alice, a1["task"]["id"], {"kind": "flag", "flag_reason": "too  dark"}, "a1").status_code == 201
    b1 = next_task(bob, project).json()
    assert submit(bob, b1["task"]["id"], {"kind": "skip", "time_spent_ms": 300}, "b1").status_code == 201
    # img2: alice's lease runs out, bob takes and completes her task, her late submit is kept.
    a2 = next_task(alice, project).json()
    Task.objects.filter(pk=a2["task"]["id"]).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    b2 = next_task(bob, project).json()
    assert b2["task"]["id"] == a2["task"]["id"]
    assert submit(bob, b2["task"]["id"], {"kind": "accept"}, "b2").status_code == 201
    late = submit(alice, a2["task"]["id"], correction, "a2")
    assert late.status_code == 409 and late.json()["state"] == "extra_opinion"

    annotations = Annotation.objects.filter(project=project)
    assert annotations.count() == 6
    # Each annotation counted once, in its submit's transaction.
    assert ReportAnnotationMark.objects.filter(project=project).count() == 6
    daily = ReportDailyCounts.objects.filter(project=project)
    assert sum(row.submissions for row in daily) == 6
    assert sum(row.images_labeled for row in daily) == 2  # img0 and img2
    live = snapshot(project)
    assert live[1], "the two labels of img0 made no agreement pair"
    assert report_aggregates_rebuild(project=project) == 6
    assert snapshot(project) == live


def test_a_failing_recording_never_fails_the_submit_and_counts_after_the_commit(
    overlap, monkeypatch, django_capture_on_commit_callbacks
):
    project, alice, _, _ = overlap
    calls = []
    real_count = aggregates._DatabaseStore.count_submission

    def count_then_fail_once(self, *args):
        counted = real_count(self, *args)
        calls.append(counted)
        if len(calls) == 1:
            raise RuntimeError("simulated failure after the first writes")
        return counted

    monkeypatch.setattr(aggregates._DatabaseStore, "count_submission", count_then_fail_once)
    task_id = next_task(alice, project).json()["task"]["id"]
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(alice, task_id, {"kind": "accept"}, "once")
        assert response.status_code == 201
        # The savepoint took the partial recording back: nothing counted yet.
        assert not ReportAnnotationMark.objects.filter(annotation_id=response.json()["id"]).exists()
    assert ReportAnnotationMark.objects.filter(annotation_id=response.json()["id"]).exists()
    [row] = ReportDailyCounts.objects.filter(project=project)
    assert (row.submissions, row.labeled, row.images_labeled) == (1, 1, 1)


@contextlib.contextmanager
def rebuild_lock_held(project):
    """The exclusive lock a rebuild holds on the project's aggregates, held by another
    connection until the block ends."""
    locked, release = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [aggregates.AGGREGATES_LOCK, project.pk])
            locked.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        yield
    finally:
        release.set()
        holder.join()


@pytest.mark.postgres
def test_a_submit_during_a_rebuild_is_counted_after_its_commit(overlap, django_capture_on_commit_callbacks):
    project, alice, _, _ = overlap
    task_id = next_task(alice, project).json()["task"]["id"]
    with django_capture_on_commit_callbacks(execute=True):
        with rebuild_lock_held(project):
            assert submit(alice, task_id, {"kind": "accept"}, "during").status_code == 201
            # The recording stood aside without writing anything.
            assert not ReportAnnotationMark.objects.filter(project=project).exists()
            assert not ReportDailyCounts.objects.filter(project=project).exists()
        # The rebuild has ended: the on-commit recording counts the annotation.
    assert ReportAnnotationMark.objects.filter(project=project).count() == 1
    [row] = ReportDailyCounts.objects.filter(project=project)
    assert (row.submissions, row.labeled, row.images_labeled) == (1, 1, 1)


def test_the_submit_answer_is_what_its_output_serializer_says(overlap):
    project, alice, _, car = overlap
    task_id = next_task(alice, project).json()["task"]["id"]
    response = submit(alice, task_id, {"kind": "correct", "payload": {"boxes": [
        {"x1": 1, "y1": 2, "x2": 30, "y2": 40, "label": car}]}, "time_spent_ms": 7}, "k")
    assert response.status_code == 201
    annotation = Annotation.objects.get(pk=response.json()["id"])
    expected = json.loads(JSONRenderer().render(AnnotationSubmitApi.OutputSerializer(annotation).data))
    assert response.json() == expected
