"""Similarity search ("more like this") latency and recall at 100,000 images.

    .venv/bin/python bench/bench_similarity.py [--n 100000] [--dim 1280] [--queries 500]
        [--ef 64,128,256] [--data random,clustered] [--no-record]

The index is the app's (ml/similarity.py: hnswlib HNSW, M 16, ef_construction 100),
queried through VectorIndex.query with k = 10, one query at a time as the API asks, after one
warm-up pass. Two data sets of unit vectors of the embeddings' dimension:
- random: uniform on the sphere. Nearest neighbours are barely nearer than any other point
  (the cosine of two random 1280-d unit vectors has a spread of 0.03), the worst case for any
  approximate index: recall there is a floor, not what projects see.
- clustered: 200 Gaussian groups (each vector a group centre plus noise of 1.5 times the
  centres' spread per dimension), the shape image embeddings have (similar photos group); queries are jittered
  copies of indexed vectors, as "more like this" asks from an image of the project.
Recall@10 compares with exact inner-product search (numpy) on the first 200 queries. Also
timed: building the index, adding 1,000 vectors to it, saving and loading it (the file every
process loads), and an exact numpy scan for comparison. Prints a table and appends it to
bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from ml import similarity  # noqa: E402
from ml.similarity import VectorIndex, brute_force_neighbours, index_build  # noqa: E402

RECALL_QUERIES = 200


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = "unknown CPU"
    return f"{model}, {os.cpu_count()} cores (shared with other work); hnswlib 0.8.0"


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def data(kind: str, n: int, dim: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "random":
        return unit(rng.standard_normal((n, dim), dtype=np.float32)), \
            unit(rng.standard_normal((queries, dim), dtype=np.float32))
    centres = rng.standard_normal((200, dim), dtype=np.float32)
    vectors = np.empty((n, dim), np.float32)
    for start in range(0, n, 10_000):  # in blocks: the noise of 100,000 rows at once is 1 GB in float64
        rows = min(10_000, n - start)
        vectors[start:start + rows] = centres[rng.integers(0, 200, rows)] + 1.5 * rng.standard_normal(
            (rows, dim), dtype=np.float32)
    vectors = unit(vectors)
    picks = rng.choice(n, queries, replace=False)
    return vectors, unit(vectors[picks] + 0.02 * rng.standard_normal((queries, dim), dtype=np.float32))


def percentiles(ms: list[float]) -> tuple[float, float, float]:
    a = np.asarray(ms)
    return float(np.percentile(a, 50)), float(np.percentile(a, 95)), float(a.max())


def run(kind: str, args) -> tuple[list[str], list[str]]:
    vectors, queries = data(kind, args.n, args.dim, args.queries)
    ids = np.arange(1, args.n + 1, dtype=np.int64)
    print(f"{kind}: building the index of {args.n} x {args.dim} ...", flush=True)
    t0 = time.perf_counter()
    index = index_build(ids[:-1000], vectors[:-1000])
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index.add(ids[-1000:], vectors[-1000:])
    add_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    blob = index.to_bytes()
    save_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = VectorIndex.from_bytes(blob, args.dim)
    load_s = time.perf_counter() - t0
    exact = ids[brute_force_neighbours(vectors, queries[:RECALL_QUERIES], 10)]
    rows = []
    for ef in args.ef:
        similarity.EF_SEARCH = ef
        index._index.set_ef(ef)
        for q in queries[:50]:  # warm-up
            index.query(q, 10)
        times, found = [], []
        for q in queries:
            t0 = time.perf_counter()
            hits = index.query(q, 10)
            times.append((time.perf_counter() - t0) * 1000)
            found.append([i for i, _ in hits])
        recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found[:RECALL_QUERIES], exact)])
        p50, p95, worst = percentiles(times)
        rows.append(f"| {kind} | HNSW ef {ef} | {p50:.2f} | {p95:.2f} | {worst:.2f} | {recall:.3f} |")
    times = []
    for q in queries[:100]:
        t0 = time.perf_counter()
        np.argpartition(-(vectors @ q), 10)[:10]
        times.append((time.perf_counter() - t0) * 1000)
    p50, p95, worst = percentiles(times)
    rows.append(f"| {kind} | exact numpy scan | {p50:.2f} | {p95:.2f} | {worst:.2f} | 1.000 |")
    notes = [f"{kind}: build {build_s:.0f} s ({args.n - 1000} vectors), add 1,000 more {add_s:.2f} s, "
             f"save {save_s:.2f} s, load {load_s:.2f} s, file {len(blob) / 2**20:.0f} MiB"]
    for row in rows:
        print(row, flush=True)
    print(notes[0], flush=True)
    return rows, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--ef", default="64,128,256")
    parser.add_argument("--data", default="random,clustered")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()
    args.ef = [int(e) for e in args.ef.split(",")]
    header = ["| data | search | p50 ms | p95 ms | max ms | recall@10 |", "|---|---|---|---|---|---|"]
    rows, notes = [], []
    for kind in args.data.split(","):
        r, n = run(kind, args)
        rows += r
        notes += n
    table = "\n".join(header + rows)
    print(table)
    if args.no_record:
        return
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = ".venv/bin/python bench/bench_similarity.py " + shlex.join(sys.argv[1:])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    entry = (f"\n## Similarity search at {args.n:,} images ({args.dim}-d), {date}\n\n- machine: {machine()}\n"
             f"- load average at the end (1, 5, 15 min): {load}\n- date: {date}\n- command: `{command.strip()}`\n"
             f"- goal: p95 under 100 ms; k = 10, one query at a time through VectorIndex.query; recall@10 "
             f"against exact search on {RECALL_QUERIES} queries\n\n{table}\n\n" + "\n".join(f"- {n}" for n in notes) + "\n")
    with open(ROOT / "bench" / "RESULTS.md", "a") as handle:
        handle.write(entry)
    print(f"appended to {ROOT / 'bench' / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
