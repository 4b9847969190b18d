"""Prelabel throughput: our batched pipeline vs ultralytics' own predict loop, same images,
same weights, same device, one run.

    .venv/bin/python bench/bench_prelabel.py [--images 200] [--imgsz 640] [--batch 32] [--device auto]

Images: overlapping 400x400 JPEG tiles of deepforest's aerial tree photos. Weights: a YOLOv8n
(random init from yolov8n.yaml) trained for two epochs on some of those tiles, a real
checkpoint with our one class; the comparison is about throughput, not accuracy. Both paths
use the same weights, imgsz, score floor and NMS settings. Prints a table and appends it to
bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.bench_data import deepforest_tiles  # noqa: E402
from ml.base import DatasetSpec, TrainParams, resolve_device  # noqa: E402
from ml.batching import StageTimings  # noqa: E402
from ml.registry import load_backend  # noqa: E402


def machine() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{os.cpu_count()}-core CPU box ({platform.processor() or platform.machine()}, shared with other work), no GPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--conf", type=float, default=0.05, help="score floor (prelabel uses 0.05)")
    parser.add_argument("--also-batched", action="store_true",
                        help="also time ultralytics' predict loop with batch=--batch")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()
    device = resolve_device(args.device)
    work = Path(tempfile.mkdtemp(prefix="vision-bench-prelabel-"))
    os.environ.setdefault("YOLO_CONFIG_DIR", str(work / "ultralytics"))

    tiles = deepforest_tiles(work / "tiles")
    paths = [item.path for item in tiles]
    while len(paths) < args.images:  # more images than tiles: re-read the same files
        paths += paths[: args.images - len(paths)]
    paths = paths[: args.images]

    backend = load_backend("yolo", None, ["Tree"], device=device)
    train = [t for t in tiles if t.boxes][:16]
    spec = DatasetSpec("detection", ["Tree"], train=train, val=train[:4])
    backend.train(spec, TrainParams(epochs=2, imgsz=320, batch=8, device=device, workers=0), work / "train")
    weights = backend.weights_path
    print(f"weights: {weights}")

    # warm-up both paths (model fuse, allocator, first-call overheads)
    list(backend.predict(paths[:8], args.batch, conf=args.conf, imgsz=args.imgsz))
    from ultralytics import YOLO

    reference = YOLO(weights, task="detect")
    list(reference.predict(paths[:8], imgsz=args.imgsz, conf=args.conf, device=device, verbose=False, stream=True))

    rows = []
    timings = StageTimings(sync=True)
    t0 = time.perf_counter()
    ours = list(backend.predict(paths, args.batch, conf=args.conf, imgsz=args.imgsz, timings=timings))
    wall = time.perf_counter() - t0
    rows.append((f"ours: BatchLoader + batched forward (batch {args.batch})", wall, ours))

    theirs_by_batch = {}
    for batch in (1, args.batch) if args.also_batched else (1,):
        t0 = time.perf_counter()
        out = list(reference.predict(paths, imgsz=args.imgsz, conf=args.conf, device=device, batch=batch,
                                     verbose=False, stream=True))
        wall = time.perf_counter() - t0
        theirs_by_batch[batch] = out
        rows.append((f"ultralytics predict loop (batch {batch})", wall, out))

    ours_counts = np.array([len(p.boxes) for p in ours])
    ref_counts = np.array([len(r.boxes) for r in theirs_by_batch[1]])
    agree = float((ours_counts == ref_counts).mean())
    lines = [
        "| pipeline | images | seconds | images/s |",
        "|---|---:|---:|---:|",
    ]
    for name, wall, _ in rows:
        lines.append(f"| {name} | {len(paths)} | {wall:.2f} | {len(paths) / wall:.1f} |")
    stage = timings.as_dict()
    stage_line = ", ".join(f"{k} {stage[k]:.2f}s" for k in ("read", "decode", "preprocess", "wait", "forward",
                                                                 "postprocess"))
    notes = [
        f"Our stages (read/decode/preprocess summed over threads): {stage_line}.",
        f"Box-count agreement with ultralytics (batch 1) per image: {agree:.1%}; "
        f"mean boxes/image ours {ours_counts.mean():.1f}, ultralytics {ref_counts.mean():.1f}.",
    ]
    if not device.startswith("cuda"):
        notes.append("No GPU was available: this is a CPU result; the GPU throughput goal is unmeasured.")
    table = "\n".join(lines)
    print(table)
    print("\n".join(notes))
    if args.no_record:
        return
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "python bench/bench_prelabel.py " + shlex.join(sys.argv[1:])
    entry = (
        f"\n## Prelabel throughput ({'GPU' if device.startswith('cuda') else 'CPU'}), {date}\n\n"
        f"Machine: {machine()}; device {device}; torch {torch.__version__}; imgsz {args.imgsz}; "
        f"conf {args.conf}; YOLOv8n, 1 class; deepforest 400x400 JPEG tiles.\n"
        f"Command: `{command.strip()}`\n\n{table}\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    )
    with open(ROOT / "bench" / "RESULTS.md", "a") as handle:
        handle.write(entry)


if __name__ == "__main__":
    main()
