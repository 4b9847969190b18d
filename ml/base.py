"""The model-backend interface shared by the detection and classification backends.

Django-free: the training service turns database rows into a ``DatasetSpec``, hands it to a
``Backend`` and stores what comes back. Nothing here imports torch or ultralytics, so the web
process can import the types without paying for the ML stack.

Contracts that the callers lean on:
- ``Backend.train`` is seeded, writes everything into ``workdir`` (args, dataset snapshot,
  last/best weights) and leaves the backend holding the best weights, ready to predict.
- ``Backend.predict`` yields one ``ImagePrediction`` per input path, in input order; an image
  that cannot be read yields a prediction with ``error`` set instead of stopping the run.
- Every metrics dict holds a float ``"primary"`` (higher is better) and ``"primary_metric"``,
  the name of the key it copies, so the promotion gate compares versions without knowing the task.
- Weights files are pickles: backends load only paths the caller passes, and the caller passes
  only files from our own storage or an admin-configured folder.
"""

from __future__ import annotations

import abc
import json
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

Task = Literal["detection", "classification", "segmentation"]
TASKS: tuple[str, ...] = ("detection", "classification", "segmentation")
# An instance's outline: rings of [x, y] points in pixels, even-odd (holes, split parts).
InstanceRings = list[list[list[float]]]

# (epoch 1-based, total epochs, mean train loss of the epoch, live validation metric or None)
ProgressCallback = Callable[[int, int, float, float | None], None]
ShouldStop = Callable[[], bool]


class TrainingCancelled(Exception):
    """Raised by ``Backend.train`` when ``should_stop()`` returned True; no model is produced."""


@dataclass(frozen=True)
class Item:
    """One labelled image.

    ``boxes`` (detection) are ``(x1, y1, x2, y2, class_index)`` in original pixel coordinates;
    ``instances`` (segmentation) are ``(rings, class_index)``, rings as ``InstanceRings``;
    ``label`` (classification) is a class index. ``width``/``height`` are the stored image's size;
    when None the backend reads them from the file.
    """

    path: str
    width: int | None = None
    height: int | None = None
    boxes: tuple[tuple[float, float, float, float, int], ...] = ()
    instances: tuple[tuple[InstanceRings, int], ...] = ()
    label: int | None = None


@dataclass
class DatasetSpec:
    """A frozen snapshot of a project's labels: the classes in model output order and both splits."""

    task: Task
    class_names: list[str]
    train: list[Item]
    val: list[Item] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}")
        if not self.class_names:
            raise ValueError("a dataset needs at least one class")
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError("class names must be unique")
        nc = len(self.class_names)
        for item in (*self.train, *self.val):
            if self.task == "classification":
                if item.label is None or not 0 <= item.label < nc:
                    raise ValueError(f"{item.path}: label {item.label!r} is not a class index < {nc}")
            elif any(not 0 <= int(b[4]) < nc for b in item.boxes):
                raise ValueError(f"{item.path}: box class index out of range 0..{nc - 1}")
            elif any(not 0 <= int(c) < nc for _, c in item.instances):
                raise ValueError(f"{item.path}: instance class index out of range 0..{nc - 1}")


