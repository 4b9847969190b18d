"""Privacy blurring end to end: imports wait for their blur, everyone but an admin gets the
blurred file (queue, display copy, export), the admin's original access is logged, re-runs do
not blur twice, and an admin's regions are applied and removed ones restored."""
import io
import re
import zipfile

import numpy as np
import pytest
import skimage.data
from django.core.files.storage import default_storage
from PIL import Image as PILImage
from scipy import ndimage

from core.models import Image, JobStatus
from labeling.models import (
    BlurRegion,
    BlurRun,
    BlurSource,
    BlurState,
    ImageBlur,
    OriginalAccess,
    Role,
    Task,
    TaskStatus,
)
from labeling.privacy import services as privacy
from labeling.privacy.blur import Box, padded_box
from labeling.privacy.detectors import Detection
from labeling.services import annotation_import_create, membership_set
from tests.labeling.test_import_api import wait_for
from tests.labeling.test_ingest import ingest, make_project, make_user
from training.models import EmbeddingRun, ImageEmbedding

PADDING = 0.15


def astronaut_png() -> bytes:
    out = io.BytesIO()
    PILImage.fromarray(skimage.data.astronaut()).save(out, "PNG")
    return out.getvalue()


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(data)).convert("RGB"))


def stored(name: str) -> bytes:
    with default_storage.open(name, "rb") as f:
        return f.read()


def sharpness(rgb: np.ndarray, box: Box) -> float:
    gray = np.asarray(PILImage.fromarray(rgb).convert("L"), dtype=np.float64)
    return float(ndimage.laplace(gray[int(box.y1):int(box.y2), int(box.x1):int(box.x2)]).var())


def outside(shape, regions) -> np.ndarray:
    """True where no padded region reaches."""
    mask = np.ones(shape[:2], dtype=bool)
    for r in regions:
        left, top, right, bottom = padded_box(Box(r.x1, r.y1, r.x2, r.y2), padding=PADDING,
                                              width=shape[1], height=shape[0])
        mask[top:bottom, left:right] = False
    return mask


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture(autouse=True)
def _no_heartbeat_thread(settings):
    """The heartbeat thread has its own connection, which cannot see a test's uncommitted run
    row and would take the run for cancelled; the worker test commits, so it beats anyway."""
    settings.VISION_JOB_HEARTBEAT_SECONDS = 3600


@pytest.fixture
def people(db):
    project = make_project(classes=("person", "car"))
    users = {role: make_user(role) for role in ("annotator", "lead", "admin")}
    for role, user in users.items():
        membership_set(project=project, user=user, role=role)
    return project, users


@pytest.fixture
def blurring(people):
    project, users = people
    privacy.privacy_settings_update(project=project, enabled=True, padding=PADDING)
    return project, users


@pytest.fixture
def blurred_astronaut(django_capture_on_commit_callbacks):
    """Imports the astronaut and runs its blur; the old files' removal after commit runs too."""
    def make(project, **options):
        if options:
            privacy.privacy_settings_update(project=project, **options)
        result = ingest(project, "astronaut.png", astronaut_png())
        run = privacy.blur_run_start(project=project, image_ids=[result.image_id], join=True)
        with django_capture_on_commit_callbacks(execute=True):
            run = privacy.blur_run_execute(run_id=run.pk)
        assert run.status == JobStatus.SUCCEEDED, run.error
        return Image.objects.get(pk=result.image_id), run

    return make


def test_an_imported_image_waits_unserved_until_blurred(client, api_client, blurring):
    project, users = blurring
    image = Image.objects.get(pk=ingest(project, "astronaut.png", astronaut_png()).image_id)
    assert ImageBlur.objects.get(pk=image.pk).state == BlurState.PENDING
    assert list(Task.objects.filter(image=image).values_list("status", flat=True)) == [TaskStatus.HELD]
    api_client.force_authenticate(users["annotator"])
    assert api_client.get(f"/api/projects/{project.pk}/tasks/next/").status_code == 204
    for role in ("annotator", "lead", "admin"):  # the media URL serves the sharp file to no one
        client.force_login(users[role])
        assert client.get(image.file.url).status_code == 404


