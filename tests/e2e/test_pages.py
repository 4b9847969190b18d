"""Pages around the editor: role checks, the manifest tag, and every page in Chromium
without console errors."""
import json

import pytest
from django.template import Context, Template

from core.models import Project
from labeling.models import Annotation, Role, Task, TaskStatus
from labeling.templatetags.vite import entry_files

from .conftest import sign_in
from .factories import detection_scene


def test_entry_files_follow_shared_chunks_and_css():
    manifest = {
        "src/pages/a.ts": {"file": "assets/a-1.js", "imports": ["_api.js"], "css": ["assets/a-1.css"]},
        "_api.js": {"file": "assets/api-2.js", "css": ["assets/api-2.css"]},
    }
    css, chunks, script = entry_files(manifest, "src/pages/a.ts")
    assert css == ["assets/api-2.css", "assets/a-1.css"]  # shared chunks first
    assert chunks == ["assets/api-2.js"]
    assert script == "assets/a-1.js"
    with pytest.raises(KeyError, match="src/pages/missing.ts"):
        entry_files(manifest, "src/pages/missing.ts")


def test_vite_entry_tag_emits_hashed_files_under_static(settings, tmp_path):
    (tmp_path / ".vite").mkdir()
    (tmp_path / ".vite" / "manifest.json").write_text(json.dumps({
        "src/pages/base.ts": {"file": "assets/base-abc.js", "css": ["assets/base-abc.css"]},
    }))
    settings.FRONTEND_BUILD_DIR = tmp_path
    html = Template('{% load vite %}{% vite_entry "src/pages/base.ts" %}').render(Context())
    assert '<link rel="stylesheet" href="/static/assets/base-abc.css">' in html
    assert '<script type="module" src="/static/assets/base-abc.js"></script>' in html


