"""Segmentation labels: the polygon payload's checks and repairs, and submits over the API."""
import pytest
from shapely.geometry import Polygon

from core.models import Prediction, TaskType
from labeling.models import Annotation, Task, TaskStatus
from labeling.payloads import PayloadError, instance_shape, validate_payload
from tests.labeling.test_queue import add_images, as_user, deploy_model, make_project, member, next_task
from tests.labeling.test_submit import submit

SQUARE = [[10, 10], [30, 10], [30, 30], [10, 30]]


def _segment(payload, width=100, height=50):
    return validate_payload(payload, task_type="segmentation", class_ids=[1, 2], width=width, height=height)


def _error(payload) -> str:
    with pytest.raises(PayloadError) as caught:
        _segment(payload)
    return str(caught.value)


def test_a_valid_polygon_keeps_its_points_as_floats_and_drops_model_fields():
    clean = _segment({"polygons": [{"label": 1, "points": SQUARE + [[10, 10]], "score": 0.8, "probs": [0.8, 0.2]}]})
    assert clean == {"polygons": [{"label": 1, "points": [[float(x), float(y)] for x, y in SQUARE]}]}


def test_a_vertex_a_fraction_of_a_pixel_outside_is_clipped_and_farther_is_refused():
    clean = _segment({"polygons": [{"label": 1, "points": [[-0.4, 0], [100.5, 0], [50, 50.3]]}]})
    assert clean["polygons"][0]["points"] == [[0.0, 0.0], [100.0, 0.0], [50.0, 50.0]]
    assert _error({"polygons": [{"label": 1, "points": [[0, 0], [100.6, 0], [50, 40]]}]}) == (
        "polygons[0].points[1]: point (100.6, 0) lies outside the 100x50 image")


@pytest.mark.parametrize("payload, message", [
    ({"polygons": [{"label": 1, "points": [[0, 0], [5, 5]]}]}, "polygons[0].points: a ring needs at least 3 points, got 2"),
    ({"polygons": [{"label": 1, "points": [[0, 0], [5, 5], [0, 0]]}]}, "at least 3 points, got 2"),
    ({"polygons": [{"label": 1, "points": SQUARE}, {"label": 1, "points": [[0, 0], [5, 5], [9, 9]]}]},
     "polygons[1].points: the ring encloses no area"),
    ({"polygons": [{"label": 7, "points": SQUARE}]}, "polygons[0]: unknown class id 7"),
    ({"polygons": [{"label": True, "points": SQUARE}]}, "label must be an integer class id"),
    ({"polygons": [{"label": 1}]}, "either 'points' (one ring) or 'rings'"),
    ({"polygons": [{"label": 1, "points": SQUARE, "rings": [SQUARE]}]}, "either 'points'"),
    ({"polygons": [{"label": 1, "rings": []}]}, "'rings' must be a non-empty list"),
    ({"polygons": [{"label": 1, "points": [[0, 0], [5, "a"], [9, 0]]}]}, "polygons[0].points[1]: a point must be [x, y]"),
    ({"polygons": [{"label": 1, "points": [[0, 0], [5, float("nan")], [9, 0]]}]}, "finite numbers"),
    ({"polygons": [{"label": 1, "rings": [SQUARE, SQUARE]}]}, "polygons[0]: the shape crosses itself and has no area"),
    ({"polygons": "nope"}, "needs 'polygons'"),
    ({"polygons": [[1, 2]]}, "polygons[0]: an instance must be an object"),
])
def test_bad_polygons_are_refused_naming_the_instance(payload, message):
    assert message in _error(payload)


def test_a_bow_tie_is_repaired_into_its_two_triangles():
    clean = _segment({"polygons": [{"label": 2, "points": [[0, 0], [20, 20], [20, 0], [0, 20]]}]})
    (instance,) = clean["polygons"]
    assert instance["label"] == 2 and len(instance["rings"]) == 2
    assert instance_shape(instance).area == pytest.approx(200.0)
    assert instance_shape(instance).is_valid


