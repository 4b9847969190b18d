"""Which backend serves which kind of model version, imported on demand.

Django-free. Kept apart from base.py so that the interface module imports none of its
implementations (they import it).
"""
from __future__ import annotations

from pathlib import Path

from ml.base import Backend, Task

BACKEND_KINDS: dict[str, Task] = {"yolo": "detection", "yolo_seg": "segmentation", "classifier": "classification"}


def backend_class(kind: str) -> type[Backend]:
    """The Backend subclass for ``kind`` ("yolo", "yolo_seg" or "classifier"), imported on demand."""
    if kind == "yolo":
        from ml.yolo import YoloBackend

        return YoloBackend
    if kind == "yolo_seg":
        from ml.yolo_seg import YoloSegBackend

        return YoloSegBackend
    if kind == "classifier":
        from ml.classifier import ClassifierBackend

        return ClassifierBackend
    raise ValueError(f"unknown backend kind {kind!r}; expected one of {sorted(BACKEND_KINDS)}")


def load_backend(
    kind: str, weights_path: str | Path | None, class_names: list[str], device: str = "auto"
) -> Backend:
    """A backend for ``class_names``; with ``weights_path`` its weights are loaded.

    Weights may be pickles: pass only paths from our storage or an admin-configured folder.

    Without weights the backend is untrained: ``train`` it before ``predict``/``evaluate``.
    Raises ``ValueError`` when the weights were trained for a different number of classes.
    """
    return backend_class(kind)(class_names, weights_path=weights_path, device=device)
