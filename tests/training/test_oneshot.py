"""One-shot proposals: a lead's examples per class become a model version of its own kind whose
pre-labels people verify; the queue ranks by them; they never become labels by themselves."""
import numpy as np
import pytest

from core.models import Backend, ModelVersion, Prediction, Split, TaskType, VersionStatus
from labeling.models import Annotation, Role
from tests.labeling.test_queue import add_images, as_user, make_project, member, next_task
from tests.training.test_queue_model_live import DIM, eager_tasks, embed  # noqa: F401 (fixture)
from training.models import ClassExample, PrelabelRun

pytestmark = pytest.mark.django_db


def three_class_project(n_per_class=12, val_per_class=0, between=3):
    """Classification project a/b/c, embeddings in three tight clusters, plus images half-way
    between a and b. Returns (project, class ids, {image id: class id}, between ids)."""
    project = make_project(TaskType.CLASSIFICATION, classes=("a", "b", "c"), queue_model_every=0,
                           sampling_strategy="margin")
    classes = list(project.label_classes.order_by("id").values_list("id", flat=True))
    rng = np.random.default_rng(0)
    centre = {c: np.eye(1, DIM, n)[0] for n, c in enumerate(classes)}
    truth, images, vectors = {}, [], []
    for split, count in ((Split.TRAIN, n_per_class), (Split.VALIDATION, val_per_class)):
        plan = [c for c in classes for _ in range(count)]
        if plan:
            made = add_images(project, [0.5] * len(plan), split=split)
            images += made
            vectors += [centre[c] + 0.05 * rng.standard_normal(DIM) for c in plan]
            truth.update({i.pk: c for i, c in zip(made, plan)})
    middle = add_images(project, [0.5] * between)
    images += middle
    vectors += [centre[classes[0]] + centre[classes[1]] + 0.01 * rng.standard_normal(DIM) for _ in middle]
    embed(project, images, vectors)
    return project, classes, truth, {i.pk for i in middle}


def pick_examples(client, project, truth, classes, per_class=1):
    for c in classes:
        ids = [i for i, t in truth.items() if t == c][:per_class]
        response = client.put(f"/api/projects/{project.pk}/class-examples/{c}/", {"image_ids": ids}, format="json")
        assert response.status_code == 200, response.content


def proposed(client, capture, method="prototype", **project_fields):
    """A three-class project whose lead picked one example a class and deployed proposals
    (the prelabel run executed). Returns (project, classes, truth, between, lead client, reply)."""
    project, classes, truth, between = three_class_project(**project_fields)
    lead = as_user(client, member(project, Role.LEAD))
    pick_examples(lead, project, truth, classes)
    with capture(execute=True):
        response = lead.post(f"/api/projects/{project.pk}/proposals/", {"method": method}, format="json")
    return project, classes, truth, between, lead, response


def test_examples_are_set_per_class_and_listed_with_whether_they_are_embedded(api_client):
    project, classes, truth, _ = three_class_project()
    unembedded = add_images(project, [0.1])[0]
    client = as_user(api_client, member(project, Role.LEAD))
    first = [i for i, t in truth.items() if t == classes[0]][:2]
    response = client.put(f"/api/projects/{project.pk}/class-examples/{classes[0]}/",
                          {"image_ids": [*first, unembedded.pk]}, format="json")
    assert response.status_code == 200
    assert [(e["image_id"], e["embedded"]) for e in response.json()["examples"]] == \
        [(first[0], True), (first[1], True), (unembedded.pk, False)]
    listed = client.get(f"/api/projects/{project.pk}/class-examples/").json()["classes"]
    assert [len(c["examples"]) for c in listed] == [3, 0, 0]
    cleared = client.put(f"/api/projects/{project.pk}/class-examples/{classes[0]}/", {"image_ids": []},
                         format="json")
    assert cleared.json()["examples"] == [] and ClassExample.objects.count() == 0


def test_bad_examples_are_refused_with_the_reason(api_client):
    project, classes, truth, _ = three_class_project()
    other = make_project(TaskType.CLASSIFICATION, classes=("x",))
    foreign = add_images(other, [0.1])[0]
    lead = as_user(api_client, member(project, Role.LEAD))
    url = f"/api/projects/{project.pk}/class-examples/{classes[0]}/"
    too_many = lead.put(url, {"image_ids": list(truth)[:6]}, format="json")
    assert too_many.status_code == 400 and "at most 5" in too_many.json()["detail"]
    stranger = lead.put(url, {"image_ids": [foreign.pk]}, format="json")
    assert stranger.status_code == 400 and str(foreign.pk) in stranger.json()["detail"]
    first = list(truth)[0]
    assert lead.put(url, {"image_ids": [first]}, format="json").status_code == 200
    twice = lead.put(f"/api/projects/{project.pk}/class-examples/{classes[1]}/", {"image_ids": [first]},
                     format="json")
    assert twice.status_code == 400 and "one class only" in twice.json()["detail"]
    annotator = as_user(api_client, member(project))
    assert annotator.put(url, {"image_ids": list(truth)[1:2]}, format="json").status_code == 403
    assert ClassExample.objects.count() == 1


