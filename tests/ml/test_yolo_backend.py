"""YOLO backend on CPU: one tiny training run (imgsz 64, 1 epoch, 8 images) shared by the module."""

import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ml.base import DatasetSpec, Item, TrainingCancelled, TrainParams
from ml.registry import load_backend

pytestmark = pytest.mark.slow

CLASSES = ["red", "blue"]
W, H = 96, 64  # non-square originals exercise the letterbox inversion


def _make_dataset(root: Path, n: int = 10) -> DatasetSpec:
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        img = rng.integers(0, 60, (H, W, 3), dtype=np.uint8)
        x1, y1 = int(rng.integers(0, W - 40)), int(rng.integers(0, H - 30))
        cls = i % 2
        img[y1 : y1 + 30, x1 : x1 + 40] = (220, 30, 30) if cls == 0 else (30, 30, 220)
        path = root / f"{i}.jpg"
        Image.fromarray(img).save(path)
        items.append(Item(str(path), W, H, boxes=((x1, y1, x1 + 40, y1 + 30, cls),)))
    return DatasetSpec("detection", CLASSES, items[:8], items[8:])


class _NetworkGuard:
    """Records and refuses every attempt to resolve a host or open a connection."""

    def __init__(self) -> None:
        self.attempts: list[tuple] = []

    def refuse(self, *args, **kwargs):
        self.attempts.append(args)
        raise OSError("network access attempted in a test")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("yolo")
    guard = _NetworkGuard()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("YOLO_CONFIG_DIR", str(tmp / "ultralytics"))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the CI box is small and shared; one thread contends least
        mp.setattr(socket.socket, "connect", guard.refuse)
        mp.setattr(socket.socket, "connect_ex", guard.refuse)
        mp.setattr(socket, "create_connection", guard.refuse)
        mp.setattr(socket, "getaddrinfo", guard.refuse)
        try:
            dataset = _make_dataset(tmp)
            backend = load_backend("yolo", None, CLASSES, device="cpu")
            progress = []
            result = backend.train(
                dataset,
                TrainParams(epochs=1, imgsz=64, batch=4, workers=0, seed=0, device="cpu"),
                tmp / "run",
                progress_callback=lambda *a: progress.append(a),
            )
            paths = [it.path for it in dataset.val + dataset.train]
            predictions = list(backend.predict(paths, batch_size=4, conf=0.001))
        finally:
            torch.set_num_threads(threads)
    return {
        "tmp": tmp,
        "dataset": dataset,
        "backend": backend,
        "result": result,
        "progress": progress,
        "paths": paths,
        "predictions": predictions,
        "guard": guard,
    }


def test_yolo_train_and_predict_never_touch_the_network(trained):
    assert trained["guard"].attempts == []


def test_yolo_train_writes_run_folder_with_best_weights_and_args(trained):
    result, run = trained["result"], trained["tmp"] / "run"
    assert Path(result.weights_path) == run / "weights" / "best.pt"
    assert Path(result.weights_path).is_file()
    assert json.loads((run / "args.json").read_text())["params"]["seed"] == 0
    assert (run / "dataset" / "data.yaml").is_file()
    assert result.epochs_run == 1 and len(result.history) == 1


def test_yolo_progress_is_reported_once_per_epoch(trained):
    ((epoch, total, loss, metric),) = trained["progress"]
    assert (epoch, total) == (1, 1)
    assert np.isfinite(loss) and metric is not None


def test_yolo_metrics_have_the_shared_keys_and_primary_is_map50_95(trained):
    metrics = trained["result"].metrics
    assert set(metrics) == {
        "map50_95", "map50", "precision", "recall", "per_class_ap", "primary", "primary_metric",
    }
    assert metrics["primary"] == metrics["map50_95"] and metrics["primary_metric"] == "map50_95"
    assert set(metrics["per_class_ap"]) == set(CLASSES)
    assert json.loads(json.dumps(metrics)) == metrics


