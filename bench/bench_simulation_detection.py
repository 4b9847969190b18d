"""Learning curves for detection with the live queue's code: active-learning strategies against
random on a synthetic shapes data set, a YOLOv8n detector trained from scratch each round.

    .venv/bin/python bench/bench_simulation_detection.py [--strategies random,margin,hybrid]
        [--seeds 0,1,2] [--pool 300] [--test 100] [--batch 40] [--max-labels 160]
        [--imgsz 64] [--images-seen 1600] [--min-epochs 5] [--max-epochs 20] [--device cpu] [--probe]

The data set is drawn deterministically here: 64x64 images on textured backgrounds (smooth
noise, stripes, grain) with 1-3 filled shapes of three classes, circle, square and triangle, in
random colours, so the class is the shape and not the colour. Class frequencies are unbalanced on
purpose (triangles are rare), so which classes an image holds matters to what a label teaches.
Every image is embedded once with the app's Embedder (ml/embeddings.py, key
efficientnet_lite0-imagenet-64); training.simulation.simulate then ranks the pool with the live
queue's multi-label class-presence head, cold start and hybrid, and ``evaluate`` trains YOLOv8n
from yolov8n.yaml (no pretrained weights) on the chosen images with the app's YoloBackend and
returns mAP50 on the fixed test split.

Each training sees the same number of images (``--images-seen``: epochs = that / labels, at
least ``--min-epochs``, at most ``--max-epochs``), so the rounds differ in what was labeled, not in how long the detector
trained. The test split is read only to measure: ultralytics' per-epoch validation, which picks
best.pt, runs on (up to 32 of) the labeled images themselves. ``--probe`` times one evaluate at
``--max-labels`` and at the full pool, to size a run. Writes the CSV and PNG under bench/results/
and appends the table to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sim_report import machine, merge, tables  # noqa: E402
from training.simulation import SimulationConfig, plot_curves, simulate, write_csv  # noqa: E402

CACHE = ROOT / "var" / "bench-cache"
CLASS_NAMES = ["circle", "square", "triangle"]
CLASS_SHARE = (0.6, 0.32, 0.08)  # per object: triangles are rare
SIZE = 64
EMBEDDING_MODEL = "efficientnet_lite0-imagenet-64"
DATA_SEED = 20261201
VAL_CAP = 32  # labeled images ultralytics validates on each epoch (it picks best.pt by them)


# -- the data set --------------------------------------------------------------------------------


def _background(rng: np.random.Generator) -> np.ndarray:
    """A textured 8-bit RGB background: smooth colour noise, optional stripes, fine grain."""
    import cv2

    coarse = rng.uniform(40, 215, size=(4, 4, 3)).astype(np.float32)
    image = cv2.resize(coarse, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    if rng.random() < 0.5:
        angle, period = rng.uniform(0, np.pi), rng.uniform(5, 14)
        yy, xx = np.mgrid[0:SIZE, 0:SIZE]
        stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
        image += (rng.uniform(10, 30) * stripes)[..., None]
    image += rng.normal(0, 12, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _draw(image: np.ndarray, cls: int, cx: float, cy: float, r: float, colour, rng) -> tuple:
    """Draw one filled shape; return its box (x1, y1, x2, y2) in pixels."""
    import cv2

    if cls == 0:
        cv2.circle(image, (round(cx), round(cy)), round(r), colour, -1, lineType=cv2.LINE_AA)
        return cx - r, cy - r, cx + r, cy + r
    if cls == 1:
        angle = rng.uniform(0, np.pi / 2)
        corners = [(cx + r * np.cos(angle + k * np.pi / 2), cy + r * np.sin(angle + k * np.pi / 2)) for k in range(4)]
    else:
        angle = rng.uniform(0, 2 * np.pi)
        corners = [(cx + r * np.cos(angle + k * 2 * np.pi / 3), cy + r * np.sin(angle + k * 2 * np.pi / 3))
                   for k in range(3)]
    points = np.round(np.array(corners)).astype(np.int32)
    cv2.fillPoly(image, [points], colour, lineType=cv2.LINE_AA)
    (x1, y1), (x2, y2) = points.min(axis=0), points.max(axis=0)
    return float(x1), float(y1), float(x2), float(y2)


def make_image(index: int) -> tuple[np.ndarray, list[tuple[float, float, float, float, int]]]:
    """Image ``index`` of the data set and its boxes; the same index always gives the same image."""
    rng = np.random.default_rng([DATA_SEED, index])
    image = _background(rng)
    boxes: list[tuple[float, float, float, float, int]] = []
    placed: list[tuple[float, float, float]] = []
    for _ in range(int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))):
        cls = int(rng.choice(3, p=CLASS_SHARE))
        for _attempt in range(20):
            r = rng.uniform(6, 12)
            cx, cy = rng.uniform(r + 1, SIZE - r - 1, size=2)
            if all(math.hypot(cx - px, cy - py) > r + pr + 2 for px, py, pr in placed):
                break
        else:
            continue
        placed.append((cx, cy, r))
        background = image[int(cy), int(cx)].astype(int)
        colour = tuple(int(c) for c in (background + rng.choice([-1, 1], 3) * rng.integers(70, 130, 3)) % 256)
        x1, y1, x2, y2 = _draw(image, cls, cx, cy, r, colour, rng)
        boxes.append((max(x1, 0.0), max(y1, 0.0), min(x2, SIZE - 1.0), min(y2, SIZE - 1.0), cls))
    return image, boxes


def build_dataset(n: int, folder: Path) -> list:
    """``n`` images written as PNG under ``folder``, returned as the app's detection Items."""
    import cv2

    from ml.base import Item

    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(n):
        image, boxes = make_image(i)
        path = folder / f"{i:05d}.png"
        if not path.exists():
            cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        items.append(Item(path=str(path), width=SIZE, height=SIZE, boxes=tuple(boxes)))
    return items


