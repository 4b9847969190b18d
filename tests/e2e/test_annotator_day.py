"""An annotator's day on the annotate page: progress, what a skip or a flag does, edits
kept across a reload, the lead's reason for a rejection, and brightness for dark photos."""
import time

import pytest

from labeling.models import Annotation, Role, Task
from labeling.queue import api as queue_api
from labeling.review import REJECT, annotation_review

from .conftest import sign_in, wait_for_js
from .factories import detection_scene
from .test_wrong_labels import current_task, look_at_next, wait_saved

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def scene(make_user):
    return detection_scene(members={make_user("ann"): Role.ANNOTATOR, make_user("lea"): Role.LEAD}, images=3)


def open_annotate(page, scene) -> int:
    sign_in(page, "ann")
    page.goto(f"/projects/{scene.project.pk}/annotate/")
    return look_at_next(page)


def test_the_toolbar_counts_labels_done_today_and_tasks_left(page, scene):
    first = open_annotate(page, scene)
    wait_for_js(page, "document.getElementById('progress').textContent.includes('left')")
    assert page.text_content("#progress") == "Today: 0 done · 3 left"
    page.keyboard.press("Enter")
    second = look_at_next(page, first)
    assert page.text_content("#progress") == "Today: 1 done · 2 left"
    page.keyboard.press("s")
    look_at_next(page, second)
    assert page.text_content("#progress") == "Today: 1 done · 2 left"  # a skip is no label
    wait_saved(page)


def test_a_skip_and_a_flag_say_what_happens_to_the_image(page, scene):
    first = open_annotate(page, scene)
    page.keyboard.press("s")
    page.locator(".toast:has-text('Skipped')").wait_for()
    assert "comes back to you" in page.text_content(".toast:has-text('Skipped')")
    second = look_at_next(page, first)
    page.keyboard.press("f")
    page.fill("#flag-reason", "too dark")
    page.keyboard.press("Enter")
    page.locator(".toast:has-text('Flagged as unclear')").wait_for()
    assert "A lead will look at it" in page.text_content(".toast:has-text('Flagged as unclear')")
    look_at_next(page, second)
    wait_saved(page)


def test_edits_not_yet_submitted_survive_a_reload(page, scene):
    first = open_annotate(page, scene)
    box = page.locator('[data-box-index="0"] .box-rect').bounding_box()
    page.mouse.click(box["x"] + 5, box["y"] + box["height"] / 2)
    page.keyboard.press("Delete")
    assert page.locator(".box").count() == 1
    page.reload()
    assert look_at_next(page) == first
    page.locator(".toast:has-text('unsubmitted changes')").wait_for()
    assert page.locator(".box").count() == 1
    page.keyboard.press("Enter")
    look_at_next(page, first)
    wait_saved(page)
    label = Annotation.objects.get(task_id=first)
    assert label.kind == "correct" and [b["label"] for b in label.payload["boxes"]] == [scene.classes["person"].pk]
    assert page.evaluate("localStorage.getItem('vision:drafts:' + document.getElementById('annotate')"
                         ".dataset.userId)") is None


def test_a_reload_brings_back_the_drafted_image_when_a_release_lands_late(page, scene, monkeypatch):
    """Leaving the page with unsubmitted edits gives back only the prefetched task; the shown
    one stays leased, so a slow release cannot make the reloaded page serve the prefetched
    task instead of the image the draft belongs to."""
    real_release = queue_api.task_lease_release
    shown = []

    def slow_release(*, task, user):
        if task.pk not in shown:  # the shown task's release (if any) lands first
            time.sleep(1.5)
        return real_release(task=task, user=user)

    monkeypatch.setattr(queue_api, "task_lease_release", slow_release)
    first = open_annotate(page, scene)
    shown.append(first)
    wait_for_js(page, "!!document.getElementById('annotate').dataset.prefetched")
    box = page.locator('[data-box-index="0"] .box-rect').bounding_box()
    page.mouse.click(box["x"] + 5, box["y"] + box["height"] / 2)
    page.keyboard.press("Delete")
    page.reload()
    assert look_at_next(page) == first
    assert Task.objects.get(pk=first).lease_holder.username == "ann"
    page.locator(".toast:has-text('unsubmitted changes')").wait_for()


def test_a_rejected_image_comes_back_with_the_leads_comment(page, make_user):
    scene = detection_scene(members={make_user("ann"): Role.ANNOTATOR, make_user("lea"): Role.LEAD}, images=1)
    first = open_annotate(page, scene)
    assert page.is_hidden("#review-note")
    page.keyboard.press("Enter")
    wait_for_js(page, "!document.getElementById('empty').hidden")
    wait_saved(page)
    label = Annotation.objects.get(task_id=first)
    lead = scene.project.memberships.get(role=Role.LEAD).user
    annotation_review(annotation_id=label.pk, reviewer=lead, decision=REJECT, comment="the person is a tree")
    page.reload()
    back = look_at_next(page)
    assert Task.objects.get(pk=back).image_id == label.image_id
    note = page.text_content("#review-note")
    assert "lea (lead) rejected your earlier label" in note and "the person is a tree" in note
    page.keyboard.press("Enter")
    wait_for_js(page, "!document.getElementById('empty').hidden")
    wait_saved(page)
    assert Annotation.objects.filter(task_id=back, kind="accept").exists()


def test_brightness_and_contrast_change_the_view_of_every_image_not_the_label(page, scene):
    first = open_annotate(page, scene)

    def set_range(selector, value):
        page.locator(selector).evaluate(
            "(input, value) => { input.value = value; input.dispatchEvent(new Event('input')); }", value)

    def image_filter():
        return page.locator(".stage-image").evaluate("img => getComputedStyle(img).filter")

    assert image_filter() == "none"
    set_range("#brightness", "200")
    set_range("#contrast", "150")
    assert image_filter() == "brightness(2) contrast(1.5)"
    page.keyboard.press("Enter")
    look_at_next(page, first)
    assert image_filter() == "brightness(2) contrast(1.5)"  # kept for the next photo
    page.click("button[data-action=reset-filter]")
    assert image_filter() == "none"
    wait_saved(page)
    assert Annotation.objects.get(task_id=first).kind == "accept"
    assert current_task(page) != first
