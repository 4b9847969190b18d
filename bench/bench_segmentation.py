"""YOLOv8-seg from scratch on synthetic shapes: does the segmentation backend learn, how do
our mask mAPs compare with ultralytics' own validation, and what do its pre-labels look like.

    .venv/bin/python bench/bench_segmentation.py [--epochs 2,40] [--train 64] [--test 24]
        [--imgsz 64] [--lr 0.003] [--seed 0] [--device cpu] [--no-record]

The data set is drawn deterministically here: 64x64 noise with one or two filled shapes of
two classes, circle (a 24-gon) and triangle, the polygons kept as labels. For each epoch
count the app's YoloSegBackend (ml/yolo_seg.py) trains from yolov8n-seg.yaml (no
pretrained weights) with AdamW at ``--lr``, then ``evaluate`` measures mask mAP on the test
split with ml.metrics.segmentation_metrics (COCOeval segm rules), on the polygons
``predict`` returns; ultralytics' own mask mAPs of its last epoch's validation (on its
masks, same split) are printed beside them. As in the app, the split evaluated is also
the one ultralytics picks best.pt by. The pre-label columns count
what ``predict`` returns at the app's pre-label floor (score 0.05): instances per image,
vertices per polygon and the mean mask term. Appends the table to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import math
import random
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sim_report import machine  # noqa: E402
from ml.base import DatasetSpec, Item, TrainParams  # noqa: E402
from ml.registry import load_backend  # noqa: E402

CLASS_NAMES = ["circle", "triangle"]
SIZE = 64
PRELABEL_MIN_SCORE = 0.05  # the app's VISION_PRELABEL_MIN_SCORE default


def shapes_dataset(folder: Path, count: int, seed: int) -> list[Item]:
    rng = random.Random(seed)
    items = []
    for n in range(count):
        pixels = (np.random.default_rng(seed * 100_000 + n).random((SIZE, SIZE, 3)) * 80).astype(np.uint8)
        picture = Image.fromarray(pixels)
        draw = ImageDraw.Draw(picture)
        instances = []
        for _ in range(rng.randint(1, 2)):
            r = rng.uniform(8, 14)
            cx, cy = rng.uniform(r, SIZE - r), rng.uniform(r, SIZE - r)
            if rng.random() < 0.5:
                outline = [[cx + r * math.cos(2 * math.pi * k / 24), cy + r * math.sin(2 * math.pi * k / 24)]
                           for k in range(24)]
                label, color = 0, (240, 60, 60)
            else:
                outline, label, color = [[cx, cy - r], [cx + r, cy + r], [cx - r, cy + r]], 1, (60, 240, 60)
            draw.polygon([tuple(p) for p in outline], fill=color)
            instances.append(([outline], label))
        path = folder / f"{seed}-{n:04d}.png"
        picture.save(path)
        items.append(Item(path=str(path), width=SIZE, height=SIZE, instances=tuple(instances)))
    return items


def run(epochs: int, args, train: list[Item], test: list[Item], workdir: Path) -> dict:
    spec = DatasetSpec(task="segmentation", class_names=CLASS_NAMES, train=train, val=test)
    backend = load_backend("yolo_seg", None, CLASS_NAMES, device=args.device)
    started = time.perf_counter()
    result = backend.train(spec, TrainParams(epochs=epochs, imgsz=args.imgsz, batch=16, lr=args.lr, seed=args.seed,
                                             device=args.device, workers=0), workdir / f"e{epochs}")
    train_s = time.perf_counter() - started
    with open(workdir / f"e{epochs}" / "results.csv") as handle:
        last_epoch = {key.strip(): value for key, value in list(csv.DictReader(handle))[-1].items()}
    started = time.perf_counter()
    predictions = list(backend.predict([item.path for item in test], 32, conf=PRELABEL_MIN_SCORE))
    predict_s = time.perf_counter() - started
    polygons = [rings for p in predictions for rings in (p.polygons or [])]
    mask_terms = np.concatenate([p.mask_uncertainty for p in predictions if p.mask_uncertainty is not None])
    return {
        "epochs": epochs, "train_s": train_s, "ours_map50": result.metrics["mask_map50"],
        "ours_map50_95": result.metrics["mask_map50_95"],
        "ultralytics_map50": float(last_epoch["metrics/mAP50(M)"]),
        "ultralytics_map50_95": float(last_epoch["metrics/mAP50-95(M)"]),
        "instances_per_image": len(polygons) / len(test),
        "vertices": float(np.mean([sum(len(r) for r in rings) for rings in polygons])) if polygons else None,
        "mask_term": float(mask_terms.mean()) if mask_terms.size else None,
        "predict_images_s": len(test) / predict_s,
    }


def fmt(value, digits=3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", default="2,40")
    parser.add_argument("--train", type=int, default=64)
    parser.add_argument("--test", type=int, default=24)
    parser.add_argument("--imgsz", type=int, default=SIZE)
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()
    truth_per_image = None
    with tempfile.TemporaryDirectory(prefix="bench-seg-") as tmp:
        folder = Path(tmp)
        train = shapes_dataset(folder, args.train, seed=args.seed * 2 + 1)
        test = shapes_dataset(folder, args.test, seed=args.seed * 2 + 2)
        truth_per_image = sum(len(item.instances) for item in test) / len(test)
        rows = [run(int(e), args, train, test, folder / "runs") for e in args.epochs.split(",")]
    header = ("| epochs | train s | mask mAP50 (ours) | mask mAP50-95 (ours) | mask mAP50 (ultralytics, last epoch) "
              "| mask mAP50-95 (ultralytics, last epoch) | pre-label instances / image | vertices / polygon "
              "| mean mask term | predict images/s |")
    lines = [header, "|" + "---|" * 10]
    for r in rows:
        lines.append(f"| {r['epochs']} | {r['train_s']:.0f} | {fmt(r['ours_map50'])} | {fmt(r['ours_map50_95'])} "
                     f"| {fmt(r['ultralytics_map50'])} | {fmt(r['ultralytics_map50_95'])} "
                     f"| {r['instances_per_image']:.2f} | {fmt(r['vertices'], 1)} | {fmt(r['mask_term'])} "
                     f"| {r['predict_images_s']:.1f} |")
    table = "\n".join(lines)
    print(table)
    print(f"test split: {args.test} images, {truth_per_image:.2f} true instances per image")
    if args.no_record:
        return
    now = datetime.datetime.now(datetime.timezone.utc)
    command = ".venv/bin/python bench/bench_segmentation.py " + shlex.join(sys.argv[1:])
    with open(ROOT / "bench" / "RESULTS.md", "a") as handle:
        handle.write(
            f"\n## YOLOv8-seg from scratch on synthetic shapes\n\n"
            f"- machine: {machine()}\n- date: {now:%Y-%m-%d %H:%M} UTC\n- command: `{command.strip()}`\n"
            f"- data: {args.train} train and {args.test} test images, {SIZE}x{SIZE} noise with 1-2 filled circles "
            f"or triangles ({truth_per_image:.2f} instances per test image); imgsz {args.imgsz}, batch 16, "
            f"AdamW lr {args.lr}, seed {args.seed}, device {args.device}\n\n{table}\n"
        )


if __name__ == "__main__":
    main()
