"""Many annotators at once against real PostgreSQL: no task held by two people, no lost and
no duplicated submits under retries, lease expiry and takeover."""
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from rest_framework.test import APIClient

from labeling.models import Annotation, AnnotationState, Task, TaskStatus
from labeling.signals import annotation_submitted
from tests.labeling.test_queue import add_images, make_project, member

# SKIP LOCKED and row locks across connections are what these tests check.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.postgres]


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _in_threads(workers, target):
    """Run target(i) for every worker in its own thread with its own connection."""
    def run(i):
        try:
            return target(i)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(workers)) as pool:
        return list(pool.map(run, range(len(workers))))


def _annotate_until_empty(project, user, seed, hold_seconds=0.0, retry_share=0.3):
    """next -> (hold) -> submit, retrying some submits with the same key as a client whose
    response got lost would. Returns [(task_id, image_id, key, first_status, annotation_id)]."""
    rng = random.Random(seed)
    client = _client(user)
    done = []
    while True:
        response = client.get(f"/api/projects/{project.pk}/tasks/next/")
        if response.status_code == 204:
            return done
        assert response.status_code == 200, response.content
        work = response.json()
        task_id = work["task"]["id"]
        if hold_seconds:
            time.sleep(rng.uniform(0, hold_seconds))
        key = str(uuid.uuid4())
        body = {"kind": "correct", "payload": {"boxes": []}, "empty": True}
        first = client.post(f"/api/tasks/{task_id}/annotations/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
        assert first.status_code in (201, 409), first.content
        annotation_id = first.json()["id"]
        if rng.random() < retry_share:
            again = client.post(f"/api/tasks/{task_id}/annotations/", body, format="json",
                                HTTP_IDEMPOTENCY_KEY=key)
            assert again.status_code == (200 if first.status_code == 201 else 409)
            assert again.json()["id"] == annotation_id
        done.append((task_id, work["image"]["id"], key, first.status_code, annotation_id))


def test_many_annotators_never_share_a_task_and_lose_or_duplicate_nothing():
    project = make_project()
    add_images(project, [random.random() for _ in range(60)])
    users = [member(project) for _ in range(10)]
    results = _in_threads(users, lambda i: _annotate_until_empty(project, users[i], seed=i))

    served = Counter(task_id for per_user in results for task_id, *_ in per_user)
    assert max(served.values()) == 1, "a task was handed to two annotators"
    assert len(served) == 60
    assert all(status == 201 for per_user in results for *_, status, _ in per_user)
    # Exactly one annotation per submit key, one per task, all counted.
    keys = [key for per_user in results for _, _, key, _, _ in per_user]
    assert Annotation.objects.count() == len(keys) == 60
    assert set(Annotation.objects.values_list("idempotency_key", flat=True)) == set(keys)
    assert Task.objects.filter(project=project, status=TaskStatus.DONE).count() == 60


def test_overlap_under_concurrency_gives_each_image_to_n_distinct_annotators():
    project = make_project(annotations_per_image=3)
    add_images(project, [random.random() for _ in range(15)])
    users = [member(project) for _ in range(6)]
    results = _in_threads(users, lambda i: _annotate_until_empty(project, users[i], seed=i, retry_share=0))

    annotators_of = defaultdict(list)
    for user, per_user in zip(users, results):
        for _, image_id, *_ in per_user:
            annotators_of[image_id].append(user.pk)
    assert len(annotators_of) == 15
    for image_id, annotators in annotators_of.items():
        assert len(annotators) == 3, f"image {image_id} annotated {len(annotators)} times"
        assert len(set(annotators)) == 3, f"image {image_id} served twice to one annotator"


def test_expired_leases_are_taken_over_and_late_work_is_kept_as_extra_opinions():
    # A 1 s lease and annotators who sometimes hold a task for up to 2 s: tasks get taken
    # over while their first holder still works on them.
    project = make_project(lease_ttl_seconds=1)
    add_images(project, [random.random() for _ in range(30)])
    users = [member(project) for _ in range(8)]
    results = _in_threads(users, lambda i: _annotate_until_empty(project, users[i], seed=100 + i,
                                                                 hold_seconds=2.0))

    submits = [row for per_user in results for row in per_user]
    late = [row for row in submits if row[3] == 409]
    assert late, "no lease expired during the run; the test did not exercise takeover"
    # Nothing lost, nothing doubled: every submit is exactly one row, in the state it was told.
    assert Annotation.objects.count() == len(submits)
    states = dict(Annotation.objects.values_list("id", "state"))
    for _, _, _, status, annotation_id in submits:
        assert states[annotation_id] == (AnnotationState.SUBMITTED if status == 201 else AnnotationState.EXTRA_OPINION)
    # Each task was completed exactly once; the extra opinions sit beside the real label.
    per_task = Counter(
        Annotation.objects.filter(state=AnnotationState.SUBMITTED).values_list("task_id", flat=True)
    )
    assert len(per_task) == 30 and set(per_task.values()) == {1}
    assert Task.objects.filter(project=project, status=TaskStatus.DONE).count() == 30


def test_concurrent_retries_of_one_submit_store_it_once():
    project = make_project()
    add_images(project, [0.5] * 6)
    user = member(project)
    client = _client(user)
    task_ids = []
    for _ in range(2):
        task_ids.append(client.get(f"/api/projects/{project.pk}/tasks/next/?exclude="
                                   + ",".join(map(str, task_ids))).json()["task"]["id"])
    keys = {task_id: str(uuid.uuid4()) for task_id in task_ids}
    start = threading.Barrier(8)

    def retry(i):
        task_id = task_ids[i % 2]
        start.wait()
        response = _client(user).post(f"/api/tasks/{task_id}/annotations/", {"kind": "skip"}, format="json",
                                      HTTP_IDEMPOTENCY_KEY=keys[task_id])
        return task_id, response.status_code, response.json()["id"]

    outcomes = _in_threads(range(8), retry)
    for task_id in task_ids:
        mine = [(status, annotation_id) for t, status, annotation_id in outcomes if t == task_id]
        assert sorted(status for status, _ in mine) == [200, 200, 200, 201]
        assert len({annotation_id for _, annotation_id in mine}) == 1
    assert Annotation.objects.count() == 2


def _waiting_on_a_lock(timeout: float = 10.0) -> bool:
    """True once some session of this database waits for a row lock."""
    deadline = time.monotonic() + timeout
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock'")
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.02)
    return False


