"""Correction analytics for segmentation: what a labeler changed in a polygon pre-label
(added, deleted, moved, class flips, IoU shift, vertex shift), and two annotators' mask F1."""
import pytest

from core.models import Backend, LabelClass, ModelVersion, Prediction, TaskType
from labeling.models import AnnotationKind
from reports.prelabel_quality import segmentation_diff
from tests.reports.test_reports_api import annotate, get_report, make_images, team  # noqa: F401 (fixture)


def square(x, y, side, label, **extra):
    return {"label": label, "points": [[x, y], [x + side, y], [x + side, y + side], [x, y + side]], **extra}


PREDICTED = [square(0, 0, 10, 0, score=0.9), square(50, 50, 10, 1, score=0.8), square(100, 100, 10, 0, score=0.1)]
# The first square moved 1 px right, the second deleted, one drawn; the weak third was never shown.
CORRECTED = [square(1, 0, 10, 0), square(150, 150, 20, 1)]


def test_segmentation_diff_counts_edits_iou_and_vertex_shift():
    diff = segmentation_diff(PREDICTED, CORRECTED, accepted=False)
    assert (diff.boxes_predicted, diff.boxes_final) == (2, 2)
    assert (diff.added, diff.deleted, diff.moved, diff.matched, diff.class_flips) == (1, 1, 1, 1, 0)
    assert diff.iou_shift_sum == pytest.approx(1 - 90 / 110)
    # Corrected corners (1,0) and (1,10) lie on the old outline; (11,0) and (11,10) are 1 px off.
    assert (diff.vertex_shift_sum, diff.vertices_compared) == (pytest.approx(2.0), 4)
    assert not diff.accepted_unchanged


def test_segmentation_diff_sees_a_copy_as_unchanged_and_a_relabel_as_a_flip():
    shown = [{k: v for k, v in p.items() if k != "score"} for p in PREDICTED[:2]]
    assert segmentation_diff(PREDICTED, shown, accepted=False).accepted_unchanged
    flipped = [shown[0], {**shown[1], "label": 0}]
    diff = segmentation_diff(PREDICTED, flipped, accepted=False)
    assert diff.class_flips == 1 and diff.vertex_shift_sum == 0 and not diff.accepted_unchanged


@pytest.mark.django_db
def test_prelabel_quality_and_agreement_reports_read_polygons(api_client, team, django_capture_on_commit_callbacks):  # noqa: F811
    project, users = team
    project.task_type = TaskType.SEGMENTATION
    project.save(update_fields=["task_type"])
    c0 = LabelClass.objects.create(project=project, name="leaf")
    c1 = LabelClass.objects.create(project=project, name="stem")
    ids = [c0.pk, c1.pk]
    predicted = [{**p, "label": ids[p["label"]]} for p in PREDICTED]
    corrected = [{**p, "label": ids[p["label"]]} for p in CORRECTED]
    (image,) = make_images(project, 1)
    version = ModelVersion.objects.create(project=project, number=1, backend=Backend.YOLO_SEG, class_ids=ids)
    prediction = Prediction.objects.create(image=image, model_version=version, payload={"polygons": predicted})
    with django_capture_on_commit_callbacks(execute=True):
        annotate(project, image, users["alice"], AnnotationKind.CORRECT, {"polygons": corrected}, prediction)
        annotate(project, image, users["bob"], AnnotationKind.CORRECT, {"polygons": corrected[:1]}, prediction)
    [row] = get_report(api_client, users["lead"], project, "prelabel-quality").json()["tables"]["by_version"]
    assert (row["prelabeled"], row["boxes_added"], row["boxes_deleted"], row["boxes_moved"]) == (2, 1, 2, 2)
    assert row["mean_vertex_shift_px"] == pytest.approx(0.5)
    body = get_report(api_client, users["lead"], project, "agreement").json()
    [pair] = body["tables"]["pairs"]
    # alice drew two polygons, bob one of them: F1 = 2 * 1 / 3.
    assert pair["mask_f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert "mask F1 at IoU 0.5" in body["sentence"]
