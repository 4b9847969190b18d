"""The embedded default (SQLite + file-system broker) runs end to end with no servers:
migrate, create a project, enqueue a task and see a separate worker process run it."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

ENQUEUE = """
from datetime import timedelta
from django.utils import timezone
from labeling.services import project_create
from django.contrib.auth import get_user_model
from training.models import TrainingRun
from training.tasks import stale_jobs_fail
user = get_user_model().objects.create_user("smoke")
project = project_create(name="smoke", task_type="detection", created_by=user)
run = TrainingRun.objects.create(project=project, status="running",
                                 heartbeat_at=timezone.now() - timedelta(hours=1))
stale_jobs_fail.delay()
print("enqueued", run.pk)
"""

READ = """
from training.models import TrainingRun
print("status", TrainingRun.objects.get().status)
"""


def test_embedded_default_runs_a_task_in_a_worker(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")}
    env["VISION_VAR_DIR"] = str(tmp_path / "var")

    def manage(*args):
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    manage("migrate", "--noinput")
    assert (tmp_path / "var" / "vision.sqlite3").exists()
    assert "enqueued" in manage("shell", "-c", ENQUEUE)
    assert list((tmp_path / "var" / "broker" / "queue").iterdir()), "message is not in the file broker"

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "vision_project", "worker", "-Q", "default,gpu",
         "--pool", "solo", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        status = ""
        while time.monotonic() < deadline:
            status = manage("shell", "-c", READ)
            if "failed" in status:
                break
            time.sleep(1)
        assert "status failed" in status, "the worker did not run the task"
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=60)
    assert "stale_jobs_fail" in output and "succeeded" in output


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_one_command_run_serves_like_production_on_loopback(tmp_path):
    """`make run`'s launcher with nothing set: DEBUG off, the built frontend served as static
    files, and error pages that show no settings or tracebacks."""
    import re
    import urllib.error
    import urllib.request

    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "DEBUG",
                        "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env["VISION_VAR_DIR"] = str(tmp_path / "var")
    for args in (["migrate", "--noinput"], ["collectstatic", "--noinput", "--verbosity", "0"]):
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    debug = subprocess.run([sys.executable, "manage.py", "shell", "-c",
                            "from django.conf import settings; print('DEBUG', settings.DEBUG)"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "DEBUG False" in debug.stdout, debug.stdout + debug.stderr
    port = _free_port()
    launcher = subprocess.Popen([sys.executable, "-m", "vision_project.launcher", "--port", str(port),
                                 "--web-workers", "1"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def get(path: str) -> tuple[int, str, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Content-Type", ""), error.read().decode()

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, _, login = get("/accounts/login/")
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline and launcher.poll() is None, "the web server did not start"
                time.sleep(1)
        assert status == 200
        scripts = re.findall(r'<script type="module" src="(/static/[^"]+)"', login)
        assert scripts, login
        status, content_type, _ = get(scripts[0])
        assert status == 200 and "javascript" in content_type
        status, _, missing = get("/no/such/page/")
        assert status == 404
        assert "Page not found" in missing
        assert "DEBUG = True" not in missing and "URLconf" not in missing and "Traceback" not in missing
    finally:
        launcher.terminate()
        launcher.communicate(timeout=60)
