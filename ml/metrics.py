"""Evaluation and agreement metrics for classification, detection and segmentation.

Django-free. Boxes are (x1, y1, x2, y2) in pixels. Areas and IoU follow pycocotools' bbox
convention: width = x2 - x1 with no +1, so detection mAP equals COCOeval's.

Masks: an instance is a list of rings (each [[x, y], ...] in pixels) whose area is what an
odd number of rings covers (even-odd, labeling/payloads.py). Rings are rasterized with
pycocotools (the same rasterizer COCOeval uses for polygons) and combined by XOR, so holes
are holes. The converters between rings, masks and RLE live here because both the
exporters and the segmentation backend need exactly these.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import cv2
import numpy as np
import shapely
from numpy.typing import ArrayLike
from pycocotools import mask as mask_utils
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

# The exact expressions COCOeval uses, so threshold values match bit for bit.
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)


# --- classification -------------------------------------------------------------------


def json_finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf) as None: JSON has neither, and a
    metric of an absent class or a target never reached must still serialise."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_finite(v) for v in value]
    return value


def _as_labels(labels: ArrayLike, num_classes: int, name: str) -> np.ndarray:
    y = np.asarray(labels, dtype=np.int64).ravel()
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{name} holds labels outside [0, {num_classes})")
    return y


def _confusion(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> np.ndarray:
    t = _as_labels(y_true, num_classes, "y_true")
    p = _as_labels(y_pred, num_classes, "y_pred")
    if t.shape != p.shape:
        raise ValueError("y_true and y_pred must have the same length")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def _safe_ratio(num: ArrayLike, den: ArrayLike) -> np.ndarray:
    """num / den, 0 where den == 0 (scikit-learn's zero_division=0)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> list[list[int]]:
    """num_classes x num_classes counts; rows are true classes, columns predicted."""
    return _confusion(y_true, y_pred, num_classes).tolist()


def classification_metrics(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Integer labels in [0, num_classes). A ratio with a zero denominator is 0. Macro-F1
    averages over the classes present in y_true or y_pred (as scikit-learn does when no
    labels are given): a class absent from both has no F1, not an F1 of 0. Empty input
    gives accuracy 0 and macro-F1 0. JSON-serialisable.
    """
    return confusion_metrics(_confusion(y_true, y_pred, num_classes))


def confusion_metrics(matrix: ArrayLike) -> dict[str, Any]:
    """classification_metrics from a confusion matrix (rows true, columns predicted)."""
    cm = np.asarray(matrix, dtype=np.int64)
    num_classes = cm.shape[0]
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_ratio(tp, predicted)
    recall = _safe_ratio(tp, support)
    f1 = _safe_ratio(2 * precision * recall, precision + recall)
    present = (support + predicted) > 0
    return {
        "accuracy": float(_safe_ratio(tp.sum(), cm.sum())),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": [
            {
                "class_index": c,
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "support": int(support[c]),
            }
            for c in range(num_classes)
        ],
        "confusion_matrix": cm.tolist(),
    }


def confusion_collapsed(matrix: ArrayLike, groups: Sequence[int], num_groups: int) -> list[list[int]]:
    """The matrix with class i counted as group groups[i]: rows and columns of one group
    summed (a taxonomy level, where "oak" and "elm" both read as "tree")."""
    cm = np.asarray(matrix, dtype=np.int64)
    g = np.asarray(groups, dtype=np.int64)
    if cm.shape != (len(g), len(g)):
        raise ValueError(f"a {len(g)}-class grouping for a matrix of shape {cm.shape}")
    one_hot = np.zeros((len(g), num_groups), dtype=np.int64)
    one_hot[np.arange(len(g)), g] = 1
    return (one_hot.T @ cm @ one_hot).tolist()


# --- boxes ----------------------------------------------------------------------------


def _as_boxes(boxes: ArrayLike) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return np.zeros((0, 4))
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"expected boxes of shape (n, 4), got {b.shape}")
    return b


def box_iou(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """IoU of every box in a (n, 4) with every box in b (m, 4), xyxy. -> (n, m).

    Area = (x2 - x1) * (y2 - y1), as pycocotools; a pair with zero union has IoU 0.
    """
    a = _as_boxes(a)
    b = _as_boxes(b)
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(width, 0.0, None) * np.clip(height, 0.0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return _safe_ratio(inter, area_a[:, None] + area_b[None, :] - inter)


def _greedy_match(ious: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """COCOeval's matching, for every threshold at once.

    ious: (D, G) with predictions already in serving order (highest score first).
    Each prediction in turn takes the still-unmatched ground truth with the highest IoU,
    if that IoU >= the threshold; equal IoUs go to the later ground truth, as in
    pycocotools. Returns (T, D) matched ground-truth indices, -1 where unmatched.
    """
    num_t = len(thresholds)
    num_d, num_g = ious.shape
    matched = np.full((num_t, num_d), -1, dtype=np.int64)
    if num_d == 0 or num_g == 0:
        return matched
    # COCOeval caps thresholds just below 1 so that IoU == 1 always matches.
    thr = np.minimum(thresholds, 1 - 1e-10)[:, None]
    taken = np.zeros((num_t, num_g), dtype=bool)
    rows = np.arange(num_t)
    for d in range(num_d):
        valid = ~taken & (ious[d][None, :] >= thr)
        candidates = np.where(valid, ious[d][None, :], -np.inf)
        best = num_g - 1 - np.argmax(candidates[:, ::-1], axis=1)
        ok = valid[rows, best]
        matched[ok, d] = best[ok]
        taken[rows[ok], best[ok]] = True
    return matched


@dataclass(frozen=True)
class BoxMatch:
    """Result of match_boxes; indices refer to the caller's arrays."""

    matches: list[tuple[int, int, float]]  # (pred index, gt index, IoU)
    unmatched_pred: list[int]
    unmatched_gt: list[int]


def match_boxes(
    pred_boxes: ArrayLike,
    gt_boxes: ArrayLike,
    *,
    iou_threshold: float = 0.5,
    pred_scores: ArrayLike | None = None,
    pred_classes: ArrayLike | None = None,
    gt_classes: ArrayLike | None = None,
) -> BoxMatch:
    """Greedy one-to-one matching of predictions to ground truth, the rule COCOeval uses.

    Predictions are taken in descending score order (input order without scores); each takes
    the unmatched ground-truth box with the highest IoU >= iou_threshold. Pass both
    pred_classes and gt_classes for class-aware matching (a box matches only its own class);
    omit both for class-agnostic matching.
    """
    return match_ious(box_iou(_as_boxes(pred_boxes), _as_boxes(gt_boxes)), iou_threshold=iou_threshold,
                      pred_scores=pred_scores, pred_classes=pred_classes, gt_classes=gt_classes)


def match_ious(
    ious: ArrayLike,
    *,
    iou_threshold: float = 0.5,
    pred_scores: ArrayLike | None = None,
    pred_classes: ArrayLike | None = None,
    gt_classes: ArrayLike | None = None,
) -> BoxMatch:
    """match_boxes from a precomputed (predictions, ground truth) IoU matrix, for any shape."""
    if (pred_classes is None) != (gt_classes is None):
        raise ValueError("give both pred_classes and gt_classes, or neither")
    all_ious = np.asarray(ious, dtype=np.float64)
    num_pred, num_gt = all_ious.shape
    order = np.arange(num_pred)
    if pred_scores is not None:
        order = np.argsort(-np.asarray(pred_scores, dtype=np.float64), kind="mergesort")
    ordered = all_ious[order].copy()
    if pred_classes is not None:
        pc = np.asarray(pred_classes).ravel()[order]
        gc = np.asarray(gt_classes).ravel()
        ordered[pc[:, None] != gc[None, :]] = -1.0
    matched = _greedy_match(ordered, np.array([iou_threshold]))[0]
    hit = matched >= 0
    matches = [(int(order[d]), int(matched[d]), float(ordered[d, matched[d]])) for d in np.flatnonzero(hit)]
    gt_hit = np.zeros(num_gt, dtype=bool)
    gt_hit[matched[hit]] = True
    return BoxMatch(
        matches=matches,
        unmatched_pred=sorted(int(i) for i in order[~hit]),
        unmatched_gt=[int(i) for i in np.flatnonzero(~gt_hit)],
    )


# --- detection ------------------------------------------------------------------------


class ImagePredictions(TypedDict):
    boxes: ArrayLike  # (k, 4) xyxy pixels
    classes: ArrayLike  # (k,) class index
    scores: ArrayLike  # (k,) confidence


class ImageGroundTruth(TypedDict):
    boxes: ArrayLike  # (g, 4) xyxy pixels
    classes: ArrayLike  # (g,) class index


def _coco_ap(tp: np.ndarray, num_gt: int) -> np.ndarray:
    """101-point interpolated AP per IoU threshold, as COCOeval.accumulate.

    tp: (T, D) true-positive flags of one class's predictions in descending score order.
    """
    num_t, num_d = tp.shape
    if num_d == 0:
        return np.zeros(num_t)
    tp_sum = np.cumsum(tp, axis=1, dtype=np.float64)
    fp_sum = np.cumsum(~tp, axis=1, dtype=np.float64)
    recall = tp_sum / num_gt
    precision = tp_sum / (tp_sum + fp_sum + np.spacing(1))
    # Precision envelope: the best precision at any recall to the right.
    precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    ap = np.zeros(num_t)
    for t in range(num_t):
        idx = np.searchsorted(recall[t], COCO_RECALL_THRESHOLDS, side="left")
        sampled = np.zeros(len(COCO_RECALL_THRESHOLDS))
        reached = idx < num_d
        sampled[reached] = precision[t, idx[reached]]
        ap[t] = sampled.mean()
    return ap


def detection_metrics(
    predictions: Sequence[ImagePredictions],
    ground_truths: Sequence[ImageGroundTruth],
    num_classes: int,
    *,
    score_threshold: float = 0.25,
    max_dets: int = 100,
) -> dict[str, Any]:
    """COCO-style detection metrics over a list of images (predictions[i] <-> ground_truths[i]).

    - map50_95, map50 and per-class ap50_95 / ap50: COCOeval bbox, area "all",
      maxDets = max_dets per image and class, 101-point interpolation, no crowd regions.
      Equal to pycocotools on the same data. A class without ground truth has AP None and is
      left out of the means (its predictions count nowhere), as in COCOeval; with no ground
      truth at all the means are None.
    - precision, recall, f1: micro-averaged over classes at IoU 0.5, counting predictions with
      score >= score_threshold (0.25, ultralytics' default predict confidence: the boxes
      a labeler sees as pre-labels), class-aware matching as match_boxes. 0 where undefined.
    Per-class entries also carry num_gt and precision/recall at the same operating point.
    JSON-serialisable.
    """
    if len(predictions) != len(ground_truths):
        raise ValueError("predictions and ground_truths must list the same images")
    images = []
    for pred, gt in zip(predictions, ground_truths):
        p_boxes, g_boxes = _as_boxes(pred["boxes"]), _as_boxes(gt["boxes"])
        images.append(_ScoredImage(
            _as_labels(pred["classes"], num_classes, "predicted classes"),
            np.asarray(pred["scores"], dtype=np.float64).ravel(),
            _as_labels(gt["classes"], num_classes, "ground-truth classes"),
            box_iou(p_boxes, g_boxes),
        ))
    return _coco_metrics(images, num_classes, score_threshold=score_threshold, max_dets=max_dets)


@dataclass(frozen=True)
class _ScoredImage:
    """One image's predictions and ground truth, reduced to what the COCO metrics read."""

    pred_classes: np.ndarray  # (k,)
    pred_scores: np.ndarray  # (k,)
    gt_classes: np.ndarray  # (g,)
    ious: np.ndarray  # (k, g): IoU of every prediction with every ground-truth object


def _coco_metrics(images: list[_ScoredImage], num_classes: int, *, score_threshold: float,
                  max_dets: int) -> dict[str, Any]:
    """The metrics of detection_metrics, from any IoU (boxes or masks)."""
    ap = np.full((num_classes, len(COCO_IOU_THRESHOLDS)), np.nan)
    num_gt = np.zeros(num_classes, dtype=np.int64)
    for c in range(num_classes):
        scores, flags = [], []
        for image in images:
            gt_index = np.flatnonzero(image.gt_classes == c)
            num_gt[c] += len(gt_index)
            mine = np.flatnonzero(image.pred_classes == c)
            mine = mine[np.argsort(-image.pred_scores[mine], kind="mergesort")][:max_dets]
            if mine.size == 0:
                continue
            matched = _greedy_match(image.ious[np.ix_(mine, gt_index)], COCO_IOU_THRESHOLDS)
            scores.append(image.pred_scores[mine])
            flags.append(matched >= 0)
        if num_gt[c] == 0:
            continue
        if scores:
            # Stable sort over images in list order: score ties break as in COCOeval.
            order = np.argsort(-np.concatenate(scores), kind="mergesort")
            tp = np.concatenate(flags, axis=1)[:, order]
        else:
            tp = np.zeros((len(COCO_IOU_THRESHOLDS), 0), dtype=bool)
        ap[c] = _coco_ap(tp, int(num_gt[c]))

    tp_c = np.zeros(num_classes, dtype=np.int64)
    fp_c = np.zeros(num_classes, dtype=np.int64)
    fn_c = np.zeros(num_classes, dtype=np.int64)
    for image in images:
        keep = np.flatnonzero(image.pred_scores >= score_threshold)
        order = keep[np.argsort(-image.pred_scores[keep], kind="mergesort")]
        ious = image.ious[order].copy()
        kept_classes = image.pred_classes[order]
        ious[kept_classes[:, None] != image.gt_classes[None, :]] = -1.0
        matched = _greedy_match(ious, np.array([0.5]))[0]
        hit = matched >= 0
        gt_hit = np.zeros(len(image.gt_classes), dtype=bool)
        gt_hit[matched[hit]] = True
        np.add.at(tp_c, kept_classes[hit], 1)
        np.add.at(fp_c, kept_classes[~hit], 1)
        np.add.at(fn_c, image.gt_classes[~gt_hit], 1)

    tp, fp, fn = tp_c.sum(), fp_c.sum(), fn_c.sum()
    precision = float(_safe_ratio(tp, tp + fp))
    recall = float(_safe_ratio(tp, tp + fn))
    class_precision = _safe_ratio(tp_c, tp_c + fp_c)
    class_recall = _safe_ratio(tp_c, tp_c + fn_c)
    has_gt = num_gt > 0
    return {
        "map50_95": float(ap[has_gt].mean()) if has_gt.any() else None,
        "map50": float(ap[has_gt, 0].mean()) if has_gt.any() else None,
        "precision": precision,
        "recall": recall,
        "f1": float(_safe_ratio(2 * precision * recall, precision + recall)),
        "per_class": [
            {
                "class_index": c,
                "ap50_95": float(ap[c].mean()) if has_gt[c] else None,
                "ap50": float(ap[c, 0]) if has_gt[c] else None,
                "num_gt": int(num_gt[c]),
                "precision": float(class_precision[c]),
                "recall": float(class_recall[c]),
            }
            for c in range(num_classes)
        ],
    }


# --- masks ----------------------------------------------------------------------------

Rings = Sequence[Sequence[Sequence[float]]]


def rings_mask(rings: Rings, height: int, width: int) -> np.ndarray:
    """The (height, width) uint8 mask of an instance's rings, even-odd."""
    mask = np.zeros((height, width), dtype=np.uint8)
    for ring in rings:
        flat = [float(v) for point in ring for v in point]
        rle = mask_utils.frPyObjects([flat], height, width)
        mask ^= mask_utils.decode(rle)[:, :, 0]
    return mask


def mask_rle(mask: np.ndarray) -> dict:
    """COCO's compressed RLE of a mask, with counts as text (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def rings_rle(rings: Rings, height: int, width: int) -> dict:
    return mask_rle(rings_mask(rings, height, width))


def rle_mask(rle: dict) -> np.ndarray:
    """The mask of a COCO RLE, compressed (counts as text) or not (counts as a list)."""
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        coded = mask_utils.frPyObjects(rle, height, width)
    else:
        coded = {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return mask_utils.decode(coded)


def mask_rings(mask: np.ndarray, simplify: float = 0.0) -> list[list[list[float]]]:
    """The rings (even-odd) of a mask's outline along its pixels' edges.

    OpenCV's findContours traces the centres of the boundary pixels (a pixel at row r,
    column c covers [c, c + 1] x [r, r + 1]; its centre is (c + 0.5, r + 0.5)); each outer
    outline is grown and each hole shrunk by half a pixel (mitred), so the shape covers the
    mask's pixels, one-pixel-wide parts included, and rasterizes back to the same mask
    (bar pixels cut at a corner). ``simplify`` > 0 drops vertices that move the outline by
    less than that many pixels (shapely, topology kept)."""
    contours, hierarchy = cv2.findContours(np.ascontiguousarray(mask, dtype=np.uint8), cv2.RETR_CCOMP,
                                           cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    outers: dict[int, BaseGeometry] = {}
    holes: dict[int, list[BaseGeometry]] = {}
    for index, contour in enumerate(contours):
        outline = _pixel_centres(contour)
        parent = int(hierarchy[0][index][3])
        if parent < 0:
            outers[index] = outline.buffer(0.5, cap_style="square", join_style="mitre")
        else:
            holes.setdefault(parent, []).append(outline.buffer(-0.5, join_style="mitre"))
    shape = shapely.unary_union([outer.difference(shapely.unary_union(holes.get(index, [])))
                                 for index, outer in outers.items()])
    if simplify > 0:
        shape = shape.simplify(simplify, preserve_topology=True)
    return shape_rings(shape)


def instance_outline(rings: Rings) -> np.ndarray:
    """An instance as one closed outline (n, 2), as YOLO segmentation labels hold it: several
    rings are joined at their closest points by zero-width seams (ultralytics'
    merge_multi_segment, as its COCO converter does), which keeps the even-odd area."""
    if len(rings) == 1:
        return np.asarray(rings[0], dtype=np.float64)
    # Imported here: ultralytics takes seconds to import; only this conversion needs it.
    from ultralytics.data.converter import merge_multi_segment

    return np.concatenate(merge_multi_segment([list(ring) for ring in rings]))


def _pixel_centres(contour: np.ndarray) -> BaseGeometry:
    points = contour.reshape(-1, 2).astype(np.float64) + 0.5
    if len(points) == 1:
        return Point(points[0])
    if len(points) == 2:
        return LineString(points)
    return shapely.make_valid(Polygon(points))


def shape_rings(shape: BaseGeometry) -> list[list[list[float]]]:
    """The rings of a valid shape's polygonal parts: each part's outline, then its holes
    (open rings: the first point not repeated). Lines and points are left out."""
    rings = []
    for part in shapely.get_parts(shape):
        if isinstance(part, Polygon) and part.area > 0:
            rings.append(_open_ring(part.exterior.coords))
            rings.extend(_open_ring(interior.coords) for interior in part.interiors)
        elif part.geom_type in ("MultiPolygon", "GeometryCollection"):
            rings.extend(shape_rings(part))
    return rings


def _open_ring(coords) -> list[list[float]]:
    points = [[float(x), float(y)] for x, y in coords]
    return points[:-1] if len(points) > 1 and points[0] == points[-1] else points


# --- segmentation ---------------------------------------------------------------------


class ImageMaskPredictions(TypedDict):
    instances: Sequence[Rings]  # the rings of each predicted instance, pixels
    classes: ArrayLike  # (k,) class index
    scores: ArrayLike  # (k,) confidence


class ImageMaskGroundTruth(TypedDict):
    instances: Sequence[Rings]
    classes: ArrayLike  # (g,)
    height: int
    width: int


def segmentation_metrics(
    predictions: Sequence[ImageMaskPredictions],
    ground_truths: Sequence[ImageMaskGroundTruth],
    num_classes: int,
    *,
    score_threshold: float = 0.25,
    max_dets: int = 100,
) -> dict[str, Any]:
    """Mask metrics with the keys and rules of detection_metrics, IoU taken between the
    instances' masks (even-odd rings rasterized at the image's size, pycocotools' mask IoU):
    map50_95 and map50 equal COCOeval with iouType "segm" on the same data."""
    if len(predictions) != len(ground_truths):
        raise ValueError("predictions and ground_truths must list the same images")
    images = []
    for pred, gt in zip(predictions, ground_truths):
        height, width = int(gt["height"]), int(gt["width"])
        p_rles = [rings_rle(rings, height, width) for rings in pred["instances"]]
        g_rles = [rings_rle(rings, height, width) for rings in gt["instances"]]
        images.append(_ScoredImage(
            _as_labels(pred["classes"], num_classes, "predicted classes"),
            np.asarray(pred["scores"], dtype=np.float64).ravel(),
            _as_labels(gt["classes"], num_classes, "ground-truth classes"),
            rle_iou(p_rles, g_rles),
        ))
    return _coco_metrics(images, num_classes, score_threshold=score_threshold, max_dets=max_dets)


def rle_iou(a: Sequence[dict], b: Sequence[dict]) -> np.ndarray:
    """IoU of every mask in a with every mask in b (COCO RLEs), as COCOeval's segm -> (n, m)."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    coded = [[{"size": r["size"], "counts": r["counts"].encode("ascii")} for r in rles] for rles in (a, b)]
    return np.asarray(mask_utils.iou(coded[0], coded[1], [0] * len(b)), dtype=np.float64).reshape(len(a), len(b))


# --- inter-annotator agreement --------------------------------------------------------


def cohen_kappa(a: ArrayLike, b: ArrayLike, num_classes: int | None = None) -> float:
    """Cohen's kappa of two annotators' integer labels on the same items.

    kappa = (p_o - p_e) / (1 - p_e). When p_e == 1 both annotators gave every item the same
    single label: agreement is complete and the result is 1.0.
    """
    x = np.asarray(a, dtype=np.int64).ravel()
    y = np.asarray(b, dtype=np.int64).ravel()
    if x.shape != y.shape or x.size == 0:
        raise ValueError("cohen_kappa needs two equally long, non-empty label lists")
    k = num_classes if num_classes is not None else int(max(x.max(), y.max())) + 1
    cm = _confusion(x, y, k).astype(np.float64) / x.size
    observed = np.trace(cm)
    expected = float(cm.sum(axis=1) @ cm.sum(axis=0))
    if expected >= 1.0:
        return 1.0
    return float((observed - expected) / (1.0 - expected))


def box_f1(
    boxes_a: ArrayLike,
    boxes_b: ArrayLike,
    *,
    iou_threshold: float = 0.5,
    classes_a: ArrayLike | None = None,
    classes_b: ArrayLike | None = None,
) -> float:
    """Agreement of two annotators' boxes on one image: F1 = 2 * matched / (n_a + n_b).

    Symmetric in a and b: pairs are matched one-to-one greedily by descending IoU, counting
    pairs with IoU >= iou_threshold (and the same class when both class lists are given).
    Two empty annotations agree completely (1.0).
    """
    return iou_f1(box_iou(_as_boxes(boxes_a), _as_boxes(boxes_b)), iou_threshold=iou_threshold,
                  classes_a=classes_a, classes_b=classes_b)


def iou_f1(
    ious: ArrayLike,
    *,
    iou_threshold: float = 0.5,
    classes_a: ArrayLike | None = None,
    classes_b: ArrayLike | None = None,
) -> float:
    """box_f1 from a precomputed (a, b) IoU matrix, for any shape (boxes, polygons)."""
    ious = np.array(ious, dtype=np.float64)
    num_a, num_b = ious.shape
    if num_a + num_b == 0:
        return 1.0
    if (classes_a is None) != (classes_b is None):
        raise ValueError("give both classes_a and classes_b, or neither")
    if classes_a is not None:
        ca = np.asarray(classes_a).ravel()
        cb = np.asarray(classes_b).ravel()
        ious[ca[:, None] != cb[None, :]] = -1.0
    rows, cols = np.nonzero(ious >= iou_threshold)
    used_a = np.zeros(num_a, dtype=bool)
    used_b = np.zeros(num_b, dtype=bool)
    matched = 0
    for i in np.argsort(-ious[rows, cols], kind="stable"):
        r, c = rows[i], cols[i]
        if not used_a[r] and not used_b[c]:
            used_a[r] = used_b[c] = True
            matched += 1
    return 2.0 * matched / (num_a + num_b)
