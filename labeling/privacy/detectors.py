"""Face detectors behind one small interface. Django-free.

Both work offline: MTCNN's weights ship inside the facenet-pytorch package, and OpenCV 4.x
wheels ship Haar cascades in ``cv2.data`` (5.x wheels ship neither the cascades nor the
classifier, so there the fallback reports that it is unavailable). Another detector plugs in
by subclassing FaceDetector and adding itself to FACE_DETECTORS.
"""
from __future__ import annotations

import abc
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from .blur import Box


class DetectorUnavailable(RuntimeError):
    """The detector cannot run here (its package or data files are missing)."""


@dataclass(frozen=True)
class Detection:
    box: Box
    score: float | None
    label: str = "face"


class FaceDetector(abc.ABC):
    """Finds faces in an RGB image; boxes in the image's pixels."""

    name: ClassVar[str]

    @classmethod
    def available(cls) -> str | None:
        """None when the detector can run here, else why not."""
        return None

    @abc.abstractmethod
    def detect(self, image: Image.Image) -> list[Detection]:
        """Faces of ``image`` (any PIL mode; converted to RGB)."""


class MtcnnFaceDetector(FaceDetector):
    """facenet-pytorch's MTCNN (P-, R- and O-net cascade) on the CPU unless told otherwise."""

    name = "mtcnn"

    def __init__(self, *, min_score: float = 0.9, device: str = "cpu", min_face_size: int = 20) -> None:
        problem = self.available()
        if problem:
            raise DetectorUnavailable(problem)
        from facenet_pytorch import MTCNN

        self.min_score = min_score
        self._model = MTCNN(keep_all=True, device=device, min_face_size=min_face_size)

    @classmethod
    def available(cls) -> str | None:
        try:
            import facenet_pytorch  # noqa: F401
        except ImportError as exc:
            return f"facenet-pytorch is not installed ({exc})"
        return None

    def detect(self, image: Image.Image) -> list[Detection]:
        boxes, probs = self._model.detect(image.convert("RGB"))
        if boxes is None:
            return []
        return [Detection(Box(*map(float, b)), float(p)) for b, p in zip(boxes, probs) if p >= self.min_score]


class HaarFaceDetector(FaceDetector):
    """OpenCV's frontal-face Haar cascade: cruder than MTCNN (frontal faces only, more false
    hits), but light; it has no scores."""

    name = "haar"
    CASCADE = "haarcascade_frontalface_default.xml"

    def __init__(self, *, min_score: float = 0.0, min_neighbors: int = 5, min_face_size: int = 20) -> None:
        problem = self.available()
        if problem:
            raise DetectorUnavailable(problem)
        import cv2

        self._cv2 = cv2
        # 5.x stubs lack the class; available() checked that this build has it
        self._cascade = cv2.CascadeClassifier(str(self._cascade_path()))  # type: ignore[attr-defined]
        self.min_neighbors, self.min_face_size = min_neighbors, min_face_size

    @classmethod
    def _cascade_path(cls) -> Path:
        import cv2

        return Path(getattr(getattr(cv2, "data", None), "haarcascades", "") or ".") / cls.CASCADE

    @classmethod
    def available(cls) -> str | None:
        try:
            import cv2
        except ImportError as exc:
            return f"OpenCV is not installed ({exc})"
        if not hasattr(cv2, "CascadeClassifier") or not cls._cascade_path().is_file():
            return (f"OpenCV {cv2.__version__} has no Haar cascades (4.x wheels ship them in cv2.data; "
                    "5.x wheels do not)")
        return None

    def detect(self, image: Image.Image) -> list[Detection]:
        gray = self._cv2.cvtColor(np.asarray(image.convert("RGB")), self._cv2.COLOR_RGB2GRAY)
        found = self._cascade.detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=self.min_neighbors,
            minSize=(self.min_face_size, self.min_face_size))
        return [Detection(Box(float(x), float(y), float(x + w), float(y + h)), None) for x, y, w, h in found]


def detect_at_most(detector: FaceDetector, image: Image.Image, max_side: int) -> list[Detection]:
    """Detect on a copy no larger than ``max_side`` (a 100-megapixel photo would cost minutes and
    gigabytes), with the boxes scaled back to ``image``'s pixels."""
    scale = max(image.size) / max_side
    if scale <= 1:
        return detector.detect(image)
    small = image.convert("RGB").resize((max(1, round(image.width / scale)), max(1, round(image.height / scale))),
                                        Image.Resampling.BILINEAR)
    return [Detection(Box(d.box.x1 * scale, d.box.y1 * scale, d.box.x2 * scale, d.box.y2 * scale), d.score, d.label)
            for d in detector.detect(small)]


FACE_DETECTORS: dict[str, type[FaceDetector]] = {
    MtcnnFaceDetector.name: MtcnnFaceDetector,
    HaarFaceDetector.name: HaarFaceDetector,
}
DEFAULT_FACE_DETECTOR = MtcnnFaceDetector.name

_loaded: dict[tuple[str, tuple[tuple[str, Any], ...]], FaceDetector] = {}
_lock = threading.Lock()


def face_detector(name: str = DEFAULT_FACE_DETECTOR, *, fallback: bool = True, **options: Any) -> FaceDetector:
    """A loaded detector, kept per process (loading MTCNN costs about a second). With
    ``fallback``, an unavailable detector gives way to the next available one in
    FACE_DETECTORS order; DetectorUnavailable when none can run."""
    if name not in FACE_DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; expected one of {', '.join(FACE_DETECTORS)}")
    order = [name] + ([other for other in FACE_DETECTORS if other != name] if fallback else [])
    problems = []
    for candidate in order:
        problem = FACE_DETECTORS[candidate].available()
        if problem:
            problems.append(f"{candidate}: {problem}")
            continue
        key = (candidate, tuple(sorted(options.items())))
        with _lock:
            if key not in _loaded:
                _loaded[key] = FACE_DETECTORS[candidate](**options)
            return _loaded[key]
    raise DetectorUnavailable("no face detector can run here: " + "; ".join(problems))

