import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ml.batching import (
    PAD_VALUE,
    BatchLoader,
    decode_image,
    letterbox_geometry,
    resize_geometry,
)


def _save(path: Path, array: np.ndarray, **kwargs) -> str:
    Image.fromarray(array).save(path, **kwargs)
    return str(path)


def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def _collect(loader: BatchLoader):
    rows, errors = [], []
    for batch in loader:
        assert batch.images.shape == (len(batch.indices), 3, loader.imgsz, loader.imgsz)
        rows.extend(zip(batch.indices, batch.paths, batch.images))
        errors.extend(batch.errors)
    return rows, errors


def test_bad_files_become_error_entries_and_the_rest_still_come_out(tmp_path):
    good = [_save(tmp_path / f"ok{i}.jpg", _noise(40, 60, i)) for i in range(5)]
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not an image at all")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(Path(_save(tmp_path / "full.png", _noise(40, 60))).read_bytes()[:40])
    missing = str(tmp_path / "missing.jpg")
    paths = [good[0], str(garbage), good[1], good[2], missing, good[3], str(truncated), good[4]]

    rows, errors = _collect(BatchLoader(paths, batch_size=3, imgsz=32, device="cpu"))

    assert [i for i, _, _ in rows] == [0, 2, 3, 5, 7]
    assert [p for _, p, _ in rows] == good
    assert {(e.index, e.path) for e in errors} == {(1, str(garbage)), (4, missing), (6, str(truncated))}
    assert all(e.message for e in errors)


def test_letterbox_inverse_maps_a_drawn_box_back_within_one_pixel(tmp_path):
    # a non-square original: letterboxing scales and pads vertically
    img = np.zeros((64, 96, 3), np.uint8)
    x1, y1, x2, y2 = 20, 10, 70, 50
    img[y1:y2, x1:x2] = 255
    path = _save(tmp_path / "box.png", img)

    batch = next(iter(BatchLoader([path], batch_size=1, imgsz=48, device="cpu", mode="letterbox")))
    plane = batch.images[0, 0].numpy()
    ys, xs = np.nonzero(plane > 0.75)
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    back = batch.geometries[0].to_original(found)[0]

    assert np.abs(back - [x1, y1, x2, y2]).max() <= 1.0
    # the padding rows carry the detector's grey, not black
    assert plane[0, 0] == pytest.approx(PAD_VALUE / 255, abs=1e-6)


@pytest.mark.parametrize("size", [(96, 64), (64, 96), (1280, 720), (31, 17), (640, 640)])
def test_geometry_round_trips_boxes(size):
    w, h = size
    boxes = np.array([[0, 0, w, h], [w * 0.25, h * 0.1, w * 0.6, h * 0.9]], np.float32)
    for geom in (letterbox_geometry(w, h, 64), resize_geometry(w, h, 64)):
        assert np.allclose(geom.to_original(geom.to_input(boxes)), boxes, atol=1e-3)
        assert geom.new_w <= 64 and geom.new_h <= 64


def test_loader_keeps_input_order_across_batches_and_counts_stages(tmp_path):
    paths = [_save(tmp_path / f"{i}.png", np.full((8 + i, 10, 3), i * 20, np.uint8)) for i in range(7)]
    loader = BatchLoader(iter(paths), batch_size=2, imgsz=16, device="cpu", mode="resize")
    rows, errors = _collect(loader)

    assert not errors
    assert [i for i, _, _ in rows] == list(range(7))
    means = [float(img.mean()) for _, _, img in rows]
    assert means == pytest.approx([i * 20 / 255 for i in range(7)], abs=1e-3)
    t = loader.timings.as_dict()
    assert t["images"] == 7 and t["errors"] == 0
    assert t["read"] > 0 and t["decode"] > 0 and t["wall"] > 0


def test_grey_and_alpha_images_come_out_as_three_channel_rgb(tmp_path):
    grey = _save(tmp_path / "grey.png", np.full((20, 30), 200, np.uint8))
    rgba = _save(tmp_path / "rgba.png", np.dstack([_noise(20, 30), np.full((20, 30), 128, np.uint8)]))
    for path in (grey, rgba):
        assert decode_image(Path(path).read_bytes()).shape == (20, 30, 3)
    rows, errors = _collect(BatchLoader([grey, rgba], batch_size=2, imgsz=16, device="cpu"))
    assert not errors and len(rows) == 2


def test_decode_keeps_stored_orientation_and_channel_order(tmp_path):
    # stored files are already upright: an EXIF orientation tag must not rotate them again
    img = np.zeros((20, 40, 3), np.uint8)
    img[..., 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW"
    path = _save(tmp_path / "tagged.jpg", img, exif=exif, quality=95)
    decoded = decode_image(Path(path).read_bytes())
    assert decoded.shape == (20, 40, 3)
    assert decoded[..., 0].mean() > 240 and decoded[..., 2].mean() < 15  # red stays red (RGB, not BGR)


def test_leaving_the_loop_early_stops_the_worker_threads(tmp_path):
    paths = [_save(tmp_path / f"{i}.png", _noise(16, 16, i)) for i in range(40)]
    before = threading.active_count()
    for batch in BatchLoader(paths, batch_size=2, imgsz=16, device="cpu", prefetch=1):  # noqa: B007 (left at once)
        break
    assert batch.images.dtype == torch.float32
    assert threading.active_count() == before


# torchvision 0.29 announces that its image decoders move to torchcodec; the pinned version has them
@pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning")
@pytest.mark.parametrize("mode", ["letterbox", "resize"])
def test_device_decode_path_agrees_with_the_cpu_path(tmp_path, mode):
    # the CUDA path's code (torchvision JPEG decode, torch resize, bad-file fallback) run on the CPU
    smooth = np.repeat(np.repeat(_noise(12, 18, 3), 8, axis=0), 8, axis=1)  # 96x144, low detail
    paths = [_save(tmp_path / "a.jpg", smooth, quality=95), _save(tmp_path / "b.png", smooth[:64])]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff truncated jpeg")
    paths.insert(1, str(bad))

    cpu_rows, cpu_errors = _collect(BatchLoader(paths, batch_size=3, imgsz=48, device="cpu", mode=mode))
    dev_rows, dev_errors = _collect(
        BatchLoader(paths, batch_size=3, imgsz=48, device="cpu", mode=mode, device_decode=True)
    )

    assert [(e.index, e.path) for e in dev_errors] == [(1, str(bad))]
    assert [(e.index, e.path) for e in cpu_errors] == [(1, str(bad))]
    assert [i for i, _, _ in dev_rows] == [i for i, _, _ in cpu_rows] == [0, 2]
    for (_, _, a), (_, _, b) in zip(cpu_rows, dev_rows):
        # OpenCV's area filter and torch's antialiased bilinear differ a little on hard edges
        assert (a - b).abs().mean() < 8 / 255


def test_no_loader_workers_inside_a_daemonic_process():
    """A Celery prefork child is daemonic and may not start DataLoader workers."""
    import multiprocessing

    from ml.base import loader_workers

    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(loader_workers, (4,)) == 0
    assert loader_workers(4) == 4
