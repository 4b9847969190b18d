"""YOLOv8 detection backend on ultralytics, offline by construction.

- Training writes the dataset snapshot in YOLO format inside the run folder and calls
  ultralytics' trainer; the run folder (``workdir``) then holds ``args.json``, ultralytics'
  ``args.yaml``, ``results.csv`` and ``weights/{last,best}.pt``.
- Without start weights the model is built from ``yolov8n.yaml`` (random init); nothing is
  ever downloaded: ``YOLO_OFFLINE``/``YOLO_AUTOINSTALL`` are forced off before ultralytics is
  imported, plots are off, the font ultralytics checks for on every dataset check is provided
  locally, and CUDA AMP uses bf16, which skips ultralytics' AMP self-test (it fetches a model).
- Prediction does not use ultralytics' per-image predict loop: ``batching.BatchLoader`` feeds
  whole batches and NMS keeps the anchor indices, so each kept box carries every class's score.
  YOLOv8 class scores are independent sigmoids (they do not sum to 1); normalise them before
  a softmax-style entropy or margin, or use per-class binary entropy.
- Evaluation runs our batched prediction and ``ml.metrics.detection_metrics``, whose
  mAP equals pycocotools' on the same boxes; training's final numbers come from the same
  evaluation, so a new version and the re-evaluated deployed one are compared like for like.
  Metrics keys: ``map50_95``, ``map50``, ``precision``, ``recall``, ``per_class_ap`` (name ->
  AP50-95, None for a class absent from the validation split), ``primary`` (= map50_95) and
  ``primary_metric`` (= "map50_95").
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import yaml
from PIL import Image

from ml.base import (
    Backend,
    DatasetSpec,
    EpochRecord,
    ImagePrediction,
    Item,
    ProgressCallback,
    ShouldStop,
    Task,
    TrainingCancelled,
    TrainParams,
    TrainResult,
    loader_workers,
    predictions_in_order,
    resolve_device,
    write_run_args,
)
from ml.batching import BatchLoader, StageTimings, stage
from ml.metrics import ImageGroundTruth, ImagePredictions
from ml.metrics import detection_metrics as coco_detection_metrics

DEFAULT_ARCH = "yolov8n.yaml"
DEFAULT_IMGSZ = 640
CANCEL_POLL_BATCHES = 10  # poll should_stop every N training batches, so a cancel lands within seconds
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".dng", ".mpo", ".pfm", ".heic"}


def _ultralytics_env() -> None:
    """Keep ultralytics off the network; must run before the first ``import ultralytics``."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    default_dir = Path(tempfile.gettempdir()) / f"vision-ultralytics-{os.getuid()}"
    os.environ.setdefault("YOLO_CONFIG_DIR", str(default_dir))


def _provide_fonts() -> None:
    """Put a local font where ultralytics' ``check_font`` looks first.

    Every dataset check calls ``check_font("Arial.ttf")``, which otherwise probes a download URL
    even with plots off. The glyphs only matter for plots, which we never draw.
    """
    from matplotlib import font_manager
    from ultralytics.utils import USER_CONFIG_DIR

    source = font_manager.findfont("DejaVu Sans", fallback_to_default=True)
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        target = Path(USER_CONFIG_DIR) / name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def _yolo(source: str | Path, task: str = "detect") -> Any:
    """An ``ultralytics.YOLO`` from a local .pt (a pickle: trusted paths only) or a model yaml."""
    _ultralytics_env()
    from ultralytics import YOLO

    _provide_fonts()
    source = str(source)
    if source.endswith(".pt") and not Path(source).is_file():
        raise FileNotFoundError(f"weights file not found: {source}")  # ultralytics would try to download it
    return YOLO(source, task=task)


def _ultralytics_device(device: str) -> str:
    return device.removeprefix("cuda:") if device.startswith("cuda") else device


def _link_image(src: Path, dst: Path) -> None:
    """Symlink ``src`` into the snapshot, or copy it when ultralytics might write to it.

    Ultralytics re-saves truncated JPEGs in place while checking a dataset; through a link that
    would rewrite the file in our storage, so those few are copied.
    """
    with open(src, "rb") as f:
        head = f.read(2)
        f.seek(-2, os.SEEK_END)
        tail = f.read(2)
    if head == b"\xff\xd8" and tail != b"\xff\xd9":
        shutil.copyfile(src, dst)
        return
    try:
        dst.symlink_to(src.resolve())
    except OSError:
        shutil.copyfile(src, dst)


def image_size(item: Item) -> tuple[int, int]:
    """(width, height) of the item's image: as stored, else read from the file."""
    if item.width and item.height:
        return item.width, item.height
    with Image.open(item.path) as im:
        return im.size