def test_the_blur_run_blurs_the_face_and_leaves_far_pixels_unchanged(blurred_astronaut, blurring):
    project, _ = blurring
    image, run = blurred_astronaut(project)
    regions = list(BlurRegion.objects.filter(image=image))
    assert [(r.source, r.label) for r in regions] == [(BlurSource.FACE, "face")]
    assert run.stats["detected"] == 1 and run.stats["rendered"] == 1 and run.stats["detectors"] == ["mtcnn"]
    original, render = skimage.data.astronaut(), pixels(stored(image.file.name))
    face = Box(regions[0].x1, regions[0].y1, regions[0].x2, regions[0].y2)
    assert sharpness(render, face) <= 0.2 * sharpness(original, face)
    far = outside(original.shape, regions)
    assert np.array_equal(render[far], original[far])
    assert far.mean() > 0.9  # most of the photo is far from the face
    # the queue gets the image now; the original sits under a random path, the old name is gone
    assert list(Task.objects.filter(image=image).values_list("status", flat=True)) == [TaskStatus.OPEN]
    blur = ImageBlur.objects.get(pk=image.pk)
    assert blur.state == BlurState.BLURRED and blur.original.name.startswith(f"projects/{project.pk}/originals/")
    token = blur.original.name.split("/")[3]
    assert len(token) >= 32 and image.sha256 not in token
    assert np.array_equal(pixels(stored(blur.original.name)), original)
    assert not default_storage.exists(f"projects/{project.pk}/images/{image.sha256[:2]}/{image.sha256}.png")


def test_annotators_and_leads_never_get_the_original_and_admins_get_it_logged(blurred_astronaut,
        client, api_client, blurring, settings):
    settings.VISION_DISPLAY_MAX_SIDE = 256  # so the image has a display copy too
    project, users = blurring
    image, _ = blurred_astronaut(project)
    original = astronaut_png()
    blur = ImageBlur.objects.get(pk=image.pk)
    api_client.force_authenticate(users["annotator"])
    work = api_client.get(f"/api/projects/{project.pk}/tasks/next/").json()
    assert work["image"]["id"] == image.pk and work["image"]["url"] != work["image"]["display_url"]
    for role in ("annotator", "lead"):
        client.force_login(users[role])
        served = body(client.get(work["image"]["url"]))
        assert served == stored(image.file.name) and not np.array_equal(pixels(served), pixels(original))
        display = pixels(body(client.get(work["image"]["display_url"])))
        sharp_display = np.asarray(PILImage.open(io.BytesIO(original)).convert("RGB").resize(display.shape[1::-1]))
        assert display.shape == (256, 256, 3)
        face = Box(90, 31, 134, 86)  # the face box halved
        assert sharpness(display, face) < 0.2 * sharpness(sharp_display, face)
        assert client.get(f"/media/{blur.original.name}").status_code == 404
        api_client.force_authenticate(users[role])
        assert api_client.get(f"/api/images/{image.pk}/original/").status_code == 403
        assert api_client.get(f"/api/projects/{project.pk}/privacy/original-accesses/").status_code == 403
    assert not OriginalAccess.objects.exists()
    client.force_login(users["admin"])
    assert client.get(f"/media/{blur.original.name}").status_code == 404  # not even admins, unlogged
    api_client.force_authenticate(users["admin"])
    response = api_client.get(f"/api/images/{image.pk}/original/")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert np.array_equal(pixels(body(response)), pixels(original))
    access = OriginalAccess.objects.get()
    assert (access.user, access.image_id, access.project_id) == (users["admin"], image.pk, project.pk)
    log = api_client.get(f"/api/projects/{project.pk}/privacy/original-accesses/").json()["results"]
    assert [(row["username"], row["image"]) for row in log] == [("admin", image.pk)]


