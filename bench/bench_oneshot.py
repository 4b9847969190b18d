"""One-shot proposals on Fashion-MNIST: accuracy from 1 and 5 examples per class, and what a
grid-verify pass costs to reach 95% label accuracy against labeling one image at a time.

    .venv/bin/python bench/bench_oneshot.py [--pool 3000] [--draws 5] [--shots 1,5]
        [--embedding-model efficientnet_lite0-imagenet-64] [--page 24] [--scan-cost 0.167]
        [--deselect-cost 0.167] [--page-cost 1] [--miss-rates 0,0.1] [--no-record]

Data: a seeded draw of --pool images from Fashion-MNIST's train split (Debian's
dataset-fashion-mnist), embedded once with the app's embedder (ml/embeddings.py,
vectors cached under var/bench-cache/ like bench_simulation.py). Each draw picks its own
examples per class at random; the proposals are the app's (ml/oneshot.py:
prototype, propagation) and, for comparison, the queue model's linear head fitted on the
same examples (ml/queue_model.py). Accuracy is over the pool minus the examples.

Cost model (stated, every number a flag). The target is a pool in which 95% of the images
carry a correct label that a person verified (a proposal alone is never a label).
- one by one: a person labels each image in the editor: 1 unit per image (the unit), so
  0.95 x pool units; the editor showing the proposal as pre-label is counted the same (it
  still takes one screen and one decision per image).
- grid verify: proposals grouped by proposed class, most confident first, in pages of
  --page thumbnails; the pages run in order of their mean confidence. A page costs
  --page-cost (load, look, submit) plus --scan-cost per thumbnail plus --deselect-cost per
  wrong thumbnail the person deselects; the kept ones become labels in one request. The
  default scan cost, 1/6 of a one-by-one label, takes the low end of the 6-9x by which
  verifying beats drawing (Papadopoulos et al., "We don't need no bounding-boxes", CVPR
  2016; boxes, the closest measured ratio we know of for verify-versus-make). A wrong
  thumbnail the person fails to deselect (--miss-rates) is stored as a wrong label.
  Deselected images are then labeled one by one (1 unit each) until the target is met. A
  draw whose missed wrong labels keep it below the target does not reach it at all: the
  table gives the cost of the draws that did.
The examples themselves are counted as one-by-one labels in every grid row.
Prints tables and appends them to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_data import FASHION_DIR, _idx  # noqa: E402
from bench.bench_simulation import embedded  # noqa: E402
from bench.sim_report import machine  # noqa: E402
from ml.oneshot import proposal_model_fit  # noqa: E402
from ml.queue_model import fit_multiclass  # noqa: E402

TARGET = 0.95
CLASSES = list(range(10))


def propose(method: str, vectors: np.ndarray, labels: np.ndarray, examples: np.ndarray) -> np.ndarray:
    """(n, 10) class probabilities for every pool image from the examples' labels."""
    if method == "linear head":
        return fit_multiclass(vectors[examples], labels[examples].tolist(), CLASSES, seed=0).predict_proba(vectors)
    model = proposal_model_fit(method=method, vectors=vectors[examples],  # type: ignore[arg-type]
                               example_classes=labels[examples].tolist(), classes=CLASSES)
    return model.predict_proba(vectors)


