"""Benchmark: the image browser's API on a project with 100k images.

Loads synthetic rows with COPY into a dedicated PostgreSQL database (dropped at the end;
image files need not exist): images, a deployed model's prediction per image, labels for
60% of them (corrections, second opinions, pending and rejected reviews, flags), then asks
GET /api/projects/{id}/images/browse/ through Django's test client for a first page with
each filter and for a page deep in the project, one warm-up then REQUESTS timed requests,
and prints p50/p95 with the queries each request made.

    .venv/bin/python bench/bench_browser.py [--images 100000]

PostgreSQL at BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432); the database
is vision_bench_browser.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "vision_bench_browser"
REQUESTS = 10

from bench_reports import copy_rows, django_bench_database  # noqa: E402


def load(images: int) -> tuple[int, int, int]:
    """The project, its lead and a class id."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from core.models import Backend, LabelClass, ModelVersion, Project, TaskType
    from labeling.models import Membership, Role

    users = get_user_model()
    lead = users.objects.create(username="lead")
    annotators = [users.objects.create(username=f"annotator{i}") for i in range(10)]
    project = Project.objects.create(name="bench", task_type=TaskType.CLASSIFICATION)
    Membership.objects.create(project=project, user=lead, role=Role.LEAD)
    classes = [LabelClass.objects.create(project=project, name=f"class{i}").pk for i in range(5)]
    version = ModelVersion.objects.create(project=project, number=1, backend=Backend.CLASSIFIER, class_ids=classes,
                                          is_deployed=True, status="deployed")
    now = "2026-12-01T00:00:00+00:00"
    with connection.cursor() as cursor:
        raw = cursor.connection.cursor()
        copy_rows(raw, "labeling_image",
                  ["project_id", "file", "display_file", "original_name", "sha256", "width", "height", "split",
                   "created_at"],
                  ((project.pk, f"projects/{project.pk}/images/{i}.jpg", "", f"photo-{i:06}.jpg", f"{i:064x}",
                    640, 480, "validation" if i % 5 == 0 else "train", now) for i in range(images)))
        cursor.execute("SELECT min(id) FROM labeling_image WHERE project_id = %s", [project.pk])
        first = cursor.fetchone()[0]
        copy_rows(raw, "training_prediction", ["image_id", "model_version_id", "payload", "uncertainty", "created_at"],
                  ((first + i, version.pk, json.dumps({"labels": [classes[i % 5]]}), (i * 7919 % 1000) / 1000, now)
                   for i in range(images)))
        rows = []
        for i in range(0, images * 6 // 10):
            author = annotators[i % 10].pk
            kind = "correct" if i % 7 == 0 else "flag" if i % 97 == 0 else "accept"
            review = "rejected" if i % 31 == 0 else "accepted" if i % 3 == 0 else "pending"
            payload = "{}" if kind == "flag" else json.dumps({"labels": [classes[(i + (kind == "correct")) % 5]]})
            rows.append((project.pk, first + i, author, kind, "human", "submitted", payload, "", 1000, review, "",
                         now))
            if i % 10 == 0:  # a second opinion, disagreeing every other time
                rows.append((project.pk, first + i, annotators[(i + 1) % 10].pk, "accept", "human", "submitted",
                             json.dumps({"labels": [classes[(i + (i % 20 == 0)) % 5]]}), "", 1000, "pending", "", now))
        copy_rows(raw, "labeling_annotation",
                  ["project_id", "image_id", "author_id", "kind", "source", "state", "payload", "flag_reason",
                   "time_spent_ms", "review_status", "review_comment", "created_at"], rows)
        cursor.execute("ANALYZE")
    return project.pk, lead.pk, classes[2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    with django_bench_database(DB_NAME, keep=args.keep):
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        t0 = time.perf_counter()
        project_id, lead_id, class_id = load(args.images)
        print(f"loaded {args.images} images in {time.perf_counter() - t0:.0f} s")
        client = Client()
        client.force_login(get_user_model().objects.get(pk=lead_id))
        url = f"/api/projects/{project_id}/images/browse/"
        from core.models import Image

        deep = Image.objects.filter(project_id=project_id).order_by("pk").values_list("pk", flat=True)[
            args.images * 9 // 10]
        cases = {
            "first page": {}, "deep page (after 90%)": {"after": deep}, "name search": {"q": "photo-0999"},
            "class": {"label": class_id}, "annotator": {"annotator": "annotator3"},
            "status unlabeled": {"status": "unlabeled"}, "status flagged": {"status": "flagged"},
            "split validation": {"split": "validation"}, "uncertainty >= 0.9": {"uncertainty_min": 0.9},
            "disagreement": {"disagreement": 1},
            "annotator + class + pending": {"annotator": "annotator3", "label": class_id, "status": "pending"},
        }
        print(f"| filter ({args.images} images, 60 a page) | p50 ms | p95 ms | queries |")
        print("|---|---|---|---|")
        for name, params in cases.items():
            assert client.get(url, params).status_code == 200
            times = []
            for _ in range(REQUESTS):
                with CaptureQueriesContext(connection) as queries:
                    t0 = time.perf_counter()
                    response = client.get(url, params)
                    times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200
            times.sort()
            p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
            print(f"| {name} | {statistics.median(times):.0f} | {p95:.0f} | {len(queries)} |", flush=True)


if __name__ == "__main__":
    main()
