"""Embedding runs: every image gets one vector per embedding model, re-runs skip finished work,
unreadable images are counted, imports queue one run on commit, the API checks roles."""
import io
import zipfile
from datetime import timedelta

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from core import jobs
from core.models import JobStatus
from labeling.importers.service import import_run
from labeling.models import ImportJob
from tests.factories import ImageFactory, ProjectFactory, UserFactory
from tests.labeling.test_ingest import image_bytes
from training import selectors, services
from training.models import EmbeddingRun, ImageEmbedding, NearDuplicate
from vision_project.api_errors import Conflict

pytestmark = pytest.mark.django_db
KEY = "efficientnet_lite0-imagenet-128"  # the small input: same network, a third of the work


@pytest.fixture(autouse=True)
def _small_and_quiet(settings):
    settings.VISION_EMBEDDING_MODEL = KEY
    settings.VISION_EMBED_BATCH_SIZE = 2  # several batches from a handful of images
    settings.VISION_EMBED_DEVICE = "cpu"
    # the test transaction is invisible to the heartbeat thread's own connection
    settings.VISION_JOB_HEARTBEAT_SECONDS = 3600


@pytest.fixture
def sent(monkeypatch):
    """Task messages sent by name (the services' enqueue), recorded instead of sent."""
    from vision_project import enqueue

    messages = []
    monkeypatch.setattr(enqueue, "enqueue", lambda name, *args, **kw: messages.append((name, list(args))))
    return messages


def project_with_images(n=5, **fields):
    project = ProjectFactory(**fields)
    images = [ImageFactory(project=project, original_name=f"p{project.pk}-{i}.png") for i in range(n)]
    return project, images


def run_once(project, **kwargs):
    run = services.embedding_run_start(project=project, **kwargs)
    return services.embedding_run_execute(run_id=run.pk)


def test_a_run_embeds_every_image_once(django_capture_on_commit_callbacks, sent):
    project, images = project_with_images(5)
    with django_capture_on_commit_callbacks(execute=True):
        run = services.embedding_run_start(project=project)
    assert sent == [("training.tasks.embed_images", [run.pk])]
    assert django_settings.CELERY_TASK_ROUTES["training.tasks.embed_images"] == {"queue": "gpu"}

    run = services.embedding_run_execute(run_id=run.pk)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert (run.total, run.processed, run.progress) == (5, 5, 1.0)
    assert run.stats["embedded"] == 5 and run.stats["errors"] == 0 and run.stats["device"] == "cpu"
    ids, vectors = selectors.embedding_matrix(project=project, model_key=KEY)
    assert ids.tolist() == sorted(i.pk for i in images)
    assert vectors.shape == (5, 1280) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert ImageEmbedding.objects.filter(project=project).count() == 5
    assert services.embedding_run_execute(run_id=run.pk) is None  # a redelivered message claims nothing


def test_a_rerun_embeds_nothing_and_a_new_image_only_is_added():
    project, images = project_with_images(3)
    first = run_once(project)
    before = dict(ImageEmbedding.objects.values_list("image_id", "created_at"))
    again = run_once(project)
    assert again.status == JobStatus.SUCCEEDED
    assert (again.total, again.stats["embedded"]) == (0, 0)
    assert dict(ImageEmbedding.objects.values_list("image_id", "created_at")) == before
    new = ImageFactory(project=project, original_name="late.png")
    third = run_once(project)
    assert (first.stats["embedded"], third.total, third.stats["embedded"]) == (3, 1, 1)
    assert selectors.embedding_matrix(project=project, model_key=KEY)[0].tolist() == [
        *sorted(i.pk for i in images), new.pk]