def test_a_retry_that_waited_on_the_first_submits_row_lock_is_answered_with_its_annotation():
    # The retry reads its key probe before it waits for the task's row lock, so it cannot see
    # the first submit's annotation there; the unique (author, key) index catches it instead.
    project = make_project()
    add_images(project, [0.5])
    user = member(project)
    task_id = _client(user).get(f"/api/projects/{project.pk}/tasks/next/").json()["task"]["id"]
    key = str(uuid.uuid4())
    first_inside, release_first = threading.Event(), threading.Event()
    first_thread: list[threading.Thread] = []

    def pause_the_first(sender, **kwargs):
        # Sent inside the submit's transaction, after its annotation went in.
        if threading.current_thread() is first_thread[0]:
            first_inside.set()
            release_first.wait(10)

    def post():
        try:
            response = _client(user).post(f"/api/tasks/{task_id}/annotations/", {"kind": "skip"}, format="json",
                                          HTTP_IDEMPOTENCY_KEY=key)
            return response.status_code, response.json()["id"]
        finally:
            connections.close_all()

    annotation_submitted.connect(pause_the_first, dispatch_uid="test.pause_the_first")
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(lambda: (first_thread.append(threading.current_thread()), post())[1])
            assert first_inside.wait(10)
            retry = pool.submit(post)
            assert _waiting_on_a_lock(), "the retry never waited on the task's row lock"
            release_first.set()
            (first_status, first_id), (retry_status, retry_id) = first.result(), retry.result()
    finally:
        release_first.set()
        annotation_submitted.disconnect(dispatch_uid="test.pause_the_first")
    assert (first_status, retry_status) == (201, 200)
    assert retry_id == first_id
    assert Annotation.objects.filter(project=project, idempotency_key=key).count() == 1
