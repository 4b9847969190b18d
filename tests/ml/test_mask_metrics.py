"""Mask metrics: our mask mAP equals pycocotools' COCOeval with iouType "segm"; the ring,
mask and RLE converters agree with each other."""
import contextlib
import io
import math

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ml.metrics import mask_rings, rings_mask, segmentation_metrics

NUM_CLASSES = 3


def star(rng, cx, cy, radius, points=7):
    angles = [(k + rng.uniform(0, 0.8)) * 2 * math.pi / points for k in range(points)]
    return [[cx + rng.uniform(0.5, 1) * radius * math.cos(a), cy + rng.uniform(0.5, 1) * radius * math.sin(a)]
            for a in angles]


def synthetic(seed):
    """Images with star-shaped ground truth (one with a hole); predictions are jittered
    copies with random scores, some of the wrong class, some missed, plus false alarms."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(12):
        height, width = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        gt_instances, gt_classes, preds, pred_classes, scores = [], [], [], [], []
        for _ in range(int(rng.integers(0, 4))):
            radius = float(rng.uniform(5, min(height, width) / 3))
            cx, cy = rng.uniform(radius, width - radius), rng.uniform(radius, height - radius)
            gt_instances.append([star(rng, cx, cy, radius)])
            gt_classes.append(int(rng.integers(NUM_CLASSES)))
            if rng.random() < 0.8:
                shift = rng.uniform(-radius / 3, radius / 3, size=2)
                preds.append([star(rng, cx + shift[0], cy + shift[1], radius * rng.uniform(0.7, 1.2))])
                pred_classes.append(gt_classes[-1] if rng.random() < 0.8 else int(rng.integers(NUM_CLASSES)))
                scores.append(float(rng.uniform(0.05, 1)))
        for _ in range(int(rng.integers(0, 3))):
            radius = float(rng.uniform(4, min(height, width) / 4))
            preds.append([star(rng, rng.uniform(radius, width - radius), rng.uniform(radius, height - radius), radius)])
            pred_classes.append(int(rng.integers(NUM_CLASSES)))
            scores.append(float(rng.uniform(0.05, 1)))
        images.append({"height": height, "width": width, "gt": gt_instances, "gt_classes": gt_classes,
                       "preds": preds, "pred_classes": pred_classes, "scores": scores})
    first = images[0]
    first["gt"].append([[[5, 5], [35, 5], [35, 35], [5, 35]], [[15, 15], [25, 15], [25, 25], [15, 25]]])
    first["gt_classes"].append(0)
    first["preds"].append([[[5, 5], [35, 5], [35, 35], [5, 35]]])
    first["pred_classes"].append(0)
    first["scores"].append(0.9)
    return images


def pycocotools_segm(images):
    """COCOeval segm, fed in COCO's own formats: ground-truth polygons where they have no
    hole (COCO rasterizes them), RLE made with pycocotools for the rest."""
    def segmentation(rings, height, width):
        if len(rings) == 1:
            return [[v for point in rings[0] for v in point]]
        parts = mask_utils.decode(mask_utils.frPyObjects([[v for p in r for v in p] for r in rings], height, width))
        holed = np.bitwise_xor.reduce(parts, axis=2).astype(np.uint8)
        rle = mask_utils.encode(np.asfortranarray(holed))
        return {"size": rle["size"], "counts": rle["counts"].decode()}

    gt = {"images": [], "annotations": [], "categories": [{"id": c + 1} for c in range(NUM_CLASSES)]}
    results = []
    for image_id, image in enumerate(images, start=1):
        h, w = image["height"], image["width"]
        gt["images"].append({"id": image_id, "height": h, "width": w})
        for rings, cls in zip(image["gt"], image["gt_classes"]):
            seg = segmentation(rings, h, w)
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w)) if isinstance(seg, list) else \
                {"size": seg["size"], "counts": seg["counts"].encode()}
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": image_id, "category_id": cls + 1,
                                      "segmentation": seg, "area": float(mask_utils.area(rle)), "iscrowd": 0,
                                      "bbox": list(mask_utils.toBbox(rle))})
        for rings, cls, score in zip(image["preds"], image["pred_classes"], image["scores"]):
            rle = mask_utils.merge(mask_utils.frPyObjects([[v for p in r for v in p] for r in rings], h, w))
            results.append({"image_id": image_id, "category_id": cls + 1, "score": score,
                            "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()}})
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        evaluation = COCOeval(coco_gt, coco_gt.loadRes(results), iouType="segm")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation.stats[0], evaluation.stats[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mask_map_equals_pycocotools_segm(seed):
    images = synthetic(seed)
    ours = segmentation_metrics(
        [{"instances": i["preds"], "classes": i["pred_classes"], "scores": i["scores"]} for i in images],
        [{"instances": i["gt"], "classes": i["gt_classes"], "height": i["height"], "width": i["width"]}
         for i in images],
        NUM_CLASSES,
    )
    map50_95, map50 = pycocotools_segm(images)
    assert 0.05 < ours["map50_95"] < 0.95  # neither trivial nor perfect: the comparison means something
    assert ours["map50_95"] == pytest.approx(map50_95, abs=1e-12)
    assert ours["map50"] == pytest.approx(map50, abs=1e-12)


def test_a_hole_counts_in_the_mask_iou():
    outer = [[0, 0], [20, 0], [20, 20], [0, 20]]
    hole = [[5, 5], [15, 5], [15, 15], [5, 15]]
    truth = {"instances": [[outer, hole]], "classes": [0], "height": 20, "width": 20}
    filled = segmentation_metrics([{"instances": [[outer]], "classes": [0], "scores": [0.9]}], [truth], 1)
    exact = segmentation_metrics([{"instances": [[outer, hole]], "classes": [0], "scores": [0.9]}], [truth], 1)
    # IoU of the filled square with the holed one is 300 / 400 = 0.75: matched at 0.5-0.75 only.
    assert filled["map50"] == pytest.approx(1.0) and filled["map50_95"] == pytest.approx(6 / 10)
    assert exact["map50_95"] == pytest.approx(1.0)


def test_mask_outlines_rasterize_back_to_the_same_mask():
    rng = np.random.default_rng(4)
    for _ in range(20):
        mask = (rng.random((30, 40)) < 0.15).astype(np.uint8)
        mask[5:20, 8:30] = 1
        mask[10:14, 12:16] = 0
        rings = mask_rings(mask)
        assert (rings_mask(rings, 30, 40) == mask).all()
