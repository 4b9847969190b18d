# Projects, classes and images leave labeling's state (their tables are core's now).
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("labeling", "0017_fields_point_at_core"),
        ("training", "0010_models_to_core"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(
                    name='Image',
                ),
                migrations.DeleteModel(
                    name='LabelClass',
                ),
                migrations.DeleteModel(
                    name='Project',
                ),
            ],
            database_operations=[],
        ),
    ]
