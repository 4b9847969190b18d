"""The Django-free blur and face detectors, on scikit-image's astronaut (a real photograph)."""
import ast
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image
from scipy import ndimage

from labeling.privacy.blur import Box, blur_boxes, padded_box
from labeling.privacy.detectors import (
    FACE_DETECTORS,
    DetectorUnavailable,
    HaarFaceDetector,
    MtcnnFaceDetector,
    detect_at_most,
    face_detector,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(skimage.data.astronaut())


def sharpness(image: Image.Image, area: tuple[int, int, int, int]) -> float:
    """Variance of the Laplacian of the grey values inside ``area``."""
    left, top, right, bottom = area
    gray = np.asarray(image.convert("L"), dtype=np.float64)[top:bottom, left:right]
    return float(ndimage.laplace(gray).var())


def outside_mask(shape: tuple[int, int], areas: list[tuple[int, int, int, int]]) -> np.ndarray:
    mask = np.ones(shape, dtype=bool)
    for left, top, right, bottom in areas:
        mask[top:bottom, left:right] = False
    return mask


def test_mtcnn_finds_the_astronauts_face(astronaut):
    faces = face_detector("mtcnn", fallback=False).detect(astronaut)
    assert len(faces) == 1
    box = faces[0].box
    # her face, by eye: about x 180-270, y 60-175 of the 512x512 photo
    assert 170 < box.x1 < 195 and 255 < box.x2 < 280 and 50 < box.y1 < 75 and 160 < box.y2 < 185
    assert faces[0].score > 0.99


def test_a_large_photo_is_searched_at_a_bounded_size_with_boxes_in_its_own_pixels(astronaut):
    big = astronaut.resize((1024, 1024), Image.Resampling.LANCZOS)
    faces = detect_at_most(face_detector("mtcnn", fallback=False), big, max_side=512)
    assert len(faces) == 1
    box = faces[0].box
    assert 340 < box.x1 < 390 and 510 < box.x2 < 560 and 100 < box.y1 < 150 and 320 < box.y2 < 370


def test_gaussian_blur_kills_the_face_and_leaves_the_rest(astronaut):
    face = face_detector("mtcnn", fallback=False).detect(astronaut)[0].box
    blurred = blur_boxes(astronaut, [face], method="gaussian", strength=50, padding=0.15)
    area = padded_box(face, padding=0.15, width=512, height=512)
    core = (int(face.x1), int(face.y1), int(face.x2), int(face.y2))
    assert sharpness(blurred, core) <= 0.2 * sharpness(astronaut, core)
    before, after = np.asarray(astronaut), np.asarray(blurred)
    outside = outside_mask(before.shape[:2], [area])
    assert np.array_equal(before[outside], after[outside])
    assert not np.array_equal(before[~outside], after[~outside])


def test_pixelate_makes_blocks_inside_the_padded_box_only(astronaut):
    box = Box(100, 100, 180, 180)
    out = np.asarray(blur_boxes(astronaut, [box], method="pixelate", strength=100, padding=0.0))
    block = out[100:120, 100:120]  # block side 80/4 = 20: one flat block
    assert (block == block[0, 0]).all()
    outside = outside_mask(out.shape[:2], [(100, 100, 180, 180)])
    assert np.array_equal(np.asarray(astronaut)[outside], out[outside])


def test_rendering_twice_from_the_original_gives_the_same_pixels(astronaut):
    boxes = [Box(10, 10, 60, 60), Box(40, 40, 120, 90)]
    first = blur_boxes(astronaut, boxes, strength=70)
    assert np.array_equal(np.asarray(first), np.asarray(blur_boxes(astronaut, boxes, strength=70)))
    assert np.array_equal(np.asarray(astronaut), skimage.data.astronaut())  # the input is not touched


def test_padding_grows_the_box_and_stays_inside_the_image():
    assert padded_box(Box(10, 20, 30, 60), padding=0.5, width=100, height=100) == (0, 0, 40, 80)
    assert padded_box(Box(90, 90, 99, 99), padding=1.0, width=100, height=100) == (81, 81, 100, 100)
    assert padded_box(Box(200, 200, 300, 300), padding=0.1, width=100, height=100) is None


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "swirl"}, "unknown blur method"),
    ({"strength": 0}, "strength must be 1-100"),
    ({"padding": 2.0}, "padding must be 0-1"),
])
def test_bad_blur_options_are_named(astronaut, kwargs, message):
    with pytest.raises(ValueError, match=message):
        blur_boxes(astronaut, [Box(0, 0, 10, 10)], **kwargs)


def test_haar_fallback_finds_the_face_or_says_why_it_cannot_run(astronaut):
    problem = HaarFaceDetector.available()
    if problem is None:
        faces = HaarFaceDetector().detect(astronaut)
        assert any(f.box.x1 < 230 < f.box.x2 and f.box.y1 < 120 < f.box.y2 for f in faces)
    else:
        # the installed OpenCV (5.x) ships no cascades: asking for it names the reason ...
        assert "Haar cascades" in problem
        with pytest.raises(DetectorUnavailable, match="Haar cascades"):
            face_detector("haar", fallback=False)
        # ... and with the fallback on, the next detector that can run serves instead
        assert isinstance(face_detector("haar"), MtcnnFaceDetector)


def test_unknown_detector_is_named():
    with pytest.raises(ValueError, match="unknown face detector 'yolo-face'"):
        face_detector("yolo-face")
    assert set(FACE_DETECTORS) == {"mtcnn", "haar"}


def test_the_blur_and_detector_modules_import_no_django():
    for name in ("blur.py", "detectors.py"):
        tree = ast.parse((ROOT / "labeling" / "privacy" / name).read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
        assert not {m for m in imported if m.split(".")[0] in ("django", "rest_framework", "labeling", "training")}
