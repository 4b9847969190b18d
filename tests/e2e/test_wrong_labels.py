"""Wrong labels must not go in silently: the annotate and settings pages in real Chromium,
one test per way a label used to slip in unseen or unmeant."""
import pytest

from core.models import LabelClass, Project, Split
from labeling.models import Annotation, Role, Task, TaskStatus
from labeling.review import REJECT, annotation_review
from labeling.services import label_class_create
from tests.factories import ImageFactory, TaskFactory

from .conftest import sign_in, wait_for_js
from .factories import detection_scene

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Longer than the editor's minimal viewing time, as a person looks before deciding.
LOOK_MS = 450


def current_task(page) -> int:
    return int(page.get_attribute("#annotate", "data-task-id"))


def look_at_next(page, previous: int | None = None) -> int:
    """Wait until a task other than `previous` is painted, then look at it for a moment."""
    wait_for_js(page,
        "prev => { const r = document.getElementById('annotate');"
        " return r.dataset.taskId && r.dataset.painted === r.dataset.taskId && r.dataset.taskId !== prev; }",
        arg=str(previous),
    )
    page.wait_for_timeout(LOOK_MS)
    return current_task(page)


def open_annotate(page, project, username="ann") -> int:
    sign_in(page, username)
    page.goto(f"/projects/{project.pk}/annotate/")
    return look_at_next(page)


def wait_saved(page) -> None:
    wait_for_js(page, "document.getElementById('save-state').dataset.state === 'saved'")
    wait_for_js(page, "Object.keys(localStorage).every(k => !k.startsWith('vision:submits:')"
                           " || localStorage.getItem(k) === '[]')")


def digits_project(annotator) -> tuple[Project, dict]:
    """Classes made in the order their first labelled image brought them (as the demo
    does), no model yet, one image per class name."""
    project = Project.objects.create(name="Digits", task_type="classification")
    project.memberships.create(user=annotator, role=Role.ANNOTATOR)
    classes = {name: label_class_create(project=project, name=name) for name in "3719028465"}
    for n in range(2):
        TaskFactory(image=ImageFactory(project=project, split=Split.TRAIN), priority=1 - n / 10)
    return project, classes


def test_a_digit_class_is_chosen_by_its_own_digit(page, make_user):
    project, classes = digits_project(make_user("ann"))
    first = open_annotate(page, project)
    assert page.text_content(f'.class-row[data-class-id="{classes["7"].pk}"] kbd') == "7"
    page.keyboard.press("7")
    assert page.get_attribute(".class-row.active", "data-class-id") == str(classes["7"].pk)
    page.keyboard.press("0")
    assert page.get_attribute(".class-row.active", "data-class-id") == str(classes["0"].pk)
    page.keyboard.press("Enter")
    look_at_next(page, first)
    wait_saved(page)
    assert Annotation.objects.get(task_id=first).payload == {"labels": [classes["0"].pk]}


def test_a_class_key_is_set_on_the_settings_page_and_a_taken_key_is_refused_readably(page, make_user):
    admin = make_user("adm")
    project = Project.objects.create(name="Pets", task_type="classification")
    project.memberships.create(user=admin, role=Role.ADMIN)
    cat = label_class_create(project=project, name="cat")
    dog = label_class_create(project=project, name="dog")
    sign_in(page, "adm")
    page.goto(f"/projects/{project.pk}/settings/")
    dog_row = page.locator("#classes-body tr").nth(1)
    dog_row.locator('input[aria-label="hotkey"]').fill("d")
    dog_row.get_by_role("button", name="Save").click()
    page.wait_for_selector(".toast:has-text('Saved dog')")
    assert LabelClass.objects.get(pk=dog.pk).hotkey == "d"

    cat_row = page.locator("#classes-body tr").nth(0)
    cat_row.locator('input[aria-label="hotkey"]').fill("d")
    cat_row.get_by_role("button", name="Save").click()
    error = page.locator(".toast-error").first
    error.wait_for()
    assert 'taken by class "dog"' in error.text_content()
    assert "Constraint" not in error.text_content() and "__all__" not in error.text_content()
    assert LabelClass.objects.get(pk=cat.pk).hotkey == "1"

    page.fill("#class-form input[name=name]", "bird")
    page.fill("#class-form input[name=hotkey]", "1")
    page.click("#class-form button[type=submit]")
    page.locator(".toast-error:has-text('taken by class \"cat\"')").wait_for()
    assert not LabelClass.objects.filter(project=project, name="bird").exists()
    # The two refusals are the 400 answers the browser logs; nothing else may be there.
    refused = [e for e in page.console.errors if "status of 400" in e]
    assert len(refused) == 2
    page.console.errors[:] = [e for e in page.console.errors if e not in refused]


