"""Benchmark: every report endpoint on a project with 1M images and 100k annotations.

Loads synthetic rows with COPY into a dedicated PostgreSQL database (dropped at the end;
image files need not exist), builds the report aggregates once with the rebuild, times
the live per-annotation update, then requests each report endpoint through Django's test
client (one warm-up request, then REQUESTS timed ones) and prints p50/p95. Appends the
table to bench/RESULTS.md.

    .venv/bin/python bench/bench_reports.py [--images 1000000] [--annotations 100000]

PostgreSQL at BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432); the database
is vision_bench_reports.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "vision_bench_reports"
REQUESTS = 20
LIVE_RECORDS = 200
REPORT_NAMES = ["accuracy", "learning-curve", "prelabel-quality", "team", "agreement", "flags", "queue"]
ANNOTATORS = 20
DAYS = 120
VERSIONS = 6
REASONS = ["blurry", "occluded", "not a tree", "cut off at the edge", "ambiguous class"]


def admin_sql(statement: str) -> None:
    import psycopg2

    connection = psycopg2.connect(f"{SERVER}/postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(statement)
    connection.close()


@contextlib.contextmanager
def django_bench_database(db_name: str, *, keep: bool = False):
    """A fresh PostgreSQL database for a bench, migrated, with Django set up on it and the
    test client allowed (any host, the test environment); dropped afterwards unless `keep`."""
    os.environ["DATABASE_URL"] = f"{SERVER}/{db_name}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vision_project.settings")
    admin_sql(f"DROP DATABASE IF EXISTS {db_name}")
    admin_sql(f"CREATE DATABASE {db_name}")
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.test.utils import setup_test_environment

        settings.ALLOWED_HOSTS = ["*"]
        setup_test_environment()
        call_command("migrate", verbosity=0)
        yield
    finally:
        from django.db import connections

        connections.close_all()
        if not keep:
            admin_sql(f"DROP DATABASE IF EXISTS {db_name}")


def copy_rows(cursor, table: str, columns: list[str], rows) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(row)
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer)


def random_boxes(rng, count: int, classes: list[int]) -> list[dict]:
    xy = rng.uniform(0, 500, size=(count, 2))
    wh = rng.uniform(20, 120, size=(count, 2))
    return [{"x1": round(float(x), 1), "y1": round(float(y), 1), "x2": round(float(x + w), 1),
             "y2": round(float(y + h), 1), "label": int(rng.choice(classes))}
            for (x, y), (w, h) in zip(xy, wh)]


def edited(rng, boxes: list[dict], classes: list[int]) -> list[dict]:
    """A labeler's version of a pre-label: some boxes nudged, relabeled, dropped or added."""
    out = []
    for b in boxes:
        roll = rng.random()
        if roll < 0.1:
            continue
        b = {k: v for k, v in b.items() if k not in ("score", "probs")}
        if roll < 0.3:
            b = {**b, "x2": round(b["x2"] + float(rng.uniform(2, 15)), 1)}
        if rng.random() < 0.08:
            b = {**b, "label": int(rng.choice(classes))}
        out.append(b)
    if rng.random() < 0.3:
        out += random_boxes(rng, 1, classes)
    return out


