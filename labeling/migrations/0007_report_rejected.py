from collections import Counter

from django.db import migrations, models
from django.db.models import F


def count_past_rejections(apps, schema_editor):
    """Rejections made before the counter existed, into the rows their labels were counted
    in (the same key as labeling.reports.aggregates._daily_key)."""
    Annotation = apps.get_model("labeling", "Annotation")
    ReportAnnotationMark = apps.get_model("labeling", "ReportAnnotationMark")
    ReportDailyCounts = apps.get_model("labeling", "ReportDailyCounts")
    counted = ReportAnnotationMark.objects.values("annotation_id")
    rejected = Annotation.objects.filter(
        review_status="rejected", kind__in=("accept", "correct"), source="human", pk__in=counted
    ).values_list("project_id", "created_at", "author_id", "prediction__model_version_id", "task_id",
                  "task__is_random_pick")
    keys = Counter()
    for project_id, created_at, author_id, version_id, task_id, random_pick in rejected.iterator(chunk_size=2000):
        arm = "none" if task_id is None else ("random" if random_pick else "strategy")
        keys[(project_id, created_at.date(), author_id or 0, version_id or 0, arm)] += 1
    for (project_id, day, annotator_id, version_id, arm), count in keys.items():
        ReportDailyCounts.objects.filter(
            project_id=project_id, day=day, annotator_id=annotator_id, model_version_id=version_id, arm=arm
        ).update(rejected=F("rejected") + count)


class Migration(migrations.Migration):

    dependencies = [
        ("labeling", "0006_drop_task_lease_holder_index"),
        ("training", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="reportdailycounts",
            name="rejected",
            field=models.PositiveIntegerField(default=0, help_text="Labels a lead rejected in review."),
        ),
        migrations.RunPython(count_past_rejections, migrations.RunPython.noop),
    ]