def test_an_export_by_a_lead_holds_the_blurred_image(blurred_astronaut, api_client, blurring):
    project, users = blurring
    image, _ = blurred_astronaut(project)
    person = project.label_classes.get(name="person").pk
    annotation_import_create(image=image, payload={"boxes": [{"x1": 150, "y1": 40, "x2": 330, "y2": 500,
                                                               "label": person}]})
    api_client.force_authenticate(users["lead"])
    response = api_client.get(f"/api/projects/{project.pk}/export/?format=coco")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(body(response)))
    images = [name for name in archive.namelist() if name.endswith(".png")]
    assert len(images) == 1
    exported = archive.read(images[0])
    assert exported == stored(image.file.name)
    assert not np.array_equal(pixels(exported), skimage.data.astronaut())


def test_only_an_admin_exports_the_originals_and_each_one_written_is_logged(blurred_astronaut, api_client, blurring):
    project, users = blurring
    image, _ = blurred_astronaut(project)
    person = project.label_classes.get(name="person").pk
    annotation_import_create(image=image, payload={"boxes": [{"x1": 150, "y1": 40, "x2": 330, "y2": 500,
                                                               "label": person}]})
    url = f"/api/projects/{project.pk}/export/?format=coco&originals=1"
    api_client.force_authenticate(users["lead"])
    assert api_client.get(url).status_code == 403
    assert not OriginalAccess.objects.exists()

    api_client.force_authenticate(users["admin"])
    response = api_client.get(url)
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(body(response)))
    [name] = [n for n in archive.namelist() if n.startswith("images/")]
    assert np.array_equal(pixels(archive.read(name)), pixels(astronaut_png()))  # the sharp original
    access = OriginalAccess.objects.get()
    assert (access.user, access.image_id) == (users["admin"], image.pk)

    # an admin's originals export, run as a job, is the admins' to download, not the leads'
    from labeling.exporters.service import export_job_execute

    job = api_client.get(url + "&async=1").json()
    export_job_execute(job_id=job["job_id"])  # as the worker does
    detail = api_client.get(job["status_url"]).json()
    assert detail["status"] == "succeeded" and detail["originals"] is True
    assert api_client.get(detail["download_url"]).status_code == 200
    api_client.force_authenticate(users["lead"])
    assert api_client.get(detail["download_url"]).status_code in (403, 404)
    assert OriginalAccess.objects.count() == 2


def test_an_image_waiting_for_its_blur_is_left_out_of_exports(api_client, blurring):
    project, users = blurring
    image = Image.objects.get(pk=ingest(project, "astronaut.png", astronaut_png()).image_id)
    person = project.label_classes.get(name="person").pk
    annotation_import_create(image=image, payload={"boxes": [{"x1": 1, "y1": 1, "x2": 50, "y2": 50,
                                                               "label": person}]})
    assert Task.objects.get(image=image).status == TaskStatus.DONE  # labeled by the import, held no more
    api_client.force_authenticate(users["lead"])
    archive = zipfile.ZipFile(io.BytesIO(body(api_client.get(f"/api/projects/{project.pk}/export/?format=coco"))))
    assert not [name for name in archive.namelist() if name.endswith(".png")]


def test_running_the_job_again_does_not_blur_twice(blurred_astronaut, api_client, blurring):
    project, users = blurring
    image, _ = blurred_astronaut(project)
    first = pixels(stored(image.file.name))
    api_client.force_authenticate(users["admin"])
    response = api_client.post(f"/api/projects/{project.pk}/privacy/blur-runs/", {}, format="json")
    assert response.status_code == 202
    again = privacy.blur_run_execute(run_id=response.json()["id"])
    assert again.status == JobStatus.SUCCEEDED and again.stats["detected"] == 0  # no second detection
    image.refresh_from_db()
    assert ImageBlur.objects.get(pk=image.pk).renders == 2
    assert np.array_equal(pixels(stored(image.file.name)), first)
    assert BlurRegion.objects.filter(image=image).count() == 1


