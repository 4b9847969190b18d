"""How much a pre-label saved: compare what the model proposed with what the human kept.

Django-free. Definitions (per human label that started from a prediction):

Detection
  - Predicted boxes are those the editor shows: score >= PRELABEL_SCORE_THRESHOLD (0.25,
    the confidence prelabel predicts with, so every stored box passes, and the operating
    point of the detection metrics; a prediction stored with a lower cut-off is held to
    the same one). They are matched to the final boxes one-to-one, greedily in descending score
    order, by IoU >= 0.5 regardless of class (ml.metrics.match_boxes).
  - added = final boxes left unmatched; deleted = predicted boxes left unmatched;
    moved = matched pairs with IoU < 0.99; iou_shift = 1 - IoU, summed over matched pairs
    (the report shows its mean); class_flips = matched pairs whose class differs.
  - accepted unchanged: the annotation's kind is "accept" (the labeler took the pre-labels
    as they were; counted with no edits), or every box on both sides is matched with
    IoU >= 0.99 and the same class.
Segmentation
  - As detection, with polygons for boxes (the "boxes_*" counters count polygons) and the
    IoU of the shapes (their even-odd areas, exact geometry with shapely).
  - vertex_shift: for each matched pair, every corrected vertex's distance in pixels to the
    pre-label's outline, summed over vertices (vertices_compared counts them; the report
    shows the mean): how far a labeler moved the outline, 0 for a polygon kept as drawn.
Classification
  - accepted unchanged when the final label set is exactly the predicted top label (or the
    kind is "accept"); a class flip otherwise.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from labeling.payloads import instance_rings, instance_shape
from ml.metrics import BoxMatch, match_boxes, match_ious

PRELABEL_SCORE_THRESHOLD = 0.25
MATCH_IOU = 0.5
UNCHANGED_IOU = 0.99


@dataclass(frozen=True)
class PrelabelDiff:
    accepted_unchanged: bool
    boxes_predicted: int = 0
    boxes_final: int = 0
    added: int = 0
    deleted: int = 0
    moved: int = 0
    matched: int = 0
    iou_shift_sum: float = 0.0
    class_flips: int = 0
    vertex_shift_sum: float = 0.0
    vertices_compared: int = 0


def _coords(box: dict) -> list[float]:
    return [float(box["x1"]), float(box["y1"]), float(box["x2"]), float(box["y2"])]


def shown_boxes(predicted_boxes: Sequence[dict], score_threshold: float = PRELABEL_SCORE_THRESHOLD) -> list[dict]:
    """The predicted boxes a labeler sees (boxes without a score count as shown)."""
    return [b for b in predicted_boxes if float(b.get("score", 1.0)) >= score_threshold]


def detection_diff(
    predicted_boxes: Sequence[dict],
    final_boxes: Sequence[dict],
    *,
    accepted: bool,
    score_threshold: float = PRELABEL_SCORE_THRESHOLD,
) -> PrelabelDiff:
    """Compare a detection pre-label with the boxes the labeler submitted (payload dicts)."""
    predicted = shown_boxes(predicted_boxes, score_threshold)
    if accepted:
        return PrelabelDiff(True, boxes_predicted=len(predicted), boxes_final=len(predicted))
    result = match_boxes(
        [_coords(b) for b in predicted],
        [_coords(b) for b in final_boxes],
        iou_threshold=MATCH_IOU,
        pred_scores=[float(b.get("score", 1.0)) for b in predicted],
    )
    moved, flips, shift = _matched_edits(result, predicted, final_boxes)
    added = len(result.unmatched_gt)
    deleted = len(result.unmatched_pred)
    return PrelabelDiff(
        accepted_unchanged=added == deleted == moved == flips == 0,
        boxes_predicted=len(predicted),
        boxes_final=len(final_boxes),
        added=added,
        deleted=deleted,
        moved=moved,
        matched=len(result.matches),
        iou_shift_sum=shift,
        class_flips=flips,
    )


def polygon_ious(a: Sequence[dict], b: Sequence[dict]) -> np.ndarray:
    """IoU of every instance in a with every instance in b (payload dicts) -> (len a, len b)."""
    shapes_a, shapes_b = [instance_shape(x) for x in a], [instance_shape(x) for x in b]
    ious = np.zeros((len(a), len(b)))
    for i, p in enumerate(shapes_a):
        for j, q in enumerate(shapes_b):
            union = p.union(q).area
            ious[i, j] = p.intersection(q).area / union if union > 0 else 0.0
    return ious


def segmentation_diff(
    predicted_polygons: Sequence[dict],
    final_polygons: Sequence[dict],
    *,
    accepted: bool,
    score_threshold: float = PRELABEL_SCORE_THRESHOLD,
) -> PrelabelDiff:
    """Compare a segmentation pre-label with the polygons the labeler submitted."""
    predicted = shown_boxes(predicted_polygons, score_threshold)
    if accepted:
        return PrelabelDiff(True, boxes_predicted=len(predicted), boxes_final=len(predicted))
    result = match_ious(polygon_ious(predicted, final_polygons), iou_threshold=MATCH_IOU,
                        pred_scores=[float(p.get("score", 1.0)) for p in predicted])
    moved, flips, shift = _matched_edits(result, predicted, final_polygons)
    vertices, vertex_shift = 0, 0.0
    for p, f, _ in result.matches:
        outline = instance_shape(predicted[p]).boundary
        points = [point for ring in instance_rings(final_polygons[f]) for point in ring]
        vertex_shift += sum(outline.distance(shapely.Point(point)) for point in points)
        vertices += len(points)
    added, deleted = len(result.unmatched_gt), len(result.unmatched_pred)
    return PrelabelDiff(
        accepted_unchanged=added == deleted == moved == flips == 0,
        boxes_predicted=len(predicted), boxes_final=len(final_polygons), added=added, deleted=deleted,
        moved=moved, matched=len(result.matches), iou_shift_sum=shift, class_flips=flips,
        vertex_shift_sum=vertex_shift, vertices_compared=vertices,
    )


def _matched_edits(result: BoxMatch, predicted: Sequence[dict], final: Sequence[dict]) -> tuple[int, int, float]:
    """(moved, class flips, summed 1 - IoU) over the matched pairs."""
    moved = flips = 0
    shift = 0.0
    for p, f, iou in result.matches:
        shift += 1.0 - iou
        moved += iou < UNCHANGED_IOU
        flips += int(predicted[p]["label"]) != int(final[f]["label"])
    return moved, flips, shift


def classification_diff(predicted_labels: Sequence[int], final_labels: Sequence[int], *, accepted: bool) -> PrelabelDiff:
    """Compare a classification pre-label (its top label first) with the submitted labels."""
    if accepted:
        return PrelabelDiff(True)
    top = {int(predicted_labels[0])} if predicted_labels else set()
    unchanged = {int(x) for x in final_labels} == top
    return PrelabelDiff(unchanged, class_flips=0 if unchanged else 1)
