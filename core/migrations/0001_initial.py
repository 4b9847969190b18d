# Projects, classes, images, model versions and predictions move to core. Their tables stay
# where they are (db_table): this records the move in the migration state only.
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import core.models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("labeling", "0016_exportjob_originals"),
        ("training", "0009_trainingrun_model_version"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Project',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=200)),
                        ('description', models.TextField(blank=True)),
                        ('task_type', models.CharField(choices=[('classification', 'Image classification'), ('detection', 'Object detection'), ('segmentation', 'Instance segmentation')], max_length=20)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('sampling_strategy', models.CharField(choices=[('least_confidence', 'Least confidence'), ('margin', 'Smallest margin'), ('entropy', 'Entropy'), ('diversity', 'Diversity (k-center greedy)'), ('hybrid', 'Uncertain pool, then diverse batch'), ('random', 'Random'), ('auto', "Auto: the arm that leads on this project's labels")], default='margin', max_length=20)),
                        ('detection_aggregation', models.CharField(choices=[('max', 'Max over boxes'), ('mean', 'Mean over boxes'), ('sum', 'Sum over boxes')], default='max', max_length=10)),
                        ('random_share', models.FloatField(default=0.1, help_text='Share of the queue served at random, as a control arm (0-1).')),
                        ('queue_model_every', models.PositiveIntegerField(default=10, help_text='Refit the queue model (a linear head on image embeddings) and re-rank the queue after this many new labels; 0 turns it off.')),
                        ('lease_ttl_seconds', models.PositiveIntegerField(default=600)),
                        ('annotations_per_image', models.PositiveSmallIntegerField(default=1, help_text='Independent annotations wanted per image (overlap).')),
                        ('validation_share', models.FloatField(default=0.2, help_text='Random share of labeled images held out for validation (0-1).')),
                        ('retrain_every_n_labels', models.PositiveIntegerField(default=0, help_text='Start a training run after this many new labels; 0 turns it off.')),
                        ('promotion_tolerance', models.FloatField(default=0.0, help_text='Deploy a new version that trails the deployed one by at most this.')),
                        ('min_map50', models.FloatField(default=0.05, help_text='Detection floor: a detector below this mAP50 on the validation split is never deployed.')),
                        ('train_epochs', models.PositiveIntegerField(default=30)),
                        ('train_image_size', models.PositiveIntegerField(default=640)),
                        ('train_batch_size', models.PositiveIntegerField(default=16)),
                        ('start_weights', models.CharField(blank=True, help_text='File name under the trusted weights folder to start from; blank: the deployed version, else a random init from the model config.', max_length=500)),
                        ('target_metric', models.FloatField(blank=True, help_text='Primary metric value the lead aims for (forecast).', null=True)),
                        ('near_duplicate_threshold', models.FloatField(default=0.97, help_text='Flag a new image whose nearest older image is at least this similar (cosine of the embeddings, 0-1); 1 turns flagging off.')),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'labeling_project',
                        'ordering': ['id'],
                    },
                ),
                migrations.CreateModel(
                    name='ModelVersion',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('number', models.PositiveIntegerField()),
                        ('backend', models.CharField(choices=[('yolo', 'YOLOv8 detector'), ('yolo_seg', 'YOLOv8 instance segmentation'), ('classifier', 'PyTorch classifier'), ('linear', 'Queue model: linear head on image embeddings'), ('prototype', 'One-shot proposals: nearest class prototype of the examples'), ('propagation', 'One-shot proposals: label spreading from the examples')], max_length=20)),
                        ('architecture', models.CharField(blank=True, max_length=100)),
                        ('weights', models.FileField(blank=True, max_length=500, upload_to=core.models.weights_upload_to)),
                        ('class_ids', models.JSONField(default=list, help_text='LabelClass ids in model output order.')),
                        ('dataset_size', models.PositiveIntegerField(default=0)),
                        ('validation_size', models.PositiveIntegerField(default=0)),
                        ('metrics', models.JSONField(blank=True, default=dict)),
                        ('primary_metric', models.FloatField(blank=True, null=True)),
                        ('comparison', models.JSONField(blank=True, default=dict, help_text="The promotion gate's decision and its numbers.")),
                        ('status', models.CharField(choices=[('candidate', 'Candidate (evaluated, not decided)'), ('deployed', 'Deployed'), ('rejected', 'Rejected by the promotion gate'), ('retired', 'Previously deployed'), ('queue', 'Ranks the queue only (an image-level head cannot draw boxes)')], default='candidate', max_length=10)),
                        ('is_deployed', models.BooleanField(default=False)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('deployed_at', models.DateTimeField(blank=True, null=True)),
                        ('parent', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='children', to='core.modelversion')),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='model_versions', to='core.project')),
                    ],
                    options={
                        'db_table': 'training_modelversion',
                        'ordering': ['project', '-number'],
                    },
                ),
                migrations.CreateModel(
                    name='LabelClass',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100)),
                        ('color', models.CharField(default='#e6194b', max_length=7)),
                        ('hotkey', models.CharField(blank=True, max_length=1)),
                        ('order', models.PositiveIntegerField(default=0)),
                        ('parent', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.RESTRICT, related_name='children', to='core.labelclass')),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='label_classes', to='core.project')),
                    ],
                    options={
                        'db_table': 'labeling_labelclass',
                        'ordering': ['project', 'order', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='Image',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('file', models.FileField(max_length=500, upload_to=core.models.image_upload_to)),
                        ('display_file', models.FileField(blank=True, max_length=500, upload_to=core.models.display_upload_to)),
                        ('original_name', models.CharField(max_length=500)),
                        ('sha256', models.CharField(max_length=64)),
                        ('width', models.PositiveIntegerField()),
                        ('height', models.PositiveIntegerField()),
                        ('split', models.CharField(choices=[('unassigned', 'Unassigned'), ('train', 'Train'), ('validation', 'Validation')], default='unassigned', max_length=12)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='images', to='core.project')),
                    ],
                    options={
                        'db_table': 'labeling_image',
                        'ordering': ['id'],
                    },
                ),
                migrations.CreateModel(
                    name='Prediction',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('payload', models.JSONField(default=dict)),
                        ('uncertainty', models.FloatField(default=0.0)),
                        ('embedding', models.BinaryField(blank=True, help_text='float32 vector, for diversity sampling.', null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('image', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='predictions', to='core.image')),
                        ('model_version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='predictions', to='core.modelversion')),
                    ],
                    options={
                        'db_table': 'training_prediction',
                        'indexes': [models.Index(fields=['model_version', '-uncertainty'], name='prediction_version_unc')],
                        'constraints': [models.UniqueConstraint(fields=('image', 'model_version'), name='prediction_unique_image_version')],
                    },
                ),
                migrations.AddConstraint(
                    model_name='project',
                    constraint=models.CheckConstraint(condition=models.Q(('random_share__gte', 0), ('random_share__lte', 1)), name='project_random_share_0_1'),
                ),
                migrations.AddConstraint(
                    model_name='project',
                    constraint=models.CheckConstraint(condition=models.Q(('validation_share__gte', 0), ('validation_share__lt', 1)), name='project_validation_share_0_1'),
                ),
                migrations.AddConstraint(
                    model_name='project',
                    constraint=models.CheckConstraint(condition=models.Q(('annotations_per_image__gte', 1)), name='project_overlap_at_least_1'),
                ),
                migrations.AddConstraint(
                    model_name='project',
                    constraint=models.CheckConstraint(condition=models.Q(('min_map50__gte', 0), ('min_map50__lte', 1)), name='project_min_map50_0_1'),
                ),
                migrations.AddConstraint(
                    model_name='modelversion',
                    constraint=models.UniqueConstraint(fields=('project', 'number'), name='modelversion_unique_number'),
                ),
                migrations.AddConstraint(
                    model_name='modelversion',
                    constraint=models.UniqueConstraint(condition=models.Q(('is_deployed', True)), fields=('project',), name='modelversion_one_deployed'),
                ),
                migrations.AddConstraint(
                    model_name='labelclass',
                    constraint=models.UniqueConstraint(fields=('project', 'name'), name='labelclass_unique_name'),
                ),
                migrations.AddConstraint(
                    model_name='labelclass',
                    constraint=models.UniqueConstraint(condition=models.Q(('hotkey', ''), _negated=True), fields=('project', 'hotkey'), name='labelclass_unique_hotkey'),
                ),
                migrations.AddIndex(
                    model_name='image',
                    index=models.Index(fields=['project', 'split'], name='image_project_split'),
                ),
                migrations.AddConstraint(
                    model_name='image',
                    constraint=models.UniqueConstraint(fields=('project', 'sha256'), name='image_unique_sha256'),
                ),
                migrations.AddConstraint(
                    model_name='image',
                    constraint=models.CheckConstraint(condition=models.Q(('width__gt', 0), ('height__gt', 0)), name='image_positive_size'),
                ),
            ],
            database_operations=[],
        ),
    ]