def test_an_unreadable_image_is_counted_and_does_not_stop_the_run():
    project, images = project_with_images(4)
    broken, gone = images[1], images[2]
    with default_storage.open(broken.file.name, "wb") as f:
        f.write(b"\x89PNG this is not an image")
    default_storage.delete(gone.file.name)
    run = run_once(project)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert (run.processed, run.stats["embedded"], run.stats["errors"]) == (4, 2, 2)
    reasons = {u["image_id"]: u["error"] for u in run.stats["unreadable"]}
    assert set(reasons) == {broken.pk, gone.pk}
    assert "cannot decode" in reasons[broken.pk] and "cannot read file" in reasons[gone.pk]
    assert "2 unreadable" in run.message
    ids, _ = selectors.embedding_matrix(project=project, model_key=KEY)
    assert ids.tolist() == [images[0].pk, images[3].pk]
    assert set(selectors.embeddings_missing(project, KEY).values_list("id", flat=True)) == {broken.pk, gone.pk}


def test_a_run_restricted_to_image_ids_embeds_only_those():
    project, images = project_with_images(4)
    run = run_once(project, image_ids=[images[3].pk, images[1].pk])
    assert run.total == 2
    assert selectors.embedding_matrix(project=project, model_key=KEY)[0].tolist() == [images[1].pk, images[3].pk]


def test_cancel_stops_after_the_current_batch_and_keeps_its_vectors(monkeypatch):
    project, _ = project_with_images(6)
    run = services.embedding_run_start(project=project)
    write = services._embeddings_write

    def write_then_cancel(run_row, *args):
        written = write(run_row, *args)
        services.embedding_run_cancel(run=EmbeddingRun.objects.get(pk=run_row.pk))
        return written

    monkeypatch.setattr(services, "_embeddings_write", write_then_cancel)
    run = services.embedding_run_execute(run_id=run.pk)
    assert run.status == JobStatus.CANCELLED
    assert run.stats["embedded"] == 2 and ImageEmbedding.objects.count() == 2
    monkeypatch.setattr(services, "_embeddings_write", write)
    assert run_once(project).stats["embedded"] == 4  # the next run goes on from there


def test_a_queued_run_is_cancelled_at_once():
    project, _ = project_with_images(1)
    run = services.embedding_run_cancel(run=services.embedding_run_start(project=project))
    assert run.status == JobStatus.CANCELLED
    assert services.embedding_run_execute(run_id=run.pk) is None


def test_a_silent_running_run_is_failed_by_the_stale_sweep():
    project, _ = project_with_images(1)
    run = services.embedding_run_start(project=project)
    old = timezone.now() - timedelta(hours=1)
    EmbeddingRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, heartbeat_at=old)
    assert jobs.stale_jobs_fail() == 1
    assert EmbeddingRun.objects.get(pk=run.pk).status == JobStatus.FAILED


def test_a_second_start_conflicts_but_the_import_trigger_joins():
    project, images = project_with_images(2)
    run = services.embedding_run_start(project=project, image_ids=[images[0].pk])
    with pytest.raises(Conflict) as caught:
        services.embedding_run_start(project=project)
    assert caught.value.extra["run_id"] == run.pk
    joined = services.embedding_run_start(project=project, join=True)
    assert joined.pk == run.pk
    run.refresh_from_db()
    assert run.image_ids is None  # widened to every image without a vector

    EmbeddingRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING)
    follow_up = services.embedding_run_start(project=project, join=True)
    assert follow_up.pk != run.pk and follow_up.status == JobStatus.QUEUED
    assert services.embedding_run_start(project=project, join=True).pk == follow_up.pk
    assert EmbeddingRun.objects.filter(project=project).count() == 2


def test_a_run_whose_message_never_left_is_sent_again_by_the_sweep(django_capture_on_commit_callbacks, sent):
    from core.jobs import queued_jobs_redispatch

    project, _ = project_with_images(1)
    run = services.embedding_run_start(project=project)  # its on-commit send never ran: lost
    with django_capture_on_commit_callbacks(execute=True):
        assert services.embedding_run_start(project=project, join=True).pk == run.pk
    assert sent == [] and queued_jobs_redispatch() == 0  # within the grace of its own send
    EmbeddingRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert queued_jobs_redispatch() == 1
    assert sent == [("training.tasks.embed_images", [run.pk])]
    assert queued_jobs_redispatch() == 0  # stamped as dispatched: not sent again


def _zip_of(n: int) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(n):
            zf.writestr(f"photos/{i}.jpg", image_bytes(color=(i * 9 % 255, 40, 90)))
    return archive.getvalue()


