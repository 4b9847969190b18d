"""Queue-model turnaround: refit the linear head and re-rank a pool of 100,000 images.

    .venv/bin/python bench/bench_queue_model.py [--pool 100000] [--labels 1000] [--classes 10]
        [--strategy margin|hybrid] [--no-record]     (BENCH_POSTGRES: the server, default local)

A classification project in its own PostgreSQL database (created and dropped here) with
``--pool`` unlabeled images, each with an open task and a 1280-value embedding (clustered
random vectors: the timing does not depend on what the vectors show), and ``--labels``
verified labels. It then times training.queue_model.queue_model_fit, the task a submit
triggers: read the labels and their vectors, fit, evaluate, register the version, read the
pool's vectors, rank, write every open task's priority. Runs it --repeats times, prints a
table of the stages and appends it to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.bench_reports import SERVER, admin_sql  # noqa: E402

DB_NAME = os.environ.get("BENCH_QUEUE_MODEL_DB", "vision_bench_queue_model")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=100_000)
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--strategy", default="margin")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME}")
    admin_sql(f"CREATE DATABASE {DB_NAME}")
    os.environ.update({"DATABASE_URL": f"{SERVER}/{DB_NAME}", "DJANGO_SETTINGS_MODULE": "vision_project.settings",
                       "VISION_VAR_DIR": str(ROOT / "var" / "bench-queue-model"), "LOG_LEVEL": "WARNING"})
    os.environ.pop("REDIS_URL", None)
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
        rows = _measure(args)
    finally:
        from django.db import connections

        connections.close_all()
        admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME}")
    _report(args, rows)


def _fill(args):
    import hashlib

    import numpy as np

    from core.models import Image, LabelClass, Project, Split
    from labeling.models import Annotation, AnnotationKind, AnnotationSource, Task
    from ml.embedding_specs import DEFAULT_EMBEDDING_MODEL, EMBEDDING_MODELS
    from training.models import ImageEmbedding

    project = Project.objects.create(name="bench", task_type="classification", sampling_strategy=args.strategy,
                                     random_share=0.1)
    classes = [LabelClass.objects.create(project=project, name=f"c{i}", order=i).pk for i in range(args.classes)]
    total = args.pool + args.labels
    rng = np.random.default_rng(0)
    dim = EMBEDDING_MODELS[DEFAULT_EMBEDDING_MODEL].dim
    centers = rng.standard_normal((args.classes, dim)).astype(np.float32)
    chunk = 5000
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        images = Image.objects.bulk_create(
            Image(project=project, file=f"projects/{project.pk}/images/{start + k}.jpg", original_name=f"{start + k}.jpg",
                  sha256=hashlib.sha256(str(start + k).encode()).hexdigest(), width=64, height=64,
                  split=Split.VALIDATION if (start + k) < args.labels and (start + k) % 5 == 0 else Split.TRAIN)
            for k in range(n)
        )
        truth = rng.integers(args.classes, size=n)
        vectors = centers[truth] + 1.5 * rng.standard_normal((n, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ImageEmbedding.objects.bulk_create(
            ImageEmbedding(project=project, image=image, model_key=DEFAULT_EMBEDDING_MODEL, vector=v.astype("<f4").tobytes())
            for image, v in zip(images, vectors)
        )
        labeled = [(image, int(t)) for k, (image, t) in enumerate(zip(images, truth)) if start + k < args.labels]
        Task.objects.bulk_create(Task(project=project, image=image, priority=0.5,
                                      status="done" if start + k < args.labels else "open")
                                 for k, image in enumerate(images))
        Annotation.objects.bulk_create(
            Annotation(project=project, image=image, kind=AnnotationKind.CORRECT, source=AnnotationSource.IMPORT,
                       payload={"labels": [classes[t]]})
            for image, t in labeled
        )
        print(f"filled {start + n:,} images", flush=True)
    return project


def _measure(args) -> list[dict]:
    import django

    django.setup()
    from django.db import connection

    from training import queue_model
    from training import ranking as queue_priorities

    started = time.perf_counter()
    project = _fill(args)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"filled in {time.perf_counter() - started:.0f} s", flush=True)
    stages: dict[str, float] = {}

    def timed(name, function):
        def wrapper(*a, **kw):
            begun = time.perf_counter()
            try:
                return function(*a, **kw)
            finally:
                stages[name] = stages.get(name, 0.0) + time.perf_counter() - begun
        return wrapper

    queue_model.labeled_examples = timed("labels and their vectors", queue_model.labeled_examples)
    queue_model.fit_multiclass = timed("fit the head", queue_model.fit_multiclass)
    queue_model._register = timed("register the version", queue_model._register)
    queue_priorities._embedding_ranking = timed("read and rank", queue_priorities._embedding_ranking)
    queue_priorities.selection.rank_pool = timed("rank the pool", queue_priorities.selection.rank_pool)
    queue_priorities.task_priorities_write = timed("write the priorities", queue_priorities.task_priorities_write)
    rows = []
    for repeat in range(args.repeats):
        stages.clear()
        begun = time.perf_counter()
        version = queue_model.queue_model_fit(project=project, force=True)
        total = time.perf_counter() - begun
        stages["read the pool's vectors"] = stages.pop("read and rank") - stages["rank the pool"]
        rows.append({"repeat": repeat, "total": total, **stages, "metric": version.primary_metric})
        print(f"run {repeat}: {total:.2f} s  " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()), flush=True)
    return rows


def _report(args, rows) -> None:
    stages = [k for k in rows[0] if k not in ("repeat", "total", "metric")]
    lines = ["| run | total s | " + " | ".join(stages) + " |", "|---:|---:|" + "---:|" * len(stages)]
    for row in rows:
        lines.append(f"| {row['repeat']} | {row['total']:.2f} | " + " | ".join(f"{row[s]:.2f}" for s in stages) + " |")
    table = "\n".join(lines)
    print(table)
    if args.no_record:
        return
    cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout
    stamp = datetime.datetime.now(datetime.timezone.utc)
    command = "python bench/bench_queue_model.py " + shlex.join(sys.argv[1:])
    with open(ROOT / "bench" / "RESULTS.md", "a") as handle:
        handle.write(
            f"\n## Queue model: refit and re-rank {args.pool:,} pooled images, {stamp:%Y-%m-%d %H:%M} UTC\n\n"
            f"Machine: {cpu.strip() or platform.machine()}, {os.cpu_count()} cores (shared with other work), "
            f"PostgreSQL on the same box, no GPU. {args.labels} labels ({args.classes} classes, a fifth of them "
            f"validation), 1280-value embeddings, strategy {args.strategy}, random share 0.1; "
            f"seconds per stage of one queue_model_fit.\nCommand: `{command.strip()}`\n\n{table}\n")


if __name__ == "__main__":
    main()
