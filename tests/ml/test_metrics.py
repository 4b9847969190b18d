import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from sklearn.metrics import cohen_kappa_score, f1_score, precision_recall_fscore_support

from ml.metrics import (
    box_f1,
    box_iou,
    classification_metrics,
    cohen_kappa,
    confusion_matrix,
    detection_metrics,
    match_boxes,
)

# --- classification -------------------------------------------------------------------


def test_classification_metrics_hand_computed():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    m = classification_metrics(y_true, y_pred, num_classes=3)
    # rows = true: class 0 -> [2, 1, 0], class 1 -> [0, 1, 1], class 2 -> [0, 0, 1]
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    # class 0: P = 2/2, R = 2/3, F1 = 0.8; class 1: P = 1/2, R = 1/2, F1 = 0.5;
    # class 2: P = 1/2, R = 1, F1 = 2/3; macro = (0.8 + 0.5 + 2/3) / 3 = 0.655556
    per_class = m["per_class"]
    assert [c["precision"] for c in per_class] == pytest.approx([1.0, 0.5, 0.5])
    assert [c["recall"] for c in per_class] == pytest.approx([2 / 3, 0.5, 1.0])
    assert [c["f1"] for c in per_class] == pytest.approx([0.8, 0.5, 2 / 3])
    assert [c["support"] for c in per_class] == [3, 2, 1]
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_classification_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, 300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, 4, 300))
    m = classification_metrics(y_true, y_pred, num_classes=6)  # class 5 never occurs
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=range(6), zero_division=0)
    assert [c["precision"] for c in m["per_class"]] == pytest.approx(p)
    assert [c["recall"] for c in m["per_class"]] == pytest.approx(r)
    assert [c["f1"] for c in m["per_class"]] == pytest.approx(f)
    assert [c["support"] for c in m["per_class"]] == s.tolist()
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))


def test_confusion_matrix_rejects_labels_outside_the_class_range():
    with pytest.raises(ValueError):
        confusion_matrix([0, 3], [0, 1], num_classes=3)


def test_empty_classification_input_gives_zeros():
    m = classification_metrics([], [], num_classes=2)
    assert m["accuracy"] == 0.0 and m["macro_f1"] == 0.0


# --- boxes ----------------------------------------------------------------------------


def test_box_iou_hand_computed_without_plus_one():
    a = [[0, 0, 10, 10]]
    b = [[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10], [3, 3, 3, 8]]
    # overlap 5x10 = 50, union 100 + 100 - 50 = 150 -> 1/3; disjoint 0; identical 1;
    # zero-width box: intersection 0 -> 0
    assert box_iou(a, b) == pytest.approx(np.array([[1 / 3, 0.0, 1.0, 0.0]]))
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 4)


def test_match_boxes_gives_a_ground_truth_to_the_higher_score():
    gt = [[0, 0, 10, 10]]
    pred = [[0, 0, 10, 9], [0, 0, 10, 10]]  # IoU 0.9 and 1.0
    result = match_boxes(pred, gt, pred_scores=[0.9, 0.3])
    assert result.matches == [(0, 0, pytest.approx(0.9))]
    assert result.unmatched_pred == [1] and result.unmatched_gt == []


def test_match_boxes_takes_the_highest_iou_free_ground_truth():
    gt = [[0, 0, 10, 10], [0, 0, 10, 8]]
    pred = [[0, 0, 10, 9]]  # IoU 0.9 with gt 0, 8/9 with gt 1
    assert match_boxes(pred, gt).matches == [(0, 0, pytest.approx(0.9))]


def test_match_boxes_class_aware_refuses_other_classes_and_agnostic_accepts_them():
    gt, pred = [[0, 0, 10, 10]], [[0, 0, 10, 10]]
    aware = match_boxes(pred, gt, pred_classes=[1], gt_classes=[0])
    assert aware.matches == [] and aware.unmatched_pred == [0] and aware.unmatched_gt == [0]
    assert match_boxes(pred, gt).matches == [(0, 0, 1.0)]


def test_match_boxes_ignores_pairs_below_the_threshold():
    result = match_boxes([[5, 0, 15, 10]], [[0, 0, 10, 10]], iou_threshold=0.5)  # IoU 1/3
    assert result.matches == [] and result.unmatched_pred == [0] and result.unmatched_gt == [0]


# --- detection ------------------------------------------------------------------------


