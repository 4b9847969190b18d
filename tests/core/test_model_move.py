"""The move of projects, classes, images, model versions and predictions into core (and of the
report aggregates into reports) keeps every row: migrate a database back to before it, write
rows with the models of that time, migrate forward and read them through the new models."""
import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("labeling", "0016_exportjob_originals"), ("training", "0008_backend_choices")]


@pytest.mark.django_db(transaction=True)
def test_rows_written_before_the_move_read_the_same_after_it():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    user = old.get_model("auth", "User").objects.create(username="lead")
    project = old.get_model("labeling", "Project").objects.create(name="trees", task_type="classification")
    oak = old.get_model("labeling", "LabelClass").objects.create(project=project, name="oak")
    image = old.get_model("labeling", "Image").objects.create(
        project=project, file="a.png", original_name="a.png", sha256="ab" * 32, width=4, height=3)
    run = old.get_model("training", "TrainingRun").objects.create(project=project, status="succeeded")
    trained = old.get_model("training", "ModelVersion").objects.create(
        project=project, number=1, backend="classifier", training_run=run, class_ids=[oak.pk])
    old.get_model("training", "ModelVersion").objects.create(project=project, number=2, backend="linear")
    prediction = old.get_model("training", "Prediction").objects.create(
        image=image, model_version=trained, payload={"labels": [oak.pk]})
    annotation = old.get_model("labeling", "Annotation").objects.create(
        project=project, image=image, author=user, payload={"labels": [oak.pk]}, prediction=prediction)
    old.get_model("labeling", "ReportAnnotationMark").objects.create(
        annotation_id=annotation.pk, project=project, image_id=image.pk, author_id=user.pk)
    # migrating back gave the content types their old apps again
    old_project_type = ContentType.objects.get(app_label="labeling", model="project")
    assert not ContentType.objects.filter(app_label__in=["core", "reports"]).exists()

    ContentType.objects.clear_cache()
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    from core.models import Image, LabelClass, ModelVersion, Prediction, Project
    from labeling.models import Annotation
    from reports.models import ReportAnnotationMark
    from training.models import TrainingRun

    moved = Project.objects.get(pk=project.pk)
    assert [c.name for c in LabelClass.objects.filter(project=moved)] == ["oak"]
    assert Image.objects.get(pk=image.pk).project == moved
    assert TrainingRun.objects.get(pk=run.pk).model_version.number == 1  # the link moved to the run
    assert ModelVersion.objects.get(pk=trained.pk).training_run.pk == run.pk
    assert not hasattr(ModelVersion.objects.get(number=2), "training_run_id")
    assert Annotation.objects.get(pk=annotation.pk).prediction == Prediction.objects.get(pk=prediction.pk)
    assert ReportAnnotationMark.objects.get(annotation_id=annotation.pk).project_id == moved.pk
    # relabeled, not made anew: what points at a content type (permissions, admin log) stays
    assert ContentType.objects.get(app_label="core", model="project").pk == old_project_type.pk
    for app_label, model in [("core", "modelversion"), ("reports", "reportannotationmark")]:
        assert ContentType.objects.filter(app_label=app_label, model=model).exists()
    assert not ContentType.objects.filter(app_label="labeling", model__in=["project", "reportannotationmark"]).exists()
    assert not ContentType.objects.filter(app_label="training", model="modelversion").exists()
