"""A class named like markup is shown as text on every page: nothing it says runs."""
import pytest

from labeling.models import Annotation, Role, Task

from .conftest import sign_in
from .factories import detection_scene

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
HOSTILE = "<img src=x onerror=alert(1)>"
# Shows the name as text (or as a form field's value) and has no element the name made.
SHOWN_AS_TEXT = """name => (document.body.innerText.includes(name)
  || [...document.querySelectorAll('input, option')].some(e => (e.value || e.textContent) === name
      || e.textContent.includes(name)))
  && !document.querySelector('img[src="x"]')"""


def test_a_class_named_like_markup_renders_as_text_on_every_page(page, make_user):
    admin = make_user("adm")
    scene = detection_scene(members={admin: Role.ADMIN}, images=2)
    car = scene.classes["car"]
    car.name = HOSTILE
    car.save()
    task = Task.objects.filter(project=scene.project).order_by("-priority").last()
    Annotation.objects.create(project=scene.project, image=task.image, task=task, author=admin, kind="correct",
                              payload={"boxes": [{"x1": 10.0, "y1": 10.0, "x2": 90.0, "y2": 90.0, "label": car.pk}]})
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, "adm")
    pid = scene.project.pk
    pages = [
        (f"/projects/{pid}/annotate/", "#annotate[data-painted]"),
        (f"/projects/{pid}/review/", "#review-count:not(:empty)"),
        (f"/projects/{pid}/images/", "#browser-count:not(:empty)"),
        (f"/projects/{pid}/images/{task.image_id}/", "#save-state"),
        (f"/projects/{pid}/models/", "#versions-body tr[data-version='1']"),
        (f"/projects/{pid}/settings/", "#classes-body tr"),
        (f"/projects/{pid}/reports/", "#reports .subnav a.current"),
    ]
    shown_on = []
    for path, ready in pages:
        page.goto(path)
        page.wait_for_selector(ready, state="attached")
        page.wait_for_load_state("networkidle")
        assert page.locator('img[src="x"]').count() == 0, path
        if page.evaluate(SHOWN_AS_TEXT, HOSTILE):
            shown_on.append(path)
    assert dialogs == []
    # The editor, review, image browser and settings list the classes by name.
    assert {p.split("/")[3] for p in shown_on} >= {"annotate", "review", "images", "settings"}, shown_on
    page.goto(f"/projects/{pid}/annotate/")
    page.wait_for_selector("#annotate[data-painted]", state="attached")
    assert page.get_by_text(HOSTILE).first.is_visible()
