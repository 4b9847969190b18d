"""The annotate page end to end: real Chromium, the real queue API, PostgreSQL."""
import pytest

from labeling.models import Annotation, Role, Task

from .conftest import ARTIFACTS, sign_in, wait_for_js
from .factories import IMAGE_W, classification_scene, detection_scene

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def scene(make_user):
    annotator = make_user("ann")
    return detection_scene(members={annotator: Role.ANNOTATOR})


def open_annotate(page, scene) -> int:
    """Sign in as the annotator, open the label stream, wait for the first image to paint."""
    sign_in(page, "ann")
    page.goto(f"/projects/{scene.project.pk}/annotate/")
    wait_for_js(page, "(r => r.dataset.armed && r.dataset.armed === r.dataset.taskId)"
                           "(document.getElementById('annotate'))")
    return int(page.get_attribute("#annotate", "data-task-id"))


def box_rect(page, index: int) -> dict:
    return page.locator(f'[data-box-index="{index}"] .box-rect').bounding_box()


def wait_saved_and_next(page, previous_task: int) -> None:
    """The submit landed and the next image is on screen, long enough for submits to count."""
    wait_for_js(page,
        "prev => { const r = document.getElementById('annotate');"
        " return r.dataset.armed && r.dataset.armed === r.dataset.taskId && r.dataset.armed !== String(prev); }",
        arg=previous_task,
    )
    wait_for_js(page, "document.getElementById('save-state').dataset.state === 'saved'")


def test_corrected_prelabels_land_in_postgres_exactly_as_edited(page, scene):
    task_id = open_annotate(page, scene)
    task = Task.objects.get(pk=task_id)
    assert task.lease_holder.username == "ann"
    # Two pre-labels with their class and confidence.
    assert page.locator(".box.model").count() == 2
    assert "car 0.91" in page.locator('[data-box-index="0"]').text_content()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "annotate.png"))

    car = box_rect(page, 0)
    scale = page.locator(".stage-image").bounding_box()["width"] / IMAGE_W
    start = (car["x"] + car["width"] / 2, car["y"] + car["height"] / 2)
    page.mouse.move(*start)
    page.mouse.down()
    for step in range(1, 6):
        page.mouse.move(start[0] + 30 * step, start[1] + 20 * step)
    page.mouse.up()
    moved_dx, moved_dy = 150 / scale, 100 / scale

    person = box_rect(page, 1)
    page.mouse.click(person["x"] + person["width"] / 2, person["y"] + person["height"] / 2)
    page.keyboard.press("3")  # the tree class's hotkey
    assert page.locator('[data-box-index="1"]').get_attribute("data-label") == str(scene.classes["tree"].pk)
    assert page.text_content("#submit") == "Submit (Enter)"

    page.keyboard.press("Enter")
    wait_saved_and_next(page, task_id)

    annotations = list(Annotation.objects.filter(task_id=task_id))
    assert len(annotations) == 1
    annotation = annotations[0]
    assert annotation.kind == "correct"
    assert annotation.author.username == "ann"
    assert annotation.prediction_id == scene.predictions[task.image_id].pk
    assert annotation.time_spent_ms > 0
    car_box, person_box = annotation.payload["boxes"]
    assert car_box["label"] == scene.classes["car"].pk
    assert car_box["x1"] == pytest.approx(40 + moved_dx, abs=1.0)
    assert car_box["y1"] == pytest.approx(40 + moved_dy, abs=1.0)
    assert car_box["x2"] - car_box["x1"] == pytest.approx(120, abs=0.02)
    assert car_box["y2"] - car_box["y1"] == pytest.approx(80, abs=0.02)
    assert person_box == {"x1": 380.0, "y1": 260.0, "x2": 500.0, "y2": 420.0, "label": scene.classes["tree"].pk}
    assert Task.objects.get(pk=task_id).status == "done"


def test_submit_made_offline_is_kept_and_sent_once_when_the_network_returns(page, scene):
    page.console.allow_network_cut = True
    task_id = open_annotate(page, scene)
    wait_for_js(page, "document.getElementById('annotate').dataset.prefetched")

    page.context.set_offline(True)
    page.keyboard.press("Enter")  # accept the pre-labels as they are
    # The next image shows at once from the prefetch; the submit waits in the browser.
    wait_for_js(page,
        "prev => document.getElementById('annotate').dataset.painted !== String(prev)", arg=task_id
    )
    wait_for_js(page, "document.getElementById('save-state').dataset.state === 'offline'")
    assert "Offline" in page.text_content("#save-state")
    stored = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('vision:submits:'))"
                           ".map(k => JSON.parse(localStorage.getItem(k))).flat()")
    assert [item["taskId"] for item in stored] == [task_id]
    assert not Annotation.objects.filter(task_id=task_id).exists()

    page.context.set_offline(False)
    wait_for_js(page, "document.getElementById('save-state').dataset.state === 'saved'")
    annotations = list(Annotation.objects.filter(task_id=task_id))
    assert len(annotations) == 1
    assert annotations[0].kind == "accept"
    assert annotations[0].idempotency_key == stored[0]["key"]


