"""The import and export pages: leads reach them from the navigation and are offered the
formats that fit the project's task type; annotators are refused."""
import pytest

from labeling.models import Role
from tests.factories import MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def test_leads_get_the_formats_of_their_task_type_and_annotators_are_refused(client):
    project = ProjectFactory(task_type="classification")
    client.force_login(MembershipFactory(project=project, role=Role.LEAD).user)
    export = client.get(f"/projects/{project.pk}/export/")
    assert export.status_code == 200
    assert [value for value, _ in export.context["export_formats"]] == ["yolo", "labelstudio", "cvat", "csv"]
    upload = client.get(f"/projects/{project.pk}/upload/")
    assert [value for value, _ in upload.context["label_formats"]] == ["labelstudio", "cvat", "folder", "csv"]
    assert [item["title"] for item in upload.context["nav"]][3:5] == ["Import", "Export"]

    client.force_login(MembershipFactory(project=project, role=Role.ANNOTATOR).user)
    assert client.get(f"/projects/{project.pk}/export/").status_code == 403
