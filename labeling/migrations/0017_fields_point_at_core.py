# Labeling's foreign keys now name core's projects, images and predictions: the same
# columns and constraints, so only the migration state changes.
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0001_initial"),
        ("labeling", "0016_exportjob_originals"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='annotation',
                    name='image',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='annotations', to='core.image'),
                ),
                migrations.AlterField(
                    model_name='task',
                    name='image',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='tasks', to='core.image'),
                ),
                migrations.AlterField(
                    model_name='imageblur',
                    name='image',
                    field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='blur', serialize=False, to='core.image'),
                ),
                migrations.AlterField(
                    model_name='blurregion',
                    name='image',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='blur_regions', to='core.image'),
                ),
                migrations.AlterField(
                    model_name='originalaccess',
                    name='image',
                    field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='core.image'),
                ),
                migrations.AlterField(
                    model_name='reportdailycounts',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.project'),
                ),
                migrations.AlterField(
                    model_name='privacysettings',
                    name='project',
                    field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='privacy', serialize=False, to='core.project'),
                ),
                migrations.AlterField(
                    model_name='labelclassevent',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='label_class_events', to='core.project'),
                ),
                migrations.AlterField(
                    model_name='reportannotationmark',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.project'),
                ),
                migrations.AlterField(
                    model_name='membership',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='core.project'),
                ),
                migrations.AlterField(
                    model_name='reportagreementpair',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.project'),
                ),
                migrations.AlterField(
                    model_name='reportlabeledimage',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.project'),
                ),
                migrations.AlterField(
                    model_name='blurrun',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='blur_runs', to='core.project'),
                ),
                migrations.AlterField(
                    model_name='exportjob',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='export_jobs', to='core.project'),
                ),
                migrations.AlterField(
                    model_name='reportflagreason',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.project'),
                ),
                migrations.AlterField(
                    model_name='originalaccess',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.project'),
                ),
                migrations.AlterField(
                    model_name='importjob',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='import_jobs', to='core.project'),
                ),
                migrations.AlterField(
                    model_name='annotation',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='annotations', to='core.project'),
                ),
                migrations.AlterField(
                    model_name='task',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='tasks', to='core.project'),
                ),
                migrations.AlterField(
                    model_name='annotation',
                    name='prediction',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='core.prediction'),
                ),
            ],
            database_operations=[],
        ),
    ]
