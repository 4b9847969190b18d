import pytest

from labeling.payloads import PayloadError, validate_payload

BOX = {"x1": 10, "y1": 10, "x2": 20, "y2": 30, "label": 1}


def _detect(payload):
    return validate_payload(payload, task_type="detection", class_ids=[1, 2], width=100, height=50)


def test_valid_box_payload_is_normalized_to_floats_and_drops_model_fields():
    clean = _detect({"boxes": [{**BOX, "score": 0.9}]})
    assert clean == {"boxes": [{"x1": 10.0, "y1": 10.0, "x2": 20.0, "y2": 30.0, "label": 1}]}


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"boxes": [{**BOX, "label": 7}]}, "boxes[0]: unknown class id 7"),
        ({"boxes": [{**BOX, "x2": 101}]}, "lies outside the 100x50 image"),
        ({"boxes": [{**BOX, "y1": -1}]}, "lies outside"),
        ({"boxes": [{**BOX, "x2": 10}]}, "has no area"),
        ({"boxes": [BOX, {**BOX, "y2": 5}]}, "boxes[1]"),
        ({"boxes": [{**BOX, "x1": "a"}]}, "x1 must be a finite number"),
        ({"boxes": [{**BOX, "x1": float("nan")}]}, "x1 must be a finite number"),
        ({"boxes": [{**BOX, "label": True}]}, "label must be an integer"),
        ({"boxes": "nope"}, "needs 'boxes'"),
        ([], "must be a JSON object"),
    ],
)
def test_bad_detection_payloads_are_rejected_with_a_clear_message(payload, message):
    with pytest.raises(PayloadError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        _detect(payload)


def test_classification_payload_rejects_unknown_class():
    with pytest.raises(PayloadError, match=r"labels\[1\]: unknown class id 9"):
        validate_payload({"labels": [1, 9]}, task_type="classification", class_ids=[1, 2], width=1, height=1)


def test_classification_payload_removes_repeated_ids():
    clean = validate_payload({"labels": [2, 2, 1]}, task_type="classification", class_ids=[1, 2], width=1, height=1)
    assert clean == {"labels": [2, 1]}


def test_annotation_import_rejects_bad_payload_and_writes_nothing(db):
    from labeling.models import Annotation
    from labeling.services import annotation_import_create
    from tests.factories import ImageFactory, LabelClassFactory

    image = ImageFactory()
    LabelClassFactory(project=image.project)
    with pytest.raises(PayloadError, match="unknown class id 999"):
        annotation_import_create(image=image, payload={"boxes": [{**BOX, "label": 999}]})
    assert not Annotation.objects.exists()