@pytest.mark.django_db
def test_project_pages_check_the_callers_role(client, make_user):
    annotator, lead, stranger = make_user("ann"), make_user("lea"), make_user("str")
    scene = detection_scene(members={annotator: Role.ANNOTATOR, lead: Role.LEAD}, images=1)
    pid = scene.project.pk
    client.force_login(annotator)
    assert client.get(f"/projects/{pid}/annotate/").status_code == 200
    assert client.get(f"/projects/{pid}/review/").status_code == 403
    assert client.get(f"/projects/{pid}/settings/").status_code == 403
    client.force_login(lead)
    response = client.get(f"/projects/{pid}/review/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<a href="/projects/{pid}/review/" class="current">Review</a>' in html
    assert f'<a href="/projects/{pid}/reports/">Reports</a>' in html
    assert f'<a href="/projects/{pid}/models/">Models &amp; training</a>' in html  # read only
    assert f"/projects/{pid}/settings/" not in html
    assert client.get(f"/projects/{pid}/models/").status_code == 200
    assert client.get(f"/projects/{pid}/settings/").status_code == 403
    client.force_login(stranger)
    assert client.get(f"/projects/{pid}/annotate/").status_code == 404
    client.force_login(annotator)
    assert client.get(f"/projects/{pid + 1000}/annotate/").status_code == 404
    client.logout()
    assert client.get(f"/projects/{pid}/annotate/").status_code == 302


@pytest.mark.django_db
def test_project_list_shows_progress_and_the_deployed_model(client, make_user):
    annotator = make_user("ann")
    scene = detection_scene(members={annotator: Role.ANNOTATOR}, images=2)
    client.force_login(annotator)
    html = client.get("/").content.decode()
    assert scene.project.name in html
    assert "0 / 2" in html
    assert "v1" in html and "0.610" in html


@pytest.mark.django_db
def test_project_list_costs_the_same_queries_for_one_project_or_five(client, make_user):
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    annotator = make_user("ann")
    detection_scene(members={annotator: Role.ANNOTATOR}, images=2)
    client.force_login(annotator)

    def queries_for_the_list():
        cache.clear()  # cold: the cached totals are counted too
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/").status_code == 200
        return len(captured.captured_queries)

    with_one = queries_for_the_list()
    for _ in range(4):
        detection_scene(members={annotator: Role.ANNOTATOR}, images=1)
    assert queries_for_the_list() == with_one


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_every_page_renders_without_console_errors(page, make_user):
    admin = make_user("adm")
    scene = detection_scene(members={admin: Role.ADMIN}, images=1)
    pid = scene.project.pk
    page.goto("/accounts/login/")
    sign_in(page, "adm")
    assert page.locator("#project-table tr[data-project-id]").count() == 1
    for path, ready in [
        (f"/projects/{pid}/annotate/", "#annotate[data-painted]"),
        (f"/projects/{pid}/review/", "#review-count:not(:empty)"),
        (f"/projects/{pid}/models/", "#versions-body tr[data-version='1']"),
        (f"/projects/{pid}/settings/", "#classes-body tr"),
        (f"/projects/{pid}/upload/", "#upload-form"),
        (f"/projects/{pid}/reports/", "#reports .subnav a.current"),
        (f"/projects/{pid}/classes/", "#class-tree .tree-node"),
        (f"/projects/{pid}/discover/", "#cluster-form"),
        (f"/projects/{pid}/annotate/grid/", "#grid-notice:not([hidden])"),
    ]:
        page.goto(path)
        page.wait_for_selector(ready, state="attached")
    page.click("text=Sign out")
    page.wait_for_url("**/accounts/login/")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_lead_rejects_an_annotation_and_decides_a_flag(page, make_user):
    annotator, lead = make_user("ann"), make_user("lea")
    scene = detection_scene(members={annotator: Role.ANNOTATOR, lead: Role.LEAD}, images=1)
    task = Task.objects.get(project=scene.project)
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.DONE, completed_by=annotator)
    annotation = Annotation.objects.create(
        project=scene.project, image=task.image, task=task, author=annotator, kind="correct",
        payload={"boxes": [{"x1": 1, "y1": 1, "x2": 50, "y2": 50, "label": scene.classes["tree"].pk}]},
        idempotency_key="k1",
    )
    sign_in(page, "lea")
    page.goto(f"/projects/{scene.project.pk}/review/")
    card = page.locator(f'[data-annotation-id="{annotation.pk}"]')
    card.locator("textarea").fill("the object is a car")
    card.locator("button", has_text="Reject").click()
    card.locator(".badge.bad").wait_for()

    annotation.refresh_from_db()
    assert (annotation.review_status, annotation.review_comment) == ("rejected", "the object is a car")
    assert Task.objects.filter(image=task.image, status=TaskStatus.OPEN).exists()

    # A flagged image: the lead confirms it is unclear, so it leaves the training data.
    flag = Annotation.objects.create(
        project=scene.project, image=task.image, task=task, author=annotator, kind="flag",
        flag_reason="blurry", idempotency_key="k2",
    )
    page.select_option("select[name=kind]", "flag")
    page.click("#review-filters button[type=submit]")
    card = page.locator(f'[data-annotation-id="{flag.pk}"]')
    assert "Reason: blurry" in card.text_content()
    card.locator("button", has_text="Confirm unclear").click()
    card.locator(".badge.ok").wait_for()
    task.image.refresh_from_db()
    assert task.image.split == "unassigned"


def upload_as_lead(page, make_user, files) -> Project:
    """Sign in as the lead of an empty project and upload `files` on its upload page."""
    lead = make_user("lea")
    project = detection_scene(members={lead: Role.LEAD}, images=0).project
    sign_in(page, "lea")
    page.goto(f"/projects/{project.pk}/upload/")
    page.set_input_files("#upload-files", [str(f) for f in files])
    page.click("#upload-form button[type=submit]")
    return project


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_upload_page_reports_each_file(page, make_user, tmp_path):
    from tests.factories import png_bytes

    good = tmp_path / "new.png"
    good.write_bytes(png_bytes(80, 60, (10, 200, 10)))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    project = upload_as_lead(page, make_user, [good, broken])
    page.wait_for_selector("#upload-report strong")
    assert "1 new" in page.text_content("#upload-report strong")
    assert "1 failed" in page.text_content("#upload-report strong")
    assert "broken.png: error" in page.text_content("#upload-report .error")
    assert project.images.count() == 1


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_upload_page_says_so_when_it_cannot_follow_the_import_job(page, make_user, tmp_path):
    import zipfile

    from tests.factories import png_bytes

    archive = tmp_path / "batch.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("a.png", png_bytes(80, 60))
    page.console.allow_network_cut = True
    page.route("**/api/import-jobs/**", lambda route: route.abort("failed"))
    upload_as_lead(page, make_user, [archive])
    page.wait_for_selector(".toast-error")
    assert "Could not follow import job" in page.text_content(".toast-error")
