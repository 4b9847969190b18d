"""What a script sees of the API: 401 with WWW-Authenticate without credentials, JSON for
every error under /api/, JSON-only bodies (one content type per operation in the schema),
every list a limit/offset page, and media it can download with its token or a signed URL."""

import pytest
import yaml
from django.test import Client
from rest_framework.authtoken.models import Token

from labeling.models import Role
from tests.factories import ImageFactory, LabelClassFactory, MembershipFactory, ProjectFactory, TaskFactory

pytestmark = pytest.mark.django_db


def member(project, role):
    return MembershipFactory(project=project, role=role).user


def token_client(api_client, user):
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api_client


def test_missing_credentials_get_401_with_a_www_authenticate_header(api_client):
    response = api_client.get("/api/projects/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["detail"]


def test_errors_under_api_are_json(api_client, monkeypatch):
    api_client.force_authenticate(member(ProjectFactory(), Role.ANNOTATOR))
    unknown = api_client.get("/api/no-such-thing/")
    assert unknown.status_code == 404 and unknown["Content-Type"] == "application/json"
    assert "No API endpoint at /api/no-such-thing/" in unknown.json()["detail"]
    not_allowed = api_client.delete("/api/projects/")
    assert not_allowed.status_code == 405 and "DELETE" in not_allowed.json()["detail"]
    assert Client().get("/no-such-page/")["Content-Type"].startswith("text/html")

    import labeling.api

    def broken(user):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(labeling.api, "projects_visible_to", broken)
    client = Client(raise_request_exception=False)
    client.force_login(member(ProjectFactory(), Role.ANNOTATOR))
    crashed = client.get("/api/projects/")
    assert crashed.status_code == 500 and crashed.json() == {"detail": "Server error; it has been logged."}


def test_bodies_are_json_only_and_a_form_post_is_refused_with_a_reason(api_client):
    project = ProjectFactory()
    api_client.force_authenticate(member(project, Role.ADMIN))
    response = api_client.post(f"/api/projects/{project.pk}/label-classes/", {"name": "x"}, format="multipart")
    assert response.status_code == 415 and "multipart/form-data" in response.json()["detail"]
    assert api_client.post(f"/api/projects/{project.pk}/label-classes/", {"name": "x"}).status_code == 201


def schema(api_client):
    api_client.force_authenticate(member(ProjectFactory(), Role.ANNOTATOR))
    return yaml.safe_load(api_client.get("/api/schema/").content)


def test_the_schema_advertises_one_body_type_and_pages_for_every_list(api_client):
    paths = schema(api_client)["paths"]
    lists = []
    for path, operations in paths.items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            expected = ["multipart/form-data"] if path.endswith("/images/") else ["application/json"]
            assert not content or list(content) == expected, (method, path, list(content))
            ok = operation["responses"].get("200", {}).get("content", {}).get("application/json", {})
            ref = ok.get("schema", {}).get("$ref", "")
            assert ok.get("schema", {}).get("type") != "array", f"{method} {path} answers a bare array"
            if ref.split("/")[-1].startswith("Paginated"):
                names = {p["name"] for p in operation.get("parameters", [])}
                assert {"limit", "offset"} <= names, path
                lists.append(path)
    assert sorted(lists) == [
        "/api/projects/",
        "/api/projects/{project_id}/annotations/",
        "/api/projects/{project_id}/import-jobs/",
        "/api/projects/{project_id}/label-classes/",
        "/api/projects/{project_id}/label-classes/history/",
        "/api/projects/{project_id}/members/",
        "/api/projects/{project_id}/model-versions/",
        "/api/projects/{project_id}/privacy/blur-runs/",
        "/api/projects/{project_id}/privacy/original-accesses/",
        "/api/projects/{project_id}/training-runs/",
    ]


def test_the_export_download_url_is_typed_nullable(api_client):
    components = schema(api_client)["components"]["schemas"]
    assert components["ExportJob"]["properties"]["download_url"]["nullable"] is True


def test_lists_honour_limit_and_offset(api_client):
    project = ProjectFactory()
    for name in ("a", "b", "c"):
        LabelClassFactory(project=project, name=name)
    api_client.force_authenticate(member(project, Role.ANNOTATOR))
    page = api_client.get(f"/api/projects/{project.pk}/label-classes/?limit=2&offset=1").json()
    assert page["count"] == 3 and [c["name"] for c in page["results"]] == ["b", "c"]
    assert page["previous"] is not None and page["next"] is None


def test_a_token_client_downloads_the_image_urls_it_is_handed(api_client):
    task = TaskFactory()
    annotator = member(task.project, Role.ANNOTATOR)
    client = token_client(api_client, annotator)
    work = client.get(f"/api/projects/{task.project.pk}/tasks/next/").json()
    url = work["image"]["url"]
    assert "?signature=" in url
    with_token = client.get(url)
    assert with_token.status_code == 200 and b"".join(with_token.streaming_content)[:4] == b"\x89PNG"
    bare = Client().get(url)  # a downloader that sends no header at all
    assert bare.status_code == 200
    plain = url.split("?")[0]
    assert client.get(plain).status_code == 200  # the token alone is enough too
    assert Client().get(plain).status_code == 302  # no credentials: a browser goes to sign in


def test_a_signed_url_is_for_its_file_and_user_and_expires(api_client, settings):
    from vision_project.media_access import media_url_sign

    image, other = ImageFactory(), ImageFactory()
    annotator = member(image.project, Role.ANNOTATOR)
    signature = media_url_sign(image.file.name, annotator).split("?")[1]
    assert Client().get(f"/media/{other.file.name}?{signature}").status_code == 401
    outsider_link = media_url_sign(image.file.name, member(ProjectFactory(), Role.ADMIN))
    assert Client().get(outsider_link).status_code == 404
    assert Client().get(f"/media/{image.file.name}?signature=forged").status_code == 401
    settings.VISION_MEDIA_URL_MAX_AGE_SECONDS = -1
    expired = Client().get(media_url_sign(image.file.name, annotator))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]


