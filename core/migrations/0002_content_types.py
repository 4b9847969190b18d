# The moved models keep their content types (and with them permissions and admin log
# entries): the rows are relabeled to core rather than left stale beside new ones.
from django.db import migrations

MOVED = {"labeling": ["project", "labelclass", "image"], "training": ["modelversion", "prediction"]}


def relabel(apps, schema_editor, to_core=True):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for app_label, models in MOVED.items():
        old, new = (app_label, "core") if to_core else ("core", app_label)
        for model in models:
            if not ContentType.objects.filter(app_label=new, model=model).exists():
                ContentType.objects.filter(app_label=old, model=model).update(app_label=new)


def relabel_back(apps, schema_editor):
    relabel(apps, schema_editor, to_core=False)


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("core", "0001_initial"),
        ("labeling", "0018_models_to_core"),
        ("training", "0010_models_to_core"),
    ]

    operations = [
        migrations.RunPython(relabel, relabel_back),
    ]