def _random_detection_set(seed: int, num_images: int = 12, num_classes: int = 3):
    """Jittered true positives, misses, wrong classes, duplicates and background boxes."""
    rng = np.random.default_rng(seed)
    predictions, ground_truths = [], []
    for image in range(num_images):
        num_gt = 0 if image == 0 else int(rng.integers(0, 7))
        xy = rng.uniform(0, 400, (num_gt, 2))
        wh = rng.uniform(8, 120, (num_gt, 2))
        gt_boxes = np.concatenate([xy, xy + wh], axis=1)
        gt_classes = rng.integers(0, num_classes, num_gt)
        boxes, classes, scores = [], [], []
        for box, cls in zip(gt_boxes, gt_classes):
            if image == 1 or rng.random() < 0.2:
                continue  # missed
            size = box[2:] - box[:2]
            for _ in range(1 + int(rng.random() < 0.25)):  # sometimes a duplicate
                boxes.append(box + rng.normal(0, 0.08, 4) * np.tile(size, 2))
                classes.append(cls if rng.random() < 0.85 else int(rng.integers(0, num_classes)))
                scores.append(rng.uniform(0.05, 1.0))
        for _ in range(int(rng.integers(0, 4))):  # background false positives
            xy = rng.uniform(0, 400, 2)
            boxes.append(np.concatenate([xy, xy + rng.uniform(8, 120, 2)]))
            classes.append(int(rng.integers(0, num_classes)))
            scores.append(rng.uniform(0.01, 0.9))
        predictions.append(
            {
                "boxes": np.array(boxes).reshape(-1, 4),
                "classes": np.array(classes, dtype=int),
                "scores": np.array(scores),
            }
        )
        ground_truths.append({"boxes": gt_boxes, "classes": gt_classes})
    return predictions, ground_truths


def _cocoeval(predictions, ground_truths, num_classes):
    """COCOeval bbox stats: (mAP50-95, mAP50, per-class AP50-95 or -1)."""

    def xywh(box):
        return [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]

    images, annotations, results = [], [], []
    for image_id, (pred, gt) in enumerate(zip(predictions, ground_truths), start=1):
        images.append({"id": image_id, "width": 640, "height": 640})
        for box, cls in zip(gt["boxes"], gt["classes"]):
            bbox = xywh(box)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(cls) + 1,
                    "bbox": bbox,
                    "area": bbox[2] * bbox[3],
                    "iscrowd": 0,
                }
            )
        for box, cls, score in zip(pred["boxes"], pred["classes"], pred["scores"]):
            results.append(
                {"image_id": image_id, "category_id": int(cls) + 1, "bbox": xywh(box), "score": float(score)}
            )
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": c + 1, "name": str(c)} for c in range(num_classes)],
        }
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    # precision: [T, R, K, area, maxDets]; area 0 = "all", maxDets index 2 = 100
    precision = evaluator.eval["precision"][:, :, :, 0, 2]
    per_class = [float(p.mean()) if (p > -1).all() else -1.0 for p in np.moveaxis(precision, 2, 0)]
    return evaluator.stats[0], evaluator.stats[1], per_class


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_matches_pycocotools(seed):
    predictions, ground_truths = _random_detection_set(seed)
    ours = detection_metrics(predictions, ground_truths, num_classes=3)
    map50_95, map50, per_class = _cocoeval(predictions, ground_truths, num_classes=3)
    assert ours["map50_95"] == pytest.approx(map50_95, abs=1e-6)
    assert ours["map50"] == pytest.approx(map50, abs=1e-6)
    for ours_class, coco_ap in zip(ours["per_class"], per_class):
        ap = ours_class["ap50_95"]
        assert (-1.0 if ap is None else ap) == pytest.approx(coco_ap, abs=1e-6)
    assert 0.0 < ours["map50_95"] < ours["map50"] < 1.0  # the data exercises partial credit


def test_map_matches_pycocotools_with_score_ties():
    predictions, ground_truths = _random_detection_set(5)
    for pred in predictions:
        pred["scores"] = np.round(pred["scores"], 1)  # ties within and across images
    ours = detection_metrics(predictions, ground_truths, num_classes=3)
    map50_95, map50, _ = _cocoeval(predictions, ground_truths, num_classes=3)
    assert ours["map50_95"] == pytest.approx(map50_95, abs=1e-6)
    assert ours["map50"] == pytest.approx(map50, abs=1e-6)


def test_map_matches_pycocotools_past_max_detections():
    # 170 class-0 predictions on one image: both keep only the 100 highest-scoring
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 400, (130, 2))
    gt_boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (130, 2))], axis=1)
    pred_boxes = gt_boxes + rng.normal(0, 2, gt_boxes.shape)
    pred_boxes = np.concatenate([pred_boxes, pred_boxes[:40] + 3])
    ground_truths = [{"boxes": gt_boxes, "classes": np.zeros(130, dtype=int)}]
    predictions = [{"boxes": pred_boxes, "classes": np.zeros(170, dtype=int), "scores": rng.random(170)}]
    ours = detection_metrics(predictions, ground_truths, num_classes=1)
    map50_95, map50, _ = _cocoeval(predictions, ground_truths, num_classes=1)
    assert ours["map50_95"] == pytest.approx(map50_95, abs=1e-6)
    assert ours["map50"] == pytest.approx(map50, abs=1e-6)


