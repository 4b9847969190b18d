# The report aggregates keep their content types: relabeled to reports, not left stale.
from django.db import migrations

MOVED = ["reportagreementpair", "reportannotationmark", "reportdailycounts", "reportflagreason",
         "reportlabeledimage"]


def relabel(apps, schema_editor, old="labeling", new="reports"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label=new, model=model).exists():
            ContentType.objects.filter(app_label=old, model=model).update(app_label=new)


def relabel_back(apps, schema_editor):
    relabel(apps, schema_editor, old="reports", new="labeling")


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("labeling", "0019_report_models_to_reports"),
        ("reports", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(relabel, relabel_back),
    ]