def test_rings_follow_the_even_odd_rule_a_ring_inside_another_is_a_hole():
    outer, hole = [[0, 0], [40, 0], [40, 40], [0, 40]], [[10, 10], [20, 10], [20, 20], [10, 20]]
    clean = _segment({"polygons": [{"label": 1, "rings": [outer, hole]}]})
    assert clean["polygons"][0]["rings"] == [[[float(x), float(y)] for x, y in r] for r in (outer, hole)]
    assert instance_shape(clean["polygons"][0]).area == pytest.approx(1600 - 100)


def test_crossing_rings_are_repaired_to_their_even_odd_area():
    a, b = [[0, 0], [20, 0], [20, 20], [0, 20]], [[10, 10], [30, 10], [30, 30], [10, 30]]
    clean = _segment({"polygons": [{"label": 1, "rings": [a, b]}]})
    expected = Polygon(a).symmetric_difference(Polygon(b))
    shape = instance_shape(clean["polygons"][0])
    assert shape.is_valid and shape.symmetric_difference(expected).area == pytest.approx(0.0, abs=1e-9)


# --- over the API ---------------------------------------------------------------------


@pytest.fixture
def leased_segmentation(api_client):
    """A segmentation project (100x80 images) with one leased task."""
    project = make_project(task_type=TaskType.SEGMENTATION)
    (image,) = add_images(project, [0.9])
    client = as_user(api_client, member(project))
    task_id = next_task(client, project).json()["task"]["id"]
    return client, project, task_id, image


@pytest.mark.django_db
def test_a_polygon_correction_is_stored_as_validated(leased_segmentation):
    client, project, task_id, _ = leased_segmentation
    car = project.label_classes.get(name="car").pk
    response = submit(client, task_id, {"kind": "correct", "payload": {"polygons": [{"label": car, "points": SQUARE}]}})
    assert response.status_code == 201
    assert Annotation.objects.get().payload == {"polygons": [{"label": car, "points": [[float(x), float(y)] for x, y in SQUARE]}]}
    assert Task.objects.get(pk=task_id).status == TaskStatus.DONE


@pytest.mark.django_db
def test_a_polygon_outside_the_image_is_a_400_naming_it(leased_segmentation):
    client, project, task_id, _ = leased_segmentation
    car = project.label_classes.get(name="car").pk
    response = submit(client, task_id, {"kind": "correct", "payload": {"polygons": [
        {"label": car, "points": SQUARE}, {"label": car, "points": [[0, 0], [200, 0], [50, 40]]}]}})
    assert response.status_code == 400
    assert "polygons[1].points[1]: point (200, 0) lies outside the 100x80 image" in response.json()["detail"]
    assert not Annotation.objects.exists()


@pytest.mark.django_db
def test_no_polygons_needs_the_explicit_empty_flag(leased_segmentation):
    client, project, task_id, _ = leased_segmentation
    plain = submit(client, task_id, {"kind": "correct", "payload": {"polygons": []}}, key="a")
    assert plain.status_code == 400 and "has no polygons" in plain.json()["detail"]
    car = project.label_classes.get(name="car").pk
    both = submit(client, task_id, {"kind": "correct", "payload": {"polygons": [{"label": car, "points": SQUARE}]},
                                    "empty": True}, key="b")
    assert both.status_code == 400 and "but the payload has 1 polygon" in both.json()["detail"]
    response = submit(client, task_id, {"kind": "correct", "empty": True}, key="c")
    assert response.status_code == 201 and response.json()["payload"] == {"polygons": []}


@pytest.mark.django_db
def test_accepting_a_polygon_prelabel_clips_it_to_the_image_and_drops_scores(leased_segmentation):
    client, project, task_id, image = leased_segmentation
    car = project.label_classes.get(name="car").pk
    prediction = Prediction.objects.create(image=image, model_version=deploy_model(project), payload={"polygons": [
        {"label": car, "points": [[90, 10], [110, 10], [110, 30], [90, 30]], "score": 0.9, "probs": [0.9, 0.1]}]})
    served = next_task(client, project).json()
    assert served["task_type"] == "segmentation" and served["prediction"]["payload"]["polygons"][0]["label"] == car
    response = submit(client, task_id, {"kind": "accept", "prediction_id": prediction.pk})
    assert response.status_code == 201
    (instance,) = response.json()["payload"]["polygons"]
    assert set(instance) == {"label", "points"} and instance["label"] == car
    assert instance_shape(instance).equals(Polygon([[90, 10], [100, 10], [100, 30], [90, 30]]))
