"""The queue benchmark still runs end to end (a tiny load), so its numbers stay reproducible."""
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.postgres  # the benchmark creates its own database on the configured server
def test_queue_benchmark_runs_and_finds_no_duplicates():
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    server = f"postgres://{quote(db['USER'])}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(BENCH_POSTGRES=server, BENCH_QUEUE_DB="vision_bench_queue_smoke",
               BENCH_QUEUE_PORT=str(_free_port()))
    result = subprocess.run(
        [sys.executable, "bench/bench_queue.py", "--tasks", "300", "--annotators", "2", "--history", "5",
         "--seconds", "2", "--warmup", "1", "--think-ms", "20", "--workers", "1", "--threads", "2",
         "--client-processes", "1", "--no-record"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    lines = result.stdout.splitlines()
    # The first table: requests per operation, with their statuses in the last column.
    next_statuses = next(line for line in lines if line.startswith("| next |")).split("|")[-2].strip()
    submit_statuses = next(line for line in lines if line.startswith("| submit |")).split("|")[-2].strip()
    assert next_statuses.startswith("200: ") and "," not in next_statuses, next_statuses
    assert submit_statuses.startswith("201: ") and "," not in submit_statuses, submit_statuses
    assert "duplicates: 0 tasks served to two annotators, 0 tasks completed twice" in result.stdout
