"""The Django admin's project page: training adds its "Retrain now" action to labeling's
project admin (labeling's admin imports nothing of training)."""
import pytest
from django.contrib import admin
from django.urls import reverse

from core.models import Project
from tests.factories import LabelClassFactory, ProjectFactory
from training.admin import ProjectAdmin
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


def test_the_registered_project_admin_is_training_s():
    assert isinstance(admin.site._registry[Project], ProjectAdmin)


def test_retrain_now_queues_one_run_and_reports_a_conflict_for_the_second(admin_client, admin_user):
    project = ProjectFactory(task_type="classification")
    LabelClassFactory(project=project, name="cat")
    url = reverse("admin:core_project_changelist")
    data = {"action": "retrain_now", "_selected_action": [project.pk]}
    first = admin_client.post(url, data, follow=True)
    assert first.status_code == 200
    run = TrainingRun.objects.get(project=project)
    assert run.requested_by == admin_user
    assert f"training run {run.pk} queued" in first.content.decode()
    second = admin_client.post(url, data, follow=True)
    assert TrainingRun.objects.filter(project=project).count() == 1
    assert f"Training run {run.pk} is already queued for this project." in second.content.decode()
