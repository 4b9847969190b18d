"""Decode memory benchmark: concurrent uploads of one large, well-compressed PNG.

Makes a synthetic PNG (90 megapixels by default, about a megabyte on the wire), then in a
fresh child process per setting runs `--threads` concurrent ingests of it (the web process's
path: labeling.ingest._prepare, decode, display copy) and reports the child's peak RSS and
wall time, once under the default pixel budget (VISION_DECODE_PIXELS_IN_FLIGHT) and once with
the budget lifted (every decode at once, as before the budget). Nothing touches the database.
Appends the table to bench/RESULTS.md.

    .venv/bin/python bench/bench_decode_memory.py --megapixels 90 --threads 4
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_png(path: Path, megapixels: float) -> None:
    """A gradient with a little structure: decodes to full size, compresses to about 1 MB."""
    import numpy as np
    from PIL import Image

    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = int(megapixels * 1e6 / width)
    row = (np.arange(width, dtype=np.uint32) * 255 // width).astype(np.uint8)
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    pixels[:, :, 0] = row
    pixels[:, :, 1] = row[::-1]
    pixels[:, :, 2] = (np.arange(height, dtype=np.uint32) * 255 // height).astype(np.uint8)[:, None]
    Image.fromarray(pixels).save(path, "PNG", compress_level=9)


def child(path: str, threads: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vision_project.settings")
    import django

    django.setup()
    from core.models import Project
    from labeling import ingest

    data = Path(path).read_bytes()
    project = Project(pk=1, name="bench", task_type="detection", validation_share=0.2)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    errors: list[str] = []

    def one() -> None:
        try:
            ingest._prepare(project=project, name="big.png", stream=io.BytesIO(data), size=len(data))
        except Exception as exc:
            errors.append(str(exc))

    start = time.perf_counter()
    workers = [threading.Thread(target=one) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"base_mb": base / 1024, "peak_mb": peak / 1024, "wall_s": wall, "errors": errors}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=90)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    parser.add_argument("--child", metavar="PNG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.threads)
        return

    rows = []
    with tempfile.TemporaryDirectory(prefix="vision-bench-") as tmp:
        png = Path(tmp) / "big.png"
        make_png(png, args.megapixels)
        wire_mb = png.stat().st_size / 1024**2
        settings_default = int(os.environ.get("VISION_DECODE_PIXELS_IN_FLIGHT", 100_000_000))
        for label, budget in (("default budget", settings_default), ("no budget", 10**15)):
            env = {**os.environ, "VISION_DECODE_PIXELS_IN_FLIGHT": str(budget),
                   "VISION_MAX_IMAGE_PIXELS": str(max(100_000_000, int(args.megapixels * 1e6) + 1))}
            out = subprocess.run([sys.executable, __file__, "--child", str(png), "--threads", str(args.threads)],
                                 env=env, capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append((label, budget, result))

    header = "| setting | pixels in flight | threads | base RSS MB | peak RSS MB | wall s | errors |\n|---|---|---|---|---|---|---|"
    lines = [f"| {label} | {'unbounded' if budget >= 10**15 else f'{budget:,}'} | {args.threads} | "
             f"{r['base_mb']:.0f} | {r['peak_mb']:.0f} | {r['wall_s']:.1f} | {len(r['errors'])} |"
             for label, budget, r in rows]
    table = "\n".join([header, *lines])
    print(f"{args.megapixels:g}-megapixel PNG, {wire_mb:.2f} MB on the wire\n{table}")
    if args.no_record:
        return
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/bench_decode_memory.py", *sys.argv[1:]])
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with open(ROOT / "bench" / "RESULTS.md", "a") as results:
        results.write(
            f"\n## Decode memory: {args.threads} concurrent {args.megapixels:g}-megapixel PNG uploads\n\n"
            f"- machine: 2-core AMD EPYC, shared\n- date: {now}\n- command: `{command}`\n"
            f"- input: one synthetic {args.megapixels:g}-megapixel PNG, {wire_mb:.2f} MB on the wire; "
            "each child process runs the web path's decode (labeling.ingest._prepare) in threads\n\n"
            f"{table}\n"
        )


if __name__ == "__main__":
    main()
