"""Embedding throughput (images/s) per model key and batch size, and the time to read a project's
stored vectors (training.selectors.embedding_matrix) at 100,000 rows.

    .venv/bin/python bench/bench_embed.py [--images 256] [--batches 16,64] [--device auto]
        [--models efficientnet_lite0-imagenet-224,efficientnet_lite0-imagenet-128]
        [--matrix-rows 100000] [--repeats 3] [--no-record]

Images, read by path (nothing is downloaded):
- tiles: deepforest's aerial photos cut into 400x400 JPEG tiles (what the demo project stores);
- photos: scikit-image's colour photos and deepforest's whole photos as they ship (PNG/JPEG,
  300x300 to 2,000 px and more), repeated to --images.
Per configuration: end-to-end (read + decode + resize in the thread pool + network, as an
embedding run does) and network-only (pre-resized arrays). Each figure is the median of
--repeats timed passes after one warm-up pass.

The matrix read runs against DATABASE_URL (a throwaway SQLite file when unset): a project with
--matrix-rows images and one 1280-d vector each is written, read back whole and as a 10%
subset, and deleted. Prints a table and appends it to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime
import functools
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.bench_data import deepforest_data_dir, deepforest_tiles  # noqa: E402
from ml.embeddings import EMBEDDING_MODELS, Embedder, decode_upright, fit_array  # noqa: E402

SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
                  "motorcycle_right.png", "retina.jpg", "hubble_deep_field.jpg", "color.png", "ihc.png")


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = "unknown CPU"
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{model}, {os.cpu_count()} cores (shared with other work){gpu}; torch {torch.__version__}"


def photo_paths() -> list[str]:
    import skimage

    data = Path(skimage.__file__).parent / "data"
    paths = [str(data / name) for name in SKIMAGE_PHOTOS if (data / name).exists()]
    forest = deepforest_data_dir()
    paths += sorted(str(p) for p in forest.iterdir() if p.suffix.lower() in (".png", ".jpg", ".tif"))
    return paths


def repeat_to(paths: list[str], n: int) -> list[str]:
    return [paths[i % len(paths)] for i in range(n)]


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds (all threads of this process) of ``fn``. On a
    shared box the wall time swings with the neighbours' load; the CPU time much less."""
    fn()  # warm-up: allocator, first-call overheads, file cache
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def rate(n: int, seconds: tuple[float, float]) -> str:
    """images/s of wall time, and in brackets images per CPU-second."""
    return f"{n / seconds[0]:.1f} ({n / seconds[1]:.1f})"


def throughput(args) -> tuple[list[str], list[str]]:
    work = Path(tempfile.mkdtemp(prefix="vision-bench-embed-"))
    tiles = [item.path for item in deepforest_tiles(work / "tiles")]
    photos = photo_paths()
    sets = {"tiles": repeat_to(tiles, args.images), "photos": repeat_to(photos, args.images)}
    sizes = {name: f"{len(set(p))} files" for name, p in sets.items()}
    lines = ["| model key | batch | images | end-to-end, tiles | end-to-end, photos | network only |",
             "|---|---:|---:|---:|---:|---:|"]
    for key in args.models:
        size = EMBEDDING_MODELS[key].image_size
        arrays = [fit_array(decode_upright(Path(p).read_bytes(), size), size) for p in sets["tiles"]]
        for batch in args.batches:
            embedder = Embedder(key, device=args.device, batch_size=batch)
            cells = []
            for paths in sets.values():
                _, errors = embedder.embed_paths(paths[:batch])
                assert not any(errors), errors
                cells.append(rate(len(paths), timed(functools.partial(embedder.embed_paths, paths), args.repeats)))
            cells.append(rate(len(arrays), timed(functools.partial(embedder.embed_arrays, arrays), args.repeats)))
            line = f"| {key} | {batch} | {args.images} | " + " | ".join(cells) + " |"
            print(line, flush=True)
            lines.append(line)
    device = str(Embedder(args.models[0], device=args.device).device)
    notes = [
        "cells: images/s of wall time (images per CPU-second of this process, all threads, in "
        "brackets: steadier than wall time when other work shares the cores)",
        f"device {device}; torch threads {torch.get_num_threads()}; decode threads "
        f"{min(8, os.cpu_count() or 1)}; median of {args.repeats} passes after a warm-up",
        f"tiles: {sizes['tiles']} (deepforest 400x400 JPEG tiles); photos: {sizes['photos']} "
        "(scikit-image colour photos and deepforest's whole photos, PNG/JPEG/TIFF, "
        "up to a 15 MB PNG)",
    ]
    return lines, notes


