"""The production stack as docker/compose.yaml describes it: the compose file parses with the
example environment, and the processes it names (migrate, web under granian with production
settings, the default and gpu workers, beat) run against PostgreSQL and Redis and serve one
image from upload to annotation over HTTP. /readyz/ follows the database going away and back
(the processes reach PostgreSQL through a relay the test cuts, not by stopping the server)."""
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from django.db import connection
from PIL import Image as PILImage

from tests.processes import OwnRedis, TcpRelay, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
APP_SERVICES = ("migrate", "web", "worker-default", "worker-gpu", "beat")


def _compose_config() -> dict:
    result = subprocess.run(
        ["docker-compose", "--env-file", str(ROOT / "docker" / ".env.example"), "-f", str(COMPOSE), "config"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="needs docker-compose (make test installs it)")
def test_the_compose_file_parses_with_the_example_env_and_orders_startup():
    services = _compose_config()["services"]
    assert set(APP_SERVICES) | {"db", "redis", "storage", "bucket", "proxy"} <= set(services)
    for name in ("web", "worker-default", "worker-gpu", "beat"):
        waits = services[name]["depends_on"]
        assert waits["migrate"]["condition"] == "service_completed_successfully", name
        assert waits["db"]["condition"] == "service_healthy", name
    assert services["migrate"]["command"] == ["migrate"]
    assert all("healthcheck" in services[name] for name in ("db", "redis", "storage", "web", "worker-default"))
    assert "ports" not in services["web"]  # only the TLS proxy is published
    assert services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]["count"] == 1


def test_the_image_runs_as_a_user_and_carries_no_local_state():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "\nUSER vision" in dockerfile and dockerfile.count("FROM ") == 2
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".env", ".venv", "var", "frontend/node_modules"} <= ignored


def _http(method: str, url: str, token: str | None = None, body=None, content_type: str = "application/json"):
    # as the TLS proxy in front of web sends it; a fresh key per request (no retries here)
    headers = {"X-Forwarded-Proto": "https", "Idempotency-Key": str(uuid.uuid4())}
    if token:
        headers["Authorization"] = f"Token {token}"
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except urllib.error.URLError as exc:  # not listening (yet)
        return 0, str(exc)


def _multipart(field: str, name: str, content: bytes) -> tuple[bytes, str]:
    boundary = secrets.token_hex(12)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _annotations_in(db: dict, name: str) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"] or None,
                          dbname=name) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT task_id, payload FROM labeling_annotation")
        rows = cursor.fetchall()
    conn.close()
    return rows


@pytest.fixture
def stack_database():
    """A database of the stack's own on the test's PostgreSQL server, dropped afterwards."""
    import psycopg2

    settings = connection.settings_dict
    name = f"vision_stack_{os.getpid()}"
    admin = psycopg2.connect(host=settings["HOST"], port=settings["PORT"], user=settings["USER"],
                             password=settings["PASSWORD"] or None, dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield settings, name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
def test_the_compose_processes_serve_an_image_from_upload_to_annotation(stack_database, tmp_path):
    db, name = stack_database
    relay = TcpRelay(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    relay.start()
    redis = OwnRedis(tmp_path)
    redis.start()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "CELERY_", "AWS_"))},
        "DJANGO_SETTINGS_MODULE": "vision_project.settings_production",
        "SECRET_KEY": secrets.token_urlsafe(64), "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": f"postgres://{db['USER']}@127.0.0.1:{relay.port}/{name}",
        "REDIS_URL": redis.url, "PORT": str(port), "WEB_WORKERS": "2",
        "VISION_VAR_DIR": str(tmp_path / "var"), "MEDIA_ROOT": str(tmp_path / "media"),
        "STATIC_ROOT": str(tmp_path / "static"), "VISION_EMBED_ON_IMPORT": "0",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    entrypoint = str(ROOT / "docker" / "entrypoint.sh")
    commands = {service: yaml.safe_load(COMPOSE.read_text())["services"][service]["command"]
                for service in APP_SERVICES}
    logs = tmp_path / "logs"
    logs.mkdir()

    def run(service: str) -> subprocess.Popen:
        return subprocess.Popen([entrypoint, *commands[service]], cwd=ROOT, env=env, start_new_session=True,
                                stdout=open(logs / f"{service}.log", "wb"), stderr=subprocess.STDOUT)

    def tail() -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2500:]}" for p in sorted(logs.iterdir()))

    processes = []
    try:
        assert run("migrate").wait(timeout=300) == 0, tail()
        processes = [run(service) for service in ("web", "worker-default", "worker-gpu", "beat")]
        base = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: _http("GET", f"{base}/readyz/")[0] == 200, 90), tail()

        make_admin = ("from django.contrib.auth.models import User; from rest_framework.authtoken.models import Token;"
                      "u = User.objects.create_superuser('ops', 'ops@example.org', 'a-long-passphrase-1');"
                      "print(Token.objects.create(user=u).key)")
        made = subprocess.run([sys.executable, "manage.py", "shell", "-c", make_admin], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip().splitlines()[-1]

        status, project = _http("POST", f"{base}/api/projects/", token,
                                {"name": "Stack", "task_type": "classification"})
        assert status == 201, project
        status, cls = _http("POST", f"{base}/api/projects/{project['id']}/label-classes/", token, {"name": "red"})
        assert status == 201, cls
        image = io.BytesIO()
        PILImage.new("RGB", (64, 48), (200, 30, 30)).save(image, "PNG")
        body, content_type = _multipart("files", "red.png", image.getvalue())
        status, report = _http("POST", f"{base}/api/projects/{project['id']}/images/", token, body, content_type)
        assert status == 201, report
        status, task = _http("GET", f"{base}/api/projects/{project['id']}/tasks/next/", token)
        assert status == 200, task
        status, annotation = _http("POST", f"{base}/api/tasks/{task['task']['id']}/annotations/", token,
                                   {"kind": "correct", "payload": {"labels": [cls["id"]]}})
        assert status == 201, annotation
        assert _annotations_in(db, name) == [(task["task"]["id"], {"labels": [cls["id"]]})]

        relay.stop()  # the database is gone, as far as the processes can tell
        answers = []
        assert wait_for(lambda: answers.append(_http("GET", f"{base}/readyz/")) or answers[-1][0] == 503, 30), tail()
        assert json.loads(answers[-1][1])["checks"]["database"]["ok"] is False
        assert _http("GET", f"{base}/healthz/")[0] == 200  # alive all the same: no restart storm
        relay.start()
        assert wait_for(lambda: _http("GET", f"{base}/readyz/")[0] == 200, 60), tail()
        assert all(p.poll() is None for p in processes), tail()
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        relay.stop()
        redis.stop()
