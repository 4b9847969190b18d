"""Learning curves on real labeled data: active-learning strategies vs random, same seed set,
same budget, a fixed test split.

    .venv/bin/python bench/bench_simulation.py --dataset fashion [--strategies random,entropy,margin]
    .venv/bin/python bench/bench_simulation.py --dataset trees   [--strategies random,entropy]

fashion: Fashion-MNIST (Debian's dataset-fashion-mnist), classifier; pool from the train set,
test from the t10k set. trees: deepforest's aerial photos cut into 400x400 tiles, YOLOv8n
detector; a seeded random fifth of the tiles is the test split. Writes the CSV and PNG under
bench/results/ and appends the table to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")

import torch  # noqa: E402

from bench.bench_data import FASHION_CLASSES, deepforest_tiles, fashion_mnist  # noqa: E402
from training.ml.base import TrainParams, resolve_device  # noqa: E402
from training.simulation import SimulationConfig, plot_curves, simulate, write_csv  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["fashion", "trees"], required=True)
    parser.add_argument("--strategies", default="random,entropy,margin")
    parser.add_argument("--pool", type=int, default=2000, help="fashion: pool size")
    parser.add_argument("--test", type=int, default=1000, help="fashion: test size")
    parser.add_argument("--seed-size", type=int, default=50)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--imgsz", type=int, default=32)
    parser.add_argument("--train-batch", type=int, default=8, help="small: few labels still make many steps")
    parser.add_argument("--arch", help="classifier architecture (default: the backend's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    device = resolve_device(args.device)
    work = Path(tempfile.mkdtemp(prefix=f"vision-bench-sim-{args.dataset}-"))
    os.environ.setdefault("YOLO_CONFIG_DIR", str(work / "ultralytics"))

    if args.dataset == "fashion":
        kind, names = "classifier", FASHION_CLASSES
        pool = fashion_mnist(work / "data", split="train", limit=args.pool, seed=args.seed)
        test = fashion_mnist(work / "data", split="test", limit=args.test, seed=args.seed)
        data_note = f"Fashion-MNIST, pool {len(pool)} of the train set, test {len(test)} of t10k"
    else:
        kind, names = "yolo", ["Tree"]
        tiles = deepforest_tiles(work / "tiles")
        random.Random(args.seed).shuffle(tiles)
        cut = len(tiles) // 5
        test, pool = tiles[:cut], tiles[cut:]
        data_note = f"deepforest tiles 400x400 (stride 200): pool {len(pool)}, test {len(test)}"

    config = SimulationConfig(
        strategies=[s for s in args.strategies.split(",") if s], seed_size=args.seed_size,
        batch_size=args.batch, rounds=args.rounds, seed=args.seed,
        params=TrainParams(epochs=args.epochs, imgsz=args.imgsz, batch=args.train_batch,
                           seed=args.seed, device=device, arch=args.arch, workers=0, patience=args.epochs),
    )
    started = time.perf_counter()
    rows = simulate(kind=kind, class_names=names, pool=pool, test=test, config=config, workdir=work / "runs")
    minutes = (time.perf_counter() - started) / 60
    stamp = datetime.datetime.now(datetime.timezone.utc)
    out = ROOT / "bench" / "results" / f"simulation-{args.dataset}-{stamp:%Y%m%dT%H%M%SZ}"
    write_csv(rows, out / "learning_curves.csv")
    plot_curves(rows, out / "learning_curves.png", title=f"{args.dataset}: {rows[0]['metric']} vs labels")

    labels = sorted({r["labels"] for r in rows})
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    value = {(r["strategy"], r["labels"]): r["value"] for r in rows}
    lines = ["| labels | " + " | ".join(strategies) + " |", "|---:|" + "---:|" * len(strategies)]
    for n in labels:
        lines.append(f"| {n} | " + " | ".join(
            f"{value[(s, n)]:.4f}" if (s, n) in value else "" for s in strategies) + " |")
    table = "\n".join(lines)
    print(table)
    if args.no_record:
        return
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else None
    machine = gpu or f"{os.cpu_count()}-core CPU box ({platform.machine()}, shared with other work), no GPU"
    command = "python bench/bench_simulation.py " + shlex.join(sys.argv[1:])
    entry = (
        f"\n## Active-learning simulation: {args.dataset} ({'GPU' if gpu else 'CPU'}), {stamp:%Y-%m-%d %H:%M} UTC\n\n"
        f"Machine: {machine}; {data_note}; {kind}, {args.epochs} epochs a round at imgsz {args.imgsz}, "
        f"batch {args.train_batch}; "
        f"seed set {args.seed_size}, {args.batch} labels a round, {args.rounds} rounds; "
        f"metric {rows[0]['metric']} on the test split; {minutes:.1f} min.\n"
        f"Command: `{command.strip()}`\nCurves: `{out.relative_to(ROOT)}/learning_curves.png`\n\n{table}\n"
    )
    if not gpu:
        entry += "\nNo GPU was available: a small CPU run; the real-scale GPU run is unmeasured.\n"
    with open(ROOT / "bench" / "RESULTS.md", "a") as handle:
        handle.write(entry)


if __name__ == "__main__":
    main()
