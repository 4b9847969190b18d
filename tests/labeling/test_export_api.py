"""The export API and command: a zip at once for small projects, a job for large ones."""

import io
import json
import zipfile

import pytest
from django.core.management import CommandError, call_command

from core.models import JobStatus
from labeling.exporters.service import export_job_create
from labeling.importers.service import import_run
from labeling.importers.sources import folder_files
from labeling.models import ExportJob, Role
from labeling.services import membership_set
from tests.labeling.test_export_formats import write_coco_dataset
from tests.labeling.test_import_api import wait_for
from tests.labeling.test_ingest import make_project, make_user
from vision_project.api_errors import Conflict


def labeled_project(tmp_path, count=6):
    source = tmp_path / "source"
    source.mkdir()
    write_coco_dataset(source, count=count)
    project = make_project(classes=("tree", "car"))
    import_run(project=project, files=list(folder_files(str(source))), label_format="coco")
    lead = make_user("lead")
    membership_set(project=project, user=lead, role=Role.LEAD)
    return project, lead


def test_small_export_is_a_zip_at_once(api_client, db, tmp_path):
    project, lead = labeled_project(tmp_path)
    api_client.force_authenticate(lead)
    response = api_client.get(f"/api/projects/{project.pk}/export/?format=coco")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    document = json.loads(archive.read("annotations.json"))
    assert len(document["images"]) == 6
    assert sum(name.startswith("images/") for name in archive.namelist()) == 6


def test_export_checks_format_and_role(api_client, db, tmp_path):
    project, lead = labeled_project(tmp_path, count=1)
    api_client.force_authenticate(lead)
    response = api_client.get(f"/api/projects/{project.pk}/export/?format=kitti")
    assert response.status_code == 400 and "unknown export format 'kitti'" in response.json()["detail"]
    annotator = make_user("annotator")
    membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
    for user, expected in ((annotator, 403), (make_user("stranger"), 404)):
        api_client.force_authenticate(user)
        assert api_client.get(f"/api/projects/{project.pk}/export/?format=coco").status_code == expected


def test_a_second_export_of_the_same_format_while_one_runs_is_a_conflict(
    db, tmp_path, django_capture_on_commit_callbacks
):
    project, lead = labeled_project(tmp_path, count=1)
    with django_capture_on_commit_callbacks(execute=False):
        first = export_job_create(project=project, export_format="yolo", requested_by=lead)
        with pytest.raises(Conflict) as conflict:
            export_job_create(project=project, export_format="yolo", requested_by=lead)
        assert conflict.value.extra == {"job_id": first.pk}
        export_job_create(project=project, export_format="voc", requested_by=lead)


