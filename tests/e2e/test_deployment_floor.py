"""The deployment floor as an admin meets it on the models page: a detector trained to
mAP50 0 is rejected with the reason in its row, and deploying it by hand is refused."""
import pytest
from django.test import Client

from core.models import ModelVersion, VersionStatus
from labeling.models import Role

from .conftest import sign_in
from .factories import detection_scene

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
REASON = "below the deployment floor: mAP50 0.0000 is below the project's floor 0.0500"


def test_a_blind_detector_shows_why_it_was_not_deployed_and_cannot_be_deployed(page, make_user):
    admin = make_user("adm")
    scene = detection_scene(members={admin: Role.ADMIN}, images=1)
    blind = ModelVersion.objects.create(
        project=scene.project, number=2, backend="yolo", status=VersionStatus.REJECTED,
        class_ids=scene.version.class_ids, primary_metric=0.0, weights="projects/x/models/v2/best.pt",
        metrics={"map50": 0.0, "map50_95": 0.0, "primary": 0.0, "primary_metric": "map50_95"},
        comparison={"decision": "reject", "reason": REASON,
                    "floor": {"baseline": "min_map50", "value": 0.05, "candidate": 0.0, "passed": False,
                              "reason": "mAP50 0.0000 is below the project's floor 0.0500"}},
    )
    sign_in(page, "adm")
    page.goto(f"/projects/{scene.project.pk}/models/")
    row = page.locator("tr[data-version='2']")
    row.wait_for()
    assert REASON in row.text_content()
    assert row.locator(".badge.warn").inner_text() == "below floor"
    assert row.locator("button", has_text="Deploy").count() == 0
    client = Client()
    client.force_login(admin)
    refused = client.post(f"/api/model-versions/{blind.pk}/deploy/")
    assert refused.status_code == 400 and "below the deployment floor" in refused.json()["detail"]
    blind.refresh_from_db()
    assert not blind.is_deployed
    assert ModelVersion.objects.get(pk=scene.version.pk).is_deployed
