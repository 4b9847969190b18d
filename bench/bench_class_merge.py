"""Benchmark: the class tree at scale. A classification project with N labeled images (one
annotation and one prediction each, 20 classes under 4 parents): the tree endpoint with its
label counts (p50/p95 of REQUESTS requests through Django's test client) and one merge of a
class (a twentieth of the labels) into another, timed end to end (relabel, predictions,
versions, agreement, history). Appends the table to bench/RESULTS.md.

    .venv/bin/python bench/bench_class_merge.py [--annotations 100000]

PostgreSQL at BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432); the database
vision_bench_class_merge is created and dropped.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.bench_reports import copy_rows, django_bench_database, percentile  # noqa: E402

DB_NAME = "vision_bench_class_merge"
REQUESTS = 10
CLASSES = 20
PARENTS = 4


def load(annotations: int, seed: int = 0):
    """The project, its classes (leaves under PARENTS parents) and the rows; returns
    (project, leaf ids, admin user)."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from core.models import Backend, ModelVersion, Project, TaskType
    from labeling.models import Membership, Role
    from labeling.services import label_class_create

    rng = np.random.default_rng(seed)
    admin = get_user_model().objects.create(username="admin")
    project = Project.objects.create(name="bench", task_type=TaskType.CLASSIFICATION)
    Membership.objects.create(project=project, user=admin, role=Role.ADMIN)
    parents = [label_class_create(project=project, name=f"group{p}") for p in range(PARENTS)]
    leaves = [label_class_create(project=project, name=f"class{c}", parent=parents[c % PARENTS]).pk
              for c in range(CLASSES)]
    version = ModelVersion.objects.create(project=project, number=1, backend=Backend.CLASSIFIER, class_ids=leaves)
    now = datetime.now(timezone.utc).isoformat()
    labels = rng.integers(0, CLASSES, size=annotations)
    with connection.cursor() as cursor:
        raw = cursor.connection.cursor()
        copy_rows(raw, "labeling_image",
                  ["project_id", "file", "display_file", "original_name", "sha256", "width", "height", "split",
                   "created_at"],
                  ((project.pk, f"projects/{project.pk}/images/{i}.jpg", "", f"{i}.jpg", f"{i:064x}", 64, 64,
                    "train", now) for i in range(annotations)))
        cursor.execute("SELECT min(id) FROM labeling_image WHERE project_id = %s", [project.pk])
        first = cursor.fetchone()[0]
        copy_rows(raw, "labeling_annotation",
                  ["project_id", "image_id", "author_id", "kind", "source", "state", "payload", "flag_reason",
                   "time_spent_ms", "review_status", "review_comment", "created_at"],
                  ((project.pk, first + i, admin.pk, "correct", "human", "submitted",
                    json.dumps({"labels": [leaves[c]]}), "", 0, "pending", "", now) for i, c in enumerate(labels)))
        probs = json.dumps([round(1 / CLASSES, 4)] * CLASSES)
        copy_rows(raw, "training_prediction", ["image_id", "model_version_id", "payload", "uncertainty", "created_at"],
                  ((first + i, version.pk, f'{{"labels": [{leaves[c]}], "probs": {probs}}}', 0.5, now)
                   for i, c in enumerate(labels)))
        cursor.execute("ANALYZE")
    return project, leaves, admin


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--annotations", type=int, default=100_000)
    args = parser.parse_args()

    with django_bench_database(DB_NAME):
        from django.test import Client

        from core.models import LabelClass
        from labeling.models import Annotation
        from labeling.taxonomy import label_class_merge

        t0 = time.perf_counter()
        project, leaves, admin = load(args.annotations)
        load_s = time.perf_counter() - t0
        client = Client()
        client.force_login(admin)
        url = f"/api/projects/{project.pk}/label-classes/tree/"
        assert client.get(url).status_code == 200  # warm-up
        tree_ms = []
        for _ in range(REQUESTS):
            t0 = time.perf_counter()
            response = client.get(url)
            tree_ms.append((time.perf_counter() - t0) * 1000)
        assert sum(n["labels"] for n in response.json()["classes"]) == args.annotations

        source, target = LabelClass.objects.get(pk=leaves[0]), LabelClass.objects.get(pk=leaves[1])
        moved_expected = Annotation.objects.filter(project=project, payload__contains={"labels": [source.pk]}).count()
        t0 = time.perf_counter()
        summary = label_class_merge(source=source, target=target, actor=admin)
        merge_s = time.perf_counter() - t0
        assert summary["annotations"] == summary["predictions"] == moved_expected

    table = "\n".join([
        "| operation | rows | p50 ms | p95 ms |", "|---|---:|---:|---:|",
        f"| GET label-classes/tree/ (counts over all annotations) | {args.annotations:,} annotations | "
        f"{statistics.median(tree_ms):.0f} | {percentile(tree_ms, 95):.0f} |",
        f"| merge one class into another (one transaction) | {moved_expected:,} annotations + "
        f"{moved_expected:,} predictions relabeled | {merge_s * 1000:.0f} (one run) | |",
    ])
    print(table)
    print(f"Loaded {args.annotations:,} annotations and predictions in {load_s:.0f} s.")
    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    command = " ".join([".venv/bin/python", "bench/bench_class_merge.py", *sys.argv[1:]])
    section = (f"\n## Class tree: tree counts and a merge ({datetime.now(timezone.utc):%Y-%m-%d})\n\n"
               f"Machine: 2-core AMD EPYC, shared ({cpu} CPUs visible, load {os.getloadavg()[0]:.1f}, "
               f"{platform.python_version()}). Command: `{command}`.\n\n{table}\n")
    with open(ROOT / "bench" / "RESULTS.md", "a") as results:
        results.write(section)


if __name__ == "__main__":
    main()