def test_yolo_predict_keeps_full_class_scores_per_box(trained):
    predictions = trained["predictions"]
    assert [p.path for p in predictions] == trained["paths"]
    assert sum(len(p.boxes) for p in predictions) > 0  # conf=0.001 keeps boxes even from a 1-epoch model
    for p in predictions:
        assert p.error is None
        assert p.class_scores.shape == (len(p.boxes), len(CLASSES))
        if len(p.boxes):
            # independent sigmoids: the box score is the best class's score, not a softmax share
            assert np.array_equal(p.scores, p.class_scores.max(axis=1))
            assert np.array_equal(p.classes, p.class_scores.argmax(axis=1))
            assert ((p.class_scores >= 0) & (p.class_scores <= 1)).all()


def test_yolo_boxes_are_in_original_pixels_within_image_bounds(trained):
    for p in trained["predictions"]:
        assert (p.width, p.height) == (W, H)
        b = p.boxes
        assert (b[:, 0] >= 0).all() and (b[:, 2] <= W).all()
        assert (b[:, 1] >= 0).all() and (b[:, 3] <= H).all()
        assert (b[:, 2] >= b[:, 0]).all() and (b[:, 3] >= b[:, 1]).all()


def test_yolo_embedding_has_a_fixed_float32_shape(trained):
    shapes = {p.embedding.shape for p in trained["predictions"]}
    assert shapes == {(256,)}  # yolov8n's SPPF width
    assert all(p.embedding.dtype == np.float32 for p in trained["predictions"])


def test_yolo_unreadable_image_yields_an_error_entry(trained, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 broken")
    good = trained["paths"][0]
    out = list(trained["backend"].predict([good, str(bad), good], batch_size=2))
    assert [p.error is None for p in out] == [True, False, True]
    assert out[1].path == str(bad)


def test_yolo_reloaded_weights_predict_and_evaluate(trained):
    backend = load_backend("yolo", trained["result"].weights_path, CLASSES, device="cpu")
    assert backend.imgsz == 64
    metrics = backend.evaluate(trained["dataset"])
    assert metrics["primary_metric"] == "map50_95" and 0.0 <= metrics["primary"] <= 1.0
    pred = next(iter(backend.predict(trained["paths"][:1], conf=0.001)))
    ref = trained["predictions"][0]
    assert np.allclose(pred.embedding, ref.embedding, atol=1e-4)


def test_yolo_load_refuses_weights_for_another_class_count(trained):
    with pytest.raises(ValueError, match="classes"):
        load_backend("yolo", trained["result"].weights_path, ["a", "b", "c"], device="cpu")


def test_yolo_should_stop_cancels_training(trained, tmp_path):
    progress = []
    backend = load_backend("yolo", None, CLASSES, device="cpu")
    with pytest.raises(TrainingCancelled):
        backend.train(
            trained["dataset"],
            TrainParams(epochs=3, imgsz=32, batch=8, workers=0, device="cpu"),
            tmp_path / "run",
            progress_callback=lambda *a: progress.append(a),
            should_stop=lambda: len(progress) >= 1,
        )
    assert [p[0] for p in progress] == [1]


def test_yolo_fine_tunes_start_weights_with_a_new_class_list(trained, tmp_path):
    three = [*CLASSES, "green"]
    ds = trained["dataset"]
    backend = load_backend("yolo", None, three, device="cpu")
    params = TrainParams(
        epochs=1, imgsz=32, batch=8, workers=0, device="cpu", start_weights=trained["result"].weights_path
    )
    result = backend.train(DatasetSpec("detection", three, ds.train, ds.val), params, tmp_path / "run")
    assert set(result.metrics["per_class_ap"]) == set(three)
    assert result.metrics["per_class_ap"]["green"] is None  # no validation instances
    pred = next(iter(backend.predict([ds.val[0].path], conf=0.001)))
    assert pred.class_scores.shape[1] == 3