def matrix_read(rows: int, repeats: int) -> tuple[list[str], list[str]]:
    tmp = None
    if not os.environ.get("DATABASE_URL"):
        tmp = tempfile.mkdtemp(prefix="vision-bench-embed-db-")
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vision_project.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from core.models import Image, Project
    from training.models import ImageEmbedding
    from training.selectors import embedding_matrix

    call_command("migrate", verbosity=0)
    key = "efficientnet_lite0-imagenet-224"
    project = Project.objects.create(name=f"bench-embed-{os.getpid()}")
    try:
        t0 = time.perf_counter()
        rng = np.random.default_rng(0)
        for start in range(0, rows, 5000):
            n = min(5000, rows - start)
            images = Image.objects.bulk_create([
                Image(project=project, file=f"bench/{start + i}.jpg", original_name=f"{start + i}.jpg",
                      sha256=f"{start + i:064x}", width=400, height=400) for i in range(n)])
            block = rng.standard_normal((n, 1280), dtype=np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            ImageEmbedding.objects.bulk_create([
                ImageEmbedding(project=project, image=image, model_key=key, vector=vec.astype("<f4").tobytes())
                for image, vec in zip(images, block)])
        write_s = time.perf_counter() - t0
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE training_imageembedding")
        ids, matrix = embedding_matrix(project=project, model_key=key)
        assert matrix.shape == (rows, 1280) and np.all(np.diff(ids) > 0)
        whole = timed(lambda: embedding_matrix(project=project, model_key=key), repeats)[0]
        subset = rng.choice(ids, size=max(1, rows // 10), replace=False).tolist()
        part = timed(lambda: embedding_matrix(project=project, model_key=key, image_ids=subset), repeats)[0]
    finally:
        project.delete()
    mb = rows * 1280 * 4 / 1e6
    lines = ["| read | rows | MB of vectors | seconds | rows/s |", "|---|---:|---:|---:|---:|",
             f"| whole project | {rows:,} | {mb:.0f} | {whole:.2f} | {rows / whole:,.0f} |",
             f"| 10% subset by image_ids | {len(subset):,} | {mb / 10:.0f} | {part:.2f} | {len(subset) / part:,.0f} |"]
    notes = [f"database {connection.vendor}{' (a throwaway SQLite file)' if tmp else ''}; "
             f"writing the {rows:,} images and vectors took {write_s:.1f} s; median of {repeats} reads"]
    for line in lines:
        print(line)
    return lines, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256, help="images per timed pass (0: skip throughput)")
    parser.add_argument("--batches", default="16,64")
    parser.add_argument("--models", default="efficientnet_lite0-imagenet-224,efficientnet_lite0-imagenet-128")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when available)")
    parser.add_argument("--matrix-rows", type=int, default=100_000, help="0: skip the matrix read")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    args.models = args.models.split(",")
    sections = []
    if args.matrix_rows:  # first: a database problem shows before the long part
        sections.append(("Reading the stored vectors (embedding_matrix)", *matrix_read(args.matrix_rows, args.repeats)))
    if args.images:
        sections.append(("Throughput (images/s)", *throughput(args)))
    if args.no_record or not sections:
        return
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = ".venv/bin/python bench/bench_embed.py " + shlex.join(sys.argv[1:])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    entry = f"\n## Embeddings: throughput and stored-vector reads, {date}\n\n- machine: {machine()}\n"
    entry += f"- load average at the end (1, 5, 15 min): {load} (other work on the box contends for the cores)\n"
    entry += f"- date: {date}\n- command: `{command.strip()}`\n"
    for title, lines, notes in sections:
        entry += f"\n{title}:\n\n" + "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    with open(ROOT / "bench" / "RESULTS.md", "a") as handle:
        handle.write(entry)
    print(f"appended to {ROOT / 'bench' / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