def presence(items) -> np.ndarray:
    """(n, C) 0/1: which classes each image holds, the queue head's targets."""
    out = np.zeros((len(items), len(CLASS_NAMES)), dtype=np.float32)
    for row, item in enumerate(items):
        for box in item.boxes:
            out[row, int(box[4])] = 1.0
    return out


def embedded(items) -> np.ndarray:
    from ml.embeddings import Embedder

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"shapes-{DATA_SEED}-{len(items)}-{EMBEDDING_MODEL}.npy"
    if path.exists():
        return np.load(path)
    started = time.perf_counter()
    vectors, errors = Embedder(EMBEDDING_MODEL).embed_paths([item.path for item in items])
    if any(errors):
        raise SystemExit(f"could not embed: {[e for e in errors if e][:3]}")
    print(f"embedded {len(items)} images in {time.perf_counter() - started:.0f} s", flush=True)
    np.save(path, vectors)
    return vectors


# -- the detector --------------------------------------------------------------------------------


class Detector:
    """``evaluate(labeled pool indices) -> mAP50`` on the test split: YOLOv8n from scratch,
    seeded by the simulation seed, cached by (seed, set of images) (margin and hybrid share
    their cold-start batch)."""

    def __init__(self, pool, test, args, workdir: Path) -> None:
        self.pool, self.test, self.args, self.workdir = pool, test, args, workdir
        self.seed = 0
        self.cache: dict[tuple[int, frozenset], float] = {}
        self.seconds: list[tuple[int, float]] = []

    def epochs(self, n: int) -> int:
        return min(self.args.max_epochs, max(self.args.min_epochs, math.ceil(self.args.images_seen / max(n, 1))))

    def __call__(self, indices: np.ndarray) -> float:
        from ml.base import DatasetSpec, TrainParams
        from ml.yolo import YoloBackend

        key = (self.seed, frozenset(int(i) for i in indices))
        if key in self.cache:
            return self.cache[key]
        started = time.perf_counter()
        train = [self.pool[int(i)] for i in indices]
        spec = DatasetSpec("detection", CLASS_NAMES, train=train, val=train[:VAL_CAP])
        params = TrainParams(epochs=self.epochs(len(train)), imgsz=self.args.imgsz, batch=self.args.train_batch, seed=self.seed,
                             device=self.args.device, workers=0, patience=1000, arch="yolov8n.yaml")
        run = Path(tempfile.mkdtemp(dir=self.workdir))
        try:
            backend = YoloBackend(CLASS_NAMES, device=self.args.device)
            backend.train(spec, params, run / "run")
            metrics = backend.evaluate(DatasetSpec("detection", CLASS_NAMES, train=[], val=self.test), batch_size=32)
        finally:
            shutil.rmtree(run, ignore_errors=True)
        value = float(metrics["map50"] or 0.0)
        seconds = time.perf_counter() - started
        self.seconds.append((len(train), seconds))
        print(f"  evaluate: {len(train)} labels, {params.epochs} epochs -> mAP50 {value:.4f} ({seconds:.0f} s)",
              flush=True)
        self.cache[key] = value
        return value