def test_a_second_project_run_while_one_is_queued_is_a_conflict_and_members_cannot_start_one(
        api_client, blurring):
    project, users = blurring
    api_client.force_authenticate(users["admin"])
    first = api_client.post(f"/api/projects/{project.pk}/privacy/blur-runs/", {}, format="json")
    second = api_client.post(f"/api/projects/{project.pk}/privacy/blur-runs/", {}, format="json")
    assert second.status_code == 409 and second.json()["run_id"] == first.json()["id"]
    api_client.force_authenticate(users["lead"])
    assert api_client.post(f"/api/projects/{project.pk}/privacy/blur-runs/", {}, format="json").status_code == 403


def test_a_manual_region_is_applied_and_a_removed_one_restored_from_the_original(blurred_astronaut, api_client, blurring):
    project, users = blurring
    image, _ = blurred_astronaut(project)
    original = skimage.data.astronaut()
    face = BlurRegion.objects.get(image=image)
    api_client.force_authenticate(users["admin"])
    response = api_client.post(f"/api/images/{image.pk}/blur/regions/",
                               {"x1": 380, "y1": 380, "x2": 470, "y2": 470}, format="json")
    assert response.status_code == 201, response.json()
    manual = BlurRegion.objects.get(pk=response.json()["id"])
    image.refresh_from_db()
    render = pixels(stored(image.file.name))
    assert sharpness(render, Box(380, 380, 470, 470)) < 0.2 * sharpness(original, Box(380, 380, 470, 470))
    far = outside(original.shape, [face, manual])
    assert np.array_equal(render[far], original[far])

    response = api_client.patch(f"/api/blur-regions/{face.pk}/", {"removed": True}, format="json")
    assert response.status_code == 200 and response.json()["removed"] is True
    image.refresh_from_db()
    render = pixels(stored(image.file.name))
    away_from_manual = outside(original.shape, [manual])
    assert np.array_equal(render[away_from_manual], original[away_from_manual])  # the face is back, sharp
    view = api_client.get(f"/api/images/{image.pk}/blur/").json()
    assert view["state"] == "blurred" and view["original_kept"] is True
    assert [(r["source"], r["removed"]) for r in view["regions"]] == [("face", True), ("manual", False)]

    # a re-detection does not bring the removed false hit back
    run = privacy.blur_run_start(project=project, redetect=True)
    assert privacy.blur_run_execute(run_id=run.pk).status == JobStatus.SUCCEEDED
    assert list(BlurRegion.objects.filter(image=image, removed=False).values_list("source", flat=True)) == ["manual"]


def test_bad_regions_are_refused_with_the_reason(blurred_astronaut, api_client, blurring):
    project, users = blurring
    image, _ = blurred_astronaut(project)
    api_client.force_authenticate(users["admin"])
    url = f"/api/images/{image.pk}/blur/regions/"
    response = api_client.post(url, {"x1": 600, "y1": 600, "x2": 700, "y2": 700}, format="json")
    assert response.status_code == 400 and "outside the image (512x512)" in response.json()["detail"]
    response = api_client.post(url, {"x1": "a", "y1": 0, "x2": 10, "y2": 10}, format="json")
    assert response.status_code == 400 and "x1" in response.json()["detail"]
    api_client.force_authenticate(users["lead"])
    assert api_client.post(url, {"x1": 0, "y1": 0, "x2": 10, "y2": 10}, format="json").status_code == 403
    assert api_client.get(f"/api/images/{image.pk}/blur/").status_code == 403


