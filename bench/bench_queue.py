"""Queue benchmark: next-task and submit latency with many tasks and concurrent annotators.

Fills a dedicated PostgreSQL database with one project of N open tasks (random
priorities; image rows with fake file names, the queue never reads the files), a deployed
model with a pre-label per image, and a history of done work per annotator; starts the
real server (granian or gunicorn, DEBUG off) on 127.0.0.1, and drives simulated annotators
from separate processes over HTTP keep-alive connections for a bounded time. Each
annotator loops: GET next -> think -> POST annotation (Idempotency-Key: the pre-label
accepted or corrected) -> think.

Prints p50/p95/p99 latency of next and submit, throughput over the measured window (first
measured request to the last answer), errors (a refused connection or a timeout is counted,
the annotator reconnects and goes on), server and database CPU per completed task, and
duplicates (a task served to two annotators, or completed twice), plus EXPLAIN ANALYZE of
the claim; appends the tables to bench/RESULTS.md. The database is dropped afterwards
(unless --keep-db).

`--annotators 8,32` runs one load after the other against the same server and queue; with
no think time each load is set against Label Studio 1.23.2 measured on this box on the
matched load (100,000 tasks, 8 annotators, no think time): 2.4-3.2 annotations/s, next p99
2.6-4.1 s.

    .venv/bin/python bench/bench_queue.py --tasks 100000 --annotators 8,32 --think-ms 0 --seconds 30
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
PRELABELS_EACH = ("a deployed model with a pre-label (2 boxes, 1 KiB embedding) per image, half accepted and "
                  "half corrected")
PRELABELS_NONE = "no pre-labels"
# Overridable so a smoke run (tests/bench) never meets a real run.
DB_NAME = os.environ.get("BENCH_QUEUE_DB", "vision_bench_queue")
PORT = int(os.environ.get("BENCH_QUEUE_PORT", "8765"))
# Label Studio 1.23.2 on this box, matched load (issue 20): annotations/s and next p99 in ms.
LABEL_STUDIO_THROUGHPUT = (2.4, 3.2)
LABEL_STUDIO_NEXT_P99_MS = (2600.0, 4100.0)
ERROR = 0  # the status recorded for a request that got no HTTP answer


def main() -> None:
    args = _parse_args()
    server_dsn = args.postgres.rstrip("/")
    env = {
        **os.environ,
        "DATABASE_URL": f"{server_dsn}/{DB_NAME}",
        "DEBUG": "False",
        "ALLOWED_HOSTS": "127.0.0.1",
        "CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "vision_project.settings",
        "VISION_VAR_DIR": str(ROOT / "var" / "bench-queue"),
    }
    env.pop("REDIS_URL", None)
    _recreate_database(server_dsn)
    server = None
    try:
        print(f"migrating {DB_NAME} ...", flush=True)
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                       check=True)
        started = time.monotonic()
        project_id, tokens = _fill(f"{server_dsn}/{DB_NAME}", env, args.tasks, max(args.annotators),
                                   args.history, not args.no_prelabels)
        print(f"filled {args.tasks:,} tasks in {time.monotonic() - started:.0f} s", flush=True)
        access_log = Path(env["VISION_VAR_DIR"]) / "bench-queue-access.log"
        access_log.parent.mkdir(parents=True, exist_ok=True)
        access_log.unlink(missing_ok=True)
        server = _start_server(env, args.server, args.workers, args.threads, access_log)
        tables, summaries = [], []
        for annotators in args.annotators:
            log_from = access_log.stat().st_size
            cpu_before = _cpu_seconds(server.pid)
            load_before = os.getloadavg()[0]
            run = _drive(project_id, tokens[:annotators], args)
            load_after = os.getloadavg()[0]
            cpu = [after - before for after, before in zip(_cpu_seconds(server.pid), cpu_before)]
            server_log = _server_times(access_log, log_from, ACCESS_LOG_FORMATS[args.server][1])
            completed_twice = _completed_twice(f"{server_dsn}/{DB_NAME}")
            table, summary = _report(args, annotators, run, completed_twice, server_log, cpu,
                                     (load_before, load_after))
            print(table, flush=True)
            tables.append(table)
            summaries.append(summary)
        explain = _explain_claim(env, project_id)
        comparison = _comparison(args, summaries)
        print(comparison + "\n\nClaim query plan (EXPLAIN ANALYZE, after the runs):\n\n" + explain)
        _append_results(tables, comparison, explain, args)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        if not args.keep_db:
            _drop_database(server_dsn)


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--annotators", type=_counts, default=[32],
                        help="concurrent annotators; a comma-separated list runs one load after the other")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured time, after the warm-up")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load not counted")
    parser.add_argument("--history", type=int, default=1000,
                        help="tasks each annotator completed before the run (the claim skips their images)")
    parser.add_argument("--no-prelabels", action="store_true",
                        help="no pre-labels: next-task serves none, annotators draw boxes")
    # A person looks at an image for seconds before submitting; 1 s after every request
    # is a fast team (32 annotators finishing 16 tasks/s together).
    parser.add_argument("--think-ms", type=float, default=1000.0,
                        help="mean pause after each request (uniform 0..2x); 0 = closed loop at full speed")
    parser.add_argument("--client-processes", type=int, default=4)
    # The defaults of docker/entrypoint.sh.
    parser.add_argument("--server", choices=sorted(ACCESS_LOG_FORMATS), default="granian",
                        help="granian's WSGI server (HTTP in Rust; the entrypoint's) or gunicorn gthread")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                        help="server worker processes (default: the CPUs, as docker/entrypoint.sh)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker running the application")
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    return parser.parse_args()


def _counts(raw: str) -> list[int]:
    try:
        counts = [int(part) for part in raw.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected annotator counts like 8,32; got {raw!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"annotator counts must be positive; got {raw!r}")
    return counts


# --- database -------------------------------------------------------------------------


def _admin(server_dsn: str):
    connection = psycopg2.connect(f"{server_dsn}/postgres")
    connection.autocommit = True
    return connection


def _recreate_database(server_dsn: str) -> None:
    _drop_database(server_dsn)
    connection = _admin(server_dsn)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {DB_NAME}")
    connection.close()


def _drop_database(server_dsn: str) -> None:
    connection = _admin(server_dsn)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    connection.close()


def _fill(dsn: str, env: dict, n_tasks: int, n_annotators: int, history: int,
          prelabels: bool) -> tuple[int, list[str]]:
    """One detection project with two classes and n_annotators users with API tokens
    (through the ORM), then n_tasks images each with one open task (set-based SQL: a
    million rows in seconds), of which n_annotators * history are already done, each by
    one annotator: every claim has to pass over the caller's past work. With `prelabels`,
    a deployed model version has a pre-label for every image."""
    script = (
        "import json, django; django.setup()\n"
        "from django.contrib.auth import get_user_model\n"
        "from rest_framework.authtoken.models import Token\n"
        "from labeling.models import Project, Role\n"
        "from labeling.services import label_class_create, membership_set\n"
        "project = Project.objects.create(name='queue benchmark', task_type='detection')\n"
        "classes = [label_class_create(project=project, name=name).pk for name in ('car', 'tree')]\n"
        "from training.models import ModelVersion\n"
        "ModelVersion.objects.create(project=project, number=1, backend='yolo', class_ids=classes,\n"
        "                            status='deployed', is_deployed=True)\n"
        "tokens = []\n"
        f"for n in range({n_annotators}):\n"
        "    user = get_user_model().objects.create(username=f'bench{n}')\n"
        "    membership_set(project=project, user=user, role=Role.ANNOTATOR)\n"
        "    tokens.append(Token.objects.create(user=user).key)\n"
        "print(json.dumps({'project': project.pk, 'tokens': tokens}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            check=True)
    created = json.loads(result.stdout.strip().splitlines()[-1])
    project_id, tokens = created["project"], created["tokens"]
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    with connection.cursor() as cursor:
        # Bulk load as a restore would: foreign-key triggers off, secondary indexes built
        # once afterwards (the unique constraints stay on).
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET maintenance_work_mem = '256MB'")
        cursor.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid IN ('labeling_image'::regclass, 'labeling_task'::regclass) AND NOT i.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)")
        secondary = cursor.fetchall()
        for name, _ in secondary:
            cursor.execute(f"DROP INDEX {name}")
        # Validation images get the same random priorities as the rest: they are
        # interleaved in the queue and never ranked by uncertainty.
        cursor.execute(
            "INSERT INTO labeling_image (project_id, file, display_file, original_name, sha256, width, height, "
            "split, created_at) SELECT %s, 'projects/' || %s || '/images/' || g || '.jpg', '', g || '.jpg', "
            "md5(g::text) || md5((g + 1)::text), 640, 480, "
            "CASE WHEN random() < 0.2 THEN 'validation' ELSE 'train' END, now() "
            "FROM generate_series(1, %s) AS g", (project_id, project_id, n_tasks))
        cursor.execute(
            "INSERT INTO labeling_task (project_id, image_id, slot, status, priority, is_random_pick, created_at) "
            "SELECT project_id, id, 0, 'open', random(), false, now() FROM labeling_image WHERE project_id = %s",
            (project_id,))
        cursor.execute(
            "WITH authors AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM auth_user "
            "                 WHERE username LIKE 'bench%%'), "
            "     done AS (SELECT id, image_id, row_number() OVER (ORDER BY id) - 1 AS k FROM labeling_task "
            "              WHERE project_id = %s ORDER BY id LIMIT %s), "
            "     annotated AS (INSERT INTO labeling_annotation (project_id, image_id, task_id, author_id, kind, "
            "         source, state, payload, flag_reason, time_spent_ms, review_status, review_comment, created_at) "
            "       SELECT %s, done.image_id, done.id, authors.id, 'correct', 'human', 'submitted', "
            "         '{\"boxes\": []}', '', 1000, 'pending', '', now() - interval '1 day' "
            "       FROM done JOIN authors ON authors.n = done.k %% %s RETURNING task_id, author_id) "
            "UPDATE labeling_task t SET status = 'done', completed_by_id = annotated.author_id, "
            "  completed_at = now() - interval '1 day' FROM annotated WHERE t.id = annotated.task_id",
            (project_id, n_annotators * history, project_id, n_annotators))
        if prelabels:
            # The deployed model's pre-label of every image: two boxes with their class
            # scores, and a 256-float (1 KiB) embedding.
            cursor.execute(
                "INSERT INTO training_prediction (image_id, model_version_id, payload, uncertainty, embedding, "
                "created_at) SELECT t.image_id, v.id, json_build_object('boxes', json_build_array("
                "  json_build_object('x1', 40, 'y1', 60, 'x2', 200, 'y2', 220, 'label', v.class_ids->0, "
                "                    'score', 0.8, 'probs', json_build_array(0.8, 0.1)), "
                "  json_build_object('x1', 300, 'y1', 100, 'x2', 420, 'y2', 380, 'label', v.class_ids->1, "
                "                    'score', 0.4, 'probs', json_build_array(0.3, 0.4))))::jsonb, "
                "  t.priority, decode(repeat('0000803f', 256), 'hex'), now() "
                "FROM labeling_task t JOIN training_modelversion v ON v.project_id = t.project_id "
                "WHERE t.project_id = %s", (project_id,))
        for _, definition in secondary:
            cursor.execute(definition)
        cursor.execute("SET session_replication_role = DEFAULT")
        for table in ("labeling_image", "labeling_task", "labeling_annotation", "training_prediction"):
            cursor.execute(f"VACUUM ANALYZE {table}")
        # Write the fill out now: a checkpoint of it during the run would measure the disk.
        cursor.execute("CHECKPOINT")
    connection.close()
    return project_id, tokens


def _completed_twice(dsn: str) -> int:
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT task_id FROM labeling_annotation WHERE state = 'submitted' "
            "GROUP BY task_id HAVING count(*) > 1) AS twice")
        return cursor.fetchone()[0]


def _explain_claim(env: dict, project_id: int) -> str:
    """EXPLAIN ANALYZE of the claim query as the server runs it, for a fresh annotator."""
    script = (
        "import datetime, django; django.setup()\n"
        "from django.db import connection, transaction\n"
        "from django.utils import timezone\n"
        "from django.contrib.auth import get_user_model\n"
        "from labeling.models import Project\n"
        "from labeling.queue.services import claim_statement\n"
        f"project = Project.objects.get(pk={project_id})\n"
        "user = get_user_model().objects.get(username='bench0')\n"
        "now = timezone.now()\n"
        "sql, params = claim_statement(project=project, user=user, exclude=[], now=now,\n"
        "                              expires=now + datetime.timedelta(seconds=600))\n"
        "with transaction.atomic(), connection.cursor() as cursor:\n"
        "    cursor.execute('EXPLAIN (ANALYZE, BUFFERS) ' + sql, params)\n"
        "    print('\\n'.join(row[0] for row in cursor.fetchall()))\n"
        "    transaction.set_rollback(True)\n"
        "from labeling.models import Task\n"
        "print('\\nOwn live leases (read with every claim):')\n"
        "print(Task.objects.filter(project=project, lease_holder=user, status='open', lease_expires_at__gt=now)"
        ".explain(analyze=True))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            env=env)
    return (result.stdout or result.stderr).strip()


# --- server ---------------------------------------------------------------------------


# The access log records each request's time inside the server (gunicorn %(L)s in seconds,
# granian %(dt_ms)s in milliseconds), to tell server work from waiting for a CPU or a connection.
ACCESS_LOG_FORMATS = {"gunicorn": ("%(m)s %(U)s %(s)s %(L)s", 1000.0),
                      "granian": ("%(method)s %(path)s %(status)d %(dt_ms).3f", 1.0)}
SERVER_NAMES = {"gunicorn": "gunicorn gthread", "granian": "granian WSGI"}


def _start_server(env: dict, kind: str, workers: int, threads: int, access_log: Path) -> subprocess.Popen:
    log_format = ACCESS_LOG_FORMATS[kind][0]
    if kind == "gunicorn":
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "vision_project.wsgi:application",
             "--bind", f"127.0.0.1:{PORT}", "--workers", str(workers), "--threads", str(threads),
             "--worker-class", "gthread", "--keep-alive", "75", "--log-level", "warning",
             "--access-logfile", str(access_log), "--access-logformat", log_format],
            cwd=ROOT, env=env,
        )
    else:
        # granian writes its access log to stdout: into the log file, other lines skipped on reading
        with access_log.open("a") as log:
            server = subprocess.Popen(
                [str(Path(sys.executable).parent / "granian"), "--interface", "wsgi",
                 "vision_project.wsgi:application", "--host", "127.0.0.1", "--port", str(PORT),
                 "--workers", str(workers), "--blocking-threads", str(threads), "--log-level", "warning",
                 "--access-log", "--access-log-fmt", log_format],
                cwd=ROOT, env=env, stdout=log,
            )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=2)
            connection.request("GET", "/healthz/")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.3)
    server.terminate()
    raise RuntimeError(f"{kind} did not answer /healthz/ within 60 s")


# --- load -----------------------------------------------------------------------------


def _annotator(project_id: int, token: str, start_at: float, measure_from: float, stop_at: float,
               think_s: float, seed: int):
    rng = random.Random(seed)
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    samples: list[tuple[str, float, int, float, float]] = []  # (op, ms, status, began at, answered at)
    served: list[int] = []
    time.sleep(max(0.0, start_at - time.monotonic()))

    def call(op: str, method: str, path: str, body: bytes | None = None, extra: dict | None = None):
        """(status, body); a request without an HTTP answer (refused, reset, timed out) is
        recorded with status ERROR and the connection opened afresh."""
        nonlocal connection
        began_at = time.monotonic()
        began = time.perf_counter()
        try:
            connection.request(method, path, body=body, headers={**headers, **(extra or {})})
            response = connection.getresponse()
            status, data = response.status, response.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
            status, data = ERROR, b""
        samples.append((op, (time.perf_counter() - began) * 1000, status, began_at, time.monotonic()))
        return status, data

    def pause():
        if think_s:
            time.sleep(rng.uniform(0, 2 * think_s))

    while time.monotonic() < stop_at:
        status, data = call("next", "GET", f"/api/projects/{project_id}/tasks/next/")
        if status != 200:
            # Nothing left (204), refused or no answer: back off rather than spin.
            time.sleep(rng.uniform(0, 2 * think_s) if think_s else 0.05)
            continue
        work = json.loads(data)
        task_id = work["task"]["id"]
        if time.monotonic() >= measure_from:
            served.append(task_id)
        pause()
        body = json.dumps(_submission(work, rng)).encode()
        call("submit", "POST", f"/api/tasks/{task_id}/annotations/", body,
             {"Idempotency-Key": str(uuid.uuid4())})
        pause()
    connection.close()
    # Measured: requests begun in the window (the last ones may be answered after it ends).
    return [s for s in samples if s[3] >= measure_from], served


def _submission(work: dict, rng: random.Random) -> dict:
    """What a person sends back: half the pre-labels accepted as they are, the other half
    corrected (a box nudged, sometimes one deleted); without a pre-label, a drawn box."""
    prediction = work["prediction"]
    if prediction is None:
        label = work["label_classes"][0]["id"]
        return {"kind": "correct", "payload": {"boxes": [{"x1": 10, "y1": 10, "x2": 90, "y2": 70, "label": label}]},
                "time_spent_ms": 1000}
    if rng.random() < 0.5:
        return {"kind": "accept", "prediction_id": prediction["id"], "time_spent_ms": 1000}
    boxes = [{k: box[k] for k in ("x1", "y1", "x2", "y2", "label")} for box in prediction["payload"]["boxes"]]
    boxes[0] = {**boxes[0], "x1": boxes[0]["x1"] + 5, "x2": boxes[0]["x2"] + 5}
    if rng.random() < 0.5:
        boxes.pop()
    return {"kind": "correct", "payload": {"boxes": boxes}, "prediction_id": prediction["id"], "time_spent_ms": 1000}


def _client_process(job):
    from concurrent.futures import ThreadPoolExecutor

    project_id, tokens, start_at, measure_from, stop_at, think_s, seed = job
    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        futures = [pool.submit(_annotator, project_id, token, start_at, measure_from, stop_at, think_s, seed + n)
                   for n, token in enumerate(tokens)]
        results = [f.result() for f in futures]
    return [s for r in results for s in r[0]], [(token, task) for token, r in zip(tokens, results) for task in r[1]]


def _drive(project_id: int, tokens: list[str], args) -> dict:
    processes = max(1, min(args.client_processes, len(tokens)))
    groups = [tokens[i::processes] for i in range(processes)]
    start_at = time.monotonic() + 2.0
    measure_from = start_at + args.warmup
    stop_at = measure_from + args.seconds
    jobs = [(project_id, group, start_at, measure_from, stop_at, args.think_ms / 1000, 1000 * i)
            for i, group in enumerate(groups)]
    print(f"driving {len(tokens)} annotators from {processes} processes for {args.warmup:g}+{args.seconds:g} s",
          flush=True)
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        results = pool.map(_client_process, jobs)
    samples = [s for r in results for s in r[0]]
    served = [pair for r in results for pair in r[1]]
    # CLOCK_MONOTONIC is one clock for all processes of the box.
    window = max((s[4] for s in samples), default=stop_at) - measure_from
    return {"samples": samples, "served": served, "window_s": window}


# --- server and database CPU ------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (its reaped children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _cpu_seconds(server_pid: int) -> tuple[float, float]:
    """(the server's main process and workers, PostgreSQL backends connected to the bench database)
    CPU seconds so far. Workers and backends live through the run (CONN_MAX_AGE), so a
    difference of two readings is the CPU spent between them."""
    server = database = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if int(entry.name) == server_pid or ppid == server_pid:
                server += _process_cpu(int(entry.name))
            elif command.startswith("postgres: ") and f" {DB_NAME} " in command:
                database += _process_cpu(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # exited while being read
    return server, database


# --- report ---------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def _server_times(access_log: Path, offset: int, to_ms: float) -> tuple[dict[str, list[float]], int]:
    """Milliseconds spent inside the server per operation, and the tasks completed (201),
    from the access log written since `offset`. The warm-up is included: the log has no
    client clock to cut it at."""
    times: dict[str, list[float]] = {"next": [], "submit": []}
    completed = 0
    with access_log.open() as log:
        log.seek(offset)
        for line in log.read().splitlines():
            fields = line.split()
            if len(fields) != 4 or fields[0] not in ("GET", "POST"):
                continue  # a server's own message
            method, path, status, duration = fields
            op = "next" if path.endswith("/tasks/next/") else "submit" if path.endswith("/annotations/") else None
            if op:
                times[op].append(float(duration) * to_ms)
            completed += op == "submit" and status == "201"
    return times, completed


def _report(args, annotators: int, run: dict, completed_twice: int, server_log: tuple, cpu: list[float],
            load: tuple) -> tuple[str, dict]:
    samples, window = run["samples"], run["window_s"]
    server_ms, completed_in_load = server_log
    holders: dict[int, set[str]] = {}
    for token, task_id in run["served"]:
        holders.setdefault(task_id, set()).add(token)
    served_twice = sum(1 for tokens in holders.values() if len(tokens) > 1)
    lines = [
        f"### {annotators} annotators",
        "",
        "| op | requests | per s | p50 ms | p95 ms | p99 ms | max ms | statuses |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    p99 = {}
    for op in ("next", "submit"):
        rows = [s for s in samples if s[0] == op]
        times = [s[1] for s in rows]
        p99[op] = _percentile(times, 99)
        statuses = Counter("error" if s[2] == ERROR else s[2] for s in rows)
        lines.append(
            f"| {op} | {len(rows):,} | {len(rows) / window:.1f} | {_percentile(times, 50):.1f} | "
            f"{_percentile(times, 95):.1f} | {p99[op]:.1f} | {max(times, default=float('nan')):.1f} | "
            f"{', '.join(f'{k}: {v}' for k, v in sorted(statuses.items(), key=str))} |"
        )
    submitted = sum(1 for s in samples if s[0] == "submit" and s[2] == 201)
    errors = sum(1 for s in samples if s[2] == ERROR or s[2] >= 500)
    lines += ["", f"Time inside the server ({args.server} access log, warm-up included):", "",
              "| op | p50 ms | p95 ms | p99 ms |", "|---|---:|---:|---:|"]
    for op, times in server_ms.items():
        lines.append(f"| {op} | {_percentile(times, 50):.1f} | {_percentile(times, 95):.1f} | "
                     f"{_percentile(times, 99):.1f} |")
    # CPU is read around the whole load, warm-up included: divided by every task it completed.
    server_cpu_ms, database_cpu_ms = (1000 * c / max(1, completed_in_load) for c in cpu)
    throughput = submitted / window
    lines += [
        "",
        f"- tasks in the queue: {args.tasks:,}, of which {max(args.annotators) * args.history:,} done before the "
        f"runs ({args.history:,} per annotator); "
        f"{PRELABELS_NONE if args.no_prelabels else PRELABELS_EACH}; "
        f"annotators: {annotators}; measured {window:.1f} s (requests begun in the {args.seconds:g} s after "
        f"{args.warmup:g} s warm-up, to the last answer); think time {args.think_ms:g} ms mean (uniform 0..2x) "
        "after each request",
        f"- server: {SERVER_NAMES[args.server]}, {args.workers} workers x {args.threads} threads, DEBUG off, PostgreSQL, "
        f"loopback HTTP keep-alive; clients: {args.client_processes} processes",
        f"- throughput: {throughput:.1f} completed tasks/s; errors (no answer or 5xx): {errors}",
        f"- CPU per completed task (next + submit, warm-up included): server {server_cpu_ms:.1f} ms, "
        f"PostgreSQL {database_cpu_ms:.1f} ms, together {server_cpu_ms + database_cpu_ms:.1f} ms",
        f"- machine load (1-minute load average, all users of the box): {load[0]:.1f} before the run, "
        f"{load[1]:.1f} after",
        f"- duplicates: {served_twice} tasks served to two annotators, {completed_twice} tasks completed twice",
    ]
    summary = {"annotators": annotators, "throughput": throughput, "next_p99": p99["next"],
               "submit_p99": p99["submit"], "errors": errors, "cpu_ms": server_cpu_ms + database_cpu_ms}
    return "\n".join(lines), summary


def _comparison(args, summaries: list[dict]) -> str:
    """Each load against Label Studio's matched-load figures (meaningful without think time:
    Label Studio was measured with none)."""
    low, high = LABEL_STUDIO_THROUGHPUT
    p99_low, p99_high = LABEL_STUDIO_NEXT_P99_MS
    lines = [
        "### Against Label Studio 1.23.2 (matched load on this box: "
        f"{low:g}-{high:g} annotations/s, next p99 {p99_low / 1000:g}-{p99_high / 1000:g} s)",
        "",
        "| annotators | annotations/s | x Label Studio throughput | next p99 ms | Label Studio next p99 / ours "
        "| submit p99 ms | CPU ms per annotation | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        lines.append(
            f"| {s['annotators']} | {s['throughput']:.1f} | {s['throughput'] / high:.1f}-{s['throughput'] / low:.1f} "
            f"| {s['next_p99']:.1f} | {p99_low / s['next_p99']:.0f}-{p99_high / s['next_p99']:.0f} "
            f"| {s['submit_p99']:.1f} | {s['cpu_ms']:.1f} | {s['errors']} |"
        )
    if args.think_ms:
        lines += ["", f"(think time {args.think_ms:g} ms: Label Studio was measured without any; the ratios "
                      "compare unlike loads)"]
    return "\n".join(lines)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()}-core {cpu}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def _append_results(tables: list[str], comparison: str, explain: str, args) -> None:
    if args.no_record:
        return
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "bench/bench_queue.py " + " ".join(sys.argv[1:])
    body = "\n\n".join([*tables, comparison])
    with RESULTS.open("a") as out:
        out.write(f"\n## Queue: next-task and submit under concurrent annotators\n\n"
                  f"- date: {date}\n- machine: {_machine()}, shared, loaded by other work\n"
                  f"- command: `.venv/bin/python {command}`\n\n{body}\n\n"
                  f"Claim query plan (EXPLAIN ANALYZE, after the runs):\n\n```\n{explain}\n```\n")


if __name__ == "__main__":
    main()
