"""A lead's import and export pages in Chromium, with a real Celery worker running the
jobs: a COCO zip with labels (a mapped category, a crowd region) lands and its boxes show
in the image editor, the crowd region greyed; a YOLO export is followed to its download."""
import io
import json
import zipfile

import pytest
import yaml

from core.models import Image
from labeling.models import Annotation, Role

from .conftest import sign_in
from .factories import detection_scene

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def coco_zip(path, png) -> None:
    document = {
        "images": [{"id": 1, "file_name": "street.png", "width": 640, "height": 480}],
        "categories": [{"id": 7, "name": "Automobile"}, {"id": 8, "name": "person"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [40, 40, 120, 80], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 8, "bbox": [300, 200, 200, 200], "iscrowd": 1},
        ],
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images/street.png", png)
        archive.writestr("annotations/instances.json", json.dumps(document))


def test_a_coco_zip_imported_on_the_upload_page_shows_its_boxes_in_the_editor(
    page, make_user, tmp_path, celery_worker
):
    from tests.factories import png_bytes

    lead = make_user("lea")
    scene = detection_scene(members={lead: Role.LEAD}, images=0)
    pid = scene.project.pk
    archive = tmp_path / "from-another-tool.zip"
    coco_zip(archive, png_bytes(640, 480, (20, 120, 60)))

    sign_in(page, "lea")
    page.goto(f"/projects/{pid}/upload/")
    assert page.locator("nav a", has_text="Export").count() == 1
    page.set_input_files("#upload-files", str(archive))
    page.select_option("#upload-format", "coco")
    page.fill("#upload-class-map", "Automobile = car")
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#upload-report strong", timeout=60_000)
    summary = page.text_content("#upload-report strong")
    assert "1 new" in summary and "labels (coco): 1 read" in summary and "0 failed" in summary
    assert page.get_attribute("#upload-progress", "value") == "1"

    image = Image.objects.get(project=scene.project, original_name="street.png")
    boxes = Annotation.objects.get(image=image).payload["boxes"]
    assert [(b["label"], b.get("ignore", False)) for b in boxes] == [
        (scene.classes["car"].pk, False), (scene.classes["person"].pk, True)]

    page.goto(f"/projects/{pid}/images/{image.pk}/")
    page.locator(".stage-overlay g.box").nth(1).wait_for()
    assert page.locator("#box-list .box-row").count() == 2
    car = page.locator(f".stage-overlay g.box[data-label='{scene.classes['car'].pk}']")
    crowd = page.locator(".stage-overlay g.box.ignore")
    assert car.count() == 1 and "ignore" not in car.get_attribute("class")
    assert crowd.count() == 1 and crowd.get_attribute("data-label") == str(scene.classes["person"].pk)
    assert crowd.locator("rect.box-rect").get_attribute("stroke") == "#9e9e9e"
    assert "(ignored)" in crowd.locator("text").text_content()


def test_a_yolo_export_is_followed_to_its_download_on_the_export_page(page, make_user, tmp_path, celery_worker):
    lead = make_user("lea")
    scene = detection_scene(members={lead: Role.LEAD}, images=2)
    car = scene.classes["car"].pk
    images = list(Image.objects.filter(project=scene.project).order_by("id"))
    for image in images:
        Annotation.objects.create(project=scene.project, image=image, author=lead, kind="correct",
                                  payload={"boxes": [{"x1": 64.0, "y1": 48.0, "x2": 320.0, "y2": 240.0, "label": car}]})

    sign_in(page, "lea")
    page.goto(f"/projects/{scene.project.pk}/export/")
    page.select_option("#export-format", "yolo")
    page.click("#export-form button[type=submit]")
    page.locator("#export-download:not([hidden])").wait_for(timeout=60_000)
    assert "succeeded" in page.text_content("#export-status")
    with page.expect_download() as caught:
        page.click("#export-download")
    saved = tmp_path / "export.zip"
    caught.value.save_as(saved)

    with zipfile.ZipFile(io.BytesIO(saved.read_bytes())) as archive:
        names = archive.namelist()
        data = yaml.safe_load(archive.read("data.yaml"))
        labels = [archive.read(n).decode() for n in names if n.startswith("labels/") and n.endswith(".txt")]
    assert data["names"] == {0: "car", 1: "person", 2: "tree"}
    assert sum(n.startswith("images/") for n in names) == 2
    assert len(labels) == 2
    width, height = images[0].width, images[0].height
    cx, cy, w, h = (64 + 320) / 2 / width, (48 + 240) / 2 / height, 256 / width, 192 / height
    assert labels[0] == f"0 {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n"