@dataclass
class TrainParams:
    """Training settings. None means "the backend's default" (documented on each backend)."""

    epochs: int = 30
    imgsz: int | None = None
    batch: int = 16
    seed: int = 0
    device: str = "auto"  # "auto" = first CUDA device when present, else CPU; or "cpu", "cuda:0"
    start_weights: str | None = None  # a weights file we wrote or an admin configured
    arch: str | None = None  # "yolov8n.yaml"; "resnet18" | "mobilenet_v3_small" | "efficientnet_lite0"
    lr: float | None = None
    weight_decay: float | None = None
    patience: int = 10  # epochs without improvement of the validation primary metric
    workers: int = 2  # data-loading worker processes

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch < 1 or self.workers < 0 or self.patience < 1:
            raise ValueError("epochs, batch and patience must be >= 1 and workers >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def loader_workers(requested: int) -> int:
    """Data-loading worker processes that can really be started: none inside a daemonic
    process (a Celery prefork child may not have children), where loading runs in-process."""
    return 0 if multiprocessing.current_process().daemon else requested


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    metric: float | None


@dataclass
class TrainResult:
    """``weights_path`` is the best checkpoint inside the run folder; ``metrics`` evaluate it on ``val``."""

    weights_path: str
    metrics: dict[str, Any]
    epochs_run: int
    history: list[EpochRecord]


@dataclass
class ImagePrediction:
    """The model's output for one image, in the image's original pixel coordinates.

    Detection: ``boxes`` (N, 4) xyxy float32, ``classes`` (N,) int64, ``scores`` (N,) float32 and
    ``class_scores`` (N, nc) float32: every class's independent sigmoid score for the box, so
    ``scores[i] == class_scores[i].max()`` and ``classes[i] == class_scores[i].argmax()``.
    Segmentation: as detection, plus ``polygons``, each kept instance's ``InstanceRings`` in
    original pixels, and ``mask_uncertainty`` (N,) float32 in [0, 1], how unsure the mask is
    of its own pixels (see the segmentation backend).
    Classification: ``probs`` (nc,) float32 softmax, summing to 1.
    Both: ``embedding`` (D,) float32, D fixed per model, for diversity sampling.
    An unreadable image has ``error`` set and empty arrays.
    """

    path: str
    width: int = 0
    height: int = 0
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    classes: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    class_scores: np.ndarray | None = None
    polygons: list[InstanceRings] | None = None
    mask_uncertainty: np.ndarray | None = None
    probs: np.ndarray | None = None
    embedding: np.ndarray | None = None
    error: str | None = None


def predictions_in_order(
    batches: Iterable[Any], predict_rows: Callable[[Any], dict[int, ImagePrediction]]
) -> Iterator[ImagePrediction]:
    """One prediction per input image, in input order, from ``batching.BatchLoader`` batches:
    an unreadable image gets one carrying its error, the others come from
    ``predict_rows(batch)`` (input index -> prediction), called for batches that hold images."""
    for batch in batches:
        results = {e.index: ImagePrediction(path=e.path, error=e.message) for e in batch.errors}
        if batch.indices:
            results.update(predict_rows(batch))
        for index in sorted(results):
            yield results[index]


class Backend(abc.ABC):
    """One trainable model. Construct via ``ml.registry.load_backend``."""

    kind: ClassVar[str]
    task: ClassVar[Task]

    def __init__(
        self, class_names: list[str], weights_path: str | Path | None = None, device: str = "auto"
    ) -> None:
        """``class_names`` in model output order; subclasses load ``weights_path`` when given."""
        if not class_names:
            raise ValueError("a backend needs at least one class")
        self.class_names = list(class_names)
        self.device = resolve_device(device)
        self._model: Any = None  # the loaded or trained model; subclasses set it

    def _require_model(self) -> Any:
        if self._model is None:
            raise RuntimeError("no weights loaded: train the backend or load it with weights")
        return self._model

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @abc.abstractmethod
    def train(
        self,
        dataset: DatasetSpec,
        params: TrainParams,
        workdir: str | Path,
        progress_callback: ProgressCallback | None = None,
        should_stop: ShouldStop | None = None,
    ) -> TrainResult:
        """Train on ``dataset.train``, select weights on ``dataset.val``, keep the best weights loaded.

        Raises ``TrainingCancelled`` when ``should_stop()`` turns True, ``ValueError`` when the
        dataset does not fit this backend (wrong task, empty split, other class list).
        """

    @abc.abstractmethod
    def predict(self, paths: Iterable[str], batch_size: int = 32) -> Iterator[ImagePrediction]:
        """Yield one prediction per path, in order, computed in batches on the backend's device."""

    @abc.abstractmethod
    def evaluate(self, dataset: DatasetSpec) -> dict[str, Any]:
        """Metrics of the loaded weights on ``dataset.val`` (see the backend for the keys)."""

    def _check_dataset(self, dataset: DatasetSpec) -> None:
        if dataset.task != self.task:
            raise ValueError(f"{self.kind} backend trains {self.task}, got a {dataset.task} dataset")
        if list(dataset.class_names) != self.class_names:
            raise ValueError("dataset class names differ from the backend's (order matters)")
        if not dataset.val:
            raise ValueError("the validation split is empty; weights are selected and evaluated on it")


def resolve_device(device: str = "auto") -> str:
    """Map "auto" to "cuda:0" when CUDA is available, else "cpu"; pass anything else through."""
    if device != "auto":
        return device
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def write_run_args(workdir: Path, **sections: Any) -> Path:
    """Record what a run was asked to do (``args.json`` in the run folder), for reproducibility."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "args.json"
    path.write_text(json.dumps(sections, indent=2, default=str))
    return path