@pytest.mark.parametrize("method", [Backend.PROTOTYPE, Backend.PROPAGATION])
def test_proposals_pre_label_every_unlabeled_image_and_create_no_label(
        method, api_client, eager_tasks, django_capture_on_commit_callbacks):  # noqa: F811 (fixture)
    project, classes, truth, between, lead, response = proposed(api_client, django_capture_on_commit_callbacks,
                                                                method)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["decision"] == "deploy" and body["model_version"]["backend"] == method
    version = ModelVersion.objects.get(pk=body["model_version"]["id"])
    assert version.is_deployed and version.class_ids == classes
    assert PrelabelRun.objects.get(pk=body["prelabel_run"]["id"]).status == "succeeded"
    predictions = {p.image_id: p.payload for p in Prediction.objects.filter(model_version=version)}
    assert set(predictions) == set(truth) | between
    assert all(len(p["probs"]) == 3 and abs(sum(p["probs"]) - 1) < 1e-3 for p in predictions.values())
    assert all(predictions[i]["labels"] == [c] for i, c in truth.items())
    # a proposal is never a label: nothing was written as verified work
    assert Annotation.objects.count() == 0
    assert not project.tasks.filter(status="done").exists()


def test_the_queue_serves_the_least_confident_proposal_first_with_it_as_the_pre_label(
        api_client, eager_tasks, django_capture_on_commit_callbacks):  # noqa: F811 (fixture)
    project, classes, truth, between, _, _ = proposed(api_client, django_capture_on_commit_callbacks)
    annotator = as_user(api_client, member(project))
    served = next_task(annotator, project).json()
    assert served["image"]["id"] in between
    assert served["prediction"]["payload"]["labels"][0] in classes[:2]
    assert len(served["prediction"]["payload"]["probs"]) == 3


def test_proposals_below_the_floor_on_the_validation_labels_are_not_deployed(
        api_client, eager_tasks, django_capture_on_commit_callbacks):  # noqa: F811 (fixture)
    project, classes, truth, _ = three_class_project(val_per_class=4)
    lead = as_user(api_client, member(project, Role.LEAD))
    val = {i: c for i, c in truth.items() if project.images.get(pk=i).split == Split.VALIDATION}
    for image_id, c in val.items():  # validation labels, by import
        from core.models import Image
        from labeling.services import annotation_import_create
        annotation_import_create(image=Image.objects.get(pk=image_id), payload={"labels": [c]})
    # examples that contradict the labels: each class's examples are another class's images
    train = {i: c for i, c in truth.items() if i not in val}
    for n, c in enumerate(classes):
        wrong = [i for i, t in train.items() if t == classes[(n + 1) % 3]][:2]
        lead.put(f"/api/projects/{project.pk}/class-examples/{c}/", {"image_ids": wrong}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        response = lead.post(f"/api/projects/{project.pk}/proposals/", {}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["decision"] == "reject" and "does not beat the majority class" in body["reason"]
    version = ModelVersion.objects.get(pk=body["model_version"]["id"])
    assert version.status == VersionStatus.REJECTED and not version.is_deployed
    assert body["prelabel_run"] is None and not Prediction.objects.filter(model_version=version).exists()


def test_proposals_need_two_embedded_classes_and_a_lead(api_client):
    project, classes, truth, _ = three_class_project()
    lead = as_user(api_client, member(project, Role.LEAD))
    url = f"/api/projects/{project.pk}/proposals/"
    pick_examples(lead, project, truth, classes[:1])
    one = lead.post(url, {"method": "prototype"}, format="json")
    assert one.status_code == 400 and "at least two" in one.json()["detail"]
    unembedded = add_images(project, [0.1])[0]
    lead.put(f"/api/projects/{project.pk}/class-examples/{classes[1]}/", {"image_ids": [unembedded.pk]},
             format="json")
    missing = lead.post(url, {"method": "prototype"}, format="json")
    assert missing.status_code == 400 and str(unembedded.pk) in missing.json()["detail"]
    assert lead.post(url, {"method": "magic"}, format="json").status_code == 400
    assert as_user(api_client, member(project)).post(url, {}, format="json").status_code == 403
    assert not ModelVersion.objects.exists()


def test_the_proposal_grid_lists_a_class_most_confident_first_without_validation_images(
        api_client, eager_tasks, django_capture_on_commit_callbacks):  # noqa: F811 (fixture)
    project, classes, truth, between, lead, _ = proposed(api_client, django_capture_on_commit_callbacks,
                                                         val_per_class=2)
    page = lead.get(f"/api/projects/{project.pk}/proposals/?label_class={classes[0]}").json()
    validation = set(project.images.filter(split=Split.VALIDATION).values_list("id", flat=True))
    ids = [item["image_id"] for item in page["items"]]
    assert ids and not set(ids) & validation
    assert all(item["label_class"] == classes[0] for item in page["items"])
    confidences = [item["confidence"] for item in page["items"]]
    assert confidences == sorted(confidences, reverse=True)
    assert page["count"] == len(ids) and page["items"][0]["url"]
    least = lead.get(f"/api/projects/{project.pk}/proposals/?order=confidence&limit=3").json()
    assert least["items"][0]["image_id"] in between


def test_images_embedded_after_the_proposals_get_theirs(
        api_client, eager_tasks, django_capture_on_commit_callbacks):  # noqa: F811 (fixture)
    from training import services

    project, classes, _, _, _, _ = proposed(api_client, django_capture_on_commit_callbacks)
    newer = add_images(project, [0.5])[0]
    embed(project, [newer], [np.eye(1, DIM, 2)[0]])
    with django_capture_on_commit_callbacks(execute=True):
        services._proposals_for_new_vectors(project)  # what an embedding run does when it wrote vectors
    assert Prediction.objects.get(image=newer, model_version__is_deployed=True).payload["labels"] == [classes[2]]
