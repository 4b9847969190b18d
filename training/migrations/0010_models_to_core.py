# Training's foreign keys now name core's rows, and model versions and predictions leave
# training's state (their tables are core's now): state only.
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0001_initial"),
        ("labeling", "0017_fields_point_at_core"),
        ("training", "0009_trainingrun_model_version"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='prelabelrun',
                    name='model_version',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='prelabel_runs', to='core.modelversion'),
                ),
                migrations.AlterField(
                    model_name='trainingrun',
                    name='model_version',
                    field=models.OneToOneField(blank=True, help_text='The version this run produced.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='training_run', to='core.modelversion'),
                ),
                migrations.AlterField(
                    model_name='assistrequest',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.project'),
                ),
                migrations.AlterField(
                    model_name='classexample',
                    name='image',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.image'),
                ),
                migrations.AlterField(
                    model_name='classexample',
                    name='label_class',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='examples', to='core.labelclass'),
                ),
                migrations.AlterField(
                    model_name='classexample',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.project'),
                ),
                migrations.AlterField(
                    model_name='embeddingrun',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='embedding_runs', to='core.project'),
                ),
                migrations.AlterField(
                    model_name='imageembedding',
                    name='image',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='embeddings', to='core.image'),
                ),
                migrations.AlterField(
                    model_name='imageembedding',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.project'),
                ),
                migrations.AlterField(
                    model_name='nearduplicate',
                    name='duplicate_of',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.image'),
                ),
                migrations.AlterField(
                    model_name='nearduplicate',
                    name='image',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.image'),
                ),
                migrations.AlterField(
                    model_name='nearduplicate',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.project'),
                ),
                migrations.AlterField(
                    model_name='prelabelrun',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='prelabel_runs', to='core.project'),
                ),
                migrations.AlterField(
                    model_name='trainingrun',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='training_runs', to='core.project'),
                ),
                migrations.DeleteModel(
                    name='ModelVersion',
                ),
                migrations.DeleteModel(
                    name='Prediction',
                ),
            ],
            database_operations=[],
        ),
    ]
