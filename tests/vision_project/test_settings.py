import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args, env_extra=None):
    # The browser tests allow sync ORM calls beside Playwright's loop; a deployment never does.
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "vision_project.settings_production",
    "ALLOWED_HOSTS": "vision.example.org",
}


def test_check_deploy_is_clean_under_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING",
                     env_extra={**PRODUCTION, "SECRET_KEY": secrets.token_urlsafe(64)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_real_secret_key():
    env = {**PRODUCTION}
    result = _manage("check", env_extra=env | {"SECRET_KEY": ""})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_models_and_migrations_agree():
    result = _manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_report_recording_stays_connected_with_debug_off():
    # Signals hold receivers by weak reference: a receiver that nothing else keeps alive
    # disappears after start-up, and with DEBUG off nothing did.
    code = (
        "import gc; gc.collect()\n"
        "from django.db.models.signals import post_save\n"
        "from labeling.models import Annotation\n"
        "print('connected' if post_save.has_listeners(Annotation) else 'missing')\n"
    )
    result = _manage("shell", "-c", code, env_extra={"DEBUG": "False"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("connected"), result.stdout


def test_every_beat_entry_names_a_registered_task():
    from django.conf import settings

    from vision_project.celery import app

    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled - set(app.tasks) == set()
    assert "labeling.tasks.export_files_expire" in scheduled