def load(images: int, annotations: int, seed: int = 0) -> int:
    """Create the project and its rows; returns the project id."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from core.models import Backend, LabelClass, ModelVersion, Project, TaskType
    from labeling.models import Membership, Role

    rng = np.random.default_rng(seed)
    users = get_user_model()
    lead = users.objects.create(username="lead")
    annotators = [users.objects.create(username=f"annotator{i}") for i in range(ANNOTATORS)]
    project = Project.objects.create(name="bench", task_type=TaskType.DETECTION, random_share=0.1,
                                     annotations_per_image=1, target_metric=0.8)
    Membership.objects.create(project=project, user=lead, role=Role.LEAD)
    classes = [LabelClass.objects.create(project=project, name=f"class{i}").pk for i in range(5)]
    start = datetime.now(timezone.utc) - timedelta(days=DAYS)
    versions = []
    for number in range(1, VERSIONS + 1):
        n = 1000 * 2 ** (number - 1)
        metric = 0.85 - 2.5 * n ** -0.45 + float(rng.normal(0, 0.005))
        per_class = [{"class_index": c, "ap50_95": metric + float(rng.normal(0, 0.03)), "ap50": metric + 0.2,
                      "num_gt": 400, "precision": 0.7, "recall": 0.6} for c in range(len(classes))]
        versions.append(ModelVersion.objects.create(
            project=project, number=number, backend=Backend.YOLO, class_ids=classes, dataset_size=n,
            validation_size=2000, primary_metric=metric,
            metrics={"primary": "map50_95", "map50_95": metric, "map50": metric + 0.2, "precision": 0.7,
                     "recall": 0.6, "per_class": per_class}))

    now = datetime.now(timezone.utc).isoformat()
    with connection.cursor() as cursor:
        raw = cursor.connection.cursor()
        copy_rows(raw, "labeling_image",
                  ["project_id", "file", "display_file", "original_name", "sha256", "width", "height", "split",
                   "created_at"],
                  ((project.pk, f"projects/{project.pk}/images/{i}.jpg", "", f"{i}.jpg", f"{i:064x}", 640, 640,
                    "validation" if i % 5 == 0 else "train", now) for i in range(images)))
        cursor.execute("SELECT min(id) FROM labeling_image WHERE project_id = %s", [project.pk])
        first_image = cursor.fetchone()[0]

        # 10% of the labeled images get a second opinion (agreement); the rest one label.
        labeled_images = annotations * 10 // 11
        image_ids = first_image + rng.choice(images, size=labeled_images, replace=False)
        second = image_ids[: annotations - labeled_images]
        targets = np.concatenate([image_ids, second])
        slots = np.concatenate([np.zeros(len(image_ids), int), np.ones(len(second), int)])
        days = np.sort(rng.integers(0, DAYS, size=len(targets)))
        order = rng.permutation(len(targets))  # second opinions land at random times too
        targets, slots = targets[order], slots[order]
        authors = rng.integers(0, ANNOTATORS, size=len(targets))
        # Second opinions never go to the first labeler.
        authors[slots == 1] = (authors[slots == 1] + 1 + rng.integers(0, ANNOTATORS - 1, int((slots == 1).sum()))) % ANNOTATORS
        first_author = dict(zip(targets[slots == 0], authors[slots == 0]))
        clash = (slots == 1) & (authors == np.array([first_author.get(t, -1) for t in targets]))
        authors[clash] = (authors[clash] + 1) % ANNOTATORS

        copy_rows(raw, "labeling_task",
                  ["project_id", "image_id", "slot", "status", "priority", "is_random_pick", "created_at"],
                  ((project.pk, int(t), int(s), "done", 0.0, bool(rng.random() < 0.1), now)
                   for t, s in zip(targets, slots)))
        cursor.execute("SELECT image_id, slot, id FROM labeling_task WHERE project_id = %s", [project.pk])
        task_of = {(i, s): pk for i, s, pk in cursor.fetchall()}

        # Pre-labels for the labeled images, from the version deployed at the time.
        version_of_day = lambda d: versions[min(int(d) * VERSIONS // DAYS, VERSIONS - 1)]  # noqa: E731
        predictions = {}
        prediction_rows = []
        for t, d in zip(targets, days):
            if t in predictions:
                continue
            boxes = random_boxes(rng, int(rng.integers(1, 6)), classes)
            for b in boxes:
                b["score"] = round(float(rng.uniform(0.25, 1)), 3)
            predictions[t] = (version_of_day(d).pk, boxes)
            prediction_rows.append((int(t), version_of_day(d).pk, json.dumps({"boxes": boxes}), 0.5, now))
        copy_rows(raw, "training_prediction", ["image_id", "model_version_id", "payload", "uncertainty", "created_at"],
                  prediction_rows)
        cursor.execute("SELECT image_id, id FROM training_prediction WHERE model_version_id = ANY(%s)",
                       [[v.pk for v in versions]])
        prediction_of = dict(cursor.fetchall())

        annotation_rows = []
        for t, s, d, a in zip(targets, slots, days, authors):
            roll = rng.random()
            version_id, boxes = predictions[t]
            if roll < 0.02:
                kind, payload, reason = "flag", {}, REASONS[int(rng.integers(len(REASONS)))]
            elif roll < 0.04:
                kind, payload, reason = "skip", {}, ""
            elif roll < 0.45:
                kind, reason = "accept", ""
                payload = {"boxes": [{k: v for k, v in b.items() if k != "score"} for b in boxes]}
            else:
                kind, payload, reason = "correct", {"boxes": edited(rng, boxes, classes)}, ""
            created = start + timedelta(days=int(d), seconds=int(rng.integers(8 * 3600, 18 * 3600)))
            annotation_rows.append((
                project.pk, int(t), task_of[(int(t), int(s))], annotators[a].pk, kind, "human", "submitted",
                json.dumps(payload), prediction_of[int(t)], reason, int(rng.integers(3000, 90000)), "pending",
                "", created.isoformat()))
        copy_rows(raw, "labeling_annotation",
                  ["project_id", "image_id", "task_id", "author_id", "kind", "source", "state", "payload",
                   "prediction_id", "flag_reason", "time_spent_ms", "review_status", "review_comment", "created_at"],
                  annotation_rows)
    connection.commit() if not connection.get_autocommit() else None
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return project.pk


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--annotations", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    with django_bench_database(DB_NAME, keep=args.keep):
        from django.db import connection
        from django.test import Client

        from core.models import Project
        from labeling.models import Annotation
        from reports.aggregates import report_aggregates_rebuild, report_aggregates_record

        t0 = time.perf_counter()
        project_id = load(args.images, args.annotations)
        load_s = time.perf_counter() - t0
        project = Project.objects.get(pk=project_id)

        t0 = time.perf_counter()
        counted = report_aggregates_rebuild(project=project)
        rebuild_s = time.perf_counter() - t0
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # what autovacuum does after a bulk change

        # The live path: 200 more annotations land (copies of recent ones, stamped now)
        # and each is recorded as the on-commit hook would.
        recent = list(Annotation.objects.filter(project=project).order_by("-pk")[:LIVE_RECORDS])
        for annotation in recent:
            annotation.pk = None
            annotation.id = None
        fresh = Annotation.objects.bulk_create(recent)  # bulk_create sends no signals
        live_ms = []
        for annotation in fresh:
            t0 = time.perf_counter()
            report_aggregates_record(annotation_id=annotation.pk)
            live_ms.append((time.perf_counter() - t0) * 1000)

        client = Client()
        from django.contrib.auth import get_user_model

        client.force_login(get_user_model().objects.get(username="lead"))
        rows = []
        for name in REPORT_NAMES:
            url = f"/api/projects/{project_id}/reports/{name}/"
            t0 = time.perf_counter()
            first = client.get(url)
            cold_ms = (time.perf_counter() - t0) * 1000
            assert first.status_code == 200, (name, first.status_code, first.content[:300])
            times = []
            for _ in range(REQUESTS):
                t0 = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200
            rows.append((name, cold_ms, statistics.median(times), percentile(times, 95), len(response.content)))
            if name == "queue":
                print(response.json()["sentence"])

    header = "| report | first request ms | p50 ms | p95 ms | response bytes |\n|---|---:|---:|---:|---:|"
    table = "\n".join([header] + [f"| {n} | {c:.0f} | {p50:.1f} | {p95:.1f} | {size:,} |"
                                  for n, c, p50, p95, size in rows])
    extra = (f"Loaded {args.images:,} images and {args.annotations:,} annotations in {load_s:.0f} s; "
             f"rebuild of the aggregates: {counted:,} annotations in {rebuild_s:.1f} s; live update per "
             f"annotation (report_aggregates_record, {LIVE_RECORDS} new annotations): p50 {statistics.median(live_ms):.1f} ms, "
             f"p95 {percentile(live_ms, 95):.1f} ms.")
    print(table)
    print(extra)
    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    load_average = os.getloadavg()[0]
    date = subprocess.run(["date", "-u"], capture_output=True, text=True).stdout.strip()
    entry = (f"\n## Report endpoints at {args.images:,} images / {args.annotations:,} annotations\n\n"
             f"Machine: {cpu}-core CPU box ({platform.processor() or platform.machine()}), PostgreSQL 15 on "
             f"loopback, shared with other work (load average {load_average:.1f} when the timing ended). Date: {date}.\n"
             f"Command: `.venv/bin/python bench/bench_reports.py --images {args.images} "
             f"--annotations {args.annotations}`\n\n"
             f"Each endpoint: one warm-up request (first request ms; the queue report's first one "
             f"fits the ARIMA model, cached for the day after), then {REQUESTS} timed requests through "
             f"Django's test client.\n\n{table}\n\n{extra}\n")
    with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as handle:
        handle.write(entry)


if __name__ == "__main__":
    main()
