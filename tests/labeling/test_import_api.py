"""The upload API and the import command: per-file reports, background jobs, role checks."""

import io
import json
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from core.models import Image, JobStatus
from labeling.models import Annotation, ImportJob, Role
from labeling.services import membership_set
from tests.labeling.test_import_labels import DEEPFOREST
from tests.labeling.test_ingest import image_bytes, make_project, make_user


def upload(name, data):
    return SimpleUploadedFile(name, data)


@pytest.fixture(autouse=True)
def _media_outside_the_import_folders(settings, tmp_path_factory):
    """Tests import from tmp_path; stored media must not show up in those folders."""
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")


@pytest.fixture
def project(db):
    return make_project(classes=("tree", "car"))


@pytest.fixture
def lead(project):
    user = make_user("lead")
    membership_set(project=project, user=user, role=Role.LEAD)
    return user


def url(project):
    return f"/api/projects/{project.pk}/images/"


def wait_for(job_model, job_id, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = job_model.objects.get(pk=job_id)
        if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job.status} after {seconds}s")


def test_small_upload_is_imported_at_once_with_a_report_per_file(api_client, project, lead):
    api_client.force_authenticate(lead)
    files = [upload("a.jpg", image_bytes(color=(1, 1, 1))), upload("b.png", image_bytes(fmt="PNG"))]
    response = api_client.post(url(project), {"files": files}, format="multipart")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["images"] == {"created": 2, "duplicate": 0, "error": 0}
    assert {i["name"] for i in body["items"]} == {"a.jpg", "b.png"}
    assert Image.objects.filter(project=project).count() == 2


def test_upload_with_bad_files_answers_207_and_the_good_ones_land(api_client, project, lead):
    api_client.force_authenticate(lead)
    files = [
        upload("good.jpg", image_bytes()),
        upload("empty.jpg", b""),
        upload("text.jpg", b"hello"),
        upload("same.jpg", image_bytes()),
    ]
    response = api_client.post(url(project), {"files": files}, format="multipart")
    assert response.status_code == 207
    by_name = {i["name"]: i for i in response.json()["items"]}
    assert by_name["good.jpg"]["status"] == "created"
    assert by_name["empty.jpg"]["error"] == "file is empty (0 bytes)"
    assert "not an image file" in by_name["text.jpg"]["error"]
    assert by_name["same.jpg"] == {
        "name": "same.jpg",
        "status": "duplicate",
        "image_id": by_name["good.jpg"]["image_id"],
    }


