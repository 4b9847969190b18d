"""Learning curves on real labeled data with the live queue's code: active-learning strategies
against random, several seeds, labels to 95% of the full-pool metric and the saving.

    .venv/bin/python bench/bench_simulation.py [--strategies random,margin,hybrid] [--seeds 0,1,2]
        [--pool 3000] [--test 1000] [--batch 10] [--max-labels 1000] [--embedding-model KEY]

Fashion-MNIST (Debian's dataset-fashion-mnist: apt-get install dataset-fashion-mnist). Every
image is embedded once with the pretrained embedder the app uses (ml/embeddings.py;
vectors cached under var/bench-cache/); each seed draws its own pool from the train set, the
test split is a fixed draw from t10k. training.simulation.simulate then runs the queue model,
cold start and ranking of the live queue. Writes the CSV and PNG under bench/results/ and
appends the table to bench/RESULTS.md.
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
from bench.sim_report import machine, merge, tables  # noqa: E402
from ml.embedding_specs import DEFAULT_EMBEDDING_MODEL, EMBEDDING_MODELS  # noqa: E402
from training.simulation import SimulationConfig, plot_curves, simulate, write_csv  # noqa: E402

CACHE = ROOT / "var" / "bench-cache"
CHECKPOINTS = (50, 100, 200, 400, 600, 800, 1000)


def embedded(split: str, indices: np.ndarray, key: str) -> np.ndarray:
    """Vectors of the chosen Fashion-MNIST images under ``key``, cached by split and key."""
    from ml.embeddings import Embedder

    CACHE.mkdir(parents=True, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    images = _idx(FASHION_DIR / f"{prefix}-images-idx3-ubyte.gz")
    path = CACHE / f"fashion-{prefix}-{key}.npz"
    cached: dict[int, np.ndarray] = {}
    if path.exists():
        with np.load(path) as data:
            cached = dict(zip(data["index"].tolist(), data["vectors"]))
    missing = [int(i) for i in indices if int(i) not in cached]
    if missing:
        started = time.perf_counter()
        vectors = Embedder(key).embed_arrays([images[i] for i in missing])
        print(f"embedded {len(missing)} {prefix} images in {time.perf_counter() - started:.0f} s", flush=True)
        cached.update(zip(missing, vectors))
        order = sorted(cached)
        np.savez(path, index=np.asarray(order), vectors=np.stack([cached[i] for i in order]))
    return np.stack([cached[int(i)] for i in indices])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default="random,margin,hybrid")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--pool", type=int, default=3000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=10, help="labels per round (the live default)")
    parser.add_argument("--max-labels", type=int, default=1000)
    parser.add_argument("--embedding-model", default=os.environ.get("VISION_EMBEDDING_MODEL", DEFAULT_EMBEDDING_MODEL),
                        choices=sorted(EMBEDDING_MODELS))
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if not FASHION_DIR.is_dir():
        raise SystemExit("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    strategies = [s for s in args.strategies.split(",") if s]
    train_labels = _idx(FASHION_DIR / "train-labels-idx1-ubyte.gz").astype(np.int64)
    test_labels = _idx(FASHION_DIR / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    test_index = np.random.default_rng(12345).permutation(len(test_labels))[: args.test]
    test_x = embedded("test", test_index, args.embedding_model)

    started = time.perf_counter()
    results = []
    for seed in seeds:  # each seed its own pool, so the spread covers the data as well
        pool_index = np.random.default_rng(seed).permutation(len(train_labels))[: args.pool]
        pool_x = embedded("train", pool_index, args.embedding_model)
        config = SimulationConfig(strategies=strategies, seeds=(seed,), batch_size=args.batch,
                                  max_labels=args.max_labels)
        result = simulate(task="classification", classes=list(range(10)), pool_embeddings=pool_x,
                          pool_targets=train_labels[pool_index], test_embeddings=test_x,
                          test_targets=test_labels[test_index], config=config,
                          log=lambda line: print(line, flush=True))
        results.append(result)
    merged = merge(results)
    minutes = (time.perf_counter() - started) / 60

    stamp = datetime.datetime.now(datetime.timezone.utc)
    out = ROOT / "bench" / "results" / f"simulation-fashion-{stamp:%Y%m%dT%H%M%SZ}"
    full = np.mean(list(merged.full_pool.values()))
    table = tables(merged, "Macro-F1", CHECKPOINTS)
    print(table)
    if args.no_record:
        return
    write_csv(merged.rows, out / "learning_curves.csv")
    plot_curves(merged.rows, out / "learning_curves.png", targets=list(merged.target.values()),
                title=f"Fashion-MNIST, queue model on {args.embedding_model}")
    where = f"{machine()}, no GPU"
    command = "python bench/bench_simulation.py " + shlex.join(sys.argv[1:])
    entry = (
        f"\n## Active learning with the queue model: Fashion-MNIST, {stamp:%Y-%m-%d %H:%M} UTC\n\n"
        f"Machine: {where}. Pool {args.pool} drawn per seed from the train set, test {args.test} of t10k; "
        f"embeddings {args.embedding_model}; linear head refit every {args.batch} labels up to "
        f"{args.max_labels}; seeds {args.seeds}. Target: 95% of the head's full-pool macro-F1 "
        f"(mean full pool {full:.4f}). {minutes:.1f} min.\n"
        f"Command: `{command.strip()}`\nCurves: `{out.relative_to(ROOT)}/learning_curves.png`\n\n{table}\n"
    )
    with open(ROOT / "bench" / "RESULTS.md", "a") as handle:
        handle.write(entry)


if __name__ == "__main__":
    main()
