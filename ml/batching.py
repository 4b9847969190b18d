"""Batched image loading for prediction: read ahead, decode, resize and batch on the device.

The prelabel path runs every pool image through the deployed model, so input handling decides
throughput. ``BatchLoader`` overlaps the stages: reader threads fetch file bytes one chunk
ahead, a producer thread decodes and resizes the current chunk while the caller runs the model
on the previous one, and a bounded queue keeps memory flat however long the path list is.

- CUDA: JPEGs are decoded in batches by nvJPEG (``torchvision.io.decode_jpeg(device="cuda")``)
  and resized on the GPU on a side stream; anything nvJPEG rejects is decoded on the CPU.
  Batches are fp16.
- CPU: a thread pool decodes (OpenCV, PIL as fallback) and resizes straight into the batch
  array. Batches are fp32. (``device_decode=True`` runs the CUDA path's code on the CPU, for
  comparison; the two resizers agree to a few grey levels.)

Images in our storage are already EXIF-upright, so decoding ignores the EXIF orientation tag on
every path (OpenCV would otherwise rotate and the GPU path would not).
An image that cannot be read or decoded becomes an ``ImageError`` of its batch; the others go on.
"""

from __future__ import annotations

import io
import itertools
import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ml.base import resolve_device

Mode = Literal["letterbox", "resize"]
PAD_VALUE = 114  # ultralytics' letterbox grey, so padding looks like what the detector trained on
_JPEG_MAGIC = b"\xff\xd8"
_IMREAD_FLAGS = getattr(cv2, "IMREAD_COLOR_RGB", cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION
_IMREAD_GIVES_RGB = hasattr(cv2, "IMREAD_COLOR_RGB")


@dataclass(frozen=True)
class Geometry:
    """Where an original image sits in the square model input: ``x_in = x_orig * scale_x + pad_x``."""

    orig_w: int
    orig_h: int
    new_w: int
    new_h: int
    pad_x: int
    pad_y: int

    @property
    def scale_x(self) -> float:
        return self.new_w / self.orig_w

    @property
    def scale_y(self) -> float:
        return self.new_h / self.orig_h

    def to_original(self, boxes: np.ndarray) -> np.ndarray:
        """Map (N, 4) xyxy boxes from model-input pixels to original pixels, clipped to the image."""
        out = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
        out[:, [0, 2]] = ((out[:, [0, 2]] - self.pad_x) / self.scale_x).clip(0, self.orig_w)
        out[:, [1, 3]] = ((out[:, [1, 3]] - self.pad_y) / self.scale_y).clip(0, self.orig_h)
        return out

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """Map (N, 4) xyxy boxes from original pixels to model-input pixels (inverse of ``to_original``)."""
        out = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
        out[:, [0, 2]] = out[:, [0, 2]] * self.scale_x + self.pad_x
        out[:, [1, 3]] = out[:, [1, 3]] * self.scale_y + self.pad_y
        return out


def letterbox_geometry(width: int, height: int, size: int) -> Geometry:
    """Fit the image inside ``size`` x ``size`` keeping its aspect ratio, centred on grey padding."""
    r = min(size / width, size / height)
    new_w, new_h = max(1, min(size, round(width * r))), max(1, min(size, round(height * r)))
    return Geometry(width, height, new_w, new_h, (size - new_w) // 2, (size - new_h) // 2)


def resize_geometry(width: int, height: int, size: int) -> Geometry:
    """Stretch the image to ``size`` x ``size`` (the classifier's input; matches its training crops)."""
    return Geometry(width, height, size, size, 0, 0)


def geometry_for(mode: Mode, width: int, height: int, size: int) -> Geometry:
    if mode == "letterbox":
        return letterbox_geometry(width, height, size)
    return resize_geometry(width, height, size)


def decode_image(data: bytes) -> np.ndarray:
    """Decode image bytes to an (H, W, 3) uint8 RGB array, ignoring EXIF orientation.

    OpenCV first (fast, releases the GIL); PIL for what OpenCV cannot read. Grey, palette,
    alpha and 16-bit images all come out as 8-bit RGB. Raises ``ValueError`` when undecodable.
    """
    img = cv2.imdecode(np.frombuffer(data, np.uint8), _IMREAD_FLAGS)
    if img is not None:
        return img if _IMREAD_GIVES_RGB else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    try:
        with Image.open(io.BytesIO(data)) as pil:
            return np.asarray(pil.convert("RGB"))
    except Exception as exc:  # PIL raises many types for bad bytes; all mean "undecodable"
        raise ValueError(f"cannot decode image: {exc}") from exc


def fit_image(img: np.ndarray, geom: Geometry, size: int, out: np.ndarray | None = None) -> np.ndarray:
    """Resize ``img`` per ``geom`` into a ``size`` x ``size`` x 3 uint8 array (``out`` if given)."""
    if out is None:
        out = np.empty((size, size, 3), np.uint8)
    shrink = geom.new_w < img.shape[1] or geom.new_h < img.shape[0]
    if (geom.new_w, geom.new_h) != (img.shape[1], img.shape[0]):
        # INTER_AREA when shrinking avoids aliasing, like ultralytics' validation loader
        interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        img = cv2.resize(img, (geom.new_w, geom.new_h), interpolation=interpolation)
    if (geom.new_w, geom.new_h) != (size, size):
        out[:] = PAD_VALUE
    out[geom.pad_y : geom.pad_y + geom.new_h, geom.pad_x : geom.pad_x + geom.new_w] = img
    return out


@dataclass
class ImageError:
    index: int  # position in the loader's input sequence
    path: str
    message: str


@dataclass
class Batch:
    """``images`` (B, 3, S, S) RGB in [0, 1] on the device; row i is ``paths[i]``, which was at
    position ``indices[i]`` of the loader's input.

    ``errors`` lists the images of this chunk that could not be loaded (they have no row); a
    batch may hold only errors, in which case ``images`` has zero rows.
    """

    images: torch.Tensor
    indices: list[int]
    paths: list[str]
    geometries: list[Geometry]
    errors: list[ImageError] = field(default_factory=list)


@dataclass
class StageTimings:
    """Seconds spent per stage. ``read``/``decode``/``preprocess`` are summed over worker threads
    (CPU time, can exceed wall time); ``wait`` is how long the consumer sat waiting for input
    (non-zero means input-bound); ``forward``/``postprocess`` are filled in by the model backend.
    On CUDA, kernels run asynchronously: without ``sync`` their time lands in the stage that
    first waits for a result."""

    sync: bool = False
    images: int = 0
    errors: int = 0
    read: float = 0.0
    decode: float = 0.0
    preprocess: float = 0.0
    wait: float = 0.0
    forward: float = 0.0
    postprocess: float = 0.0
    wall: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            setattr(self, stage, getattr(self, stage) + seconds)

    def as_dict(self) -> dict[str, float]:
        keys = ("images", "errors", "read", "decode", "preprocess", "wait", "forward", "postprocess", "wall")
        d: dict[str, float] = {k: getattr(self, k) for k in keys}
        d["images_per_s"] = self.images / self.wall if self.wall > 0 else 0.0
        return d


class _Stage:
    """Time a block into ``timings.<stage>``, synchronising CUDA first when asked to."""

    def __init__(self, timings: StageTimings, stage: str, device: torch.device | None = None) -> None:
        self.timings, self.stage, self.device = timings, stage, device

    def __enter__(self) -> None:
        self._sync()
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self._sync()
        self.timings.add(self.stage, time.perf_counter() - self.t0)

    def _sync(self) -> None:
        if self.timings.sync and self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def stage(timings: StageTimings, name: str, device: torch.device | str | None = None) -> _Stage:
    """Context manager adding the block's duration to ``timings.<name>`` (for the model backends)."""
    return _Stage(timings, name, torch.device(device) if isinstance(device, str) else device)


_DONE = object()


class BatchLoader:
    """Iterate ``Batch``es over ``paths`` in input order; iterable once.

    ``paths`` may be a generator: it is consumed one chunk at a time. At most ``prefetch``
    finished batches wait in the queue, plus one chunk being built and one chunk being read.
    Leaving the loop early (break, exception) stops the worker threads.
    """

    def __init__(
        self,
        paths: Iterable[str],
        *,
        batch_size: int = 32,
        imgsz: int = 640,
        device: str = "auto",
        mode: Mode = "letterbox",
        half: bool | None = None,
        read_threads: int = 8,
        decode_threads: int | None = None,
        prefetch: int = 2,
        device_decode: bool | None = None,
        timings: StageTimings | None = None,
    ) -> None:
        if batch_size < 1 or imgsz < 1:
            raise ValueError("batch_size and imgsz must be positive")
        self.paths = paths
        self.batch_size = batch_size
        self.imgsz = imgsz
        self.device = torch.device(resolve_device(device))
        self.mode: Mode = mode
        self.cuda = self.device.type == "cuda"
        self.dtype = torch.float16 if (self.cuda if half is None else half) else torch.float32
        # torchvision JPEG decode + torch resize; the default on CUDA (nvJPEG), available on CPU to compare
        self.device_decode = self.cuda if device_decode is None else device_decode
        self.read_threads = read_threads
        self.decode_threads = decode_threads or min(8, os.cpu_count() or 1)
        self.timings = timings or StageTimings()
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self._closed = threading.Event()
        self._started = False

    # -- consumer side -------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Batch]:
        if self._started:
            raise RuntimeError("a BatchLoader can be iterated only once")
        self._started = True
        t_start = time.perf_counter()
        producer = threading.Thread(target=self._produce, name="batch-loader", daemon=True)
        producer.start()
        try:
            while True:
                t0 = time.perf_counter()
                item = self._queue.get()
                self.timings.add("wait", time.perf_counter() - t0)
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                batch, ready = item
                if ready is not None:
                    # the batch was built on the loader's side stream: order the caller's work after it
                    current = torch.cuda.current_stream(self.device)
                    current.wait_event(ready)
                    batch.images.record_stream(current)
                with self.timings._lock:
                    self.timings.images += len(batch.indices)
                    self.timings.errors += len(batch.errors)
                yield batch
        finally:
            self._closed.set()
            while producer.is_alive():  # unblock a producer stuck on a full queue
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    producer.join(timeout=0.05)
            self.timings.add("wall", time.perf_counter() - t_start)

    # -- producer side -------------------------------------------------------------------------

    def _put(self, item: object) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        readers = ThreadPoolExecutor(self.read_threads, thread_name_prefix="batch-read")
        decoders = ThreadPoolExecutor(self.decode_threads, thread_name_prefix="batch-decode")
        stream = torch.cuda.Stream(self.device) if self.cuda else None
        try:
            numbered = enumerate(self.paths)
            pending: tuple[list[tuple[int, str]], list[Future]] | None = None
            while not self._closed.is_set():
                chunk = list(itertools.islice(numbered, self.batch_size))
                if chunk:  # submit this chunk's reads before building the previous one: read-ahead
                    reads = [readers.submit(self._read, path) for _, path in chunk]
                if pending is not None:
                    if not self._put(self._build(*pending, decoders, stream)):
                        return
                if not chunk:
                    break
                pending = (chunk, reads)
            self._put(_DONE)
        except BaseException as exc:  # hand any failure to the consumer rather than hanging it
            self._put(exc)
        finally:
            readers.shutdown(wait=True, cancel_futures=True)
            decoders.shutdown(wait=True, cancel_futures=True)

    def _read(self, path: str) -> bytes:
        t0 = time.perf_counter()
        try:
            with open(path, "rb") as f:
                return f.read()
        finally:
            self.timings.add("read", time.perf_counter() - t0)

    def _build(
        self,
        chunk: list[tuple[int, str]],
        reads: list[Future],
        decoders: ThreadPoolExecutor,
        stream: torch.cuda.Stream | None,
    ) -> tuple[Batch, torch.cuda.Event | None]:
        errors: list[ImageError] = []
        loaded: list[tuple[int, str, bytes]] = []
        for (index, path), fut in zip(chunk, reads):
            try:
                loaded.append((index, path, fut.result()))
            except OSError as exc:
                errors.append(ImageError(index, path, f"cannot read file: {exc}"))
        if not self.device_decode:
            return self._build_cpu(loaded, errors, decoders), None
        if stream is None:
            return self._build_on_device(loaded, errors, decoders), None
        with torch.cuda.stream(stream):
            batch = self._build_on_device(loaded, errors, decoders)
            ready = torch.cuda.Event()
            ready.record(stream)
        return batch, ready

    def _finish(
        self, rows: list[tuple[int, str, Geometry]], images: torch.Tensor, errors: list[ImageError]
    ) -> Batch:
        errors.sort(key=lambda e: e.index)
        return Batch(images, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], errors)

    def _build_cpu(
        self, loaded: list[tuple[int, str, bytes]], errors: list[ImageError], decoders: ThreadPoolExecutor
    ) -> Batch:
        size = self.imgsz
        array = np.empty((len(loaded), size, size, 3), np.uint8)

        def work(slot: int) -> Geometry | str:
            data = loaded[slot][2]
            t0 = time.perf_counter()
            try:
                img = decode_image(data)
            except ValueError as exc:
                return str(exc)
            finally:
                self.timings.add("decode", time.perf_counter() - t0)
            t0 = time.perf_counter()
            geom = geometry_for(self.mode, img.shape[1], img.shape[0], size)
            fit_image(img, geom, size, out=array[slot])
            self.timings.add("preprocess", time.perf_counter() - t0)
            return geom

        rows: list[tuple[int, str, Geometry]] = []
        keep: list[int] = []
        for slot, result in enumerate(decoders.map(work, range(len(loaded)))):
            index, path, _ = loaded[slot]
            if isinstance(result, str):
                errors.append(ImageError(index, path, result))
            else:
                rows.append((index, path, result))
                keep.append(slot)
        t0 = time.perf_counter()
        kept = array if len(keep) == len(loaded) else array[keep]
        images = (
            torch.from_numpy(kept)
            .permute(0, 3, 1, 2)
            .to(self.device, self.dtype, memory_format=torch.contiguous_format)
            .div_(255)
        )
        self.timings.add("preprocess", time.perf_counter() - t0)
        return self._finish(rows, images, errors)

    def _build_on_device(
        self, loaded: list[tuple[int, str, bytes]], errors: list[ImageError], decoders: ThreadPoolExecutor
    ) -> Batch:
        from torchvision.io import ImageReadMode, decode_jpeg

        t0 = time.perf_counter()
        decoded: dict[int, torch.Tensor] = {}  # slot -> (3, H, W) uint8 on the device
        jpeg_slots = [s for s, (_, _, data) in enumerate(loaded) if data[:2] == _JPEG_MAGIC]
        if jpeg_slots:
            tensors = [torch.frombuffer(bytearray(loaded[s][2]), dtype=torch.uint8) for s in jpeg_slots]
            try:
                outs = decode_jpeg(tensors, mode=ImageReadMode.RGB, device=self.device)
                decoded.update(zip(jpeg_slots, outs))
            except (RuntimeError, ValueError):
                # one bad file fails the whole nvJPEG batch: retry one by one, the rest fall to the CPU
                for s, t in zip(jpeg_slots, tensors):
                    try:
                        decoded[s] = decode_jpeg(t, mode=ImageReadMode.RGB, device=self.device)
                    except (RuntimeError, ValueError):
                        pass
        self.timings.add("decode", time.perf_counter() - t0)

        def cpu_decode(slot: int) -> np.ndarray | str:
            t1 = time.perf_counter()
            try:
                return decode_image(loaded[slot][2])
            except ValueError as exc:
                return str(exc)
            finally:
                self.timings.add("decode", time.perf_counter() - t1)

        rest = [s for s in range(len(loaded)) if s not in decoded]
        for slot, result in zip(rest, decoders.map(cpu_decode, rest)):
            if isinstance(result, str):
                errors.append(ImageError(loaded[slot][0], loaded[slot][1], result))
            else:
                host = torch.from_numpy(result)
                if self.cuda:
                    host = host.pin_memory()
                decoded[slot] = host.to(self.device, non_blocking=True).permute(2, 0, 1)

        t0 = time.perf_counter()
        slots = sorted(decoded)
        size = self.imgsz
        shape = (len(slots), 3, size, size)
        images = torch.full(shape, PAD_VALUE / 255, dtype=self.dtype, device=self.device)
        rows: list[tuple[int, str, Geometry]] = []
        by_shape: dict[tuple[int, int], list[int]] = {}
        for row, slot in enumerate(slots):
            _, h, w = decoded[slot].shape
            rows.append((loaded[slot][0], loaded[slot][1], geometry_for(self.mode, w, h, size)))
            by_shape.setdefault((h, w), []).append(row)
        # same-size images (the common case: one camera) resize in a single kernel call
        for (h, w), group in by_shape.items():
            geom = rows[group[0]][2]
            stack = torch.stack([decoded[slots[r]] for r in group]).float()
            if (geom.new_h, geom.new_w) != (h, w):
                shrink = geom.new_h < h or geom.new_w < w
                stack = F.interpolate(stack, size=(geom.new_h, geom.new_w), mode="bilinear", antialias=shrink)
            region = stack.clamp_(0, 255).div_(255).to(self.dtype)
            ys = slice(geom.pad_y, geom.pad_y + geom.new_h)
            xs = slice(geom.pad_x, geom.pad_x + geom.new_w)
            images[group, :, ys, xs] = region
        self.timings.add("preprocess", time.perf_counter() - t0)
        return self._finish(rows, images, errors)

