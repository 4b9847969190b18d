"""The grid modes in Chromium. The annotators' grid: the proposals of one class as
thumbnails, one removed from the keyboard, Enter labels the rest through the normal submit
API. Discover: a lead names clusters (a new class, an existing one) and accepts them in
bulk. In both, a request whose answer is lost is retried with its key and stored once."""
import numpy as np
import pytest

from core.models import LabelClass, Project, Split
from labeling.models import Annotation, AnnotationKind, Membership, Role, Task, TaskStatus
from labeling.services import label_class_create
from ml.embedding_specs import DEFAULT_EMBEDDING_MODEL, EMBEDDING_MODELS
from tests.factories import ImageFactory, TaskFactory
from training.models import ImageEmbedding

from .conftest import sign_in, wait_for_js
from .factories import classification_scene

DIM = EMBEDDING_MODELS[DEFAULT_EMBEDDING_MODEL].dim


def _unit(v):
    return (v / np.linalg.norm(v)).astype("<f4")


def lose_first_answer(page, pattern: str) -> list:
    """The first request to `pattern` reaches the server and is stored, but its answer never
    arrives (the connection drops); later ones pass. Returns what was seen: the lost
    answer's status, then "retried" per later request."""
    seen: list = []

    def route(request_route):
        if not seen:
            seen.append(request_route.fetch().status)
            request_route.abort()
        else:
            seen.append("retried")
            request_route.continue_()

    page.console.allow_network_cut = True
    page.route(pattern, route)
    return seen

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_annotator_verifies_a_grid_and_a_lost_answer_stores_one_annotation(page, make_user):
    annotator = make_user("ann")
    scene = classification_scene(members={annotator: Role.ANNOTATOR}, images=4)
    project, cat = scene.project, scene.classes["cat"]
    lost = lose_first_answer(page, "**/api/tasks/*/annotations/")
    sign_in(page, "ann")
    page.goto(f"/projects/{project.pk}/annotate/grid/")
    page.locator("#grid .thumb-cell").nth(3).wait_for()
    assert page.inner_text("#grid-class") == "cat"
    assert page.locator("#grid .thumb-cell[aria-pressed=true]").count() == 4
    wait_for_js(page, "[...document.querySelectorAll('#grid img')].every((img) => img.complete && img.naturalWidth)")

    page.focus("#grid")
    page.keyboard.press("ArrowRight")
    page.keyboard.press(" ")
    aside_task = int(page.locator("#grid .thumb-cell[aria-pressed=false]").get_attribute("data-id"))
    page.wait_for_timeout(350)  # the grid has been on screen long enough to be seen
    page.keyboard.press("Enter")
    page.locator("#grid-save-state[data-state=saved]").wait_for()
    page.locator("#grid-notice", has_text="nothing left to label").wait_for()

    assert lost[:2] == [201, "retried"]
    labels = Annotation.objects.filter(project=project, author=annotator)
    assert labels.count() == 3
    assert set(labels.values_list("kind", flat=True)) == {AnnotationKind.ACCEPT}
    assert all(a.payload == {"labels": [cat.pk]} for a in labels)
    aside = Task.objects.get(pk=aside_task)
    assert aside.status == TaskStatus.OPEN and aside.lease_holder is None
    assert not labels.filter(task_id=aside_task).exists()


def test_a_lead_names_a_cluster_and_accepts_it_once_though_the_answer_was_lost(page, make_user):
    lead = make_user("lea")
    project = Project.objects.create(name="Leaves", task_type="classification")
    Membership.objects.create(project=project, user=lead, role=Role.LEAD)
    oak = label_class_create(project=project, name="oak")
    images = [ImageFactory(project=project, split=Split.TRAIN) for _ in range(8)]
    for image in images:
        TaskFactory(image=image)
    rng = np.random.default_rng(0)
    centres = np.eye(DIM)[:2]
    ImageEmbedding.objects.bulk_create(
        ImageEmbedding(project=project, image=image, model_key=DEFAULT_EMBEDDING_MODEL,
                       vector=_unit(centres[n % 2] + 0.01 * rng.standard_normal(DIM)).tobytes())
        for n, image in enumerate(images))
    answers = lose_first_answer(page, "**/api/projects/*/bulk-labels/")
    sign_in(page, "lea")
    page.goto(f"/projects/{project.pk}/discover/")
    page.fill("#cluster-form input[name=k]", "2")
    page.click("#cluster-form button[type=submit]")
    sections = page.locator("section.cluster")
    sections.nth(1).wait_for()
    assert sections.count() == 2
    wait_for_js(page, "[...document.querySelectorAll('.thumb-cell img')].every((img) => img.complete && img.naturalWidth)")

    first = sections.nth(0)
    members = [int(i) for i in first.locator(".thumb-cell").evaluate_all("cells => cells.map((c) => c.dataset.id)")]
    assert len(members) == 4
    first.get_by_label("name of cluster 0").fill("birch")
    first.locator(f".thumb-cell[data-id='{members[2]}']").click()
    first.get_by_role("button", name="Accept 3").click()
    first.locator(".cluster-result", has_text='3 labeled as "birch"').wait_for()
    assert answers == [200, "retried"]

    second = sections.nth(1)
    second.get_by_label("name of cluster 1").fill("Oak")
    second.get_by_role("button", name="Accept 4").click()
    second.locator(".cluster-result", has_text='4 labeled as "oak"').wait_for()

    birch = LabelClass.objects.get(project=project, name="birch")
    labels = Annotation.objects.filter(project=project, author=lead)
    assert labels.count() == 7 and labels.values("image_id").distinct().count() == 7
    assert sorted(labels.filter(payload={"labels": [birch.pk]}).values_list("image_id", flat=True)) == sorted(
        members[:2] + members[3:])
    assert labels.filter(payload={"labels": [oak.pk]}).count() == 4
    assert not labels.filter(image_id=members[2]).exists()
    assert Task.objects.get(image_id=members[2]).status == TaskStatus.OPEN