def test_a_deleted_original_is_not_re_detected_nor_restorable(blurred_astronaut, api_client, blurring, monkeypatch):
    project, users = blurring
    image, _ = blurred_astronaut(project, original_policy="delete")
    blur = ImageBlur.objects.get(pk=image.pk)
    assert blur.original_deleted and not blur.original
    assert "originals" not in default_storage.listdir(f"projects/{project.pk}")[0]
    first = pixels(stored(image.file.name))
    api_client.force_authenticate(users["admin"])
    response = api_client.get(f"/api/images/{image.pk}/original/")
    assert response.status_code == 404 and "deleted after blurring" in response.json()["detail"]

    def no_detection(*args, **kwargs):
        raise AssertionError("detection ran on a blurred image")

    monkeypatch.setattr(privacy._Detectors, "__call__", no_detection)
    run = privacy.blur_run_start(project=project, redetect=True)
    run = privacy.blur_run_execute(run_id=run.pk)
    assert run.status == JobStatus.SUCCEEDED and run.stats["unchanged"] == 1
    image.refresh_from_db()
    assert np.array_equal(pixels(stored(image.file.name)), first)  # not blurred twice
    face = BlurRegion.objects.get(image=image)
    response = api_client.patch(f"/api/blur-regions/{face.pk}/", {"removed": True}, format="json")
    assert response.status_code == 400 and "cannot be restored" in response.json()["detail"]
    # a missed region still goes on top of the last render
    assert api_client.post(f"/api/images/{image.pk}/blur/regions/",
                           {"x1": 380, "y1": 380, "x2": 470, "y2": 470}, format="json").status_code == 201
    image.refresh_from_db()
    render = pixels(stored(image.file.name))
    assert not np.array_equal(render[380:470, 380:470], first[380:470, 380:470])
    assert np.array_equal(render[:300, :], first[:300, :])


def test_a_render_drops_the_old_vectors_and_queues_new_ones(blurred_astronaut, blurring):
    project, _ = blurring
    image, _ = blurred_astronaut(project)
    ImageEmbedding.objects.create(project=project, image=image, model_key="k", vector=b"\0" * 8)
    face = BlurRegion.objects.get(image=image)
    EmbeddingRun.objects.all().delete()
    privacy.blur_region_set_removed(region=face, removed=True)
    assert not ImageEmbedding.objects.filter(image=image).exists()
    run = EmbeddingRun.objects.get()
    assert run.status == JobStatus.QUEUED and run.image_ids in (None, [image.pk])


def test_a_waiting_image_gets_no_vector(blurring):
    from training.selectors import embeddings_missing

    project, _ = blurring
    image = Image.objects.get(pk=ingest(project, "astronaut.png", astronaut_png()).image_id)
    assert image.pk not in set(embeddings_missing(project).values_list("id", flat=True))


