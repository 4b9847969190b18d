# The link between a run and the version it produced moves to the run, so that model
# versions (moving to core) point at nothing above them.
import django.db.models.deletion
from django.db import migrations, models


def copy_links(apps, schema_editor):
    ModelVersion = apps.get_model("training", "ModelVersion")
    TrainingRun = apps.get_model("training", "TrainingRun")
    for version_id, run_id in (ModelVersion.objects.filter(training_run__isnull=False)
                               .values_list("pk", "training_run_id").iterator()):
        TrainingRun.objects.filter(pk=run_id).update(model_version_id=version_id)


def copy_links_back(apps, schema_editor):
    ModelVersion = apps.get_model("training", "ModelVersion")
    TrainingRun = apps.get_model("training", "TrainingRun")
    for run_id, version_id in (TrainingRun.objects.filter(model_version__isnull=False)
                               .values_list("pk", "model_version_id").iterator()):
        ModelVersion.objects.filter(pk=version_id).update(training_run_id=run_id)


class Migration(migrations.Migration):

    dependencies = [
        ("training", "0008_backend_choices"),
    ]

    operations = [
        migrations.AddField(
            model_name="trainingrun",
            name="model_version",
            field=models.OneToOneField(blank=True, help_text="The version this run produced.", null=True,
                                       on_delete=django.db.models.deletion.SET_NULL, related_name="+",
                                       to="training.modelversion"),
        ),
        migrations.RunPython(copy_links, copy_links_back),
        migrations.RemoveField(
            model_name="modelversion",
            name="training_run",
        ),
        migrations.AlterField(
            model_name="trainingrun",
            name="model_version",
            field=models.OneToOneField(blank=True, help_text="The version this run produced.", null=True,
                                       on_delete=django.db.models.deletion.SET_NULL, related_name="training_run",
                                       to="training.modelversion"),
        ),
    ]
