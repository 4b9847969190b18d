"""Soak benchmark: annotators at work while a training run and a prelabel job run, with a
web worker killed and the broker restarted in the middle.

Creates a dedicated PostgreSQL database and a private Redis (its own port and folder, so no
other Redis is touched), imports synthetic 96x96 photos of boxes, labels a share of them,
trains a first tiny YOLOv8 in-process so a model is deployed, then starts granian (DEBUG
off), one Celery worker and the load: simulated annotators loop next -> think -> submit with
an Idempotency-Key and, like the editor, retry a failed submit with the same key. While they
work a long training run and the deploy's prelabel run are active on the worker. At a third
of the run one web worker is killed (SIGKILL); at 60% the broker is stopped for a few
seconds and started again. Afterwards the database is checked: every acknowledged submit
(200/201) must exist exactly once. Prints a table and appends it to bench/RESULTS.md; the
database and the private Redis are removed afterwards.

    DATABASE_URL unused; BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432 \
    .venv/bin/python bench/bench_soak.py --annotators 32 --seconds 600
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = os.environ.get("BENCH_SOAK_DB", "vision_bench_soak")
RETRIES = 8  # a submit is retried this often (0.5 s apart) with its key, as the editor's queue does


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _admin_sql(server_dsn: str, statement: str) -> None:
    import psycopg2

    connection = psycopg2.connect(f"{server_dsn}/postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(statement)
    connection.close()


def _start_redis(port: int, folder: Path) -> subprocess.Popen:
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                              "--appendonly", "yes", "--save", ""], stdout=subprocess.DEVNULL)
    for _ in range(100):
        if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout.strip() == "PONG":
            return redis
        time.sleep(0.1)
    raise RuntimeError("the private redis-server did not start")


def _fill(images: int, labeled: int, annotators: int) -> tuple[int, list[str]]:
    """Project, users and tokens, images (ingested like an upload), labels, and a first model
    trained and deployed in this process (its deploy queues the prelabel run)."""
    import io

    from django.contrib.auth import get_user_model
    from PIL import Image as PILImage
    from PIL import ImageDraw
    from rest_framework.authtoken.models import Token

    from core.models import Image
    from labeling.ingest import IngestBatch
    from labeling.models import Role
    from labeling.services import annotation_import_create, label_class_create, membership_set, project_create
    from training import services

    users = get_user_model().objects
    admin = users.create_user("soak-admin", is_staff=True)
    project = project_create(name="soak", task_type="detection", created_by=admin, train_epochs=1,
                             train_image_size=64, train_batch_size=8, min_map50=0.0, queue_model_every=0)
    box_class = label_class_create(project=project, name="box")
    rng = random.Random(0)
    batch = IngestBatch(project)
    boxes = {}
    for n in range(images):
        x, y = rng.randint(4, 50), rng.randint(4, 50)
        picture = PILImage.new("RGB", (96, 96), (rng.randint(0, 90), rng.randint(0, 90), rng.randint(0, 90)))
        ImageDraw.Draw(picture).rectangle([x, y, x + 36, y + 30], fill=(230, 200, 40))
        out = io.BytesIO()
        picture.save(out, "PNG")
        name = f"soak-{n:05d}.png"
        boxes[name] = {"x1": float(x), "y1": float(y), "x2": float(x + 36), "y2": float(y + 30), "label": box_class.pk}
        out.seek(0)
        batch.add(name=name, stream=out, size=len(out.getvalue()))
    batch.flush()
    for image in Image.objects.filter(project=project).order_by("pk")[:labeled]:
        annotation_import_create(image=image, payload={"boxes": [boxes[image.original_name]]}, author=admin)
    tokens = []
    for n in range(annotators):
        user = users.create_user(f"soak-ann{n:02d}")
        membership_set(project=project, user=user, role=Role.ANNOTATOR)
        tokens.append(Token.objects.create(user=user).key)
    first = services.training_run_start(project=project, requested_by=admin, enqueue=False)
    services.training_run_execute(run_id=first.pk)
    return project.pk, tokens


def _annotator(port: int, project_id: int, token: str, start_at: float, stop_at: float, think_s: float, seed: int):
    """One person: next -> think -> submit (retried with its key on a dropped connection or a
    5xx, as the editor does) -> think. Returns samples and the keys the server acknowledged."""
    rng = random.Random(seed)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    samples: list[tuple[str, float, str, float]] = []  # (op, ms, outcome, when: monotonic)
    acknowledged: list[str] = []
    unacknowledged: list[str] = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    time.sleep(max(0.0, start_at - time.monotonic()))

    def call(op: str, method: str, path: str, body: bytes | None = None, extra: dict | None = None):
        nonlocal connection
        began = time.perf_counter()
        try:
            connection.request(method, path, body=body, headers={**headers, **(extra or {})})
            response = connection.getresponse()
            data = response.read()
            outcome = str(response.status)
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            data, outcome = b"", f"connection: {type(exc).__name__}"
        samples.append((op, (time.perf_counter() - began) * 1000, outcome, time.monotonic()))
        return outcome, data

    while time.monotonic() < stop_at:
        outcome, data = call("next", "GET", f"/api/projects/{project_id}/tasks/next/")
        if outcome != "200":
            time.sleep(rng.uniform(0, 2 * think_s))
            continue
        work = json.loads(data)
        time.sleep(rng.uniform(0, 2 * think_s))
        body = json.dumps(_submission(work, rng)).encode()
        key = str(uuid.uuid4())
        stored = False
        for _attempt in range(RETRIES):
            outcome, data = call("submit", "POST", f"/api/tasks/{work['task']['id']}/annotations/", body,
                                 {"Idempotency-Key": key})
            # 409 with an annotation id: the task was taken over, the work kept as an extra opinion.
            stored = outcome in ("200", "201") or (outcome == "409" and b"annotation_id" in data)
            if stored or outcome.startswith("4"):
                break
            time.sleep(0.5)
        (acknowledged if stored else unacknowledged).append(key)
        time.sleep(rng.uniform(0, 2 * think_s))
    connection.close()
    return samples, acknowledged, unacknowledged


def _submission(work: dict, rng: random.Random) -> dict:
    """Half the pre-labels accepted as they are, the rest corrected (a box nudged); without
    a pre-label or with an empty one, a drawn box."""
    prediction = work["prediction"]
    boxes = [{k: box[k] for k in ("x1", "y1", "x2", "y2", "label")}
             for box in ((prediction or {}).get("payload") or {}).get("boxes", [])]
    if not boxes:
        label = work["label_classes"][0]["id"]
        return {"kind": "correct", "payload": {"boxes": [{"x1": 10, "y1": 10, "x2": 60, "y2": 50, "label": label}]},
                "prediction_id": prediction["id"] if prediction else None, "time_spent_ms": 1000}
    if rng.random() < 0.5:
        return {"kind": "accept", "prediction_id": prediction["id"], "time_spent_ms": 1000}
    width = work["image"]["width"]
    boxes[0] = {**boxes[0], "x1": min(boxes[0]["x1"] + 2, width - 2), "x2": min(boxes[0]["x2"] + 2, width)}
    return {"kind": "correct", "payload": {"boxes": boxes}, "prediction_id": prediction["id"], "time_spent_ms": 1000}


def _client_process(job):
    from concurrent.futures import ThreadPoolExecutor

    port, project_id, tokens, start_at, stop_at, think_s, seed = job
    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        futures = [pool.submit(_annotator, port, project_id, t, start_at, stop_at, think_s, seed + n)
                   for n, t in enumerate(tokens)]
        return [f.result() for f in futures]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--labeled", type=int, default=60)
    parser.add_argument("--think-ms", type=float, default=1000.0, help="mean pause after each request")
    parser.add_argument("--train-epochs", type=int, default=400, help="the long run that trains during the load")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--client-processes", type=int, default=4)
    parser.add_argument("--broker-down-s", type=float, default=5.0)
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()

    server_dsn = args.postgres.rstrip("/")
    var = Path(tempfile.mkdtemp(prefix="vision-soak-"))
    redis_port, web_port = _free_port(), _free_port()
    env = {**os.environ, "DATABASE_URL": f"{server_dsn}/{DB_NAME}", "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "DEBUG": "False", "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING", "VISION_VAR_DIR": str(var),
           "DJANGO_SETTINGS_MODULE": "vision_project.settings", "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false",
           "YOLO_CONFIG_DIR": str(var / "ultralytics")}
    env.pop("CELERY_BROKER_URL", None)
    os.environ.update(env)
    _admin_sql(server_dsn, f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    _admin_sql(server_dsn, f"CREATE DATABASE {DB_NAME}")
    (var / "redis").mkdir()
    redis = _start_redis(redis_port, var / "redis")
    children: list[subprocess.Popen] = []
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        from django.db import connections
        from django.db.models import Count

        from labeling.models import Annotation
        from training import services
        from training.models import PrelabelRun, TrainingRun

        started = time.monotonic()
        project_id, tokens = _fill(args.images, args.labeled, args.annotators)
        print(f"filled and trained the first model in {time.monotonic() - started:.0f} s", flush=True)
        from core.models import Project

        long_run = services.training_run_start(project=Project.objects.get(pk=project_id), epochs=args.train_epochs,
                                               image_size=64)
        # No early stop: the run is meant to keep the worker busy for the whole load.
        TrainingRun.objects.filter(pk=long_run.pk).update(params={**long_run.params, "patience": args.train_epochs})
        connections.close_all()
        worker_log = open(var / "worker.log", "w")  # training's progress bars, kept off the console
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "vision_project", "worker", "-Q", "default,gpu",
                                   "--concurrency", "2", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
                                  cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT)
        # The web server as docker/entrypoint.sh runs it (granian, failed workers respawned).
        web = subprocess.Popen([sys.executable, "-m", "granian", "--interface", "wsgi", "vision_project.wsgi:application",
                                "--host", "127.0.0.1", "--port", str(web_port), "--workers", str(args.web_workers),
                                "--blocking-threads", "4", "--respawn-failed-workers", "--log-level", "warning"],
                               cwd=ROOT, env=env)
        children += [worker, web]
        for _ in range(600):
            try:
                probe = http.client.HTTPConnection("127.0.0.1", web_port, timeout=2)
                probe.request("GET", "/healthz/")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        processes = max(1, min(args.client_processes, len(tokens)))
        start_at = time.monotonic() + 2.0
        stop_at = start_at + args.seconds
        began = datetime.now(timezone.utc) + timedelta(seconds=2)
        jobs = [(web_port, project_id, tokens[i::processes], start_at, stop_at, args.think_ms / 1000, 1000 * i)
                for i in range(processes)]
        events = []
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            pending = pool.map_async(_client_process, jobs)
            time.sleep(max(0.0, start_at + args.seconds / 3 - time.monotonic()))
            killed = int(subprocess.run(["pgrep", "-P", str(web.pid)], capture_output=True, text=True).stdout.split()[0])
            os.kill(killed, signal.SIGKILL)
            events.append(f"{time.monotonic() - start_at:.0f} s: web worker {killed} killed (SIGKILL)")
            time.sleep(max(0.0, start_at + 0.6 * args.seconds - time.monotonic()))
            redis.terminate()
            redis.wait(timeout=30)
            broker_down = [time.monotonic()]
            events.append(f"{time.monotonic() - start_at:.0f} s: broker stopped")
            time.sleep(args.broker_down_s)
            redis = _start_redis(redis_port, var / "redis")
            broker_down.append(time.monotonic())
            events.append(f"{time.monotonic() - start_at:.0f} s: broker started again")
            results = [r for group in pending.get() for r in group]
        samples = [s for r in results for s in r[0]]
        acknowledged = [k for r in results for k in r[1]]
        unacknowledged = [k for r in results for k in r[2]]

        counts = dict(Annotation.objects.filter(idempotency_key__in=acknowledged + unacknowledged)
                      .values_list("idempotency_key").annotate(n=Count("id")))
        missing = sum(1 for k in acknowledged if counts.get(k, 0) == 0)
        doubled = sum(1 for k in acknowledged + unacknowledged if counts.get(k, 0) > 1)
        landed_unacknowledged = sum(1 for k in unacknowledged if counts.get(k, 0) == 1)
        runs = {"training": [TrainingRun.objects.get(pk=long_run.pk)],
                "prelabel": list(PrelabelRun.objects.filter(project_id=project_id).order_by("pk"))}
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        redis.terminate()
        redis.wait(timeout=30)
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # django never set up: nothing open
            pass
        _admin_sql(server_dsn, f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        shutil.rmtree(var, ignore_errors=True)

    table = _report(args, samples, acknowledged, unacknowledged, missing, doubled, landed_unacknowledged, runs,
                    events, began, broker_down)
    print(table)
    if not args.no_record:
        command = " ".join([".venv/bin/python", "bench/bench_soak.py", *sys.argv[1:]])
        date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        with open(ROOT / "bench" / "RESULTS.md", "a") as out:
            out.write(f"\n## Soak: {args.annotators} annotators, training and prelabel active, a web worker killed "
                      f"and the broker restarted\n\n- machine: 2-core AMD EPYC, shared\n- date: {date}\n"
                      f"- command: `{command}`\n\n{table}\n")


def _report(args, samples, acknowledged, unacknowledged, missing, doubled, landed_unacknowledged, runs, events,
            began: datetime, broker_down: list[float]) -> str:
    def span(runs) -> str:
        parts = []
        for run in runs:
            started = run.started_at.strftime("%H:%M:%S") if run.started_at else "-"
            ended = run.finished_at.strftime("%H:%M:%S") if run.finished_at else "still running at the end"
            parts.append(f"{run.status} ({started} to {ended})")
        return ", ".join(parts) or "none"

    lines = ["| op | requests | per s | p50 ms | p99 ms | 2xx | 4xx | 5xx | dropped connections |",
             "|---|---|---|---|---|---|---|---|---|"]
    for op in ("next", "submit"):
        rows = [s for s in samples if s[0] == op]
        ms = [s[1] for s in rows if s[2].startswith("2")]
        kinds = [s[2] for s in rows]
        lines.append(f"| {op} | {len(rows)} | {len(rows) / args.seconds:.1f} | {_percentile(ms, 50):.0f} | "
                     f"{_percentile(ms, 99):.0f} | {sum(k.startswith('2') for k in kinds)} | "
                     f"{sum(k.startswith('4') for k in kinds)} | {sum(k.startswith('5') for k in kinds)} | "
                     f"{sum(k.startswith('connection') for k in kinds)} |")
    lines += [
        "",
        f"- submits acknowledged (200/201, or 409 kept as an extra opinion): {len(acknowledged)} ({len(acknowledged) / args.seconds:.1f}/s); "
        f"in the database exactly once: {len(acknowledged) - missing}, missing: {missing}, "
        f"stored twice (any key): {doubled}",
        f"- submits never acknowledged after {RETRIES} tries: {len(unacknowledged)} "
        f"(of which stored once anyway: {landed_unacknowledged})",
        f"- load: {args.annotators} annotators, think {args.think_ms:g} ms mean, {args.seconds:g} s; "
        f"{args.images} images, {args.labeled} labeled; granian {args.web_workers} workers x 4 threads",
        f"- long training run ({args.train_epochs} epochs, imgsz 64): {span(runs['training'])}",
        f"- prelabel runs (the first model's deploy, then the long run's if it deployed): {span(runs['prelabel'])}",
        f"- next answered 204 (nothing left to label): {sum(1 for s in samples if s[0] == 'next' and s[2] == '204')}",
        f"- load from {began:%H:%M:%S} UTC for {args.seconds:g} s; events (from the start): " + "; ".join(events),
    ]
    errors = [s for s in samples if s[2].startswith("5")]
    while_down = [s for s in errors if broker_down[0] - 1 <= s[3] <= broker_down[1] + 2]
    lines.append(f"- 5xx answers: {len(errors)}, of which {len(while_down)} while the broker was down "
                 f"(its {broker_down[1] - broker_down[0]:.0f} s and 2 s after)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
