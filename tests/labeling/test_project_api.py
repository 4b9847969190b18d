import pytest

from core.models import Project
from labeling.models import Membership, Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def _member(project, role):
    return MembershipFactory(project=project, role=role).user


def test_stranger_cannot_see_a_project(api_client):
    project = ProjectFactory()
    api_client.force_authenticate(UserFactory())
    assert api_client.get(f"/api/projects/{project.pk}/").status_code == 404
    assert api_client.get("/api/projects/").json()["results"] == []


def test_project_list_shows_only_the_callers_projects(api_client):
    mine, _other = ProjectFactory(), ProjectFactory()
    user = _member(mine, Role.ANNOTATOR)
    api_client.force_authenticate(user)
    body = api_client.get("/api/projects/").json()["results"]
    assert [p["id"] for p in body] == [mine.pk]
    assert body[0]["my_role"] == "annotator"


def test_annotator_cannot_change_a_project(api_client):
    project = ProjectFactory(lease_ttl_seconds=600)
    api_client.force_authenticate(_member(project, Role.ANNOTATOR))
    response = api_client.patch(f"/api/projects/{project.pk}/", {"lease_ttl_seconds": 5}, format="json")
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]
    project.refresh_from_db()
    assert project.lease_ttl_seconds == 600


def test_lead_cannot_add_label_classes_but_admin_can(api_client):
    project = ProjectFactory()
    api_client.force_authenticate(_member(project, Role.LEAD))
    assert api_client.post(f"/api/projects/{project.pk}/label-classes/", {"name": "car"}).status_code == 403
    api_client.force_authenticate(_member(project, Role.ADMIN))
    response = api_client.post(f"/api/projects/{project.pk}/label-classes/", {"name": "car"})
    assert response.status_code == 201
    assert response.json()["hotkey"] == "1"


def test_admin_can_change_settings(api_client):
    project = ProjectFactory()
    api_client.force_authenticate(_member(project, Role.ADMIN))
    response = api_client.patch(f"/api/projects/{project.pk}/", {"annotations_per_image": 3}, format="json")
    assert response.status_code == 200
    assert response.json()["annotations_per_image"] == 3


def test_out_of_range_setting_is_rejected_with_its_name(api_client):
    project = ProjectFactory()
    api_client.force_authenticate(_member(project, Role.ADMIN))
    response = api_client.patch(f"/api/projects/{project.pk}/", {"random_share": 2.5}, format="json")
    assert response.status_code == 400
    assert "random_share" in response.json()["detail"] or "Random" in response.json()["detail"]


def test_staff_creates_project_with_classes_and_members(api_client):
    creator = UserFactory(is_staff=True)
    annotator = UserFactory(username="ann")
    api_client.force_authenticate(creator)
    response = api_client.post(
        "/api/projects/",
        {
            "name": "Cars",
            "task_type": "detection",
            "label_classes": [{"name": "vehicle"}, {"name": "car", "parent": "vehicle", "color": "#112233"}],
            "members": [{"user": "ann", "role": "annotator"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert [c["name"] for c in body["label_classes"]] == ["vehicle", "car"]
    assert body["label_classes"][1]["parent"] == body["label_classes"][0]["id"]
    project = Project.objects.get(pk=body["id"])
    assert Membership.objects.get(project=project, user=creator).role == Role.ADMIN
    assert Membership.objects.get(project=project, user=annotator).role == Role.ANNOTATOR


def test_non_staff_cannot_create_projects(api_client):
    api_client.force_authenticate(UserFactory())
    response = api_client.post("/api/projects/", {"name": "x", "task_type": "detection"}, format="json")
    assert response.status_code == 403
    assert not Project.objects.exists()


def test_anonymous_requests_are_refused(api_client):
    assert api_client.get("/api/projects/").status_code in (401, 403)


def test_token_auth_works_for_scripts(api_client):
    user = UserFactory(username="scripter")
    response = api_client.post("/api/auth/token/", {"username": "scripter", "password": "pw"})
    assert response.status_code == 200
    token = response.json()["token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api_client.get("/api/projects/").status_code == 200
    assert user.auth_token.key == token


def test_schema_and_docs_are_served(api_client):
    api_client.force_authenticate(UserFactory())
    assert api_client.get("/api/schema/").status_code == 200
    docs = api_client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()


def test_media_is_only_served_to_members(client):
    from tests.factories import ImageFactory

    image = ImageFactory()
    stranger = UserFactory(username="stranger")
    member = _member(image.project, Role.ANNOTATOR)
    client.force_login(stranger)
    assert client.get(image.file.url).status_code == 404
    client.force_login(member)
    response = client.get(image.file.url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:4] == b"\x89PNG"


def test_changing_the_strategy_rescores_the_queue(api_client, django_capture_on_commit_callbacks, monkeypatch):
    from training import tasks

    enqueued = []
    monkeypatch.setattr(tasks.queue_priorities_refresh, "apply_async", lambda args, kwargs, **_: enqueued.append(*args))
    project = ProjectFactory(sampling_strategy="entropy")
    api_client.force_authenticate(_member(project, Role.ADMIN))
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.patch(f"/api/projects/{project.pk}/", {"lease_ttl_seconds": 30}, format="json")
    assert response.status_code == 200 and response.json()["lease_ttl_seconds"] == 30
    assert enqueued == []
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.patch(f"/api/projects/{project.pk}/", {"sampling_strategy": "margin"}, format="json")
    assert response.status_code == 200 and response.json()["sampling_strategy"] == "margin"
    assert enqueued == [project.pk]


def test_model_weights_are_served_to_admins_only(client):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    project = ProjectFactory()
    path = default_storage.save(f"projects/{project.pk}/models/v1/best.pt", ContentFile(b"weights"))
    client.force_login(_member(project, Role.LEAD))
    assert client.get(f"/media/{path}").status_code == 404
    client.force_login(_member(project, Role.ADMIN))
    response = client.get(f"/media/{path}")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"weights"
