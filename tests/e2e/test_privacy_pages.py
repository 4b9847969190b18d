"""Privacy blurring in Chromium: an admin draws a missed region and removes a false one on an
image's region page, and turns blurring on in the settings page."""
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from labeling.models import BlurRegion, ImageBlur, PrivacySettings, Role
from labeling.privacy import services as privacy
from labeling.services import membership_set
from tests.labeling.test_ingest import ingest, make_project
from tests.labeling.test_privacy import astronaut_png

from .conftest import sign_in, wait_for_js

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin_project(make_user, settings):
    settings.VISION_EMBED_ON_IMPORT = False
    admin, lead = make_user("ada"), make_user("lee")
    project = make_project(classes=("person",))
    membership_set(project=project, user=admin, role=Role.ADMIN)
    membership_set(project=project, user=lead, role=Role.LEAD)
    return project


def test_an_admin_draws_a_missed_region_and_removes_a_false_one(page, admin_project):
    project = admin_project
    privacy.privacy_settings_update(project=project, enabled=True)
    image_id = ingest(project, "astronaut.png", astronaut_png()).image_id
    privacy.blur_run_execute(run_id=privacy.blur_run_start(project=project, image_ids=[image_id]).pk)
    face = BlurRegion.objects.get(image_id=image_id)

    sign_in(page, "ada")
    page.goto(f"/projects/{project.pk}/images/{image_id}/privacy/")
    page.locator(f"#regions-body tr[data-region-id='{face.pk}']").wait_for()
    assert "Blurred" in page.text_content("#blur-state")
    assert page.is_visible("#original-link")
    picture = page.locator("#privacy-image")
    picture.wait_for()
    wait_for_js(page, "document.getElementById('privacy-image').naturalWidth > 0")
    box = picture.bounding_box()
    scale = box["width"] / 512
    page.mouse.move(box["x"] + 380 * scale, box["y"] + 380 * scale)
    page.mouse.down()
    page.mouse.move(box["x"] + 440 * scale, box["y"] + 420 * scale, steps=4)
    page.mouse.move(box["x"] + 470 * scale, box["y"] + 470 * scale, steps=4)
    page.mouse.up()
    page.locator("#regions-body tr").nth(1).wait_for()
    manual = BlurRegion.objects.get(image_id=image_id, source="manual")
    assert abs(manual.x1 - 380) <= 3 and abs(manual.y2 - 470) <= 3
    assert ImageBlur.objects.get(pk=image_id).renders == 2

    page.click(f"#regions-body tr[data-region-id='{face.pk}'] button")
    page.locator(f"#regions-body tr[data-region-id='{face.pk}'] button", has_text="Restore").wait_for()
    assert BlurRegion.objects.get(pk=face.pk).removed
    assert ImageBlur.objects.get(pk=image_id).renders == 3
    assert page.locator(".privacy-regions rect.removed").count() == 1


def test_an_admin_turns_blurring_on_in_the_settings_and_a_lead_has_no_region_page(page, admin_project):
    project = admin_project
    sign_in(page, "ada")
    page.goto(f"/projects/{project.pk}/settings/")
    wait_for_js(page, "document.querySelector('#privacy-form [name=strength]').value !== ''")
    page.check("#privacy-form [name=enabled]")
    page.fill("#privacy-form [name=strength]", "0")
    page.click("#privacy-form button[type=submit]")
    page.locator("#privacy-errors").wait_for()
    assert "strength must be between 1 and 100" in page.text_content("#privacy-errors")
    refused = [e for e in page.console.errors if "status of 400" in e]
    assert len(refused) == 1  # the refused save, and nothing else went wrong
    page.console.errors[:] = [e for e in page.console.errors if e not in refused]
    page.fill("#privacy-form [name=strength]", "80")
    page.select_option("#privacy-form [name=method]", "pixelate")
    page.click("#privacy-form button[type=submit]")
    page.locator(".toast", has_text="Privacy settings saved").wait_for()
    saved = PrivacySettings.objects.get(project=project)
    assert (saved.enabled, saved.strength, saved.method) == (True, 80, "pixelate")
    assert "No original opened yet" in page.text_content("#original-accesses")

    image_id = ingest(project, "astronaut.png", astronaut_png()).image_id
    client = Client()
    client.force_login(get_user_model().objects.get(username="lee"))
    assert client.get(f"/projects/{project.pk}/images/{image_id}/privacy/").status_code == 403
    client.force_login(get_user_model().objects.get(username="ada"))
    assert client.get(f"/projects/{project.pk}/images/{image_id}/privacy/").status_code == 200
