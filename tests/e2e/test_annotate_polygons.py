"""The segmentation editor end to end: real Chromium, the real queue API, PostgreSQL. Points
are placed at image pixels mapped through the displayed scale, and must land within 1 px."""
import io

import numpy as np
import pytest
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from core.models import ModelVersion, Prediction, Project, Split
from labeling.models import Annotation, AnnotationKind, Membership, Role, Task, TaskStatus
from labeling.selectors import image_current_label
from labeling.services import label_class_create
from tests.factories import ImageFactory, TaskFactory
from tests.labeling.test_segment_assist import PENTAGON, mask_iou, synthetic_scene

from .conftest import sign_in, wait_for_js
from .factories import IMAGE_H, IMAGE_W, Scene
from .test_annotate import open_annotate, wait_saved_and_next

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PRELABEL = [[60.0, 60.0], [260.0, 70.0], [240.0, 220.0], [70.0, 200.0]]
# An instance with a hole, which the editor must pass through untouched.
RINGED = [[[400.0, 250.0], [600.0, 250.0], [600.0, 450.0], [400.0, 450.0]],
          [[450.0, 300.0], [550.0, 300.0], [550.0, 400.0], [450.0, 400.0]]]


def segmentation_scene(*, members: dict, images: int = 2, prelabels: bool = False, pixels=None) -> Scene:
    project = Project.objects.create(name="Leaves", task_type="segmentation")
    for user, role in members.items():
        Membership.objects.create(project=project, user=user, role=role)
    classes = {
        name: label_class_create(project=project, name=name, hotkey=hotkey)
        for name, hotkey in (("leaf", "1"), ("stem", "2"), ("bug", "3"))
    }
    version = ModelVersion.objects.create(
        project=project, number=1, backend="yolo", is_deployed=prelabels, status="deployed" if prelabels else "ready",
        class_ids=[c.pk for c in classes.values()], primary_metric=0.5,
    )
    scene = Scene(project=project, classes=classes, version=version)
    for n in range(images):
        extra = {}
        if pixels is not None:
            out = io.BytesIO()
            PILImage.fromarray(pixels).save(out, "PNG")
            extra["file"] = ContentFile(out.getvalue(), name=f"scene{n}.png")
        image = ImageFactory(project=project, width=IMAGE_W, height=IMAGE_H, split=Split.TRAIN, **extra)
        priority = 1.0 - n / 10
        if prelabels:
            payload = {"polygons": [
                {"label": classes["leaf"].pk, "points": PRELABEL, "score": 0.8},
                {"label": classes["bug"].pk, "rings": RINGED, "score": 0.6},
            ]}
            scene.predictions[image.pk] = Prediction.objects.create(
                image=image, model_version=version, payload=payload, uncertainty=priority)
        TaskFactory(image=image, priority=priority)
    return scene


def to_page(page, x: float, y: float) -> tuple[float, float]:
    """Image pixels to page pixels, through the stage's displayed scale and offset."""
    shown = page.locator(".stage-image").bounding_box()
    scale = shown["width"] / IMAGE_W
    return shown["x"] + x * scale, shown["y"] + y * scale


def drag(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*to_page(page, *start))
    page.mouse.down()
    for step in range(1, 6):
        page.mouse.move(*to_page(page, start[0] + (end[0] - start[0]) * step / 5,
                                 start[1] + (end[1] - start[1]) * step / 5))
    page.mouse.up()


def assert_points_close(stored: list, expected: list, tolerance: float = 1.0) -> None:
    assert len(stored) == len(expected), stored
    for got, want in zip(stored, expected, strict=True):
        assert got == pytest.approx(want, abs=tolerance), (stored, expected)


def test_drawn_polygon_with_a_dragged_and_an_inserted_vertex_lands_within_a_pixel(page, make_user):
    annotator = make_user("ann")
    scene = segmentation_scene(members={annotator: Role.ANNOTATOR})
    task_id = open_annotate(page, scene)
    assert page.text_content(".sidebar h2:nth-of-type(2)") == "Shapes"

    page.keyboard.press("2")  # draw "stem"
    for x, y in ((100, 100), (300, 100), (300, 300), (100, 300)):
        page.mouse.click(*to_page(page, x, y))
    assert page.get_attribute("#annotate", "data-tool") == "drawing"
    page.keyboard.press("Enter")  # closes the shape; it does not submit
    assert page.locator(".polygon").count() == 1
    assert page.locator(".vertex").count() == 4
    assert page.get_attribute("#annotate", "data-tool") == "polygon"

    drag(page, (300, 100), (350, 80))  # the second vertex
    drag(page, (200, 300), (200, 340))  # on the bottom edge: a new vertex, dragged down
    assert page.locator(".vertex").count() == 5
    page.keyboard.press("Control+z")
    assert page.locator(".vertex").count() == 4
    page.keyboard.press("Control+Shift+z")
    assert page.locator(".vertex").count() == 5
    page.keyboard.press("3")  # the selected shape becomes a "bug"
    assert page.locator(".polygon").get_attribute("data-label") == str(scene.classes["bug"].pk)

    page.keyboard.press("Enter")
    wait_saved_and_next(page, task_id)
    annotation = Annotation.objects.get(task_id=task_id)
    assert annotation.kind == "correct"
    (instance,) = annotation.payload["polygons"]
    assert instance["label"] == scene.classes["bug"].pk
    assert_points_close(instance["points"], [[100, 100], [350, 80], [300, 300], [200, 340], [100, 300]])


