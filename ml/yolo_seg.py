"""YOLOv8 instance segmentation backend on ultralytics (kind "yolo_seg").

The detector backend (ml/yolo.py) with a segmentation head; training, the offline
setup, batching and the full class-score vector per instance are the detector's:

- Training writes the snapshot as YOLO segmentation labels (one outline per instance,
  several rings joined by zero-width seams, see metrics.instance_outline) and starts from
  ``yolov8n-seg.yaml`` (random init) unless given start weights.
- Prediction: NMS keeps each instance's anchor, so its class scores are the kept anchor's
  full vector (as for boxes) and its mask is the anchor's coefficients times the prototypes,
  upsampled to the model input, cut to the box. The mask's outline becomes the instance's
  rings in original pixels (metrics.mask_rings, simplified by ``SIMPLIFY_PX`` input pixels
  so a pre-label has few vertices to edit). ``mask_uncertainty`` is 1 - the mean of
  2|p - 0.5| over the mask's pixels, p the pixel's sigmoid: 0 when the mask is sure of every
  pixel it claims. An instance whose mask has no pixel is dropped.
- Evaluation: our batched prediction and ``metrics.segmentation_metrics`` (equal to
  COCOeval segm on the same polygons). Metrics keys: ``mask_map50_95``, ``mask_map50``,
  ``precision``, ``recall`` (masks, IoU 0.5, score 0.25), ``per_class_ap`` (name -> mask
  AP50-95), ``primary`` (= mask_map50_95) and ``primary_metric`` (= "mask_map50_95").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ml.base import DatasetSpec, ImagePrediction, InstanceRings, Item
from ml.metrics import ImageMaskGroundTruth, ImageMaskPredictions, instance_outline, mask_rings
from ml.metrics import segmentation_metrics as coco_segmentation_metrics
from ml.yolo import YoloBackend, image_size

DEFAULT_ARCH = "yolov8n-seg.yaml"
SIMPLIFY_PX = 0.5


def segment_label_lines(item: Item) -> list[str]:
    """YOLO segmentation rows (class x1 y1 x2 y2 ..., normalised, clipped) for the item."""
    w, h = image_size(item)
    lines = []
    for rings, c in item.instances:
        outline = instance_outline(rings) / np.array([w, h], dtype=np.float64)
        values = " ".join(f"{x:.6f} {y:.6f}" for x, y in outline.clip(0.0, 1.0))
        lines.append(f"{int(c)} {values}")
    return lines


class YoloSegBackend(YoloBackend):
    """Ultralytics YOLOv8-seg. ``weights_path``: a .pt we wrote or an admin configured."""

    kind = "yolo_seg"
    task = "segmentation"
    ultralytics_task = "segment"
    default_arch = DEFAULT_ARCH
    live_metric = "metrics/mAP50-95(M)"
    label_lines = staticmethod(segment_label_lines)

    def evaluate(self, dataset: DatasetSpec, batch_size: int = 16) -> dict[str, Any]:
        """Mask metrics of the loaded weights on ``dataset.val``, predictions kept down to a
        0.001 score as COCO evaluation expects (see the module docstring for the keys)."""
        self._check_dataset(dataset)
        predictions: list[ImageMaskPredictions] = []
        truths: list[ImageMaskGroundTruth] = []
        outputs = self.predict([str(item.path) for item in dataset.val], batch_size, conf=0.001, max_det=100)
        for item, out in zip(dataset.val, outputs):
            predictions.append({"instances": out.polygons or [], "classes": out.classes, "scores": out.scores})
            width, height = image_size(item)
            truths.append({"instances": [rings for rings, _ in item.instances],
                           "classes": np.asarray([c for _, c in item.instances], dtype=np.int64),
                           "height": height, "width": width})
        return self._version_metrics(coco_segmentation_metrics(predictions, truths, len(self.class_names)),
                                     prefix="mask_")

    @staticmethod
    def _raw_output(out: Any) -> tuple[torch.Tensor, Any]:
        """In eval mode the segmentation head returns ((predictions, prototypes), raw)."""
        predictions, prototypes = out[0]
        return predictions, prototypes

    def _unpack(self, batch: Any, raw: torch.Tensor, extra: Any, dets: list[torch.Tensor],
                keep: list[torch.Tensor], emb: torch.Tensor, nc: int) -> dict[int, ImagePrediction]:
        from ultralytics.utils.ops import crop_mask

        boxed = super()._unpack(batch, raw, extra, dets, keep, emb, nc)
        input_shape = tuple(batch.images.shape[2:])
        for row, (index, geom) in enumerate(zip(batch.indices, batch.geometries)):
            det = dets[row].float()
            logits = self._mask_logits(extra[row].float(), det[:, 6:], input_shape)
            inside = crop_mask((logits > 0).to(torch.uint8), det[:, :4]).bool()
            certainty = (2 * torch.sigmoid(logits) - 1) * inside
            pixels = inside.sum(dim=(1, 2))
            mean_certainty = (certainty.sum(dim=(1, 2)) / pixels.clamp(min=1)).cpu().numpy()
            masks, boxes_in = inside.cpu().numpy().astype(np.uint8), det[:, :4].cpu().numpy()
            polygons: list[InstanceRings] = []
            kept: list[int] = []
            for k in range(len(det)):
                rings = _outline(masks[k], boxes_in[k], geom)
                if rings:
                    polygons.append(rings)
                    kept.append(k)
            prediction = boxed[index]
            prediction.boxes, prediction.classes = prediction.boxes[kept], prediction.classes[kept]
            prediction.scores = prediction.scores[kept]
            prediction.class_scores = None if prediction.class_scores is None else prediction.class_scores[kept]
            prediction.polygons = polygons
            prediction.mask_uncertainty = (1.0 - mean_certainty[kept]).astype(np.float32)
        return boxed

    @staticmethod
    def _mask_logits(prototypes: torch.Tensor, coefficients: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """(N, H, W) mask logits at the model input's size (ultralytics' process_mask before
        its threshold: the probabilities feed the mask-quality term)."""
        channels, mask_h, mask_w = prototypes.shape
        if coefficients.shape[0] == 0:
            return torch.zeros((0, *shape), device=prototypes.device)
        logits = (coefficients @ prototypes.view(channels, -1)).view(-1, mask_h, mask_w)
        return F.interpolate(logits[None], shape, mode="bilinear")[0]


def _outline(mask: np.ndarray, box: np.ndarray, geom: Any) -> InstanceRings:
    """The rings of one instance's input-sized mask, in original pixels: traced on the box's
    part of the mask only, then taken out of the letterbox."""
    h, w = mask.shape
    x1, y1 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
    x2, y2 = min(int(np.ceil(box[2])), w), min(int(np.ceil(box[3])), h)
    if x2 <= x1 or y2 <= y1:
        return []
    rings = mask_rings(mask[y1:y2, x1:x2], simplify=SIMPLIFY_PX)
    offset = np.array([x1 - geom.pad_x, y1 - geom.pad_y], dtype=np.float64)
    scale = np.array([geom.scale_x, geom.scale_y], dtype=np.float64)
    limit = np.array([geom.orig_w, geom.orig_h], dtype=np.float64)
    return [((np.asarray(ring) + offset) / scale).clip(0, limit).tolist() for ring in rings]
