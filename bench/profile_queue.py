"""Profile of the annotation hot paths: next-task and submit, CPU per request.

Fills a queue as bench/bench_queue.py does (its own database, dropped afterwards), then
calls the Django WSGI application in this process, one request at a time, with the same
requests the annotators of the queue benchmark send (token auth, GET next -> POST
annotation). No HTTP server and no concurrency: what is left is the work of the hot paths
themselves. Prints

- CPU per request, server (this process's CPU time / requests) and PostgreSQL (the
  backend's CPU time from /proc / requests), measured without a profiler;
- the queries of one next and one submit (the report recording after the submit included),
  each with its time and, with --explain, EXPLAIN ANALYZE (inside a rolled-back transaction);
- a pyinstrument profile of the same loop (text, time spent by call site).

    .venv/bin/python bench/profile_queue.py --tasks 100000 --requests 400
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from wsgiref.util import setup_testing_defaults

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("BENCH_QUEUE_DB", "vision_bench_profile")
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
import bench_queue  # noqa: E402  (reads BENCH_QUEUE_DB on import)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=8)
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=400, help="next + submit pairs measured (and profiled)")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE each query of one next and submit")
    parser.add_argument("--no-profile", action="store_true", help="CPU per request only")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the CPU measurement, interleaving the full middleware stack with each "
                             "--drop-middleware variant (a noisy box: compare within one run)")
    parser.add_argument("--drop-middleware", action="append", default=[], metavar="DOTTED_PATH",
                        help="also measure without this middleware (repeatable; one variant each)")
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    args = parser.parse_args()
    server_dsn = args.postgres.rstrip("/")
    db_name = bench_queue.DB_NAME
    env = {
        "DATABASE_URL": f"{server_dsn}/{db_name}",
        "DEBUG": "False",
        "ALLOWED_HOSTS": "127.0.0.1",
        "CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "vision_project.settings",
        "VISION_VAR_DIR": str(ROOT / "var" / "bench-profile"),
    }
    os.environ.update(env)
    os.environ.pop("REDIS_URL", None)
    bench_queue._recreate_database(server_dsn)
    try:
        import subprocess

        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT,
                       env=os.environ, check=True)
        project_id, tokens = bench_queue._fill(f"{server_dsn}/{db_name}", dict(os.environ), args.tasks,
                                               args.annotators, args.history, True)
        _profile(args, project_id, tokens)
    finally:
        from django.db import connections

        if "django.apps" in sys.modules:
            connections.close_all()
        bench_queue._drop_database(server_dsn)


class Client:
    """Sends one request at a time straight to the WSGI application."""

    def __init__(self, application, token: str):
        self.application, self.token = application, token

    def call(self, method: str, path: str, body: bytes = b"", extra: dict | None = None) -> tuple[int, bytes]:
        environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "HTTP_HOST": "127.0.0.1", "SERVER_NAME": "127.0.0.1",
                   "SERVER_PORT": "80", "HTTP_AUTHORIZATION": f"Token {self.token}",
                   "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
                   "wsgi.input": io.BytesIO(body), **(extra or {})}
        setup_testing_defaults(environ)
        status: list[str] = []
        chunks = self.application(environ, lambda s, headers, exc_info=None: status.append(s))
        data = b"".join(chunks)
        getattr(chunks, "close", lambda: None)()
        return int(status[0].split()[0]), data


def _annotation_pair(client: Client, project_id: int, rng: random.Random) -> None:
    status, data = client.call("GET", f"/api/projects/{project_id}/tasks/next/")
    if status != 200:
        raise RuntimeError(f"next answered {status}: {data[:300]!r}")
    work = json.loads(data)
    body = json.dumps(bench_queue._submission(work, rng)).encode()
    status, data = client.call("POST", f"/api/tasks/{work['task']['id']}/annotations/", body,
                               {"HTTP_IDEMPOTENCY_KEY": str(uuid.uuid4())})
    if status != 201:
        raise RuntimeError(f"submit answered {status}: {data[:300]!r}")


def _backend_cpu() -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    return bench_queue._process_cpu(pid)


def _profile(args, project_id: int, tokens: list[str]) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # The handler loads its middleware when it is made: one application per variant.
    full = list(settings.MIDDLEWARE)
    variants = {"all middleware": get_wsgi_application()}
    for dropped in args.drop_middleware:
        if dropped not in full:
            raise SystemExit(f"--drop-middleware {dropped}: not in MIDDLEWARE ({', '.join(full)})")
        settings.MIDDLEWARE = [name for name in full if name != dropped]
        variants[f"without {dropped.rsplit('.', 1)[-1]}"] = get_wsgi_application()
    settings.MIDDLEWARE = full
    rng = random.Random(1)
    for application in variants.values():
        clients = [Client(application, token) for token in tokens]
        for n in range(40):  # warm-up: imports, caches, connection
            _annotation_pair(clients[n % len(clients)], project_id, rng)

    measured: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, application in variants.items():
            clients = [Client(application, token) for token in tokens]
            cpu_before, backend_before, wall_before = time.process_time(), _backend_cpu(), time.perf_counter()
            for n in range(args.requests):
                _annotation_pair(clients[n % len(clients)], project_id, rng)
            measured[name].append(((time.process_time() - cpu_before) * 1000 / args.requests,
                                   (_backend_cpu() - backend_before) * 1000 / args.requests,
                                   (time.perf_counter() - wall_before) * 1000 / args.requests))
    print(f"\nCPU per annotation (one next + one submit), {args.requests} annotations per round, "
          f"{args.rounds} round(s) interleaved, no profiler (median of rounds):\n")
    print("| variant | server ms | PostgreSQL ms | together ms | wall ms |\n|---|---:|---:|---:|---:|")
    for name, rounds in measured.items():
        server_ms, database_ms, wall_ms = (statistics.median(column) for column in zip(*rounds))
        print(f"| {name} | {server_ms:.2f} | {database_ms:.2f} | {server_ms + database_ms:.2f} | {wall_ms:.2f} |")
    clients = [Client(variants["all middleware"], token) for token in tokens]

    client = clients[0]
    with CaptureQueriesContext(connection) as captured:
        _annotation_pair(client, project_id, rng)
    queries = list(captured.captured_queries)
    print(f"\nQueries of one next + submit: {len(queries)}\n")
    from vision_project.queries import prepared_sql

    for query in queries:
        # A prepared statement's EXECUTE, shown as the statement it runs.
        text = prepared_sql(connection, query["sql"])
        print(f"- {text[:200]}" if text == query["sql"] else f"- (prepared) {text[:200]}")
    if args.explain:
        _explain(queries)

    if not args.no_profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        for n in range(args.requests):
            _annotation_pair(clients[n % len(clients)], project_id, rng)
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=os.environ.get("PROFILE_SHOW_ALL") == "1", short_mode=False))


def _explain(queries: list[dict]) -> None:
    """EXPLAIN ANALYZE of each data query as it ran, rolled back (writes included)."""
    from django.db import connection, transaction

    for query in queries:
        sql = query["sql"]
        if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "INSERT", "WITH", "DELETE", "EXECUTE")):
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            try:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, SUMMARY) " + sql)
                plan = [row[0] for row in cursor.fetchall()]
            except Exception as error:  # a statement that needs its earlier ones (a savepoint)
                plan = [f"(not explained: {error})"]
            transaction.set_rollback(True)
        print(f"\n{sql[:300]}\n" + "\n".join(f"    {line}" for line in plan))


if __name__ == "__main__":
    main()