def test_enter_with_no_class_picked_is_refused_and_stores_nothing(page, make_user):
    project, classes = digits_project(make_user("ann"))
    first = open_annotate(page, project)
    assert page.locator(".class-row.active").count() == 0
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert not Annotation.objects.exists()
    assert current_task(page) == first
    notice = page.locator("#notice")
    assert "Choose a class" in notice.text_content() and notice.is_visible()

    page.keyboard.press("4")
    assert notice.is_hidden()
    page.keyboard.press("Enter")
    look_at_next(page, first)
    wait_saved(page)
    assert Annotation.objects.get(task_id=first).payload == {"labels": [classes["4"].pk]}


def test_an_image_without_boxes_is_stored_empty_only_by_the_no_objects_choice(page, make_user):
    scene = detection_scene(members={make_user("ann"): Role.ANNOTATOR}, images=3)
    for prediction in scene.predictions.values():
        prediction.payload = {"boxes": []}
        prediction.save(update_fields=["payload"])
    first = open_annotate(page, scene.project)
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert not Annotation.objects.exists()
    assert current_task(page) == first
    notice = page.locator("#notice")
    assert notice.is_visible() and "No objects here" in notice.text_content()

    page.keyboard.press("?")
    assert "No objects here" in page.text_content("#help")
    page.keyboard.press("Escape")
    page.keyboard.press("n")
    second = look_at_next(page, first)
    wait_saved(page)
    empty = Annotation.objects.get(task_id=first)
    assert (empty.kind, empty.payload) == ("accept", {"boxes": []})

    page.click("button[data-action=no-objects]")
    look_at_next(page, second)
    wait_saved(page)
    assert Annotation.objects.get(task_id=second).payload == {"boxes": []}


def test_no_objects_is_refused_while_boxes_are_on_the_image(page, make_user):
    scene = detection_scene(members={make_user("ann"): Role.ANNOTATOR}, images=2)
    first = open_annotate(page, scene.project)
    page.keyboard.press("n")
    page.wait_for_timeout(300)
    assert not Annotation.objects.exists() and current_task(page) == first
    assert page.is_visible("#notice") and "2 boxes" in page.text_content("#notice")


def test_a_double_or_held_enter_submits_only_the_image_that_was_seen(page, make_user):
    scene = detection_scene(members={make_user("ann"): Role.ANNOTATOR}, images=3)
    first = open_annotate(page, scene.project)
    wait_for_js(page, "document.getElementById('annotate').dataset.prefetched")

    page.keyboard.press("Enter")
    page.keyboard.press("Enter")  # a bounce: the next image is not even painted yet
    second = look_at_next(page, first)
    page.wait_for_timeout(500)
    wait_saved(page)
    assert list(Annotation.objects.values_list("task_id", flat=True)) == [first]
    assert current_task(page) == second
    assert Task.objects.get(pk=second).status == TaskStatus.OPEN

    wait_for_js(page, "document.getElementById('annotate').dataset.prefetched")
    page.keyboard.down("Enter")
    page.wait_for_timeout(600)  # held: the key repeats once the next image is on screen
    page.keyboard.down("Enter")
    page.keyboard.down("Enter")
    page.keyboard.up("Enter")
    third = look_at_next(page, second)
    page.wait_for_timeout(300)
    wait_saved(page)
    assert list(Annotation.objects.order_by("id").values_list("task_id", flat=True)) == [first, second]
    assert current_task(page) == third


def test_skipped_and_rejected_images_come_back_to_the_only_annotator(page, make_user):
    annotator, lead = make_user("ann"), make_user("lea")
    scene = detection_scene(members={annotator: Role.ANNOTATOR, lead: Role.LEAD}, images=2)
    first = open_annotate(page, scene.project)
    first_image = Task.objects.get(pk=first).image_id
    page.keyboard.press("s")
    second = look_at_next(page, first)
    second_image = Task.objects.get(pk=second).image_id
    assert second_image != first_image
    page.keyboard.press("Enter")
    again = look_at_next(page, second)
    assert Task.objects.get(pk=again).image_id == first_image  # the skipped image, last
    page.keyboard.press("Enter")
    wait_for_js(page, "!document.getElementById('empty').hidden")
    wait_saved(page)
    assert "Nothing left" in page.text_content("#empty")

    label = Annotation.objects.get(task_id=second)
    annotation_review(annotation_id=label.pk, reviewer=lead, decision=REJECT, comment="the person is a tree")
    page.reload()
    back = look_at_next(page)
    assert Task.objects.get(pk=back).image_id == second_image