def _short_schedule(args) -> None:
    """Ultralytics' defaults for a run of a few hundred steps on 64-px images: no warm-up
    (its floor of 100 warm-up steps would be most of the run) and no mosaic (four 64-px images
    in one would shrink the shapes to a few pixels). YoloBackend passes neither, so the bench
    sets them in ultralytics' default config, for this process only."""
    from ml.yolo import _ultralytics_env

    _ultralytics_env()
    from ultralytics.cfg import DEFAULT_CFG

    DEFAULT_CFG.warmup_epochs = 0.0
    DEFAULT_CFG.mosaic = args.mosaic
    DEFAULT_CFG.close_mosaic = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default="random,margin,hybrid")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--pool", type=int, default=300)
    parser.add_argument("--test", type=int, default=100)
    parser.add_argument("--batch", type=int, default=40, help="labels per round")
    parser.add_argument("--max-labels", type=int, default=160)
    parser.add_argument("--imgsz", type=int, default=64)
    parser.add_argument("--images-seen", type=int, default=1600, help="training images per evaluate")
    parser.add_argument("--min-epochs", type=int, default=5)
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--train-batch", type=int, default=8, help="detector training batch")
    parser.add_argument("--mosaic", type=float, default=0.0, help="ultralytics' mosaic probability")
    parser.add_argument("--device", default="cpu", help='"cpu", "auto" or "cuda:0"')
    parser.add_argument("--probe", action="store_true", help="time one evaluate and stop")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    work = Path(tempfile.mkdtemp(prefix="vision-bench-det-"))
    os.environ.setdefault("YOLO_CONFIG_DIR", str(work / "ultralytics"))
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    _short_schedule(args)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    strategies = [s for s in args.strategies.split(",") if s]
    items = build_dataset(args.pool + args.test, CACHE / f"shapes-{DATA_SEED}")
    pool, test = items[: args.pool], items[args.pool:]
    vectors = embedded(items)
    pool_x, test_x = vectors[: args.pool], vectors[args.pool:]
    pool_y, test_y = presence(pool), presence(test)
    counts = pool_y.sum(axis=0)
    print("pool images holding each class: " + ", ".join(f"{n} {int(c)}" for n, c in zip(CLASS_NAMES, counts)))
    detector = Detector(pool, test, args, work)
    if args.probe:
        for n in (args.max_labels, args.pool):
            detector(np.arange(n))
        shutil.rmtree(work, ignore_errors=True)
        return

    started = time.perf_counter()
    results = []
    for seed in seeds:  # one simulate per seed, so the detector is seeded with it
        detector.seed = seed
        config = SimulationConfig(strategies=strategies, seeds=(seed,), batch_size=args.batch,
                                  max_labels=args.max_labels)
        result = simulate(task="detection", classes=list(range(len(CLASS_NAMES))), pool_embeddings=pool_x,
                          pool_targets=pool_y, test_embeddings=test_x, test_targets=test_y, config=config,
                          evaluate=detector, log=lambda line: print(line, flush=True))
        for row in result.rows:
            row["metric"] = "map50"
        results.append(result)
    merged = merge(results)
    minutes = (time.perf_counter() - started) / 60
    shutil.rmtree(work, ignore_errors=True)

    stamp = datetime.datetime.now(datetime.timezone.utc)
    out = ROOT / "bench" / "results" / f"simulation-detection-shapes-{stamp:%Y%m%dT%H%M%SZ}"
    full = ", ".join(f"seed {s}: {v:.3f}" for s, v in merged.full_pool.items())
    table = tables(merged, "mAP50")
    print(table)
    if args.no_record:
        return
    write_csv(merged.rows, out / "learning_curves.csv")
    plot_curves(merged.rows, out / "learning_curves.png", targets=list(merged.target.values()),
                title="Shapes, YOLOv8n from scratch; head on " + EMBEDDING_MODEL)
    where = f"{machine()}, detector on {args.device}"
    command = "python bench/bench_simulation_detection.py " + shlex.join(sys.argv[1:])
    mean_seconds = np.mean([s for _, s in detector.seconds]) if detector.seconds else float("nan")
    entry = (
        f"\n## Active learning for detection: synthetic shapes, YOLOv8n, {stamp:%Y-%m-%d %H:%M} UTC\n\n"
        f"Machine: {where}. {args.pool} pool and {args.test} test images ({SIZE} px, 1-3 shapes of "
        f"{', '.join(CLASS_NAMES)}, object shares {', '.join(f'{s:.0%}' for s in CLASS_SHARE)}); queue head on "
        f"{EMBEDDING_MODEL}; {args.batch} labels per round up to {args.max_labels}; seeds {args.seeds}. Each "
        f"evaluate trains YOLOv8n from yolov8n.yaml at imgsz {args.imgsz} on {args.images_seen} images seen "
        f"({args.min_epochs}-{args.max_epochs} epochs) and measures mAP50 on the test split ({mean_seconds:.0f} s each, "
        f"{len(detector.seconds)} trainings). Target: 95% of the full-pool mAP50 ({full}). {minutes:.1f} min.\n"
        f"Command: `{command.strip()}`\nCurves: `{out.relative_to(ROOT)}/learning_curves.png`\n\n{table}\n"
    )
    with open(ROOT / "bench" / "RESULTS.md", "a") as handle:
        handle.write(entry)


if __name__ == "__main__":
    main()