def test_perfect_predictions_score_one():
    gt = {"boxes": np.array([[0, 0, 10, 10], [20, 20, 50, 60]]), "classes": np.array([0, 1])}
    pred = {"boxes": gt["boxes"], "classes": gt["classes"], "scores": np.array([0.9, 0.8])}
    m = detection_metrics([pred], [gt], num_classes=2)
    assert m["map50_95"] == pytest.approx(1.0) and m["map50"] == pytest.approx(1.0)
    assert m["precision"] == 1.0 and m["recall"] == 1.0 and m["f1"] == 1.0


def test_class_without_ground_truth_is_left_out_of_map():
    gt = {"boxes": np.array([[0, 0, 10, 10]]), "classes": np.array([0])}
    # a perfect class-0 box and a background class-1 box with the higher score
    pred = {
        "boxes": np.array([[0, 0, 10, 10], [50, 50, 60, 60]]),
        "classes": np.array([0, 1]),
        "scores": np.array([0.5, 0.9]),
    }
    m = detection_metrics([pred], [gt], num_classes=2)
    assert m["per_class"][1]["ap50_95"] is None and m["per_class"][1]["num_gt"] == 0
    assert m["map50_95"] == pytest.approx(1.0)
    # the class-1 box still counts as a false positive at the operating point: P = 1/2
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(1.0)


def test_no_ground_truth_at_all_gives_undefined_map():
    empty_pred = {"boxes": [], "classes": [], "scores": []}
    m = detection_metrics([empty_pred], [{"boxes": [], "classes": []}], num_classes=2)
    assert m["map50_95"] is None and m["map50"] is None
    assert m["precision"] == 0.0 and m["recall"] == 0.0


def test_precision_recall_count_only_boxes_above_the_score_threshold():
    gt = {
        "boxes": np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]]),
        "classes": np.array([0, 0, 1]),
    }
    pred = {
        # hit gt 0 (0.9), hit gt 1 but below threshold (0.1), false positive (0.6), wrong class on gt 2 (0.7)
        "boxes": np.array([[0, 0, 10, 10], [20, 0, 30, 10], [80, 80, 90, 90], [40, 0, 50, 10]]),
        "classes": np.array([0, 0, 0, 0]),
        "scores": np.array([0.9, 0.1, 0.6, 0.7]),
    }
    m = detection_metrics([pred], [gt], num_classes=2, score_threshold=0.25)
    # kept: 3 boxes, 1 TP -> P = 1/3; 3 GT, 1 found -> R = 1/3; F1 = 1/3
    assert m["precision"] == pytest.approx(1 / 3)
    assert m["recall"] == pytest.approx(1 / 3)
    assert m["f1"] == pytest.approx(1 / 3)
    # class 0: TP 1, FP 2, FN 1; class 1: TP 0, FN 1
    assert m["per_class"][0]["precision"] == pytest.approx(1 / 3)
    assert m["per_class"][0]["recall"] == pytest.approx(1 / 2)
    assert m["per_class"][1]["recall"] == 0.0


# --- inter-annotator agreement --------------------------------------------------------


def test_cohen_kappa_hand_computed():
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15.
    # p_o = 35/50 = 0.7; p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa = (0.7 - 0.5) / 0.5 = 0.4
    a = [1] * 25 + [0] * 25
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))


def test_cohen_kappa_is_one_for_identical_single_label_annotations():
    assert cohen_kappa([2, 2, 2], [2, 2, 2]) == 1.0


def test_box_f1_hand_computed():
    a = [[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]]
    b = [[0, 0, 10, 9], [20, 20, 30, 31]]  # IoU 0.9 and 100/110 with a[0], a[1]
    # 2 matches: F1 = 2 * 2 / (3 + 2) = 0.8
    assert box_f1(a, b) == pytest.approx(0.8)
    assert box_f1(b, a) == pytest.approx(0.8)


def test_box_f1_respects_classes_and_empty_images():
    a, b = [[0, 0, 10, 10]], [[0, 0, 10, 10]]
    assert box_f1(a, b, classes_a=[0], classes_b=[1]) == 0.0
    assert box_f1([], []) == 1.0
    assert box_f1(a, []) == 0.0
