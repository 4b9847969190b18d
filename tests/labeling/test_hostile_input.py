"""Hostile input to the project API: each test holds a hole closed."""
import pytest

from labeling.models import Role
from tests.factories import MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def _admin_of(project):
    return MembershipFactory(project=project, role=Role.ADMIN).user


@pytest.mark.parametrize("name", ["evil.PT", "evil.Pt", "missing.pt", "../media/escape.pt", "/etc/passwd",
                                  "evil", "sub/evil.pt", "model.YAML", "trees.pt\x00.yaml"])
def test_start_weights_other_than_a_trusted_file_or_a_config_are_refused(api_client, settings, name):
    project = ProjectFactory()
    api_client.force_authenticate(_admin_of(project))
    settings.VISION_WEIGHTS_DIR.mkdir(parents=True)
    (settings.VISION_WEIGHTS_DIR / "trees.pt").write_bytes(b"checkpoint")
    response = api_client.patch(f"/api/projects/{project.pk}/", {"start_weights": name}, format="json")
    assert response.status_code == 400, response.content
    assert "start_weights" in response.json()["errors"]
    project.refresh_from_db()
    assert project.start_weights == ""


@pytest.mark.parametrize("name", ["trees.pt", "TREES.PT", "yolov8s.yaml", ""])
def test_start_weights_from_the_trusted_folder_or_a_config_are_kept(api_client, settings, name):
    project = ProjectFactory()
    api_client.force_authenticate(_admin_of(project))
    settings.VISION_WEIGHTS_DIR.mkdir(parents=True)
    (settings.VISION_WEIGHTS_DIR / "trees.pt").write_bytes(b"checkpoint")
    (settings.VISION_WEIGHTS_DIR / "TREES.PT").write_bytes(b"checkpoint")
    response = api_client.patch(f"/api/projects/{project.pk}/", {"start_weights": name}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["start_weights"] == name


def test_a_bare_architecture_name_is_a_classifier_setting_only(api_client):
    project = ProjectFactory(task_type="classification")
    api_client.force_authenticate(_admin_of(project))
    response = api_client.patch(f"/api/projects/{project.pk}/", {"start_weights": "resnet18"}, format="json")
    assert response.status_code == 200, response.content
    detector = ProjectFactory()
    api_client.force_authenticate(_admin_of(detector))
    response = api_client.patch(f"/api/projects/{detector.pk}/", {"start_weights": "resnet18"}, format="json")
    assert response.status_code == 400


def _two_classes(api_client):
    project = ProjectFactory()
    api_client.force_authenticate(_admin_of(project))
    url = f"/api/projects/{project.pk}/label-classes/"
    car = api_client.post(url, {"name": "car", "hotkey": "c"}, format="json").json()
    bus = api_client.post(url, {"name": "bus", "hotkey": "u"}, format="json").json()
    return project, car, f"{url}{bus['id']}/"


@pytest.mark.parametrize("change, field", [
    ({"name": "car"}, "name"), ({"name": " car "}, "name"), ({"hotkey": "c"}, "hotkey"), ({"hotkey": "C"}, "hotkey"),
    ({"color": "bad"}, "color"), ({"color": "#12345g"}, "color"),
    ({"order": 10**12}, "order"), ({"name": "x" * 101}, "name"),
])
def test_a_class_change_to_what_is_taken_or_malformed_is_a_400_naming_the_field(api_client, change, field):
    project, car, bus_url = _two_classes(api_client)
    response = api_client.patch(bus_url, change, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["detail"]
    bus = api_client.get(f"/api/projects/{project.pk}/label-classes/").json()["results"][1]
    assert (bus["name"], bus["hotkey"]) == ("bus", "u")


def test_the_class_services_check_the_colour_for_every_caller():
    from django.core.exceptions import ValidationError

    from labeling.services import label_class_create, label_class_update

    project = ProjectFactory()
    with pytest.raises(ValidationError, match="colour"):
        label_class_create(project=project, name="car", color="bad")
    car = label_class_create(project=project, name="car", color="#A1B2C3")
    with pytest.raises(ValidationError, match="colour"):
        label_class_update(label_class=car, color="red")
    car.refresh_from_db()
    assert car.color == "#A1B2C3"


DEEP_JSON = "[" * 200_000 + "]" * 200_000


def test_deeply_nested_coco_labels_are_a_label_error_and_the_report_says_the_images_landed(settings):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from rest_framework.test import APIClient

    from core.models import Image
    from tests.factories import png_bytes

    project = ProjectFactory()
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(MembershipFactory(project=project, role=Role.LEAD).user)
    files = [SimpleUploadedFile("a.png", png_bytes(), content_type="image/png"),
             SimpleUploadedFile("labels.json", DEEP_JSON.encode(), content_type="application/json")]
    response = client.post(f"/api/projects/{project.pk}/images/", {"files": files, "label_format": "coco"},
                           format="multipart")
    assert response.status_code == 207, response.content[:300]
    report = response.json()
    assert report["images"]["created"] == 1 == Image.objects.filter(project=project).count()
    assert report["labels"]["error"] == 1
    errors = [item["error"] for item in report["items"] if item["status"] == "error"]
    assert any("nested too deeply" in error for error in errors), errors


@pytest.mark.parametrize("body", [DEEP_JSON, '{"a":' * 100_000 + "1" + "}" * 100_000])
def test_a_deeply_nested_json_request_body_is_a_400(body):
    from rest_framework.test import APIClient

    project = ProjectFactory()
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(_admin_of(project))
    response = client.patch(f"/api/projects/{project.pk}/", body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "nested too deeply" in response.json()["detail"]


def test_a_deeply_nested_class_map_is_a_400():
    from django.core.files.uploadedfile import SimpleUploadedFile
    from rest_framework.test import APIClient

    from tests.factories import png_bytes

    project = ProjectFactory()
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(MembershipFactory(project=project, role=Role.LEAD).user)
    files = [SimpleUploadedFile("a.png", png_bytes(), content_type="image/png")]
    response = client.post(f"/api/projects/{project.pk}/images/",
                           {"files": files, "label_format": "coco", "class_map": DEEP_JSON}, format="multipart")
    assert response.status_code == 400, response.content[:300]
    assert "class_map" in response.json()["detail"]


ALIAS_BOMB = "\n".join(
    ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]" for n in range(1, 9)]
    + ["names: *a8"]
)


def _yolo_folder(tmp_path, data_yaml: str):
    from tests.factories import png_bytes

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(png_bytes())
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "data.yaml").write_text(data_yaml)
    from labeling.importers.sources import folder_files

    return list(folder_files(str(tmp_path)))


def _label_errors(report):
    return [item["error"] for item in report["items"] if item["status"] == "error"]


def test_a_yaml_alias_bomb_is_refused_without_expanding_it(tmp_path):
    import json

    from labeling.importers.service import import_run

    project = ProjectFactory()
    report = import_run(project=project, files=_yolo_folder(tmp_path, ALIAS_BOMB), label_format="yolo",
                        create_classes=True)
    assert report["images"]["created"] == 1
    assert any("alias" in error for error in _label_errors(report)), _label_errors(report)
    assert len(json.dumps(report)) < 10_000
    assert project.label_classes.count() == 0


@pytest.mark.parametrize("names", ["[[1, 2], tree]", "{0: [a, b]}", "[tree, null]", "['']"])
def test_yolo_class_names_must_be_strings(tmp_path, names):
    from labeling.importers.service import import_run

    project = ProjectFactory()
    report = import_run(project=project, files=_yolo_folder(tmp_path, f"names: {names}\n"), label_format="yolo",
                        create_classes=True)
    assert any("names" in error and "text" in error for error in _label_errors(report)), _label_errors(report)
    assert project.label_classes.count() == 0


def test_every_error_text_in_an_import_report_is_capped(tmp_path):
    from labeling.importers.service import REPORT_TEXT_MAX, import_run

    project = ProjectFactory()
    long_name = "x" * 50_000
    report = import_run(project=project, files=_yolo_folder(tmp_path, f"names: [{long_name}]\n"),
                        label_format="yolo")
    errors = _label_errors(report)
    assert errors and all(len(error) <= REPORT_TEXT_MAX for error in errors), [len(e) for e in errors]
    assert all(len(item["name"]) <= REPORT_TEXT_MAX for item in report["items"])


def test_the_import_job_list_leaves_the_reports_to_the_detail(api_client):
    from core.models import JobStatus
    from labeling.models import ImportJob

    project = ProjectFactory()
    api_client.force_authenticate(MembershipFactory(project=project, role=Role.LEAD).user)
    report = {"images": {"created": 3, "duplicate": 0, "error": 1}, "labels": None,
              "items": [{"name": "a.png", "status": "error", "error": "not an image"}] * 500}
    job = ImportJob.objects.create(project=project, source_path="/x", status=JobStatus.SUCCEEDED, report=report)
    listed = api_client.get(f"/api/projects/{project.pk}/import-jobs/").json()["results"]
    assert "report" not in listed[0]
    assert listed[0]["images"] == {"created": 3, "duplicate": 0, "error": 1}
    detail = api_client.get(f"/api/import-jobs/{job.pk}/").json()
    assert len(detail["report"]["items"]) == 500