def test_a_bad_token_on_media_is_a_401(api_client):
    image = ImageFactory()
    response = Client().get(image.file.url, HTTP_AUTHORIZATION="Token nope")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"


def test_a_session_browser_gets_plain_urls(client):
    task = TaskFactory()
    client.force_login(member(task.project, Role.ANNOTATOR))
    url = client.get(f"/api/projects/{task.project.pk}/tasks/next/").json()["image"]["url"]
    assert "?" not in url and client.get(url).status_code == 200


def test_inputs_the_schema_fuzzer_found_answer_4xx_not_500(api_client):
    from labeling.models import Annotation

    task = TaskFactory()
    lead = member(task.project, Role.LEAD)
    api_client.force_authenticate(lead)
    annotation = Annotation.objects.create(project=task.project, image=task.image, author=lead, kind="correct",
                                           payload={"boxes": []})
    fix = api_client.post(f"/api/annotations/{annotation.pk}/fix/", {})  # no payload at all
    assert fix.status_code == 400 and "no objects" in fix.json()["detail"].lower()
    options = api_client.options(f"/api/projects/{task.project.pk}/reports/accuracy/?format=csv")
    assert options.status_code == 200 and options["Content-Type"] == "application/json"


def test_a_token_client_downloads_a_finished_export_from_its_download_url(api_client):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from labeling.models import ExportJob

    project = ProjectFactory()
    lead = member(project, Role.LEAD)
    saved = default_storage.save(f"projects/{project.pk}/exports/1-coco.zip", ContentFile(b"PK\x05\x06" + b"\0" * 18))
    job = ExportJob.objects.create(project=project, format="coco", status="succeeded", result_file=saved)
    client = token_client(api_client, lead)
    url = client.get(f"/api/export-jobs/{job.pk}/").json()["download_url"]
    assert url == f"/api/export-jobs/{job.pk}/download/"  # a lead-only view: the media view never serves exports
    download = client.get(url)
    assert download.status_code == 200 and b"".join(download.streaming_content)[:2] == b"PK"
    assert Client().get(url).status_code == 401