def _label_lines(item: Item) -> list[str]:
    """YOLO label rows (class cx cy w h, normalised) for the item's boxes, clipped to the image."""
    w, h = image_size(item)
    lines = []
    for x1, y1, x2, y2, c in item.boxes:
        x1, x2 = sorted((min(max(x1, 0.0), w), min(max(x2, 0.0), w)))
        y1, y2 = sorted((min(max(y1, 0.0), h), min(max(y2, 0.0), h)))
        if x2 - x1 < 1e-3 or y2 - y1 < 1e-3:
            continue  # degenerate after clipping: would be dropped by ultralytics anyway
        cx, cy, bw, bh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
        lines.append(f"{int(c)} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
    return lines


def write_yolo_dataset(dataset: DatasetSpec, root: Path,
                       label_lines: Callable[[Item], list[str]] = _label_lines) -> Path:
    """Write ``dataset`` as a YOLO-format folder under ``root``; return its ``data.yaml``.

    Images are linked (not copied) under ``images/{train,val}`` with stable names; labels go to
    ``labels/{train,val}`` (one line per object, from ``label_lines``). An empty train split points at the validation images, because
    ultralytics requires both keys (evaluation-only snapshots).
    """
    splits = {"train": dataset.train, "val": dataset.val}
    for split, items in splits.items():
        image_dir, label_dir = root / "images" / split, root / "labels" / split
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        for i, item in enumerate(items):
            src = Path(item.path)
            suffix = src.suffix.lower() if src.suffix.lower() in _IMAGE_SUFFIXES else ".jpg"
            dst = image_dir / f"{i:07d}{suffix}"
            if not dst.exists() and not dst.is_symlink():
                _link_image(src, dst)
            (label_dir / f"{i:07d}.txt").write_text("\n".join(label_lines(item)))
    data = {
        "path": str(root.resolve()),
        "train": "images/train" if dataset.train else "images/val",
        "val": "images/val",
        "nc": len(dataset.class_names),
        "names": dict(enumerate(dataset.class_names)),
    }
    data_yaml = root / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return data_yaml


def _epoch_loss(tloss: Any) -> float:
    if tloss is None:
        return float("nan")
    if isinstance(tloss, dict):
        return float(sum(float(v) for v in tloss.values()))
    return float(torch.as_tensor(tloss).sum())


class YoloBackend(Backend):
    """Ultralytics YOLO detector (kind "yolo"). ``weights_path``: a .pt we wrote or an admin configured."""

    kind = "yolo"
    task: ClassVar[Task] = "detection"
    ultralytics_task = "detect"
    default_arch = DEFAULT_ARCH
    # ultralytics' validation metric reported per epoch while training.
    live_metric = "metrics/mAP50-95(B)"
    label_lines = staticmethod(_label_lines)

    def __init__(
        self, class_names: list[str], weights_path: str | Path | None = None, device: str = "auto"
    ) -> None:
        super().__init__(class_names, weights_path, device)
        self.imgsz = DEFAULT_IMGSZ
        self.weights_path: str | None = None
        if weights_path is not None:
            self._load(weights_path)

    def _load(self, weights_path: str | Path) -> None:
        model = _yolo(weights_path, self.ultralytics_task)
        nc = len(model.model.names)
        if nc != self.num_classes:
            raise ValueError(f"{weights_path} predicts {nc} classes, expected {self.num_classes}")
        head = model.model.model[-1]
        if getattr(head, "one2one_cv2", None) is not None:
            head.end2end = False  # NMS-free heads drop the class vector; use the one-to-many outputs
        self._model = model
        self.imgsz = int(model.overrides.get("imgsz") or DEFAULT_IMGSZ)
        self.weights_path = str(weights_path)
        embed_layer = next((m for m in model.model.modules() if type(m).__name__ == "SPPF"), None)
        if embed_layer is None:
            raise ValueError(f"{weights_path}: no SPPF layer to take embeddings from")
        self._embed_layer: torch.nn.Module = embed_layer

    # -- training ------------------------------------------------------------------------------

    def train(
        self,
        dataset: DatasetSpec,
        params: TrainParams,
        workdir: str | Path,
        progress_callback: ProgressCallback | None = None,
        should_stop: ShouldStop | None = None,
    ) -> TrainResult:
        """Train with ultralytics. ``params.lr`` (if set) selects AdamW at that rate; else ultralytics'
        auto optimizer picks both.

        Defaults: arch ``yolov8n.yaml``, imgsz 640. A start checkpoint with another class count
        is fine-tuned: layers whose shapes still match are transferred, the head is re-initialised.
        """
        self._check_dataset(dataset)
        workdir = Path(workdir).resolve()
        source = params.start_weights or params.arch or self.default_arch
        model = _yolo(source, self.ultralytics_task)
        data_yaml = write_yolo_dataset(dataset, workdir / "dataset", self.label_lines)
        device = resolve_device(params.device)
        cuda = device.startswith("cuda")
        args: dict[str, Any] = {
            "data": str(data_yaml),
            "epochs": params.epochs,
            "imgsz": params.imgsz or DEFAULT_IMGSZ,
            "batch": params.batch,
            "device": _ultralytics_device(device),
            "workers": loader_workers(params.workers if cuda else min(params.workers, 2)),
            "project": str(workdir.parent),
            "name": workdir.name,
            "exist_ok": True,
            "seed": params.seed,
            "deterministic": True,
            "plots": False,
            "val": True,
            "amp": "bf16" if cuda and torch.cuda.is_bf16_supported() else False,
            "patience": params.patience,
            "verbose": False,
        }
        if params.lr is not None:
            args.update(optimizer="AdamW", lr0=params.lr)
        if params.weight_decay is not None:
            args["weight_decay"] = params.weight_decay
        write_run_args(
            workdir, backend=self.kind, source=str(source), params=params.to_dict(), ultralytics=args
        )

        history: list[EpochRecord] = []
        state: dict[str, Any] = {"trainer": None, "batches": 0, "epoch": -1}

        def stop_requested() -> bool:
            return should_stop is not None and bool(should_stop())

        def on_pretrain_routine_end(trainer: Any) -> None:
            state["trainer"] = trainer

        def on_train_batch_end(trainer: Any) -> None:
            state["batches"] += 1
            if state["batches"] % CANCEL_POLL_BATCHES == 0 and stop_requested():
                raise TrainingCancelled()

        def on_train_epoch_end(trainer: Any) -> None:
            state["epoch"] = trainer.epoch

        def on_fit_epoch_end(trainer: Any) -> None:
            if trainer.epoch != state["epoch"]:
                return  # the final evaluation re-fires this hook with epoch + 1; not a training epoch
            metric = trainer.metrics.get(self.live_metric)
            metric = None if metric is None else float(metric)
            record = EpochRecord(trainer.epoch + 1, _epoch_loss(trainer.tloss), metric)
            history.append(record)
            if progress_callback is not None:
                progress_callback(record.epoch, trainer.epochs, record.loss, record.metric)
            if stop_requested():
                raise TrainingCancelled()

        for event, fn in (
            ("on_pretrain_routine_end", on_pretrain_routine_end),
            ("on_train_batch_end", on_train_batch_end),
            ("on_train_epoch_end", on_train_epoch_end),
            ("on_fit_epoch_end", on_fit_epoch_end),
        ):
            model.add_callback(event, fn)

        if stop_requested():
            raise TrainingCancelled()
        try:
            model.train(**args)
        except TrainingCancelled:
            trainer = state["trainer"]
            for loader in (getattr(trainer, "train_loader", None), getattr(trainer, "test_loader", None)):
                close = getattr(loader, "close", None)
                if close is not None:
                    close()  # ultralytics closes its persistent workers only on a normal finish
            raise
        trainer = state["trainer"]
        best = Path(trainer.best if Path(trainer.best).exists() else trainer.last)
        self._load(best)
        # The registered numbers come from the same evaluation the promotion gate re-runs on
        # the deployed version, so the two are comparable.
        metrics = self.evaluate(dataset, batch_size=max(1, params.batch))
        return TrainResult(str(best), metrics, len(history), history)

    # -- evaluation ----------------------------------------------------------------------------

    def evaluate(self, dataset: DatasetSpec, batch_size: int = 16) -> dict[str, Any]:
        """COCO-style metrics of the loaded weights on ``dataset.val`` (equal to pycocotools on
        the same boxes), from our own batched prediction at the training imgsz. Predictions
        are kept down to a 0.001 score, as COCO evaluation expects; precision and recall are
        read at the 0.25 pre-label threshold (see ml.metrics.detection_metrics)."""
        self._check_dataset(dataset)
        predictions: list[ImagePredictions] = []
        truths: list[ImageGroundTruth] = []
        outputs = self.predict([str(item.path) for item in dataset.val], batch_size, conf=0.001, max_det=100)
        for item, out in zip(dataset.val, outputs):
            predictions.append({"boxes": out.boxes, "classes": out.classes, "scores": out.scores})
            truths.append({
                "boxes": np.asarray([b[:4] for b in item.boxes], dtype=np.float64).reshape(-1, 4),
                "classes": np.asarray([b[4] for b in item.boxes], dtype=np.int64),
            })
        return self._version_metrics(coco_detection_metrics(predictions, truths, len(self.class_names)))

    def _version_metrics(self, coco: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        """The metrics a version keeps, from detection_metrics or segmentation_metrics; the
        mAPs are named with ``prefix`` ("mask_" for masks)."""
        per_class = dict.fromkeys(self.class_names)
        for entry in coco["per_class"]:
            per_class[self.class_names[entry["class_index"]]] = entry["ap50_95"]
        return {
            f"{prefix}map50_95": coco["map50_95"],
            f"{prefix}map50": coco["map50"],
            "precision": coco["precision"],
            "recall": coco["recall"],
            "per_class_ap": per_class,
            "primary": coco["map50_95"] if coco["map50_95"] is not None else 0.0,
            "primary_metric": f"{prefix}map50_95",
        }

    # -- prediction ----------------------------------------------------------------------------

    def predict(
        self,
        paths: Iterable[str],
        batch_size: int = 32,
        *,
        conf: float = 0.25,
        iou: float = 0.7,
        max_det: int = 300,
        imgsz: int | None = None,
        timings: StageTimings | None = None,
    ) -> Iterator[ImagePrediction]:
        """Batched prediction; boxes in original pixels, each with its full class-score vector.

        ``scores[i] == class_scores[i].max()``; the embedding is the global-average-pooled SPPF
        output (256 floats for yolov8n), from the same forward pass. ``timings`` collects
        per-stage seconds for benchmarks.
        """
        from ultralytics.utils.nms import non_max_suppression

        yolo = self._require_model()
        device = torch.device(self.device)
        half = device.type == "cuda"
        net = yolo.model.to(device, torch.float16 if half else torch.float32).eval()
        net.fuse(verbose=False)  # conv+bn folding: same outputs, fewer kernels; idempotent
        nc = self.num_classes
        timings = timings or StageTimings()
        pooled: list[torch.Tensor] = []
        hook = self._embed_layer.register_forward_hook(
            lambda _m, _i, out: pooled.append(out.float().mean(dim=(2, 3)))
        )
        loader = BatchLoader(
            paths,
            batch_size=batch_size,
            imgsz=imgsz or self.imgsz,
            device=self.device,
            mode="letterbox",
            half=half,
            timings=timings,
        )

        def predict_rows(batch: Any) -> dict[int, ImagePrediction]:
            with stage(timings, "forward", device), torch.inference_mode():
                pooled.clear()
                out = net(batch.images)
            with stage(timings, "postprocess", device), torch.inference_mode():
                raw, extra = self._raw_output(out)
                dets, keep = non_max_suppression(
                    raw, conf, iou, nc=nc, max_det=max_det, multi_label=False, return_idxs=True
                )
                return self._unpack(batch, raw, extra, dets, keep, pooled[-1], nc)

        try:
            yield from predictions_in_order(loader, predict_rows)
        finally:
            hook.remove()

    @staticmethod
    def _raw_output(out: Any) -> tuple[torch.Tensor, Any]:
        """The network's (batch, 4 + nc + extra, anchors) predictions, and what else the head
        returns that postprocessing needs (nothing for a detector)."""
        return (out[0] if isinstance(out, (list, tuple)) else out), None

    def _unpack(
        self,
        batch: Any,
        raw: torch.Tensor,
        extra: Any,
        dets: list[torch.Tensor],
        keep: list[torch.Tensor],
        emb: torch.Tensor,
        nc: int,
    ) -> dict[int, ImagePrediction]:
        counts = [len(d) for d in dets]
        # gather every image's kept anchors, then copy to the host once per batch
        scores_all = torch.cat(
            [raw[i, 4 : 4 + nc, k.view(-1).long()].T for i, k in enumerate(keep)]
        ).float().cpu().numpy()
        dets_all = torch.cat([d.float() for d in dets]).cpu().numpy()
        emb_np = emb.float().cpu().numpy()
        out: dict[int, ImagePrediction] = {}
        start = 0
        for row, (index, path, geom) in enumerate(zip(batch.indices, batch.paths, batch.geometries)):
            d = dets_all[start : start + counts[row]]
            cs = scores_all[start : start + counts[row]]
            start += counts[row]
            out[index] = ImagePrediction(
                path=path,
                width=geom.orig_w,
                height=geom.orig_h,
                boxes=geom.to_original(d[:, :4]),
                classes=d[:, 5].astype(np.int64),
                scores=d[:, 4].astype(np.float32),
                class_scores=cs.astype(np.float32).reshape(-1, nc),
                embedding=emb_np[row].astype(np.float32),
            )
        return out
