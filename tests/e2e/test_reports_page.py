"""The reports page in Chromium: each report draws its charts from the API and links the
CSV of the table behind each chart."""
import pytest

from labeling.models import Annotation, AnnotationKind, Role
from reports.aggregates import report_aggregates_rebuild

from .conftest import sign_in
from .factories import detection_scene

pytestmark = pytest.mark.browser


@pytest.fixture
def reports_scene(transactional_db, make_user):
    lead = make_user("lead")
    scene = detection_scene(members={lead: Role.LEAD}, images=3)
    for index, (image_id, prediction) in enumerate(scene.predictions.items()):
        boxes = [{k: v for k, v in b.items() if k not in ("score", "probs")} for b in prediction.payload["boxes"]]
        kind = AnnotationKind.ACCEPT if index == 0 else AnnotationKind.CORRECT
        Annotation.objects.create(project=scene.project, image_id=image_id, author=lead, kind=kind,
                                  payload={"boxes": boxes[: 2 - index % 2]}, prediction=prediction,
                                  time_spent_ms=20_000)
    report_aggregates_rebuild(project=scene.project)
    return scene


def test_reports_draw_charts_with_csv_downloads(page, reports_scene):
    pid = reports_scene.project.pk
    sign_in(page, "lead")
    page.goto(f"/projects/{pid}/reports/#prelabel-quality")
    body = page.locator("#report-body")
    body.locator("canvas").first.wait_for()
    assert body.locator(".report-view canvas").count() == 3
    link = body.locator("a", has_text="Download CSV").first
    href = link.get_attribute("href")
    assert href == f"/api/projects/{pid}/reports/prelabel-quality/?format=csv&table=by_version"
    csv = page.request.get(href)
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    # v1: 3 pre-labeled; the accept and the exact copy count as unchanged, the dropped box not.
    assert csv.text().splitlines()[1].startswith("1,3,2,")

    page.click("a[data-report=queue]")
    page.locator(".report-sentence").wait_for()
    assert page.locator(".report-sentence").inner_text().startswith("Every image is labeled.")
    assert body.locator(".report-view canvas").count() == 2
