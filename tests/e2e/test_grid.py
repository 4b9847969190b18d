"""The grid modes in Chromium. The annotators' grid: the proposals of one class as
thumbnails, one removed from the keyboard, Enter labels the rest through the normal submit
API, and a submit whose answer is lost is retried with its key and stored once."""
import pytest

from labeling.models import Annotation, AnnotationKind, Role, Task, TaskStatus

from .conftest import sign_in
from .factories import classification_scene

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_annotator_verifies_a_grid_and_a_lost_answer_stores_one_annotation(page, make_user):
    annotator = make_user("ann")
    scene = classification_scene(members={annotator: Role.ANNOTATOR}, images=4)
    project, cat = scene.project, scene.classes["cat"]
    lost = []

    def lose_first_answer(route):
        # The first submit reaches the server and is stored; its answer never arrives.
        if not lost:
            lost.append(route.fetch().status)
            route.abort()
        else:
            route.continue_()

    page.console.allow_network_cut = True
    page.route("**/api/tasks/*/annotations/", lose_first_answer)
    sign_in(page, "ann")
    page.goto(f"/projects/{project.pk}/annotate/grid/")
    page.locator("#grid .thumb-cell").nth(3).wait_for()
    assert page.inner_text("#grid-class") == "cat"
    assert page.locator("#grid .thumb-cell[aria-pressed=true]").count() == 4
    page.wait_for_function("[...document.querySelectorAll('#grid img')].every((img) => img.complete && img.naturalWidth)")

    page.focus("#grid")
    page.keyboard.press("ArrowRight")
    page.keyboard.press(" ")
    aside_task = int(page.locator("#grid .thumb-cell[aria-pressed=false]").get_attribute("data-id"))
    page.wait_for_timeout(350)  # the grid has been on screen long enough to be seen
    page.keyboard.press("Enter")
    page.locator("#grid-save-state[data-state=saved]").wait_for()
    page.locator("#grid-notice", has_text="nothing left to label").wait_for()

    assert lost == [201]
    labels = Annotation.objects.filter(project=project, author=annotator)
    assert labels.count() == 3
    assert set(labels.values_list("kind", flat=True)) == {AnnotationKind.ACCEPT}
    assert all(a.payload == {"labels": [cat.pk]} for a in labels)
    aside = Task.objects.get(pk=aside_task)
    assert aside.status == TaskStatus.OPEN and aside.lease_holder is None
    assert not labels.filter(task_id=aside_task).exists()