def test_upload_with_coco_labels_and_a_class_map(api_client, project, lead):
    api_client.force_authenticate(lead)
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "categories": [{"id": 3, "name": "Tree"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [2, 3, 10, 10]}],
    }
    files = [upload("a.jpg", image_bytes()), upload("labels.json", json.dumps(coco).encode())]
    response = api_client.post(
        url(project),
        {"files": files, "label_format": "coco", "class_map": json.dumps({"Tree": "tree"})},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["labels"] == {"format": "coco", "created": 1, "unchanged": 0, "kept_as_opinion": 0, "error": 0}
    assert Annotation.objects.get().author == lead


def test_bad_upload_requests_are_refused_with_a_reason(api_client, project, lead):
    api_client.force_authenticate(lead)
    response = api_client.post(
        url(project),
        {"files": [upload("a.jpg", image_bytes())], "label_format": "folder"},
        format="multipart",
    )
    assert response.status_code == 400
    assert "folder labels do not fit a detection project" in response.json()["detail"]
    response = api_client.post(
        url(project), {"files": [upload("a.jpg", image_bytes())], "class_map": "[1]"}, format="multipart"
    )
    assert response.status_code == 400 and "class_map" in response.json()["detail"]
    assert api_client.post(url(project), {}, format="multipart").status_code == 400


def test_annotators_may_not_import_and_strangers_do_not_see_the_project(api_client, project):
    annotator = make_user("annotator")
    membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
    for user, expected in ((annotator, 403), (make_user("stranger"), 404)):
        api_client.force_authenticate(user)
        response = api_client.post(
            url(project), {"files": [upload("a.jpg", image_bytes())]}, format="multipart"
        )
        assert response.status_code == expected
    assert not Image.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_zip_upload_runs_as_a_job_with_progress_and_report(api_client, celery_worker, settings):
    project = make_project(classes=("tree",))
    lead = make_user("lead")
    membership_set(project=project, user=lead, role=Role.LEAD)
    api_client.force_authenticate(lead)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for n in range(5):
            zf.writestr(f"photos/{n}.jpg", image_bytes(color=(n * 30, 0, 0)))
        zf.writestr("../evil.jpg", image_bytes(color=(0, 0, 250)))
    response = api_client.post(
        url(project), {"files": [upload("photos.zip", archive.getvalue())]}, format="multipart"
    )
    assert response.status_code == 202
    job = wait_for(ImportJob, response.json()["job_id"])

    assert job.status == JobStatus.SUCCEEDED, job.error
    assert (job.total, job.processed, job.progress) == (6, 6, 1.0)
    assert job.report["images"] == {"created": 5, "duplicate": 0, "error": 1}
    assert job.report["items"] == [
        {
            "name": "photos.zip/../evil.jpg",
            "status": "error",
            "error": "unsafe path in archive (absolute or with '..'); skipped",
        }
    ]
    assert not list((Path(settings.MEDIA_ROOT) / "staging").iterdir())
    detail = api_client.get(response.json()["status_url"]).json()
    assert detail["status"] == "succeeded" and detail["report"]["images"]["created"] == 5
    api_client.force_authenticate(make_user("stranger"))
    assert api_client.get(response.json()["status_url"]).status_code == 404


def test_import_command_reads_a_server_folder_with_voc_labels(project, tmp_path, capsys):
    for name in (
        "OSBS_029.png",
        "OSBS_029.xml",
        "2019_YELL_2_528000_4978000_image_crop2.png",
        "2019_YELL_2_528000_4978000_image_crop2.xml",
    ):
        shutil.copy(DEEPFOREST / name, tmp_path / name)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    call_command("import_images", str(project.pk), str(tmp_path), "--labels", "voc", "--create-classes")
    job = ImportJob.objects.get()
    assert job.status == JobStatus.SUCCEEDED
    assert job.report["images"] == {"created": 2, "duplicate": 0, "error": 1}
    assert job.report["labels"] == {"format": "voc", "created": 2, "unchanged": 0, "kept_as_opinion": 0, "error": 0}
    assert "broken.png:" in capsys.readouterr().err
    assert Annotation.objects.filter(project=project).count() == 2


def test_import_command_refuses_what_it_cannot_do(project, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_images", str(project.pk), str(tmp_path / "nope"))
    with pytest.raises(CommandError, match="No project"):
        call_command("import_images", "no such project", str(tmp_path))
    with pytest.raises(CommandError, match="unknown label format 'kitti'"):
        call_command("import_images", str(project.pk), str(tmp_path), "--labels", "kitti")
    with pytest.raises(CommandError, match="--map must be an object of names"):
        call_command("import_images", str(project.pk), str(tmp_path), "--labels", "coco", "--map", "[1]")
    with pytest.raises(CommandError, match="--map not valid JSON"):
        call_command("import_images", str(project.pk), str(tmp_path), "--labels", "coco", "--map", "{")


def test_cancelled_queued_job_never_runs_and_its_staged_files_go(
    api_client, project, lead, settings, django_capture_on_commit_callbacks
):
    from labeling.importers.service import import_job_execute

    api_client.force_authenticate(lead)
    files = [upload(f"{n}.jpg", image_bytes(color=(n, 0, 0))) for n in range(3)]
    settings.VISION_IMPORT_SYNC_MAX_FILES = 2
    with django_capture_on_commit_callbacks(execute=False):
        response = api_client.post(url(project), {"files": files}, format="multipart")
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    cancelled = api_client.post(f"/api/import-jobs/{job_id}/cancel/")
    assert cancelled.json()["status"] == "cancelled"
    import_job_execute(job_id=job_id)
    assert not Image.objects.exists()
    assert not list((Path(settings.MEDIA_ROOT) / "staging").iterdir())


def test_running_job_stops_at_its_next_progress_write_when_cancelled(project, tmp_path, monkeypatch):
    from core import jobs
    from labeling.importers import service

    for n in range(4):
        (tmp_path / f"{n}.jpg").write_bytes(image_bytes(color=(n, 9, 9)))
    job = service.import_job_create(project=project, source_path=str(tmp_path), enqueue=False)
    monkeypatch.setattr(jobs, "PROGRESS_EVERY_S", 0.0)
    real_writer = service.job_progress_writer

    def cancelling_writer(model, job_id, total, **options):
        write = real_writer(model, job_id, total, **options)

        def wrapped(done):
            if done == 2:
                service.import_job_cancel(job=ImportJob.objects.get(pk=job_id))
            write(done)

        return wrapped

    monkeypatch.setattr(service, "job_progress_writer", cancelling_writer)
    service.import_job_execute(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.processed < 4
    assert tmp_path.is_dir()  # a server folder is never deleted


def test_staging_sweep_removes_old_orphaned_uploads_but_not_those_of_live_jobs(project):
    import os

    from labeling.importers.service import import_job_create, import_staging_sweep, staging_dir

    orphan, live, fresh = (staging_dir() / name for name in ("upload-orphan", "upload-live", "upload-fresh"))
    for folder in (orphan, live, fresh):
        folder.mkdir()
        (folder / "a.jpg").write_bytes(image_bytes())
    day_ago = time.time() - 2 * 24 * 3600
    for folder in (orphan, live):
        os.utime(folder, (day_ago, day_ago))
    import_job_create(project=project, source_path=str(live), staged=True, enqueue=False)

    assert import_staging_sweep() == 1
    assert not orphan.exists() and live.exists() and fresh.exists()


def test_import_command_reads_a_zip_with_its_labels_inside(project, tmp_path):
    archive = tmp_path / "set.zip"
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "categories": [{"id": 1, "name": "car"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}],
    }
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.jpg", image_bytes())
        zf.writestr("annotations/instances.json", json.dumps(coco))
    call_command("import_images", str(project.pk), str(archive), "--labels", "coco")
    job = ImportJob.objects.get()
    assert job.report["labels"] == {"format": "coco", "created": 1, "unchanged": 0, "kept_as_opinion": 0, "error": 0}
    assert Annotation.objects.get().payload["boxes"][0]["x2"] == 4


def test_commands_refuse_a_project_name_that_several_projects_share(db):
    from django.core.management import CommandError, call_command

    from tests.factories import ProjectFactory

    ProjectFactory(name="Cars")
    ProjectFactory(name="Cars")
    with pytest.raises(CommandError, match="Several projects are named 'Cars'"):
        call_command("export_labels", "Cars", "/tmp/unused-export", "--format", "coco")
    with pytest.raises(CommandError, match="No project with id or name 'Bikes'"):
        call_command("train", "Bikes")
