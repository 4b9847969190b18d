"""A lead's tools over the API: bulk review with per-item results, fixing a label in place
(append-only), the image browser's filters and paging, an image opened for the editor,
and the per-epoch history of a training run."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.models import Image, ModelVersion, Prediction, Project, Split, TaskType
from labeling.models import Annotation, AnnotationKind, Membership, ReviewStatus, Role, Task, TaskStatus
from labeling.selectors import image_current_label
from labeling.services import label_class_create
from training.models import JobStatus, TrainingRun
from training.services import _training_progress

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(django_user_model):
    project = Project.objects.create(name="pets", task_type=TaskType.CLASSIFICATION)
    users = {name: django_user_model.objects.create(username=name) for name in ("lead", "ann", "bob")}
    Membership.objects.create(project=project, user=users["lead"], role=Role.LEAD)
    Membership.objects.create(project=project, user=users["ann"], role=Role.ANNOTATOR)
    Membership.objects.create(project=project, user=users["bob"], role=Role.ANNOTATOR)
    cat = label_class_create(project=project, name="cat")
    dog = label_class_create(project=project, name="dog")
    images = Image.objects.bulk_create([
        Image(project=project, file=f"img{i}.png", original_name=f"pet-{i:03}.png", sha256=f"s{i}",
              width=100, height=80, split=Split.TRAIN if i % 2 else Split.VALIDATION)
        for i in range(6)
    ])
    for image in images:
        Task.objects.create(project=project, image=image)
    return project, users, {"cat": cat, "dog": dog}, images


def label(project, image, author, class_id, kind=AnnotationKind.ACCEPT):
    task = Task.objects.filter(image=image, status=TaskStatus.OPEN).first()
    if task:
        Task.objects.filter(pk=task.pk).update(status=TaskStatus.DONE, completed_by=author)
    return Annotation.objects.create(project=project, image=image, task=task, author=author, kind=kind,
                                     payload={"labels": [class_id]})


def test_bulk_accept_answers_per_item(team, api_client):
    project, users, classes, images = team
    a = [label(project, image, users["ann"], classes["cat"].pk) for image in images[:3]]
    api_client.force_authenticate(users["lead"])
    api_client.post(f"/api/annotations/{a[1].pk}/review/", {"decision": "reject"}, format="json")
    other = Project.objects.create(name="other", task_type=TaskType.CLASSIFICATION)
    stranger = Annotation.objects.create(project=other, image=Image.objects.create(
        project=other, file="x.png", original_name="x.png", sha256="x", width=1, height=1), kind="accept")

    response = api_client.post(f"/api/projects/{project.pk}/annotations/review/", {
        "ids": [a[0].pk, a[1].pk, a[2].pk, stranger.pk], "decision": "accept"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["reviewed"] == 2
    assert [(r["id"], r["ok"], r["review_status"]) for r in body["results"]] == [
        (a[0].pk, True, "accepted"), (a[1].pk, False, "rejected"), (a[2].pk, True, "accepted"),
        (stranger.pk, False, None)]
    assert "already reviewed" in body["results"][1]["detail"]
    assert Annotation.objects.get(pk=stranger.pk).review_status == ReviewStatus.PENDING

    api_client.force_authenticate(users["ann"])
    assert api_client.post(f"/api/projects/{project.pk}/annotations/review/", {
        "ids": [a[0].pk], "decision": "accept"}, format="json").status_code == 403


def test_a_lead_fixes_a_label_in_place(team, api_client):
    project, users, classes, images = team
    wrong = label(project, images[0], users["ann"], classes["cat"].pk)
    tasks_before = Task.objects.filter(image=images[0]).count()
    api_client.force_authenticate(users["lead"])

    response = api_client.post(f"/api/annotations/{wrong.pk}/fix/",
                               {"payload": {"labels": [classes["dog"].pk]}}, format="json")
    assert response.status_code == 201, response.content
    fixed = response.json()
    assert fixed["author"] == "lead" and fixed["kind"] == "correct" and fixed["review_status"] == "accepted"
    wrong.refresh_from_db()
    assert wrong.payload == {"labels": [classes["cat"].pk]}  # append-only: the old row is kept as it was
    assert wrong.review_status == ReviewStatus.REJECTED and wrong.reviewed_by == users["lead"]
    assert "Fixed by lead" in wrong.review_comment
    assert image_current_label(images[0]) == {"labels": [classes["dog"].pk]}
    assert Task.objects.filter(image=images[0]).count() == tasks_before  # not queued again

    bad = api_client.post(f"/api/annotations/{wrong.pk}/fix/", {"payload": {"labels": [9999]}}, format="json")
    assert bad.status_code == 400 and "unknown class id 9999" in bad.json()["detail"]


def test_a_lead_labels_an_unlabeled_image_from_the_browser(team, api_client):
    project, users, classes, images = team
    api_client.force_authenticate(users["lead"])
    work = api_client.get(f"/api/images/{images[3].pk}/work/").json()
    assert work["label"] is None and work["task_type"] == "classification"
    assert [c["name"] for c in work["label_classes"]] == ["cat", "dog"]

    response = api_client.post(f"/api/images/{images[3].pk}/label/", {"payload": {"labels": [classes["dog"].pk]}},
                               format="json")
    assert response.status_code == 201
    assert image_current_label(images[3]) == {"labels": [classes["dog"].pk]}
    assert not Task.objects.filter(image=images[3], status=TaskStatus.OPEN).exists()
    assert api_client.get(f"/api/images/{images[3].pk}/work/").json()["label"]["author"] == "lead"

    api_client.force_authenticate(users["ann"])
    assert api_client.get(f"/api/images/{images[3].pk}/work/").status_code == 403


def test_the_image_browser_filters_and_pages(team, api_client):
    project, users, classes, images = team
    version = ModelVersion.objects.create(project=project, number=1, backend="classifier", is_deployed=True,
                                          status="deployed", class_ids=[classes["cat"].pk, classes["dog"].pk])
    for n, image in enumerate(images):
        Prediction.objects.create(image=image, model_version=version, payload={"labels": [classes["cat"].pk]},
                                  uncertainty=n / 10)
    label(project, images[0], users["ann"], classes["cat"].pk)
    label(project, images[1], users["bob"], classes["dog"].pk, kind=AnnotationKind.CORRECT)
    label(project, images[2], users["ann"], classes["cat"].pk)
    label(project, images[2], users["bob"], classes["dog"].pk)
    Annotation.objects.create(project=project, image=images[4], author=users["bob"], kind=AnnotationKind.FLAG,
                              flag_reason="blurry")
    api_client.force_authenticate(users["lead"])
    url = f"/api/projects/{project.pk}/images/browse/"

    def names(**params):
        body = api_client.get(url, params).json()
        return [row["name"] for row in body["results"]]

    everything = api_client.get(url).json()
    assert everything["count"] == 6 and everything["next_after"] is None
    first = everything["results"][0]
    assert first["classes"] == ["cat"] and first["labeled_by"] == "ann" and first["status"] == "pending"
    assert first["uncertainty"] == 0.0 and first["display_url"]
    assert names(label=classes["dog"].pk) == ["pet-001.png", "pet-002.png"]
    assert names(annotator="ann") == ["pet-000.png", "pet-002.png"]
    assert names(status="unlabeled") == ["pet-003.png", "pet-004.png", "pet-005.png"]
    assert names(status="flagged") == ["pet-004.png"]
    assert names(split="validation") == ["pet-000.png", "pet-002.png", "pet-004.png"]
    assert names(uncertainty_min=0.35) == ["pet-004.png", "pet-005.png"]
    assert names(disagreement=1) == ["pet-001.png", "pet-002.png"]
    assert names(q="-005") == ["pet-005.png"]

    page = api_client.get(url, {"limit": 4}).json()
    assert len(page["results"]) == 4 and page["count"] == 6
    rest = api_client.get(url, {"limit": 4, "after": page["next_after"]}).json()
    assert [row["name"] for row in rest["results"]] == ["pet-004.png", "pet-005.png"]
    assert rest["next_after"] is None

    # One query for the rows whatever their number (plus the role check, the classes, the count).
    with CaptureQueriesContext(connection) as queries:
        api_client.get(url, {"limit": 200})
    assert len(queries) <= 6, [q["sql"][:120] for q in queries]

    api_client.force_authenticate(users["ann"])
    assert api_client.get(url).status_code == 403


def test_a_training_run_keeps_its_per_epoch_history(team, api_client):
    project, users, _, _ = team
    run = TrainingRun.objects.create(project=project, status=JobStatus.RUNNING)
    report = _training_progress(run.pk)
    report(1, 3, 0.9, 0.2)
    report(2, 3, 0.5, None)
    report(2, 3, 0.4, 0.5)  # a repeated epoch replaces its row
    run.refresh_from_db()
    assert run.history == [{"epoch": 1, "loss": 0.9, "metric": 0.2}, {"epoch": 2, "loss": 0.4, "metric": 0.5}]
    assert run.epoch == 2 and run.loss == 0.4
    api_client.force_authenticate(users["lead"])
    curves = api_client.get(f"/api/projects/{project.pk}/training-curves/").json()
    assert curves["runs"][0]["history"] == run.history


def test_the_image_pages_are_for_leads(team, client):
    project, users, _, images = team
    other = Project.objects.create(name="other", task_type=TaskType.CLASSIFICATION)
    foreign = Image.objects.create(project=other, file="f.png", original_name="f.png", sha256="f", width=1, height=1)
    client.force_login(users["ann"])
    assert client.get(f"/projects/{project.pk}/images/").status_code == 403
    assert client.get(f"/projects/{project.pk}/images/{images[0].pk}/").status_code == 403
    client.force_login(users["lead"])
    browser = client.get(f"/projects/{project.pk}/images/")
    assert browser.status_code == 200 and b'<option>ann</option>' in browser.content
    assert client.get(f"/projects/{project.pk}/images/{images[0].pk}/").status_code == 200
    assert client.get(f"/projects/{project.pk}/images/{foreign.pk}/").status_code == 404