def test_an_import_queues_one_run_on_commit(tmp_path, django_capture_on_commit_callbacks, sent):
    project = ProjectFactory()
    archive = tmp_path / "photos.zip"
    archive.write_bytes(_zip_of(25))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = import_run(project=project, files=[("photos.zip", str(archive))])
        assert report["images"]["created"] == 25
        more = tmp_path / "more.jpg"
        more.write_bytes(image_bytes(color=(1, 2, 3)))
        import_run(project=project, files=[("more.jpg", str(more))])  # joins the queued run
    assert sent == []  # nothing before the commit
    for callback in callbacks:
        callback()
    run = EmbeddingRun.objects.get(project=project)
    assert sent == [("training.tasks.embed_images", [run.pk])]
    assert (run.status, run.image_ids, run.model_key) == (JobStatus.QUEUED, None, KEY)
    run = services.embedding_run_execute(run_id=run.pk)
    assert run.stats["embedded"] == 26


def test_an_import_without_new_images_queues_nothing(tmp_path, settings):
    project = ProjectFactory()
    photo = tmp_path / "a.jpg"
    photo.write_bytes(image_bytes())
    import_run(project=project, files=[("a.jpg", str(photo))])
    EmbeddingRun.objects.all().delete()
    import_run(project=project, files=[("a.jpg", str(photo))])  # a duplicate
    settings.VISION_EMBED_ON_IMPORT = False
    photo.write_bytes(image_bytes(color=(7, 7, 7)))
    import_run(project=project, files=[("a.jpg", str(photo))])
    assert not EmbeddingRun.objects.exists()