def test_submit_whose_response_was_lost_is_retried_with_its_key_and_stored_once(page, scene):
    page.console.allow_network_cut = True
    sent = []

    def lose_first_response(route):
        sent.append(route.request.headers["idempotency-key"])
        if len(sent) == 1:
            route.fetch()  # the server stores it; the browser never hears back
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/api/tasks/*/annotations/", lose_first_response)
    task_id = open_annotate(page, scene)
    page.keyboard.press("Enter")
    wait_saved_and_next(page, task_id)

    assert len(sent) == 2 and sent[0] == sent[1]
    assert Annotation.objects.filter(task_id=task_id).count() == 1


def test_skip_flag_undo_and_help_from_the_keyboard(page, scene):
    first = open_annotate(page, scene)
    page.keyboard.press("?")
    assert page.is_visible("#help")
    page.keyboard.press("Escape")

    car = box_rect(page, 0)
    page.mouse.click(car["x"] + 5, car["y"] + car["height"] / 2)
    page.keyboard.press("Delete")
    assert page.locator(".box").count() == 1
    page.keyboard.press("Control+z")
    assert page.locator(".box").count() == 2
    page.keyboard.press("Control+Shift+z")
    assert page.locator(".box").count() == 1
    page.keyboard.press("h")
    assert page.locator(".box").count() == 0  # the remaining box is the model's; hidden

    page.keyboard.press("s")
    wait_saved_and_next(page, first)
    second = int(page.get_attribute("#annotate", "data-task-id"))
    page.keyboard.press("f")
    page.fill("#flag-reason", "too dark to tell")
    page.keyboard.press("Enter")
    wait_saved_and_next(page, second)

    assert Annotation.objects.get(task_id=first).kind == "skip"
    flag = Annotation.objects.get(task_id=second)
    assert (flag.kind, flag.flag_reason) == ("flag", "too dark to tell")


def test_large_image_shows_the_display_version_first_and_the_original_on_zoom(page, make_user):
    annotator = make_user("ann")
    scene = detection_scene(members={annotator: Role.ANNOTATOR}, images=2, width=4000, height=3000)
    task_id = open_annotate(page, scene)
    image = Task.objects.get(pk=task_id).image
    stage_image = page.locator(".stage-image")
    assert stage_image.evaluate("img => img.naturalWidth") == 1600
    assert image.display_file.url in stage_image.get_attribute("src")

    car = box_rect(page, 0)
    page.mouse.move(car["x"] + car["width"] / 2, car["y"] + car["height"] / 2)
    for _ in range(12):
        page.mouse.wheel(0, -240)
    wait_for_js(page, "document.querySelector('.stage-image').dataset.resolution === 'full'")
    assert stage_image.evaluate("img => img.naturalWidth") == 4000
    assert image.file.url in stage_image.get_attribute("src")

    # Drawn at high zoom, the box is still stored in original-image pixels.
    scale = stage_image.bounding_box()["width"] / 4000
    car = box_rect(page, 0)
    start = (car["x"] + car["width"] / 2, car["y"] + car["height"] / 2)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 40, start[1] + 40, steps=4)
    page.mouse.up()
    page.keyboard.press("Enter")
    wait_saved_and_next(page, task_id)
    car_box = Annotation.objects.get(task_id=task_id).payload["boxes"][0]
    assert car_box["x1"] == pytest.approx(40 + 40 / scale, abs=1.0)
    assert car_box["x2"] - car_box["x1"] == pytest.approx(120, abs=0.02)


def test_open_page_keeps_its_leases_alive(page, scene):
    scene.project.lease_ttl_seconds = 3
    scene.project.save(update_fields=["lease_ttl_seconds"])
    task_id = open_annotate(page, scene)
    first_expiry = Task.objects.get(pk=task_id).lease_expires_at
    page.wait_for_timeout(3500)  # past the first lease's end: only heartbeats can keep it
    task = Task.objects.get(pk=task_id)
    assert task.lease_holder.username == "ann"
    assert task.lease_expires_at > first_expiry


def test_leaving_the_page_gives_its_leases_back(page, scene):
    task_id = open_annotate(page, scene)
    wait_for_js(page, "document.getElementById('annotate').dataset.prefetched")
    held = set(Task.objects.filter(lease_holder__username="ann").values_list("pk", flat=True))
    assert task_id in held and len(held) == 2  # the shown image and the prefetched one
    page.goto("/")
    page.wait_for_timeout(500)
    assert not Task.objects.filter(pk__in=held, lease_holder__isnull=False).exists()
    assert not Task.objects.filter(pk__in=held, lease_expires_at__isnull=False).exists()


def test_classification_tag_chosen_by_hotkey_then_accepted_as_is(page, make_user):
    annotator = make_user("ann")
    scene = classification_scene(members={annotator: Role.ANNOTATOR})
    cat, dog = scene.classes["cat"].pk, scene.classes["dog"].pk
    first = open_annotate(page, scene)
    assert page.get_attribute(".class-row.active", "data-class-id") == str(cat)
    assert "0.70" in page.text_content(f'.class-row[data-class-id="{cat}"]')

    page.keyboard.press("2")  # dog's hotkey
    assert page.get_attribute(".class-row.active", "data-class-id") == str(dog)
    page.keyboard.press("Enter")
    wait_saved_and_next(page, first)
    second = int(page.get_attribute("#annotate", "data-task-id"))
    page.keyboard.press("Enter")
    wait_for_js(page, "document.getElementById('save-state').dataset.state === 'saved'")
    wait_for_js(page, "Object.keys(localStorage).every(k => !k.startsWith('vision:submits:')"
                           " || localStorage.getItem(k) === '[]')")

    corrected = Annotation.objects.get(task_id=first)
    assert (corrected.kind, corrected.payload) == ("correct", {"labels": [dog]})
    accepted = Annotation.objects.get(task_id=second)
    assert accepted.kind == "accept"
