"""VISION on S3-compatible object storage, end to end, against a real S3 server (moto's server
mode, started here), with two worker processes (the default queue and the gpu queue) that
share neither a media folder nor a cache with the web process or each other: a zip import
staged through the bucket, labels, training, deploy, re-scoring and an export."""
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from PIL import Image as PILImage

from core.models import JobStatus, LabelClass, ModelVersion, Prediction, Split, TaskType
from labeling.models import ImportJob, Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.processes import free_port, wait_for
from training.models import PrelabelRun, TrainingRun

MOTO_SERVER = Path(sys.executable).parent / "moto_server"  # installed into this interpreter's environment
pytestmark = [
    pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis,
    pytest.mark.skipif(not MOTO_SERVER.exists(), reason="needs moto's server (requirements-test.txt)"),
]
BUCKET = "vision-test"
COLORS = {"red": (215, 35, 40), "blue": (35, 45, 215)}
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def s3_server(tmp_path, monkeypatch):
    port = free_port()
    log = open(tmp_path / "moto.log", "wb")
    server = subprocess.Popen([str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    try:
        import boto3

        def bucket_made() -> bool:
            try:
                boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
                return True
            except Exception:
                return False

        assert wait_for(bucket_made, 30), (tmp_path / "moto.log").read_text()[-2000:]
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def bucket_storage(settings, s3_server):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": BUCKET, "endpoint_url": s3_server, "file_overwrite": False,
                    "querystring_auth": True},
    }}
    settings.VISION_STORAGE_CACHE_DIR = str(settings.VISION_STORAGE_CACHE_DIR) + "-web"
    return s3_server


def _worker(queue: str, endpoint: str, tmp_path) -> subprocess.Popen:
    """A worker as on another machine: its own (empty) media folder and storage cache."""
    db = connection.settings_dict
    home = tmp_path / f"worker-{queue}"
    env = {
        **os.environ, **CREDENTIALS,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": django_settings.CELERY_BROKER_URL,
        "AWS_STORAGE_BUCKET_NAME": BUCKET, "AWS_S3_ENDPOINT_URL": endpoint,
        "MEDIA_ROOT": str(home / "media"), "VISION_STORAGE_CACHE_DIR": str(home / "cache"),
        "VISION_RUNS_DIR": str(home / "runs"), "VISION_EMBED_ON_IMPORT": "0",
    }
    log = open(tmp_path / f"worker-{queue}.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "vision_project", "worker", "-Q", queue, "-P", "solo",
         "--without-heartbeat", "--without-mingle", "--without-gossip", "-l", "WARNING"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def _png(color, n: int) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (48, 48), tuple(min(255, c + 2 * n) for c in color)).save(out, "PNG")
    return out.getvalue()


def _photo_zip(per_class: int) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for name, color in COLORS.items():
            for n in range(per_class):
                zf.writestr(f"photos/{name}-{n}.png", _png(color, n))
    return archive.getvalue()


def _logs(tmp_path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(tmp_path.glob("worker-*.log")))


def test_upload_train_deploy_rescore_and_export_through_the_bucket(
        transactional_db, bucket_storage, api_client, client, settings, tmp_path):
    from vision_project.celery import app

    settings.VISION_EMBED_ON_IMPORT = False  # no queue model: the trained classifier is what is under test
    with app.connection_for_write() as conn:
        for queue in ("default", "gpu"):
            conn.default_channel.queue_purge(queue)
    project = ProjectFactory(task_type=TaskType.CLASSIFICATION, train_epochs=4, train_image_size=48,
                             train_batch_size=4)
    admin = UserFactory()
    MembershipFactory(project=project, user=admin, role=Role.ADMIN)
    classes = {name: LabelClass.objects.create(project=project, name=name) for name in COLORS}
    api_client.force_authenticate(admin)
    workers = [_worker("default", bucket_storage, tmp_path), _worker("gpu", bucket_storage, tmp_path)]
    try:
        upload = api_client.post(f"/api/projects/{project.pk}/images/",
                                 {"files": [SimpleUploadedFile("photos.zip", _photo_zip(10), "application/zip")]}, format="multipart")
        assert upload.status_code == 202, upload.content
        job_id = upload.json()["job_id"]
        assert ImportJob.objects.get(pk=job_id).source_path.startswith("storage:")  # staged in the bucket
        assert wait_for(lambda: ImportJob.objects.get(pk=job_id).status == JobStatus.SUCCEEDED, 120), _logs(tmp_path)
        images = list(project.images.order_by("pk"))
        assert len(images) == 20
        assert not os.path.exists(os.path.join(str(django_settings.MEDIA_ROOT), images[0].file.name))

        # a fixed split for the test: 7 + 7 to train on, 2 + 2 to validate on, 1 + 1 left in the pool
        by_color = {name: [im for im in images if im.original_name.startswith(name)] for name in COLORS}
        for name, members in by_color.items():
            for n, im in enumerate(members):
                im.split = Split.VALIDATION if n in (7, 8) else Split.TRAIN
                im.save(update_fields=["split"])
                if n < 9:
                    fixed = api_client.post(f"/api/images/{im.pk}/label/",
                                            {"payload": {"labels": [classes[name].pk]}}, format="json")
                    assert fixed.status_code == 201, fixed.content

        client.force_login(admin)  # the media view reads the bucket for a signed-in member
        media = client.get(f"/media/{images[0].file.name}")
        assert media.status_code == 200 and b"".join(media.streaming_content)[:4] == b"\x89PNG"

        run = api_client.post(f"/api/projects/{project.pk}/training-runs/", {}, format="json")
        assert run.status_code == 202, run.content
        run_id = run.json()["id"]
        assert wait_for(lambda: TrainingRun.objects.get(pk=run_id).status not in ("queued", "running"), 400), \
            _logs(tmp_path)
        finished = TrainingRun.objects.get(pk=run_id)
        assert finished.status == JobStatus.SUCCEEDED, finished.error
        version = ModelVersion.objects.get(training_run=finished)
        assert version.is_deployed, version.comparison
        assert version.weights.name.startswith(f"projects/{project.pk}/models/")
        assert version.weights.storage.exists(version.weights.name)  # in the bucket, not on a worker's disk

        assert wait_for(lambda: PrelabelRun.objects.filter(model_version=version, status=JobStatus.SUCCEEDED)
                        .exists(), 200), _logs(tmp_path)
        predictions = Prediction.objects.filter(model_version=version)
        assert predictions.count() == 2  # the two pool images, re-scored by the deployed model
        for prediction in predictions:  # (what the model says is not under test: that it said it is)
            assert prediction.payload["labels"][0] in {c.pk for c in classes.values()}
            assert abs(sum(prediction.payload["probs"]) - 1) < 1e-3

        export = api_client.get(f"/api/projects/{project.pk}/export/?format=csv&async=1")
        assert export.status_code == 202, export.content
        detail_url = export.json()["status_url"]
        assert wait_for(lambda: api_client.get(detail_url).json()["status"] == "succeeded", 120), _logs(tmp_path)
        download = client.get(api_client.get(detail_url).json()["download_url"])
        assert download.status_code == 200
        with zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))) as zf:
            assert sum(name.startswith("images/") for name in zf.namelist()) == 18
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
    assert "Traceback" not in _logs(tmp_path), _logs(tmp_path)
