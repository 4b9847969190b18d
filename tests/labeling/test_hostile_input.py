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
