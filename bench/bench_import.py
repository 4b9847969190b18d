"""Import benchmark: N small JPEGs through `manage.py import_images`, timed end to end.

Generates the images in a temporary folder, creates a throw-away project in the
configured database (DATABASE_URL), runs the command in a child process, and reports
images per second and the child's peak memory (max RSS). Media goes to a temporary
MEDIA_ROOT; the project is deleted afterwards. Appends the table to bench/RESULTS.md.

    DATABASE_URL=postgres://... .venv/bin/python bench/bench_import.py --count 10000
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_images(folder: Path, count: int, size: tuple[int, int]) -> int:
    """Distinct small JPEGs (a noise pattern each); returns their total bytes."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    total = 0
    for n in range(count):
        pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        path = folder / f"{n // 1000:02d}" / f"img{n:05d}.jpg"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(pixels).save(path, "JPEG", quality=80)
        total += path.stat().st_size
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--size", type=int, nargs=2, default=(64, 48), metavar=("W", "H"))
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vision-bench-") as tmp:
        tmp = Path(tmp)
        os.environ["MEDIA_ROOT"] = str(tmp / "media")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vision_project.settings")
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth import get_user_model

        from core.models import Image
        from labeling.models import ImportJob
        from labeling.services import project_create

        images = tmp / "images"
        images.mkdir()
        started = time.perf_counter()
        total_bytes = make_images(images, args.count, tuple(args.size))
        elapsed = time.perf_counter() - started
        print(f"generated {args.count} JPEGs ({total_bytes / 1e6:.1f} MB) in {elapsed:.1f}s")

        owner, _ = get_user_model().objects.get_or_create(username="bench-import")
        project = project_create(
            name=f"bench import {datetime.datetime.now():%H%M%S}",
            task_type="detection",
            created_by=owner,
            label_classes=[{"name": "thing"}],
        )
        command = [sys.executable, "manage.py", "import_images", str(project.pk), str(images)]
        try:
            started = time.perf_counter()
            subprocess.run(command, cwd=ROOT, check=True, env=os.environ.copy())
            seconds = time.perf_counter() - started
            peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            created = Image.objects.filter(project=project).count()
            job = ImportJob.objects.filter(project=project).latest("id")
        finally:
            project.delete()

    database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    rows = [
        ("images", f"{args.count:,} JPEG {args.size[0]}x{args.size[1]} ({total_bytes / 1e6:.1f} MB)"),
        ("created", f"{created:,} ({job.status}: {job.message})"),
        ("wall time", f"{seconds:.1f} s (process start to exit)"),
        ("throughput", f"{created / seconds:.0f} images/s"),
        ("peak memory", f"{peak_mib:.0f} MiB max RSS of the import process"),
        ("database", database),
    ]
    width = max(len(k) for k, _ in rows)
    table = "\n".join(f"| {k.ljust(width)} | {v} |" for k, v in rows)
    header = f"| {'metric'.ljust(width)} | value |\n|{'-' * (width + 2)}|-------|"
    print(header + "\n" + table)
    if args.no_record:
        return
    cores = os.cpu_count()
    shown = "DATABASE_URL=postgres://... " if database == "postgresql" else ""
    entry = (
        f"\n## Import: {args.count:,} small JPEGs through `import_images`\n\n"
        f"- machine: {cores}-core CPU box ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}, {database}\n"
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n"
        f"- command: `{shown}.venv/bin/python bench/bench_import.py {shlex.join(sys.argv[1:])}`\n\n"
        f"{header}\n{table}\n"
    )
    with open(ROOT / "bench" / "RESULTS.md", "a") as results:
        results.write(entry)


if __name__ == "__main__":
    main()