@pytest.mark.django_db(transaction=True)
def test_large_export_runs_as_a_job_and_members_download_the_zip(
    api_client, celery_worker, tmp_path, settings
):
    settings.VISION_EXPORT_SYNC_MAX_IMAGES = 2
    project, lead = labeled_project(tmp_path)
    api_client.force_authenticate(lead)
    response = api_client.get(f"/api/projects/{project.pk}/export/?format=yolo")
    assert response.status_code == 202
    job = wait_for(ExportJob, response.json()["job_id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result_file.name.startswith(f"projects/{project.pk}/exports/")

    detail = api_client.get(response.json()["status_url"]).json()
    assert detail["progress"] == 1.0
    download = api_client.get(detail["download_url"])
    assert download.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    assert "data.yaml" in archive.namelist()
    assert sum(name.startswith("labels/") for name in archive.namelist()) == 6
    api_client.force_authenticate(make_user("stranger"))
    assert api_client.get(detail["download_url"]).status_code == 404


def test_export_job_failed_as_stale_meanwhile_stops_and_keeps_no_file(db, tmp_path, monkeypatch):
    from django.utils import timezone

    from core import jobs
    from labeling.exporters import service

    project, _ = labeled_project(tmp_path, count=3)
    job = ExportJob.objects.create(project=project, format="coco")
    monkeypatch.setattr(jobs, "PROGRESS_EVERY_S", 0.0)
    real_writer = service.job_progress_writer
    progress_calls = []

    def writer_failed_meanwhile(model, job_id, total, **options):
        write = real_writer(model, job_id, total, **options)

        def wrapped(done):
            progress_calls.append(done)
            # What stale_jobs_fail does when it misses heartbeats.
            model.objects.filter(pk=job_id).update(status=JobStatus.FAILED, error="stale", finished_at=timezone.now())
            write(done)

        return wrapped

    monkeypatch.setattr(service, "job_progress_writer", writer_failed_meanwhile)
    service.export_job_execute(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.error, job.result_file.name) == (JobStatus.FAILED, "stale", "")
    assert progress_calls == [1]  # stopped at the first write, not after all three images
    exports = tmp_path / "media" / "projects" / str(project.pk) / "exports"
    assert not exports.exists() or not list(exports.iterdir())


def test_finished_export_zips_expire_after_the_retention_and_their_rows_say_so(db, api_client, tmp_path, settings):
    from datetime import timedelta

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.utils import timezone

    from labeling.exporters.service import export_files_expire

    settings.VISION_EXPORT_RETENTION_DAYS = 7
    project, lead = labeled_project(tmp_path, count=1)
    now = timezone.now()

    def finished_job(days_ago: float) -> ExportJob:
        job = ExportJob.objects.create(project=project, format="coco", status=JobStatus.SUCCEEDED,
                                       finished_at=now - timedelta(days=days_ago), message="1 labeled images")
        job.result_file = default_storage.save(f"projects/{project.pk}/exports/{job.pk}-coco.zip",
                                               ContentFile(b"zip"))
        job.save()
        return job

    old, recent = finished_job(8), finished_job(6)
    assert export_files_expire() == 1
    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.result_file.name == "" and "expired" in old.message
    assert not default_storage.exists(f"projects/{project.pk}/exports/{old.pk}-coco.zip")
    assert default_storage.exists(recent.result_file.name)
    api_client.force_authenticate(lead)
    assert api_client.get(f"/api/export-jobs/{old.pk}/").json()["download_url"] is None
    assert export_files_expire() == 0  # nothing left to do: rows already updated


def test_export_command_writes_a_folder_or_a_zip(db, tmp_path):
    project, _ = labeled_project(tmp_path, count=3)
    call_command("export_labels", str(project.pk), str(tmp_path / "out"), "--format", "yolo")
    assert (tmp_path / "out/data.yaml").is_file()
    assert len(list((tmp_path / "out/labels").rglob("*.txt"))) == 3
    call_command("export_labels", project.name, str(tmp_path / "out.zip"), "--format", "voc", "--no-images")
    names = zipfile.ZipFile(tmp_path / "out.zip").namelist()
    assert sum(n.startswith("Annotations/") for n in names) == 3 and not any(
        n.startswith("JPEGImages") for n in names
    )
    with pytest.raises(CommandError, match="exists already"):
        call_command("export_labels", str(project.pk), str(tmp_path / "out.zip"), "--format", "csv")


def test_export_command_refusing_a_format_leaves_no_file(db, tmp_path):
    classification = make_project(task_type="classification", classes=("cat", "dog"))
    with pytest.raises(CommandError, match="holds boxes"):
        call_command("export_labels", str(classification.pk), str(tmp_path / "x.zip"), "--format", "coco")
    assert not (tmp_path / "x.zip").exists()


def test_export_command_failing_midway_leaves_no_half_written_zip(db, tmp_path, monkeypatch):
    from labeling.management.commands import export_labels

    project, _ = labeled_project(tmp_path, count=2)

    def failing_write(**options):
        options["sink"].write_text("labels.csv", "partial")
        raise OSError("disk full")

    monkeypatch.setattr(export_labels, "export_write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        call_command("export_labels", str(project.pk), str(tmp_path / "y.zip"), "--format", "csv")
    assert not (tmp_path / "y.zip").exists()


def test_export_zips_are_served_to_leads_only_and_never_as_plain_media(client, db, tmp_path):
    import re

    from labeling.exporters.service import export_job_execute

    project, lead = labeled_project(tmp_path)
    annotator = make_user("annotator")
    membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
    job = export_job_create(project=project, export_format="yolo", requested_by=lead)
    export_job_execute(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    # Not guessable from the job id: a long random part in the name.
    assert not re.fullmatch(rf"projects/{project.pk}/exports/{job.pk}-yolo\.zip", job.result_file.name)
    assert re.search(r"[A-Za-z0-9_-]{22,}", job.result_file.name.rsplit("/", 1)[-1])
    client.force_login(lead)
    download_url = client.get(f"/api/export-jobs/{job.pk}/").json()["download_url"]
    assert not download_url.startswith("/media/")
    response = client.get(download_url)
    assert response.status_code == 200
    assert "data.yaml" in zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()
    for user in (lead, annotator):
        client.force_login(user)
        assert client.get(f"/media/{job.result_file.name}").status_code == 404
    client.force_login(annotator)
    assert client.get(download_url).status_code == 403
    client.force_login(make_user("stranger"))
    assert client.get(download_url).status_code == 404