def test_prelabel_polygon_is_shown_edited_and_submitted_with_the_ringed_one_untouched(page, make_user):
    annotator = make_user("ann")
    scene = segmentation_scene(members={annotator: Role.ANNOTATOR}, prelabels=True)
    task_id = open_annotate(page, scene)
    image_id = int(page.get_attribute("#annotate", "data-image-id"))
    assert page.locator(".polygon.model").count() == 2
    assert "leaf 0.80" in page.locator('[data-polygon-index="0"]').text_content()

    page.mouse.click(*to_page(page, 150, 130))  # inside the leaf: selects it
    assert page.locator(".vertex").count() == 4
    page.mouse.click(*to_page(page, 60, 60))  # its first vertex
    page.keyboard.press("Delete")
    assert page.locator(".vertex").count() == 3
    page.keyboard.press("Delete")  # with no vertex selected, Delete removes the shape; undo brings it back
    assert page.locator(".polygon").count() == 1
    page.keyboard.press("Control+z")
    assert page.locator(".polygon").count() == 2
    drag(page, (190, 163), (230, 193))  # the whole shape by its inside
    assert page.locator(".polygon.model").count() == 1

    page.keyboard.press("Enter")
    wait_saved_and_next(page, task_id)
    annotation = Annotation.objects.get(task_id=task_id)
    assert annotation.kind == "correct"
    assert annotation.prediction_id == scene.predictions[image_id].pk
    leaf, ringed = annotation.payload["polygons"]
    assert leaf["label"] == scene.classes["leaf"].pk
    assert_points_close(leaf["points"], [[x + 40, y + 30] for x, y in PRELABEL[1:]])
    assert ringed == {"label": scene.classes["bug"].pk, "rings": RINGED}


def test_box_assist_outlines_the_object_and_the_outline_is_submitted(page, make_user):
    pixels, truth = synthetic_scene(IMAGE_W, IMAGE_H, PENTAGON)
    annotator = make_user("ann")
    scene = segmentation_scene(members={annotator: Role.ANNOTATOR}, pixels=pixels)
    task_id = open_annotate(page, scene)
    page.keyboard.press("b")
    assert page.get_attribute("#annotate", "data-tool") == "assist"
    drag(page, (170, 90), (480, 390))
    wait_for_js(page, "document.querySelectorAll('.polygon').length === 1")
    assert page.get_attribute("#annotate", "data-tool") == "polygon"
    assert page.locator(".vertex").count() >= 5  # selected, ready for correction

    page.keyboard.press("Enter")
    wait_saved_and_next(page, task_id)
    (instance,) = Annotation.objects.get(task_id=task_id).payload["polygons"]
    assert instance["label"] == scene.classes["leaf"].pk
    assert mask_iou(instance["points"], truth) >= 0.9
    assert np.array(instance["points"]).shape[1] == 2


def test_a_lead_edits_a_prelabel_polygon_in_the_image_editor_and_saves_it(page, make_user):
    lead = make_user("lea")
    scene = segmentation_scene(members={lead: Role.LEAD}, images=1, prelabels=True)
    image = next(iter(scene.predictions.values())).image
    sign_in(page, "lea")
    page.goto(f"/projects/{scene.project.pk}/images/{image.pk}/")
    page.locator("#image-edit[data-loaded=true]").wait_for()
    assert page.locator("#box-list .box-row").count() == 2
    page.mouse.click(*to_page(page, 150, 130))  # selects the leaf
    drag(page, (240, 220), (250, 260))  # its third vertex
    page.keyboard.press("Enter")
    wait_for_js(page, "document.querySelector('#save-state').textContent === 'Label saved'")
    leaf, ringed = image_current_label(image)["polygons"]
    assert_points_close(leaf["points"], [PRELABEL[0], PRELABEL[1], [250, 260], PRELABEL[3]])
    assert ringed == {"label": scene.classes["bug"].pk, "rings": RINGED}


def test_a_lead_fixes_a_shapes_class_in_review_and_its_outline_is_kept(page, make_user):
    annotator, lead = make_user("ann"), make_user("lea")
    scene = segmentation_scene(members={annotator: Role.ANNOTATOR, lead: Role.LEAD}, images=1)
    task = Task.objects.get(project=scene.project)
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.DONE, completed_by=annotator)
    leaf, bug = scene.classes["leaf"].pk, scene.classes["bug"].pk
    annotation = Annotation.objects.create(
        project=scene.project, image=task.image, task=task, author=annotator, kind=AnnotationKind.CORRECT,
        payload={"polygons": [{"label": leaf, "points": PRELABEL}, {"label": leaf, "rings": RINGED}]})
    sign_in(page, "lea")
    page.goto(f"/projects/{scene.project.pk}/review/")
    card = page.locator(f".review-card[data-annotation-id='{annotation.pk}']")
    card.wait_for()
    assert "2 shapes" in card.inner_text()
    assert card.locator(".thumb svg path").count() == 2  # the outlines drawn on the thumbnail
    card.locator("button.fix-label").click()
    card.locator(".fix-form select").nth(1).select_option(str(bug))
    card.locator(".fix-form button[type=submit]").click()
    card.locator(".badge.bad").wait_for()
    assert image_current_label(task.image) == {"polygons": [{"label": leaf, "points": PRELABEL},
                                                             {"label": bug, "rings": RINGED}]}
