"""The YOLOv8-seg backend's geometry: instance masks in the letterboxed model input come
back as outlines in original pixels, and labels are written as ultralytics reads them."""
import numpy as np
import pytest
from shapely.geometry import Polygon

from ml.base import Item
from ml.batching import letterbox_geometry
from ml.yolo_seg import _outline, segment_label_lines


def test_a_mask_in_the_letterbox_comes_back_in_original_pixels():
    geom = letterbox_geometry(200, 100, 64)  # scale 0.32, 64x32 inside, 16 px of padding above
    assert (geom.new_w, geom.new_h, geom.pad_x, geom.pad_y) == (64, 32, 0, 16)
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[20:30, 8:40] = 1  # input pixels; in the original: x 25-125, y 12.5-43.75
    (ring,) = _outline(mask, np.array([6.0, 18.0, 42.0, 32.0]), geom)
    expected = Polygon([(25, 12.5), (125, 12.5), (125, 43.75), (25, 43.75)])
    shape = Polygon(ring)
    assert shape.symmetric_difference(expected).area == pytest.approx(0.0, abs=1e-6)


def test_a_mask_reaching_the_image_edge_stays_inside_it():
    geom = letterbox_geometry(64, 64, 64)
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[50:64, 0:10] = 1
    (ring,) = _outline(mask, np.array([0.0, 48.0, 12.0, 64.0]), geom)
    xs, ys = zip(*ring)
    assert (min(xs), max(xs), min(ys), max(ys)) == (0.0, 10.0, 50.0, 64.0)


def test_a_mask_outside_its_box_has_no_outline():
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[0:5, 0:5] = 1
    assert _outline(mask, np.array([30.0, 30.0, 40.0, 40.0]), letterbox_geometry(64, 64, 64)) == []


def test_label_lines_are_normalized_outlines_one_per_instance():
    square = [[10, 10], [30, 10], [30, 20], [10, 20]]
    holed = [[[0, 0], [40, 0], [40, 40], [0, 40]], [[10, 10], [20, 10], [20, 20], [10, 20]]]
    item = Item(path="unused.png", width=40, height=40, instances=(([square], 1), (holed, 0)))
    first, second = segment_label_lines(item)
    assert first == "1 0.250000 0.250000 0.750000 0.250000 0.750000 0.500000 0.250000 0.500000"
    # The hole survives in the mask ultralytics' loader draws from the line (cv2.fillPoly,
    # which counts the hole's edge pixels as filled).
    from ultralytics.data.utils import polygon2mask

    outline = np.asarray([float(v) for v in second.split()[1:]]) * 40
    mask = polygon2mask((40, 40), [outline], color=1, downsample_ratio=1)
    assert second.startswith("0 ") and 1500 <= mask.sum() <= 1525