def test_a_failing_trigger_never_fails_the_import(tmp_path, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("broker down")

    monkeypatch.setattr(services, "embedding_run_start", broken)
    photo = tmp_path / "a.jpg"
    photo.write_bytes(image_bytes())
    report = import_run(project=ProjectFactory(), files=[("a.jpg", str(photo))])
    assert report["images"]["created"] == 1
    assert "broker down" in caplog.text


def test_the_selector_reads_vectors_in_image_id_order_per_project_and_key():
    project, images = project_with_images(4)
    other, other_images = project_with_images(1)
    rng = np.random.default_rng(0)
    vectors = {}
    for image in reversed(images[:3]):  # written out of order
        vectors[image.pk] = rng.standard_normal(1280).astype(np.float32)
        ImageEmbedding.objects.create(project=project, image=image, model_key=KEY, vector=vectors[image.pk].tobytes())
    ImageEmbedding.objects.create(project=project, image=images[3], model_key="efficientnet_lite0-imagenet-224",
                                  vector=np.ones(1280, np.float32).tobytes())
    ImageEmbedding.objects.create(project=other, image=other_images[0], model_key=KEY,
                                  vector=np.ones(1280, np.float32).tobytes())
    ids, matrix = selectors.embedding_matrix(project=project, model_key=KEY)
    expected = sorted(vectors)
    assert ids.dtype == np.int64 and ids.tolist() == expected
    np.testing.assert_array_equal(matrix, np.stack([vectors[i] for i in expected]))
    ids, matrix = selectors.embedding_matrix(project=project, model_key=KEY,
                                             image_ids=[images[2].pk, images[3].pk, images[0].pk])
    assert ids.tolist() == [images[0].pk, images[2].pk]  # images[3] has no vector under this key
    np.testing.assert_array_equal(matrix[1], vectors[images[2].pk])
    ids, matrix = selectors.embedding_matrix(project=project, model_key=KEY, image_ids=[])
    assert ids.shape == (0,) and matrix.shape == (0, 1280)


@pytest.mark.postgres
def test_postgres_binary_copy_reads_what_the_row_by_row_path_reads():
    from django.db import connection

    project, images = project_with_images(5)
    rng = np.random.default_rng(1)
    for image in images[:4]:
        ImageEmbedding.objects.create(project=project, image=image, model_key=KEY,
                                      vector=rng.standard_normal(1280).astype("<f4").tobytes())
    rows = ImageEmbedding.objects.filter(project=project, model_key=KEY).order_by("image_id")
    fast = selectors._vectors_copy(rows, 1280)
    assert fast is not None
    vendor = connection.vendor
    try:
        connection.vendor = "other"  # the generic, row-by-row read
        slow = selectors.embedding_matrix(project=project, model_key=KEY)
    finally:
        connection.vendor = vendor
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    assert selectors._vectors_copy(rows.none(), 1280)[1].shape == (0, 1280)
    ImageEmbedding.objects.create(project=project, image=images[4], model_key=KEY, vector=b"\0" * 12)
    assert selectors._vectors_copy(rows, 1280) is None  # not the expected shape: no fast path


def test_embed_command_waits_for_the_vectors(capsys):
    project, _ = project_with_images(2)
    call_command("embed", str(project.pk), "--wait")
    assert "2 images embedded" in capsys.readouterr().out
    assert ImageEmbedding.objects.filter(project=project, model_key=KEY).count() == 2
    call_command("embed", str(project.pk))
    assert "queued" in capsys.readouterr().out


def test_api_starts_and_shows_runs_by_role(api_client):
    project, _ = project_with_images(1)
    users = {role: UserFactory() for role in ("admin", "lead", "annotator")}
    for role, user in users.items():
        project.memberships.create(user=user, role=role)
    url = f"/api/projects/{project.pk}/embedding-runs/"
    for role, code in (("lead", 403), ("annotator", 403)):
        api_client.force_authenticate(users[role])
        assert api_client.post(url, {}, format="json").status_code == code
    api_client.force_authenticate(UserFactory())
    assert api_client.post(url, {}, format="json").status_code == 404

    api_client.force_authenticate(users["admin"])
    response = api_client.post(url, {"model_key": KEY}, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["status"], body["model_key"], body["requested_by"]) == ("queued", KEY, users["admin"].username)
    conflict = api_client.post(url, {}, format="json")
    assert conflict.status_code == 409 and conflict.json()["run_id"] == body["id"]
    assert api_client.post(url, {"model_key": "nope"}, format="json").status_code == 400

    services.embedding_run_execute(run_id=body["id"])
    detail = f"/api/embedding-runs/{body['id']}/"
    api_client.force_authenticate(users["lead"])
    shown = api_client.get(detail).json()
    assert (shown["status"], shown["total"], shown["processed"], shown["stats"]["embedded"]) == ("succeeded", 1, 1, 1)
    api_client.force_authenticate(users["annotator"])
    assert api_client.get(detail).status_code == 403
    api_client.force_authenticate(UserFactory())
    assert api_client.get(detail).status_code == 404
    api_client.force_authenticate(users["lead"])
    assert api_client.post(f"{detail}cancel/").status_code == 403


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_zip_upload_is_embedded_by_a_real_worker(api_client, celery_worker):
    from tests.labeling.test_import_api import upload, wait_for

    project = ProjectFactory()
    lead = UserFactory()
    project.memberships.create(user=lead, role="lead")
    api_client.force_authenticate(lead)
    response = api_client.post(f"/api/projects/{project.pk}/images/",
                               {"files": [upload("photos.zip", _zip_of(12))]}, format="multipart")
    assert response.status_code == 202
    assert wait_for(ImportJob, response.json()["job_id"]).status == JobStatus.SUCCEEDED
    run = wait_for(EmbeddingRun, EmbeddingRun.objects.get(project=project).pk)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.stats["embedded"] == 12 and EmbeddingRun.objects.filter(project=project).count() == 1
    assert len(selectors.embedding_matrix(project=project, model_key=KEY)[0]) == 12


def test_a_run_flags_a_new_image_that_looks_like_an_older_one():
    project, images = project_with_images(2)  # names of one length: the same pixels, other bytes
    ImageFactory(project=project, original_name=f"p{project.pk}-a-much-longer-name.png", width=32, height=80)
    run_once(project)
    assert NearDuplicate.objects.filter(project=project, image=images[1], duplicate_of=images[0]).exists()
    assert NearDuplicate.objects.get(image=images[1]).similarity > 0.999
