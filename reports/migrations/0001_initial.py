# The report aggregates move to their own app above labeling and training. Their tables stay
# where they are (db_table): this records the move in the migration state only.
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("core", "0002_content_types"),
        ("labeling", "0018_models_to_core"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ReportLabeledImage',
                    fields=[
                        ('image_id', models.BigIntegerField(primary_key=True, serialize=False)),
                        ('day', models.DateField()),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.project')),
                    ],
                    options={
                        'db_table': 'labeling_reportlabeledimage',
                    },
                ),
                migrations.CreateModel(
                    name='ReportAgreementPair',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('annotator_a', models.BigIntegerField()),
                        ('annotator_b', models.BigIntegerField()),
                        ('label_a', models.BigIntegerField(default=0)),
                        ('label_b', models.BigIntegerField(default=0)),
                        ('comparisons', models.PositiveIntegerField(default=0)),
                        ('score_sum', models.FloatField(default=0.0)),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.project')),
                    ],
                    options={
                        'db_table': 'labeling_reportagreementpair',
                        'constraints': [models.UniqueConstraint(fields=('project', 'annotator_a', 'annotator_b', 'label_a', 'label_b'), name='reportagreement_unique_key')],
                    },
                ),
                migrations.CreateModel(
                    name='ReportAnnotationMark',
                    fields=[
                        ('annotation_id', models.BigIntegerField(primary_key=True, serialize=False)),
                        ('image_id', models.BigIntegerField()),
                        ('author_id', models.BigIntegerField(default=0)),
                        ('first_label_by_author', models.BooleanField(default=False, help_text="The author's first label of this image: used for agreement.")),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.project')),
                    ],
                    options={
                        'db_table': 'labeling_reportannotationmark',
                        'indexes': [models.Index(fields=['image_id', 'author_id'], name='reportmark_image_author')],
                    },
                ),
                migrations.CreateModel(
                    name='ReportDailyCounts',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField()),
                        ('annotator_id', models.BigIntegerField(default=0)),
                        ('model_version_id', models.BigIntegerField(default=0)),
                        ('arm', models.CharField(help_text='strategy, random, or none (no task)', max_length=10)),
                        ('submissions', models.PositiveIntegerField(default=0)),
                        ('labeled', models.PositiveIntegerField(default=0)),
                        ('rejected', models.PositiveIntegerField(default=0, help_text='Labels a lead rejected in review.')),
                        ('skipped', models.PositiveIntegerField(default=0)),
                        ('flagged', models.PositiveIntegerField(default=0)),
                        ('time_spent_ms', models.BigIntegerField(default=0)),
                        ('images_labeled', models.PositiveIntegerField(default=0, help_text='Images labeled for the first time.')),
                        ('images_imported', models.PositiveIntegerField(default=0, help_text='First labels that came by import.')),
                        ('prelabeled', models.PositiveIntegerField(default=0, help_text='Labels that started from a pre-label.')),
                        ('accepted_unchanged', models.PositiveIntegerField(default=0)),
                        ('boxes_predicted', models.PositiveIntegerField(default=0)),
                        ('boxes_final', models.PositiveIntegerField(default=0)),
                        ('boxes_added', models.PositiveIntegerField(default=0)),
                        ('boxes_deleted', models.PositiveIntegerField(default=0)),
                        ('boxes_moved', models.PositiveIntegerField(default=0)),
                        ('boxes_matched', models.PositiveIntegerField(default=0)),
                        ('iou_shift_sum', models.FloatField(default=0.0)),
                        ('class_flips', models.PositiveIntegerField(default=0)),
                        ('vertex_shift_sum', models.FloatField(default=0.0, help_text='Segmentation: pixels, over matched polygons.')),
                        ('vertices_compared', models.PositiveIntegerField(default=0)),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.project')),
                    ],
                    options={
                        'db_table': 'labeling_reportdailycounts',
                        'constraints': [models.UniqueConstraint(fields=('project', 'day', 'annotator_id', 'model_version_id', 'arm'), name='reportdaily_unique_key')],
                    },
                ),
                migrations.CreateModel(
                    name='ReportFlagReason',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('reason', models.CharField(max_length=500)),
                        ('count', models.PositiveIntegerField(default=0)),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.project')),
                    ],
                    options={
                        'db_table': 'labeling_reportflagreason',
                        'constraints': [models.UniqueConstraint(fields=('project', 'reason'), name='reportflag_unique_reason')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
