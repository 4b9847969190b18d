"""A lead's pages in Chromium: the models page read only (with the backend of each
version, so the queue model is told from trained ones), the accuracy chart of a
classification project, and the project list naming the metric it shows."""
import pytest
from django.test import Client

from core.models import ModelVersion
from labeling.models import Role

from .conftest import sign_in
from .factories import classification_scene, detection_scene

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_lead_reads_the_models_page_but_cannot_train_or_deploy(page, make_user):
    lead = make_user("lea")
    scene = detection_scene(members={lead: Role.LEAD}, images=1)
    ModelVersion.objects.create(
        project=scene.project, number=2, backend="linear", status="queue", class_ids=scene.version.class_ids,
        primary_metric=0.42, metrics={"primary_metric": "presence_macro_f1", "presence_macro_f1": 0.42},
    )
    pid = scene.project.pk
    sign_in(page, "lea")
    page.goto(f"/projects/{pid}/models/")
    page.locator("#versions-body tr[data-version='2']").wait_for()
    assert page.text_content("tr[data-version='1'] .backend") == "yolo"
    assert page.text_content("tr[data-version='2'] .backend") == "linear"
    assert page.text_content("tr[data-version='2'] .status") == "queue"
    assert page.text_content("tr[data-version='2'] td:nth-child(4)") == "0.420"
    assert page.locator("#start-training").count() == 0
    assert page.locator("#versions-body button").count() == 0  # no Deploy
    assert page.locator("tr[data-version='1'] .badge.ok").inner_text() == "deployed"
    assert page.is_visible("#read-only-note")
    assert page.locator("nav a", has_text="Settings").count() == 0

    client = Client()
    client.force_login(lead)
    version_2 = ModelVersion.objects.get(project=scene.project, number=2)
    assert client.post(f"/api/model-versions/{version_2.pk}/deploy/").status_code == 403
    assert client.post(f"/api/projects/{pid}/training-runs/", {}, content_type="application/json").status_code == 403
    assert not ModelVersion.objects.get(pk=version_2.pk).is_deployed


def test_an_admin_still_gets_the_controls(page, make_user):
    admin = make_user("adm")
    scene = detection_scene(members={admin: Role.ADMIN}, images=1)
    ModelVersion.objects.create(project=scene.project, number=2, backend="yolo", status="ready",
                                class_ids=scene.version.class_ids, primary_metric=0.5)
    sign_in(page, "adm")
    page.goto(f"/projects/{scene.project.pk}/models/")
    page.locator("tr[data-version='2'] button", has_text="Deploy").wait_for()
    assert page.is_visible("#start-training") and page.locator("#read-only-note").count() == 0


def test_the_accuracy_chart_of_a_classification_project_plots_accuracy(page, make_user):
    lead = make_user("lea")
    scene = classification_scene(members={lead: Role.LEAD}, images=1)
    ModelVersion.objects.filter(pk=scene.version.pk).update(
        primary_metric=0.55, metrics={"primary_metric": "macro_f1", "macro_f1": 0.55, "accuracy": 0.8})
    sign_in(page, "lea")
    page.goto(f"/projects/{scene.project.pk}/reports/#accuracy")
    chart = page.locator("#report-body .report-view[data-table=versions] canvas")
    chart.wait_for()
    assert chart.get_attribute("aria-label") == "Accuracy per model version (validation split): macro_f1, accuracy"


def test_the_project_list_names_the_metric_it_shows(page, make_user):
    lead = make_user("lea")
    detection = detection_scene(members={lead: Role.LEAD}, images=1)
    ModelVersion.objects.filter(pk=detection.version.pk).update(
        metrics={"primary_metric": "map50_95", "map50_95": 0.61, "map50": 0.8})
    classification = classification_scene(members={lead: Role.LEAD}, images=1)
    ModelVersion.objects.filter(pk=classification.version.pk).update(
        primary_metric=0.55, metrics={"primary_metric": "macro_f1", "macro_f1": 0.55, "accuracy": 0.8})
    sign_in(page, "lea")
    page.goto("/")

    def deployed(project):
        return page.inner_text(f"tr[data-project-id='{project.pk}'] td.deployed")

    assert deployed(detection.project) == "v1 · 0.610 mAP50-95"
    assert deployed(classification.project) == "v1 · 0.550 macro-F1"
    note = page.inner_text("#project-table + p")
    assert "mAP@0.5" not in note and "accuracy for classification" not in note