@pytest.mark.parametrize("change, field, words", [
    ({"strength": 0}, "strength", "strength must be between 1 and 100; got 0"),
    ({"padding": 1.5}, "padding", "padding must be between 0 and 1; got 1.5"),
    ({"method": "swirl"}, "method", "not a valid choice"),
    ({"detector_classes": ["plate"]}, "detector_classes", "Not classes of this project: plate"),
    ({"enabled": True, "blur_faces": False}, "enabled", "blurs nothing"),
])
def test_settings_are_checked_with_a_message_naming_the_field(api_client, people, change, field, words):
    project, users = people
    api_client.force_authenticate(users["admin"])
    response = api_client.patch(f"/api/projects/{project.pk}/privacy/", change, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    assert re.search(words, response.json()["detail"]), response.json()["detail"]


def test_settings_are_read_by_leads_and_changed_by_admins(api_client, people):
    project, users = people
    api_client.force_authenticate(users["lead"])
    assert api_client.get(f"/api/projects/{project.pk}/privacy/").json()["enabled"] is False
    assert api_client.patch(f"/api/projects/{project.pk}/privacy/", {"enabled": True},
                            format="json").status_code == 403
    api_client.force_authenticate(users["annotator"])
    assert api_client.get(f"/api/projects/{project.pk}/privacy/").status_code == 403
    api_client.force_authenticate(users["admin"])
    response = api_client.patch(f"/api/projects/{project.pk}/privacy/",
                                {"enabled": True, "detector_classes": ["person"], "method": "pixelate"},
                                format="json")
    assert response.status_code == 200
    assert response.json()["detector_classes"] == ["person"] and response.json()["method"] == "pixelate"


def test_turning_blurring_on_blurs_the_images_already_there(blurring):
    project, users = blurring
    privacy.privacy_settings_update(project=project, enabled=False)
    image = Image.objects.get(pk=ingest(project, "astronaut.png", astronaut_png()).image_id)
    assert not ImageBlur.objects.filter(pk=image.pk).exists()
    privacy.privacy_settings_update(project=project, enabled=True)
    run = privacy.blur_run_execute(run_id=privacy.blur_run_start(project=project).pk)
    assert run.stats["rendered"] == 1
    image.refresh_from_db()
    assert ImageBlur.objects.get(pk=image.pk).state == BlurState.BLURRED
    assert Task.objects.get(image=image).status == TaskStatus.OPEN


def test_classes_of_the_project_detector_are_blurred_above_their_score(blurred_astronaut, blurring, monkeypatch):
    project, _ = blurring
    asked = []

    def detector(path):
        asked.append(path)
        return [Detection(Box(150, 40, 330, 500), 0.8, "person"), Detection(Box(0, 0, 40, 40), 0.9, "car"),
                Detection(Box(400, 400, 500, 500), 0.1, "person")]

    monkeypatch.setattr(privacy, "CLASS_DETECTOR_SOURCES", [lambda p: None, lambda p: detector])
    image, run = blurred_astronaut(project, blur_faces=False, detector_classes=["person"], detector_min_score=0.5)
    assert len(asked) == 1 and run.stats["detectors"] == ["deployed detector"]
    assert list(BlurRegion.objects.filter(image=image).values_list("source", "label", "score")) == [
        (BlurSource.DETECTOR, "person", 0.8)]


def test_blurring_detector_classes_without_a_deployed_detector_keeps_the_image_withheld(blurring, monkeypatch):
    project, _ = blurring
    monkeypatch.setattr(privacy, "CLASS_DETECTOR_SOURCES", [lambda p: None])
    privacy.privacy_settings_update(project=project, detector_classes=["person"])
    image_id = ingest(project, "astronaut.png", astronaut_png()).image_id
    run = privacy.blur_run_execute(run_id=privacy.blur_run_start(project=project, image_ids=[image_id]).pk)
    assert run.status == JobStatus.SUCCEEDED and run.stats["errors"] == 1
    blur = ImageBlur.objects.get(pk=image_id)
    assert blur.state == BlurState.PENDING and "needs a deployed detector" in blur.error
    assert Task.objects.get(image_id=image_id).status == TaskStatus.HELD


@pytest.mark.slow
def test_an_upload_is_blurred_by_a_real_worker_before_it_is_served(api_client, celery_worker, settings):
    settings.VISION_EMBED_ON_IMPORT = False
    project = make_project(classes=("person",))
    lead, annotator = make_user("lead"), make_user("annotator")
    membership_set(project=project, user=lead, role=Role.LEAD)
    membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
    privacy.privacy_settings_update(project=project, enabled=True)
    api_client.force_authenticate(lead)
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = api_client.post(f"/api/projects/{project.pk}/images/",
                               {"files": [SimpleUploadedFile("astronaut.png", astronaut_png())]}, format="multipart")
    assert response.status_code == 201, response.json()
    run = wait_for(BlurRun, BlurRun.objects.get(project=project).pk, seconds=120)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.stats["rendered"] == 1 and run.progress == 1.0 and run.processed == run.total == 1
    api_client.force_authenticate(annotator)
    work = api_client.get(f"/api/projects/{project.pk}/tasks/next/").json()
    image = Image.objects.get(pk=work["image"]["id"])
    assert "-blurred-1" in image.file.name
    face = BlurRegion.objects.get(image=image)
    box = Box(face.x1, face.y1, face.x2, face.y2)
    assert sharpness(pixels(stored(image.file.name)), box) <= 0.2 * sharpness(skimage.data.astronaut(), box)


def test_the_deployed_detector_is_a_registered_source_and_absent_without_a_deployment(people):
    from training.privacy import deployed_detector_for_blur

    project, _ = people
    assert deployed_detector_for_blur in privacy.CLASS_DETECTOR_SOURCES
    assert deployed_detector_for_blur(project) is None
