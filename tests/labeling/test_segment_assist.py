"""The box-to-polygon assist: GrabCut on a synthetic image recovers the true shape, and the
endpoint refuses bad boxes and strangers with a clear message."""
import io

import cv2
import numpy as np
import pytest
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from core.models import TaskType
from labeling.models import Role
from labeling.segment_assist import MAX_POINTS, AssistError, Box, box_from_request, polygon_from_box
from tests.factories import ImageFactory, MembershipFactory, ProjectFactory

PENTAGON = np.array([[200, 120], [420, 100], [470, 300], [330, 380], [180, 330]])


def synthetic_scene(width: int, height: int, outline: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A filled shape of noisy colour on a blurred-noise, striped background; returns the RGB
    image and the shape's true mask."""
    rng = np.random.default_rng(seed)
    background = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (7, 7), 0)
    stripes = ((np.arange(width) // 12) % 2 * 40).astype(np.int16)[None, :, None]
    image = np.clip(background.astype(np.int16) + stripes, 0, 255).astype(np.uint8)
    truth = np.zeros((height, width), np.uint8)
    cv2.fillPoly(truth, [outline.astype(np.int32)], 1)
    shape = np.clip(np.array([190, 70, 40]) + rng.normal(0, 18, image.shape), 0, 255).astype(np.uint8)
    image[truth == 1] = shape[truth == 1]
    return image, truth


def mask_iou(points: list[list[float]], truth: np.ndarray) -> float:
    drawn = np.zeros_like(truth)
    cv2.fillPoly(drawn, [np.round(np.array(points)).astype(np.int32)], 1)
    return float((drawn & truth).sum() / (drawn | truth).sum())


def test_grabcut_recovers_a_shape_on_a_textured_background():
    image, truth = synthetic_scene(640, 480, PENTAGON)
    points = polygon_from_box(image, Box(170, 90, 480, 390))
    assert 3 <= len(points) <= MAX_POINTS
    assert mask_iou(points, truth) >= 0.9


def test_large_image_is_downscaled_and_the_polygon_comes_back_in_original_pixels():
    # 4x the scene: the work copy is downscaled, the polygon must still fit the original.
    scale = 4
    image, truth = synthetic_scene(640 * scale, 480 * scale, PENTAGON * scale, seed=3)
    points = polygon_from_box(image, Box(170 * scale, 90 * scale, 480 * scale, 390 * scale))
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    assert max(xs) > 400 * scale and max(ys) > 300 * scale
    assert mask_iou(points, truth) >= 0.9


def test_a_curved_shape_is_simplified_to_few_points_and_stays_inside_the_box():
    outline = cv2.ellipse2Poly((300, 220), (150, 100), 20, 0, 360, 2)
    image, truth = synthetic_scene(640, 480, outline, seed=5)
    box = Box(130, 100, 470, 345)
    points = polygon_from_box(image, box)
    assert 8 <= len(points) <= MAX_POINTS
    assert all(box.x1 <= x <= box.x2 and box.y1 <= y <= box.y2 for x, y in points)
    assert mask_iou(points, truth) >= 0.9


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ({"x1": 700, "y1": 10, "x2": 800, "y2": 100}, "outside"),
        ({"x1": -50, "y1": -50, "x2": -1, "y2": 20}, "outside"),
        ({"x1": 10, "y1": 10, "x2": 10, "y2": 100}, "no area"),
        ({"x1": 10, "y1": 10, "x2": 12, "y2": 100}, "too small"),
        ({"x1": "a", "y1": 10, "x2": 50, "y2": 100}, "box.x1 must be a number"),
        ({"x1": 1, "y1": 10, "x2": 50}, "box.y2 must be a number"),
        ([1, 2, 3, 4], "send"),
    ],
)
def test_bad_boxes_are_refused_naming_the_problem(box, message):
    with pytest.raises(AssistError, match=message):
        box_from_request(box, width=640, height=480)


def test_a_box_overhanging_the_image_is_clipped():
    assert box_from_request({"x1": -20, "y1": 5, "x2": 700, "y2": 50.5}, width=640, height=480) == Box(0, 5, 640, 50.5)


def test_a_box_over_the_whole_image_is_refused():
    image, _ = synthetic_scene(200, 150, PENTAGON // 3)
    with pytest.raises(AssistError, match="whole image"):
        polygon_from_box(image, Box(0, 0, 200, 150))


# The endpoint.

def png_of(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    PILImage.fromarray(image).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def scene_image(db):
    image, truth = synthetic_scene(640, 480, PENTAGON)
    row = ImageFactory(project=ProjectFactory(task_type=TaskType.SEGMENTATION), width=640, height=480,
                       file=ContentFile(png_of(image), name="scene.png"))
    return row, truth


def url(image_id: int) -> str:
    return f"/api/images/{image_id}/segment-assist/"


def test_assist_endpoint_returns_the_polygon_for_a_member(api_client, make_user, scene_image):
    row, truth = scene_image
    user = make_user("annotator")
    MembershipFactory(project=row.project, user=user, role=Role.ANNOTATOR)
    api_client.force_authenticate(user)
    response = api_client.post(url(row.pk), {"box": {"x1": 170, "y1": 90, "x2": 480, "y2": 390}}, format="json")
    assert response.status_code == 200, response.content
    assert mask_iou(response.json()["points"], truth) >= 0.9


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"box": {"x1": 700, "y1": 10, "x2": 800, "y2": 100}}, "outside the 640x480 image"),
        ({"box": {"x1": 10, "y1": 10, "x2": 100, "y2": 10}}, "no area"),
        ({}, "send"),
    ],
)
def test_assist_endpoint_answers_bad_boxes_with_400(api_client, make_user, scene_image, body, message):
    row, _ = scene_image
    user = make_user("annotator")
    MembershipFactory(project=row.project, user=user, role=Role.ANNOTATOR)
    api_client.force_authenticate(user)
    response = api_client.post(url(row.pk), body, format="json")
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_assist_endpoint_is_for_segmentation_projects(api_client, make_user, scene_image):
    row, _ = scene_image
    row.project.task_type = TaskType.DETECTION
    row.project.save(update_fields=["task_type"])
    user = make_user("annotator")
    MembershipFactory(project=row.project, user=user, role=Role.ANNOTATOR)
    api_client.force_authenticate(user)
    response = api_client.post(url(row.pk), {"box": {"x1": 170, "y1": 90, "x2": 480, "y2": 390}}, format="json")
    assert response.status_code == 400
    assert "segmentation projects" in response.json()["detail"]


def test_assist_endpoint_hides_other_projects_images_and_unknown_ones(api_client, make_user, scene_image):
    row, _ = scene_image
    stranger = make_user("stranger")
    MembershipFactory(project=ProjectFactory(), user=stranger, role=Role.ADMIN)
    api_client.force_authenticate(stranger)
    body = {"box": {"x1": 170, "y1": 90, "x2": 480, "y2": 390}}
    # As everywhere in the API, a project the caller is not in is not disclosed: 404, as for no image.
    assert api_client.post(url(row.pk), body, format="json").status_code == 404
    assert api_client.post(url(row.pk + 1000), body, format="json").status_code == 404


def test_assist_endpoint_needs_a_login(api_client, scene_image):
    row, _ = scene_image
    response = api_client.post(url(row.pk), {"box": {"x1": 170, "y1": 90, "x2": 480, "y2": 390}}, format="json")
    assert response.status_code == 401 and "WWW-Authenticate" in response