def grid_cost(probs: np.ndarray, truth: np.ndarray, examples: np.ndarray, args, miss_rate: float,
              seed: int) -> tuple[float, int, bool]:
    """(cost units, annotations written, target reached) of a grid-verify pass, then one-by-one
    labels of the deselected images, stopping as soon as 95% of the pool is correctly labeled."""
    n = len(truth)
    rest = np.setdiff1d(np.arange(n), examples)
    predicted, confidence = probs.argmax(axis=1), probs.max(axis=1)
    pages = []
    for c in CLASSES:
        rows = rest[predicted[rest] == c]
        rows = rows[np.argsort(-confidence[rows], kind="stable")]
        pages += [rows[i:i + args.page] for i in range(0, len(rows), args.page)]
    pages.sort(key=lambda rows: -confidence[rows].mean())
    rng = np.random.default_rng(seed)
    correct, written, cost = len(examples), len(examples), float(len(examples))
    deselected: list[int] = []
    need = int(np.ceil(TARGET * n))
    for rows in pages:
        if correct >= need:
            return cost, written, True
        wrong = predicted[rows] != truth[rows]
        missed = wrong & (rng.random(len(rows)) < miss_rate)
        caught = wrong & ~missed
        cost += args.page_cost + args.scan_cost * len(rows) + args.deselect_cost * caught.sum()
        written += int((~caught).sum())
        correct += int((~wrong).sum())
        deselected += rows[caught].tolist()
    for _ in deselected:
        if correct >= need:
            break
        cost += 1.0
        written += 1
        correct += 1
    return cost, written, correct >= need


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=3000)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--shots", default="1,5")
    parser.add_argument("--methods", default="prototype,propagation,linear head")
    parser.add_argument("--embedding-model", default="efficientnet_lite0-imagenet-64")
    parser.add_argument("--page", type=int, default=24)
    parser.add_argument("--scan-cost", type=float, default=1 / 6)
    parser.add_argument("--deselect-cost", type=float, default=1 / 6)
    parser.add_argument("--page-cost", type=float, default=1.0)
    parser.add_argument("--miss-rates", default="0,0.1")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()
    if not FASHION_DIR.is_dir():
        raise SystemExit("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist")
    shots = [int(s) for s in args.shots.split(",")]
    methods = args.methods.split(",")
    miss_rates = [float(m) for m in args.miss_rates.split(",")]
    all_labels = _idx(FASHION_DIR / "train-labels-idx1-ubyte.gz")
    pool = np.sort(np.random.default_rng(0).permutation(len(all_labels))[:args.pool])
    started = time.perf_counter()
    vectors = embedded("train", pool, args.embedding_model)
    truth = all_labels[pool].astype(np.int64)
    one_by_one = int(np.ceil(TARGET * len(pool)))

    accuracy: dict[tuple[str, int], list[float]] = {}
    grid: dict[tuple[str, int, float], list[tuple[float, int, bool]]] = {}
    for draw in range(args.draws):
        rng = np.random.default_rng(1000 + draw)
        for k in shots:
            examples = np.concatenate([rng.choice(np.flatnonzero(truth == c), k, replace=False) for c in CLASSES])
            rest = np.setdiff1d(np.arange(len(pool)), examples)
            for method in methods:
                probs = propose(method, vectors, truth, examples)
                accuracy.setdefault((method, k), []).append(float((probs[rest].argmax(axis=1) == truth[rest]).mean()))
                for miss in miss_rates:
                    grid.setdefault((method, k, miss), []).append(
                        grid_cost(probs, truth, examples, args, miss, seed=draw))
        print(f"draw {draw} done ({time.perf_counter() - started:.0f} s)", flush=True)

    acc_lines = ["| method | examples per class | accuracy mean | std | min | max |", "|---|---|---|---|---|---|"]
    for (method, k), values in accuracy.items():
        a = np.asarray(values)
        acc_lines.append(f"| {method} | {k} | {a.mean():.3f} | {a.std():.3f} | {a.min():.3f} | {a.max():.3f} |")
    grid_lines = ["| proposals | examples per class | grid miss rate | grid cost (units), draws that reached 95% | labels written "
                  "| reached 95% | one-by-one cost (units) | one-by-one / grid |", "|---|---|---|---|---|---|---|---|"]
    for (method, k, miss), results in grid.items():
        # the cost and the ratio of the draws that reached the target: the others stopped short of it
        costs = np.asarray([c for c, _, r in results if r])
        written = np.mean([w for _, w, _ in results])
        reached = len(costs)
        cost = f"{costs.mean():.0f} ± {costs.std():.0f}" if reached else "not reached"
        ratio = f"{one_by_one / costs.mean():.1f}x" if reached else "n/a"
        grid_lines.append(f"| {method} | {k} | {miss:g} | {cost} | {written:.0f} | {reached}/{len(results)} | "
                          f"{one_by_one} | {ratio} |")
    seconds = time.perf_counter() - started
    print("\n".join(acc_lines))
    print("\n".join(grid_lines))
    if args.no_record:
        return
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = ".venv/bin/python bench/bench_oneshot.py " + shlex.join(sys.argv[1:])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    entry = (
        f"\n## One-shot proposals and grid verify on Fashion-MNIST, {date}\n\n- machine: {machine()}\n"
        f"- load average at the end (1, 5, 15 min): {load}\n- date: {date}\n- command: `{command.strip()}`\n"
        f"- data: {len(pool)} Fashion-MNIST train images (seed 0), embeddings {args.embedding_model}; "
        f"{args.draws} draws of the examples per setting; run time {seconds:.0f} s\n"
        f"- cost model: one unit = one image labeled one by one in the editor; a grid page of {args.page} "
        f"costs {args.page_cost:g} + {args.scan_cost:.3f} per thumbnail + {args.deselect_cost:.3f} per wrong one "
        f"deselected; deselected images are then labeled one by one; the examples count as one-by-one labels; "
        f"target: {TARGET:.0%} of the pool correctly labeled by a person (see the bench's docstring for the "
        f"source of the 1/6)\n\nProposal accuracy on the pool minus the examples:\n\n" + "\n".join(acc_lines) +
        "\n\nCost to 95% label accuracy:\n\n" + "\n".join(grid_lines) + "\n")
    with open(ROOT / "bench" / "RESULTS.md", "a") as handle:
        handle.write(entry)
    print(f"appended to {ROOT / 'bench' / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
