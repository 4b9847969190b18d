"""An admin's day in the browser: create a project, invite a member and set roles, add
classes, fix a refused setting, upload images, start training and deploy a version. Also the
new-project page's own checks (staff only, readable errors)."""
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

from core.models import LabelClass, ModelVersion, Project
from labeling.models import Membership, Role
from tests.factories import png_bytes
from training.models import TrainingRun

from .conftest import ARTIFACTS, sign_in


def test_only_staff_reach_the_new_project_page(db, make_user):
    client = Client()
    client.force_login(make_user("plain"))
    assert client.get("/projects/new/").status_code == 403
    assert client.post("/projects/new/", {"name": "x", "task_type": "detection"}).status_code == 403
    assert not Project.objects.exists()
    assert b'id="new-project"' not in client.get("/").content


def test_the_new_project_page_says_what_is_wrong(db, make_user):
    staff = make_user("boss", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert b'id="new-project"' in client.get("/").content
    response = client.post("/projects/new/", {"name": "  ", "task_type": "detection"})
    assert response.status_code == 400 and b"A project needs a name." in response.content
    response = client.post("/projects/new/", {"name": "Cars", "task_type": "keypoints"})
    assert response.status_code == 400 and (
        b"Choose object detection, instance segmentation or image classification." in response.content)
    assert not Project.objects.exists()
    response = client.post("/projects/new/", {"name": "Cars", "task_type": "classification", "description": "d"})
    project = Project.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/projects/{project.pk}/settings/"
    assert (project.name, project.task_type, project.created_by) == ("Cars", "classification", staff)
    assert Membership.objects.get(project=project).role == Role.ADMIN


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_admins_day(page, make_user, tmp_path):
    make_user("adm", is_staff=True)
    make_user("ann")
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, "adm")

    # A new project; its creator is its admin and lands on its settings.
    page.click("#new-project")
    page.fill("#project-new-form input[name=name]", "Birds")
    page.select_option("#project-new-form select[name=task_type]", "detection")
    page.click("#project-new-form button[type=submit]")
    page.wait_for_url("**/settings/")
    project = Project.objects.get(name="Birds")
    assert project.task_type == "detection"

    # Members: invite ann, make her a lead; the last admin cannot step down.
    page.locator("#members-body tr[data-username='adm']").wait_for()
    page.fill("#member-form input[name=user]", "ann")
    page.select_option("#member-form select[name=role]", "annotator")
    page.click("#member-form button[type=submit]")
    ann_role = page.locator("#members-body tr[data-username='ann'] select")
    ann_role.wait_for()
    assert ann_role.input_value() == "annotator"
    ann_role.select_option("lead")
    page.locator(".toast:has-text('ann is lead now')").wait_for()
    assert Membership.objects.get(project=project, user__username="ann").role == Role.LEAD
    page.select_option("#members-body tr[data-username='adm'] select", "lead")
    page.locator(".toast-error:has-text('adm is the last admin of this project')").wait_for()
    assert page.input_value("#members-body tr[data-username='adm'] select") == "admin"
    assert Membership.objects.get(project=project, user__username="adm").role == Role.ADMIN

    # Classes.
    for name in ("robin", "sparrow"):
        page.fill("#class-form input[name=name]", name)
        page.click("#class-form button[type=submit]")
        page.locator(f"#classes-body input[aria-label=name][value='{name}']").wait_for()
    assert list(LabelClass.objects.filter(project=project).values_list("name", "hotkey")) == [
        ("robin", "1"), ("sparrow", "2")]

    # Settings: a negative tolerance is refused, saying what it must be; then saved right.
    page.fill("#settings-form input[name=promotion_tolerance]", "-0.5")
    page.click("#settings-form button[type=submit]")
    errors = page.locator("#settings-errors")
    errors.wait_for()
    assert "Promotion tolerance must be a metric difference between 0 and 1" in errors.text_content()
    assert page.get_attribute("#settings-form input[name=promotion_tolerance]", "aria-invalid") == "true"
    project.refresh_from_db()
    assert project.promotion_tolerance == 0.0
    page.fill("#settings-form input[name=promotion_tolerance]", "0.01")
    page.select_option("#settings-form select[name=sampling_strategy]", "auto")
    page.click("#settings-form button[type=submit]")
    page.locator(".toast:has-text('Settings saved.')").wait_for()
    assert errors.is_hidden()
    project.refresh_from_db()
    assert (project.promotion_tolerance, project.sampling_strategy) == (0.01, "auto")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-day-settings.png"), full_page=True)

    # Upload.
    files = []
    for n, color in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        path = tmp_path / f"bird-{n}.png"
        path.write_bytes(png_bytes(96, 64, color))
        files.append(str(path))
    page.click("nav a:has-text('Import')")
    page.set_input_files("#upload-files", files)
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#upload-report strong")
    assert "3 new" in page.text_content("#upload-report strong")
    assert project.images.count() == 3

    # Training: a run is queued for the GPU workers.
    page.click("nav a:has-text('Models')")
    page.click("#start-training")
    page.locator("#runs-body tr[data-run-id]").wait_for()
    run = TrainingRun.objects.get(project=project)
    assert run.status == "queued" and run.requested_by.username == "adm"

    # Deploy: a version that passed its gate (made here; no GPU trains in this test).
    weights = default_storage.save(f"projects/{project.pk}/models/v1/best.pt", ContentFile(b"weights"))
    ModelVersion.objects.create(
        project=project, number=1, backend="yolo", status="candidate", primary_metric=0.41,
        class_ids=list(project.label_classes.values_list("id", flat=True)),
        weights=weights,
        comparison={"floor": {"passed": True, "reason": "mAP50 0.6000 reaches the project's floor 0.05"}},
    )
    page.reload()
    page.locator("#versions-body tr[data-version='1'] button:has-text('Deploy')").click()
    page.locator("#versions-body tr[data-version='1'] .badge.ok").wait_for()
    assert ModelVersion.objects.get(project=project, number=1).is_deployed

    page.goto("/")
    page.locator(f"tr[data-project-id='{project.pk}'] td.deployed:has-text('v1')").wait_for()
    page.screenshot(path=str(ARTIFACTS / "admin-day.png"), full_page=True)

    # The two refusals (the last admin stepping down, the negative tolerance) are the 400
    # answers the browser logs; nothing else may be there.
    refused = [e for e in page.console.errors if "status of 400" in e]
    assert len(refused) == 2
    page.console.errors[:] = [e for e in page.console.errors if e not in refused]
